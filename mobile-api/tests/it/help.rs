//! The help page and its JSON, unknown and revoked labels, reports, limits and the alert mail.

use lending::service::{incidents, loans, reports};
use lending::{both_dbs, Actor};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{spawn, PublicApp};

/// Lends device `i` to patient 0 (山田 花子), so the page is tested while patient data exists.
async fn lend(app: &PublicApp, i: usize) {
    let mut tx = app.store.begin().await.unwrap();
    loans::check_out(&mut tx, &app.basic.nurse, app.basic.check_out_request(0, &[i]), &lending::testing::receipt_key())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

both_dbs!(
    async fn help_page_puts_contacts_first_and_shows_no_patient_data(backend) {
        let app = spawn(backend).await;
        lend(&app, 0).await;
        let token = app.token(0).await;
        let r = app.client.get(app.url(&format!("/d/{token}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get("set-cookie").is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("href=\"tel:0300001111\"") && page.contains("href=\"tel:0300002222\""), "day and night lines as tel: links");
        let order = ["お困りのときの連絡先", "うまく動かないとき", "アラームが鳴ったとき", "なくしたとき", "返却のしかた", "データの扱いと保護"];
        let positions: Vec<usize> = order.iter().map(|h| page.find(h).unwrap_or_else(|| panic!("{h} is on the page"))).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "sections in the order of SPEC §8");
        for private in ["山田", "花子", "P-000000"] {
            assert!(!page.contains(private), "{private} must not appear");
        }
        assert!(!page.contains("<script"), "works without JavaScript");

        let en = app.client.get(app.url(&format!("/d/{token}?lang=en"))).send().await.unwrap().text().await.unwrap();
        assert!(en.contains("Whom to call") && en.contains("Pulse oximeter T1"));
        let by_header = app.client.get(app.url(&format!("/d/{token}"))).header("accept-language", "en-US,en;q=0.9").send().await.unwrap();
        assert!(by_header.text().await.unwrap().contains("Whom to call"));

        let j: Value = app.client.get(app.url(&format!("/api/v1/devices/{token}"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(j["institution"]["day_phone"], "03-0000-1111");
        assert_eq!(j["device"]["asset_tag"], "T-0000");
        let text = j.to_string();
        assert!(!text.contains("山田") && !text.contains("patient") && !text.contains("loan") && !text.contains("consent"));

        let spec: Value = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(spec["paths"]["/api/v1/devices/{token}/reports"]["post"].is_object());
        app.stop().await;
    }
);

both_dbs!(
    async fn unknown_and_revoked_labels_get_a_404_with_the_clinic_phone(backend) {
        let app = spawn(backend).await;
        let b = &app.basic;
        for token in ["AAAAAAAAAAAAAAAAAAAAAA", "not-a-token", "%E3%81%82"] {
            let r = app.client.get(app.url(&format!("/d/{token}"))).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{token}");
            let page = r.text().await.unwrap();
            assert!(page.contains("tel:0300001111") && page.contains("見つかりませんでした"));
            assert!(!page.contains("T-000"), "nothing about any device");
        }
        // A device lost and written off: its label no longer leads anywhere.
        lend(&app, 1).await;
        let token = app.token(1).await;
        let mut tx = app.store.begin().await.unwrap();
        incidents::report_lost(&mut tx, &b.nurse, &b.devices[1], "lost", "").await.unwrap();
        incidents::write_off(&mut tx, &b.admin, &b.devices[1]).await.unwrap();
        tx.commit().await.unwrap();
        let r = app.client.get(app.url(&format!("/d/{token}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let page = r.text().await.unwrap();
        assert!(page.contains("このラベルは現在使われていません") && page.contains("tel:0300002222"));
        assert!(!page.contains("Pulse") && !page.contains("パルスオキシメータ"));
        let j = app.client.get(app.url(&format!("/api/v1/devices/{token}"))).send().await.unwrap();
        assert_eq!(j.status(), StatusCode::NOT_FOUND);
        assert_eq!(j.json::<Value>().await.unwrap()["error"], "revoked");
        app.stop().await;
    }
);

both_dbs!(
    async fn oversized_cross_site_and_flooding_requests_are_refused(backend) {
        let app = spawn(backend).await;
        let token = app.token(0).await;
        let reports_url = app.url(&format!("/api/v1/devices/{token}/reports"));
        let huge = json!({ "category": "other", "body": "あ".repeat(70_000) });
        // Its own connection: the server answers 413 without reading the body and closes it.
        let r = reqwest::Client::new().post(&reports_url).json(&huge).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "a 200 kB report");

        let form_token = app.form_token(&token).await;
        let form = [("form_token", form_token.as_str()), ("category", "alarm"), ("body", "x")];
        let form_url = app.url(&format!("/d/{token}/report"));
        let r = app.client.post(&form_url).header("origin", "https://evil.example").form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app.client.post(&form_url).header("sec-fetch-site", "cross-site").form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app.client.post(&form_url).form(&[("form_token", "1.forged"), ("category", "alarm")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "a form not from our page");
        let mut tx = app.store.read().await.unwrap();
        assert!(reports::list(&mut tx, true).await.unwrap().is_empty(), "nothing was written");
        drop(tx);

        let statuses = futures_statuses(&app, &reports_url, mobile_api::limits::REPORTS_PER_MINUTE + 3).await;
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), mobile_api::limits::REPORTS_PER_MINUTE as usize);
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 3);

        // Guessing labels: unknown tokens are limited too.
        let mut limited = false;
        for n in 0..(mobile_api::limits::UNKNOWN_PER_MINUTE + 2) {
            let r = app.client.get(app.url(&format!("/d/AAAAAAAAAAAAAAAAAAAA{n:02}"))).send().await.unwrap();
            limited |= r.status() == StatusCode::TOO_MANY_REQUESTS;
        }
        assert!(limited, "a flood of unknown labels gets 429");
        app.stop().await;
    }
);

async fn futures_statuses(app: &PublicApp, url: &str, n: u32) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = app
            .client
            .post(url)
            .json(&json!({ "category": "not_working", "body": "電源が入りません" }))
            .send()
            .await
            .unwrap();
        out.push(r.status());
    }
    out
}

both_dbs!(
    async fn a_report_queues_exactly_one_alert_mail_without_patient_data(backend) {
        let app = spawn(backend).await;
        lend(&app, 2).await;
        let token = app.token(2).await;
        let form_token = app.form_token(&token).await;
        let typed = "山田花子です。アラームが止まりません";
        let form = [("form_token", form_token.as_str()), ("category", "alarm"), ("body", typed), ("callback_phone", "090-0000-1234")];
        let r = app.client.post(app.url(&format!("/d/{token}/report"))).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let thanks = app.client.get(app.url(r.headers()["location"].to_str().unwrap())).send().await.unwrap().text().await.unwrap();
        assert!(thanks.contains("ご連絡ありがとうございました"));

        // The staff service's worker picks it up (twice here: the second finds nothing new).
        for _ in 0..2 {
            let mut tx = app.store.begin().await.unwrap();
            reports::alert_new(&mut tx, "https://staff.example").await.unwrap();
            tx.commit().await.unwrap();
        }
        let mut tx = app.store.read().await.unwrap();
        let mails = lending::store::outbox::all(&mut tx).await.unwrap();
        assert_eq!(mails.len(), 1, "one admin with an address, one mail");
        let m = &mails[0];
        assert_eq!(m.recipient, "a1@example.jp");
        for text in [&m.subject, &m.body_text, &m.body_html] {
            assert!(!text.contains("山田") && !text.contains("花子") && !text.contains("090-0000-1234"), "no patient data: {text}");
        }
        assert!(m.body_text.contains("T-0002") && m.body_text.contains("https://staff.example/reports"));
        let stored = reports::list(&mut tx, false).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].body, typed, "staff see what was typed, in the staff app");
        assert_eq!(lending::store::audit::count_action(&mut tx, "problem_report.received").await.unwrap(), 1);
        drop(tx);

        // Delivered as an .eml file (the default transport), still without patient data.
        let mailer = lending::mail::Mailer::Files(app.db.data_dir.join("outbox"));
        assert_eq!(lending::mail::deliver_due(&app.store, &mailer, "lending@localhost").await.unwrap(), (1, 0));
        assert_eq!(lending::mail::deliver_due(&app.store, &mailer, "lending@localhost").await.unwrap(), (0, 0), "sent once");
        let files: Vec<_> = std::fs::read_dir(app.db.data_dir.join("outbox")).unwrap().collect();
        assert_eq!(files.len(), 1);
        let eml = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(eml.contains("a1@example.jp") && eml.contains("Subject:"));
        app.stop().await;
    }
);

both_dbs!(
    async fn edits_show_on_the_page_without_a_restart(backend) {
        let app = spawn(backend).await;
        let token = app.token(0).await;
        let url = app.url(&format!("/d/{token}"));
        let first = app.client.get(&url).send().await.unwrap();
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(first.headers()["cache-control"], "no-cache");
        assert!(first.text().await.unwrap().contains("03-0000-1111"));
        // A phone that holds this page revalidates and gets no body; another language is another page.
        let again = app.client.get(&url).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!((again.status(), again.headers()["etag"].to_str().unwrap()), (StatusCode::NOT_MODIFIED, etag.as_str()));
        assert!(again.bytes().await.unwrap().is_empty());
        let en = app.client.get(app.url(&format!("/d/{token}?lang=en"))).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(en.status(), StatusCode::OK);
        assert_ne!(en.headers()["etag"].to_str().unwrap(), etag);
        let mut tx = app.store.begin().await.unwrap();
        let mut inst = lending::store::registry::institution(&mut tx).await.unwrap().unwrap();
        inst.day_phone = "03-0000-9999".into();
        lending::service::registry::save_institution(&mut tx, &Actor::cli(), &inst).await.unwrap();
        tx.commit().await.unwrap();
        let changed = app.client.get(&url).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(changed.status(), StatusCode::OK, "an edit changes the page's tag");
        let page = changed.text().await.unwrap();
        assert!(page.contains("03-0000-9999") && !page.contains("03-0000-1111"), "the cache followed the change");
        app.stop().await;
    }
);

#[tokio::test]
async fn the_help_page_has_the_clinic_icon() {
    let app = spawn(lending::Backend::Sqlite).await;
    let token = app.token(0).await;
    let page = app.client.get(app.url(&format!("/d/{token}"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"));
    for path in ["/static/favicon.svg", "/favicon.ico"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert!(r.text().await.unwrap().starts_with("<svg"), "{path}");
    }
    app.stop().await;
}
