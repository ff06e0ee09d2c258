//! The loan page (`/loans/{id}`) and its corrections (SPEC §4, §9): what it shows and to whom,
//! extending the due date, recording a consent withdrawal, voiding a mistaken check-out within
//! the window, taking the whole kit back in one pass, the family's return receipt; the API
//! counterparts; and the patient's copy and the return receipt printed by Chromium.

use std::process::Command;

use fantoccini::wd::{PrintConfiguration, PrintMargins, PrintSize};
use fantoccini::Locator;
use lending::testing::{enroll, seed_basic, Basic};
use lending::{both_dbs, Backend, DeviceStatus};
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{browser_sign_in, open_browser};
use crate::{csrf_of, location, spawn_app_with_clock, TestApp};

/// Lends devices `devices` to patient 0 as nurse n1, through the service.
async fn lend(app: &TestApp, b: &Basic, devices: &[usize]) -> String {
    let mut tx = app.store.begin().await.unwrap();
    let out =
        lending::service::loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, devices), &app.state.receipts)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    out.loan.id
}

async fn count(app: &TestApp, action: &str) -> i64 {
    let mut tx = app.store.read().await.unwrap();
    lending::store::audit::count_action(&mut tx, action).await.unwrap()
}

async fn status(app: &TestApp, device: &str) -> DeviceStatus {
    let mut tx = app.store.read().await.unwrap();
    lending::store::devices::get(&mut tx, device).await.unwrap().unwrap().status
}

async fn invariants_hold(app: &TestApp) {
    let mut tx = app.store.read().await.unwrap();
    let v = lending::store::loans::invariant_violations(&mut tx).await.unwrap();
    assert!(v.is_clean(), "{v:?}");
}

both_dbs!(
    async fn loan_page_shows_the_loan_only_the_allowed_actions_and_is_an_audited_read(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let loan = lend(&app, &b, &[0, 1]).await;
        // A reminder queued for this loan and one for another key: only the first is listed.
        let mut tx = app.store.begin().await.unwrap();
        for (key, to) in [(format!("reminder:{loan}:due_soon:n1@example.jp"), "n1@example.jp"), ("reminder:other:due_soon:x@example.jp".to_owned(), "x@example.jp")] {
            let mail = lending::store::outbox::Mail {
                id: lending::ids::new_id(),
                dedupe_key: key,
                recipient: to.into(),
                subject: "s".into(),
                body_text: "b".into(),
                body_html: String::new(),
                attempts: 0,
            };
            lending::store::outbox::enqueue(&mut tx, &mail).await.unwrap();
        }
        tx.commit().await.unwrap();

        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let before = count(&app, "loan.view").await;
        let r = nurse.get(app.url(&format!("/loans/{loan}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        assert_eq!(count(&app, "loan.view").await, before + 1, "reading the loan page is one audited patient read");
        let mut tx = app.store.read().await.unwrap();
        let ev = lending::store::audit::recent(&mut tx, 5).await.unwrap().into_iter().find(|e| e.action == "loan.view").unwrap();
        assert_eq!(ev.target_id, loan);
        assert_eq!(ev.patient_id, b.patients[0]);
        drop(tx);
        for text in ["山田 花子", "T-0000", "T-0001", "パルスオキシメータ T1", "貸出中", "まだ貸出中", "控えの署名を確認しました", "本人", "2099年1月1日"] {
            assert!(page.contains(text), "the loan page shows {text}");
        }
        assert!(page.contains(&format!("href=\"/loans/{loan}/copy\"")), "a link to the patient's copy");
        assert!(page.contains("due_soon") && page.contains("n1@example.jp"), "the reminder sent is listed");
        assert!(!page.contains("x@example.jp"), "only this loan's reminders");
        for form in ["extend", "withdraw", "void", "returns"] {
            assert!(page.contains(&format!("action=\"/loans/{loan}/{form}\"")), "the lending nurse sees {form}");
        }
        assert!(!page.contains("checked"), "nothing on the return checklist is pre-ticked");

        // Another nurse: everything but the void (only the lending nurse or an admin).
        let n2 = enroll(&app.store, "n2", &app.keys).await;
        let other = app.sign_in("n2", &n2).await;
        let page = other.get(app.url(&format!("/loans/{loan}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(&format!("action=\"/loans/{loan}/extend\"")));
        assert!(!page.contains(&format!("action=\"/loans/{loan}/void\"")), "no void button for another nurse");
        // An auditor reads it with no action at all.
        let au = enroll(&app.store, "au1", &app.keys).await;
        let auditor = app.sign_in("au1", &au).await;
        let page = auditor.get(app.url(&format!("/loans/{loan}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("T-0000") && page.contains("この画面でできる操作はありません"));
        assert!(!page.contains(&format!("action=\"/loans/{loan}/")), "auditors get no action buttons");
        // The copy links back to the loan page and offers the print button (script from a file).
        let copy = nurse.get(app.url(&format!("/loans/{loan}/copy"))).send().await.unwrap().text().await.unwrap();
        assert!(copy.contains(&format!("href=\"/loans/{loan}\"")) && copy.contains("id=\"print-page\"") && copy.contains("/static/print.js"));
        let js = nurse.get(app.url("/static/print.js")).send().await.unwrap().text().await.unwrap();
        assert!(js.contains("window.print()"));
        // The device page links the loan of a device out on it.
        let devices = nurse.get(app.url("/devices")).send().await.unwrap().text().await.unwrap();
        assert!(devices.contains(&format!("href=\"/loans/{loan}\"")), "the device list links to the loan");
        app.stop().await;
    }
);

both_dbs!(
    async fn extend_withdraw_and_return_the_kit_from_the_loan_page_each_audited_once(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let loan = lend(&app, &b, &[0, 1]).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let path = format!("/loans/{loan}");
        let page = nurse.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        let csrf = csrf_of(&page);
        let key = page.split("name=\"idempotency_key\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

        // Extend: a past date and a missing reason come back on the same page, the values kept.
        let r = nurse
            .post(app.url(&format!("{path}/extend")))
            .form(&[("csrf", csrf.as_str()), ("due_on", "2026-11-01"), ("extend_reason", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let again = r.text().await.unwrap();
        assert!(again.contains("過去の日付") && again.contains("理由を入力してください") && again.contains("value=\"2026-11-01\""));
        assert_eq!(count(&app, "loan.extend").await, 0);
        let r = nurse
            .post(app.url(&format!("{path}/extend")))
            .form(&[("csrf", csrf.as_str()), ("due_on", "2099-02-01"), ("extend_reason", "入院のため")])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), format!("{path}?done=extend"));
        assert_eq!(count(&app, "loan.extend").await, 1, "one audit event for the extension");
        let mut tx = app.store.read().await.unwrap();
        let ev = lending::store::audit::recent(&mut tx, 5).await.unwrap().into_iter().find(|e| e.action == "loan.extend").unwrap();
        assert!(ev.details.contains("2099-01-01") && ev.details.contains("2099-02-01"), "old and new date: {}", ev.details);
        let l = lending::store::loans::get(&mut tx, &loan).await.unwrap().unwrap();
        assert_eq!(l.due_on.to_string(), "2099-02-01");
        let check = lending::service::loans::check_receipt(&mut tx, &app.state.receipts, &l.consent_id).await.unwrap();
        assert!(check.valid, "the consent receipt still verifies after an extension");
        drop(tx);
        let page = nurse.get(app.url(&format!("{path}?done=extend"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("返却予定日を変更しました") && page.contains("2099年2月1日") && page.contains("入院のため"));

        // Consent withdrawal, once.
        let r = nurse
            .post(app.url(&format!("{path}/withdraw")))
            .form(&[("csrf", csrf.as_str()), ("withdraw_signer", "山田 花子"), ("withdraw_reason", "本人の希望")])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), format!("{path}?done=withdraw"));
        assert_eq!(count(&app, "consent.withdraw").await, 1);
        let r = nurse.post(app.url(&format!("{path}/withdraw"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "a second withdrawal is a conflict");
        assert_eq!(count(&app, "consent.withdraw").await, 1);
        let page = nurse.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("同意は撤回されました") && !page.contains(&format!("action=\"{path}/withdraw\"")));

        // The whole kit in one pass: without who brought it back, refused with everything kept.
        let (d0, d1) = (b.devices[0].as_str(), b.devices[1].as_str());
        let (dm0, cl0, ac1, no1) = (format!("damaged:{d0}"), format!("cleaned:{d0}"), format!("accessories_complete:{d1}"), format!("condition_notes:{d1}"));
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("idempotency_key", key.as_str()),
            ("device_id", d0),
            ("device_id", d1),
            (dm0.as_str(), "yes"),
            (cl0.as_str(), "yes"),
            (ac1.as_str(), "yes"),
            (no1.as_str(), "充電ケーブルに傷"),
            ("strokes", "100,200 150,150 200,220"),
        ];
        let r = nurse.post(app.url(&format!("{path}/returns"))).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let again = r.text().await.unwrap();
        assert!(again.contains("返却した人の氏名を入力してください") && again.contains("充電ケーブルに傷") && again.contains("value=\"100,200 150,150 200,220\""));
        assert_eq!(again.matches(" checked").count(), 3, "the three ticks kept, no more");
        assert_eq!(count(&app, "loan.return").await, 0);
        form.push(("returned_by_name", "山田 太郎"));
        let r = nurse.post(app.url(&format!("{path}/returns"))).form(&form).send().await.unwrap();
        assert_eq!(location(&r), format!("{path}?done=return"));
        assert_eq!(count(&app, "loan.return").await, 2, "one loan.return per device");
        // A double submit with the same form key: the first result, nothing written.
        let r = nurse.post(app.url(&format!("{path}/returns"))).form(&form).send().await.unwrap();
        assert_eq!(location(&r), format!("{path}?done=return"));
        assert_eq!(count(&app, "loan.return").await, 2);
        assert_eq!(status(&app, d0).await, DeviceStatus::AwaitingWipe);
        assert_eq!(status(&app, d1).await, DeviceStatus::AwaitingWipe);
        let mut tx = app.store.read().await.unwrap();
        let returns = lending::store::loans::returns_of(&mut tx, &loan).await.unwrap();
        let r0 = returns.iter().find(|r| r.device_id == d0).unwrap();
        let r1 = returns.iter().find(|r| r.device_id == d1).unwrap();
        assert!(r0.damaged && r0.cleaned && !r0.accessories_complete && r0.signature_svg.is_some());
        assert!(!r1.damaged && !r1.cleaned && r1.accessories_complete && r1.condition_notes == "充電ケーブルに傷");
        assert!(lending::store::loans::get(&mut tx, &loan).await.unwrap().unwrap().closed_at.is_some());
        drop(tx);
        invariants_hold(&app).await;

        let page = nurse.get(app.url(&format!("{path}?done=return"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("返却を記録しました") && page.contains(&format!("href=\"{path}/returns/receipt\"")));
        assert!(page.contains("終了") && page.contains("山田 太郎") && !page.contains(&format!("action=\"{path}/returns\"")));
        let before = count(&app, "loan.return_receipt").await;
        let receipt = nurse.get(app.url(&format!("{path}/returns/receipt"))).send().await.unwrap().text().await.unwrap();
        for text in ["返却受付書", "T-0000", "T-0001", "山田 太郎", "職員 n1", "03-0000-1111", "印刷する", "付属品が足りない", "破損"] {
            assert!(receipt.contains(text), "the return receipt shows {text}");
        }
        assert_eq!(count(&app, "loan.return_receipt").await, before + 1);
        app.stop().await;
    }
);

both_dbs!(
    async fn void_within_the_window_by_the_lending_nurse_only(backend) {
        let clock = lending::testing::test_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 3).await;
        let first = lend(&app, &b, &[0, 1]).await;
        let n2_token = app.token("n2").await;
        let n1_token = app.token("n1").await;
        let au_token = app.token("au1").await;

        // Another nurse: 409, naming the loan; an auditor: 403.
        let r = app.client.post(app.url(&format!("/api/v1/loans/{first}/void"))).bearer_auth(&n2_token).json(&serde_json::json!({"reason": "x"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body: Value = r.json().await.unwrap();
        assert!(body["message_ja"].as_str().unwrap().contains(&first), "{body}");
        let r = app.client.post(app.url(&format!("/api/v1/loans/{first}/void"))).bearer_auth(&au_token).json(&serde_json::json!({"reason": "x"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let n2 = enroll(&app.store, "n2", &app.keys).await;
        let other = app.sign_in("n2", &n2).await;
        let csrf = app.csrf(&other, &format!("/loans/{first}")).await;
        let r = other.post(app.url(&format!("/loans/{first}/void"))).form(&[("csrf", csrf.as_str()), ("void_reason", "x")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.text().await.unwrap().contains(&first), "the page names the loan");

        // The lending nurse, through the page: a reason is needed; then voided.
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let csrf = app.csrf(&nurse, &format!("/loans/{first}")).await;
        let r = nurse.post(app.url(&format!("/loans/{first}/void"))).form(&[("csrf", csrf.as_str()), ("void_reason", " ")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(count(&app, "loan.void").await, 0);
        let r = nurse.post(app.url(&format!("/loans/{first}/void"))).form(&[("csrf", csrf.as_str()), ("void_reason", "患者を取り違えた")]).send().await.unwrap();
        assert_eq!(location(&r), format!("/loans/{first}?done=void"));
        assert_eq!(count(&app, "loan.void").await, 1, "one audit event loan.void");
        assert_eq!(count(&app, "loan.return").await + count(&app, "wipe.record").await, 0, "no fake return or wipe");
        assert_eq!(status(&app, &b.devices[0]).await, DeviceStatus::Available);
        assert_eq!(status(&app, &b.devices[1]).await, DeviceStatus::Available);
        let mut tx = app.store.read().await.unwrap();
        let l = lending::store::loans::get(&mut tx, &first).await.unwrap().unwrap();
        assert!(l.closed_at.is_some());
        assert!(lending::store::loans::consent(&mut tx, &l.consent_id).await.unwrap().is_some(), "the consent is kept as evidence");
        assert!(lending::store::loans::returns_of(&mut tx, &first).await.unwrap().is_empty());
        drop(tx);
        invariants_hold(&app).await;
        let page = nurse.get(app.url(&format!("/loans/{first}?done=void"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("取り消し済み") && page.contains("患者を取り違えた") && page.contains("同意書は記録として残ります"));
        let copy = nurse.get(app.url(&format!("/loans/{first}/copy"))).send().await.unwrap().text().await.unwrap();
        assert!(copy.contains("id=\"voided\"") && copy.contains("取り消し済み"), "the kept consent is marked void");
        // The devices can be lent again at once (to the right patient).
        let second = lend(&app, &b, &[0]).await;
        invariants_hold(&app).await;

        // Past LENDING_VOID_MINUTES (30): refused with 409 naming the loan, on the API and the page.
        clock.advance(chrono::Duration::minutes(31));
        let r = app.client.post(app.url(&format!("/api/v1/loans/{second}/void"))).bearer_auth(&n1_token).json(&serde_json::json!({"reason": "x"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body: Value = r.json().await.unwrap();
        assert!(body["message_ja"].as_str().unwrap().contains(&second) && body["message_ja"].as_str().unwrap().contains("30分"), "{body}");
        let nurse = app.sign_in("n1", &n1).await;
        let page = nurse.get(app.url(&format!("/loans/{second}"))).send().await.unwrap().text().await.unwrap();
        assert!(!page.contains(&format!("action=\"/loans/{second}/void\"")), "no void button after the window");
        let csrf = csrf_of(&page);
        let r = nurse.post(app.url(&format!("/loans/{second}/void"))).form(&[("csrf", csrf.as_str()), ("void_reason", "x")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(count(&app, "loan.void").await, 1);
        assert_eq!(status(&app, &b.devices[0]).await, DeviceStatus::OnLoan);

        // The API: read the loan, extend it (once per Idempotency-Key).
        let r = app.client.get(app.url(&format!("/api/v1/loans/{second}"))).bearer_auth(&au_token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["state"], "open");
        assert_eq!(v["devices"][0]["asset_tag"], "T-0000");
        assert_eq!(v["actions"]["extend"], false, "an auditor may do nothing");
        let v: Value = app.client.get(app.url(&format!("/api/v1/loans/{second}"))).bearer_auth(&n1_token).send().await.unwrap().json().await.unwrap();
        assert_eq!((v["actions"]["extend"].as_bool(), v["actions"]["void"].as_bool()), (Some(true), Some(false)));
        let extend = |token: &str| {
            app.client
                .post(app.url(&format!("/api/v1/loans/{second}/extend")))
                .bearer_auth(token)
                .header("idempotency-key", "extend-key-0123456789")
                .json(&serde_json::json!({"due_on": "2099-03-01", "reason": "入院"}))
        };
        assert_eq!(extend(&n1_token).send().await.unwrap().status(), StatusCode::CREATED);
        assert_eq!(extend(&n1_token).send().await.unwrap().status(), StatusCode::CREATED, "a retry gets the first result");
        assert_eq!(count(&app, "loan.extend").await, 1);
        let r = app.client.post(app.url(&format!("/api/v1/loans/{second}/extend"))).bearer_auth(&n1_token).json(&serde_json::json!({"due_on": "2026-01-01", "reason": ""})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["fields"].as_array().unwrap().len(), 2, "{body}");
        app.stop().await;
    }
);

/// Prints the page the browser shows to A4 PDF and returns its text (pdftotext).
async fn print_text(c: &fantoccini::Client, name: &str) -> String {
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join(format!("{name}.png")), c.screenshot().await.unwrap()).unwrap();
    let config = PrintConfiguration::builder()
        .size(PrintSize { width: 21.0, height: 29.7 })
        .margins(PrintMargins { top: 1.0, bottom: 1.0, left: 1.0, right: 1.0 })
        .background(true)
        .build()
        .unwrap();
    let pdf = c.print(config).await.unwrap();
    let path = artifacts.join(format!("{name}.pdf"));
    std::fs::write(&path, &pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext is needed (apt-get install poppler-utils; .ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_and_the_return_receipt_print_without_navigation() {
    let app = spawn_app_with_clock(Backend::Sqlite, lending::testing::test_clock()).await;
    let b = seed_basic(&app.store, 2).await;
    let loan = lend(&app, &b, &[0, 1]).await;
    let mut tx = app.store.begin().await.unwrap();
    let consent_id = lending::store::loans::get(&mut tx, &loan).await.unwrap().unwrap().consent_id;
    let code = lending::store::loans::consent(&mut tx, &consent_id).await.unwrap().unwrap().verification_code;
    let kit = lending::service::loans::KitReturn {
        loan_id: loan.clone(),
        devices: b
            .devices
            .iter()
            .map(|d| lending::service::loans::DeviceCondition {
                device_id: d.clone(),
                cleaned: true,
                accessories_complete: true,
                ..Default::default()
            })
            .collect(),
        returned_by_name: "山田 太郎".into(),
        signature_svg: None,
    };
    lending::service::loans::return_kit(&mut tx, &b.nurse, kit).await.unwrap();
    tx.commit().await.unwrap();
    let secret = enroll(&app.store, "n1", &app.keys).await;
    let (_driver, c) = open_browser(1280, 900).await;
    browser_sign_in(&c, &app, "n1", &secret).await;

    // The loan page after the return: the confirmation and the receipt offered (kept as a screenshot).
    c.goto(&app.url(&format!("/loans/{loan}?done=return"))).await.unwrap();
    let done = c.find(Locator::Css("#done")).await.unwrap().text().await.unwrap();
    assert!(done.contains("返却を記録しました") && done.contains("返却受付書を印刷する"), "{done}");
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("loan-page-after-return.png"), c.screenshot().await.unwrap()).unwrap();
    c.goto(&app.url(&format!("/loans/{loan}/copy"))).await.unwrap();
    c.find(Locator::Css("#print-page")).await.expect("the 印刷する button");
    let text = print_text(&c, "loan-copy").await;
    for item in ["患者さま控え", "山田 花子", "T-0000", "T-0001", "03-0000-1111", "03-0000-2222", code.as_str()]
    {
        // Letter-spaced text (the code) comes out of pdftotext with gaps: compare without spaces.
        assert!(squeeze(&text).contains(&squeeze(item)), "the printed copy shows {item}:\n{text}");
    }
    for nav in ["サインアウト", "ラベル印刷", "印刷する", "貸出の記録を開く"] {
        assert!(!text.contains(nav), "the printed copy has no navigation ({nav}):\n{text}");
    }

    c.goto(&app.url(&format!("/loans/{loan}/returns/receipt"))).await.unwrap();
    c.find(Locator::Css("#print-page")).await.expect("the 印刷する button");
    let text = print_text(&c, "return-receipt").await;
    for item in [
        "返却受付書",
        "山田 花子",
        "T-0000",
        "T-0001",
        "山田 太郎",
        "職員 n1",
        "異常なし",
        "03-0000-1111",
        "03-0000-2222",
    ] {
        assert!(squeeze(&text).contains(&squeeze(item)), "the printed receipt shows {item}:\n{text}");
    }
    for nav in ["サインアウト", "ラベル印刷", "印刷する"] {
        assert!(!text.contains(nav), "the printed receipt has no navigation ({nav}):\n{text}");
    }
    c.close().await.unwrap();
    app.stop().await;
}

both_dbs!(
    async fn an_extended_loan_is_reminded_again_for_its_new_date_and_the_page_lists_it(backend) {
        let clock = lending::testing::test_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 1).await;
        let loan = lend(&app, &b, &[0]).await;
        let queue = async || {
            let mut tx = app.store.begin().await.unwrap();
            let n = lending::service::reminders::queue_due(&mut tx, app.state.cfg.reminder_cadence, "http://x").await.unwrap();
            tx.commit().await.unwrap();
            n
        };
        // Two days before the first due date (2099-01-01): the lending nurse is reminded once.
        clock.set(lending::testing::tokyo(2098, 12, 30, 10, 0));
        assert_eq!(queue().await, 1);
        assert_eq!(queue().await, 0);
        let mut tx = app.store.begin().await.unwrap();
        let due = chrono::NaiveDate::from_ymd_opt(2099, 1, 20);
        lending::service::loans::extend(&mut tx, &b.nurse, &loan, due, "入院のため").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(queue().await, 0, "nothing is due soon after the extension");
        clock.set(lending::testing::tokyo(2099, 1, 18, 10, 0));
        assert_eq!(queue().await, 1, "reminded again before the new date");
        let token = app.token("n1").await;
        let v: Value = app.client.get(app.url(&format!("/api/v1/loans/{loan}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["reminders"].as_array().unwrap().len(), 2, "{v}");
        assert_eq!(v["extensions"][0]["old_due_on"], "2099-01-01");
        assert_eq!(v["due_on"], "2099-01-20");
        app.stop().await;
    }
);
