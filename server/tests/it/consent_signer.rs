//! Who signs the consent: the relationship is chosen, never assumed (a missing choice comes
//! back with the reason and everything entered and drawn); 代筆 (who wrote, for whom, why) is
//! stored with the consent, covered by its receipt and shown on the patient's copy; the
//! explanation is part of the page with a 「文字を大きく」 switch; the pad has a name.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::{csrf_of, location, spawn_app_with_clock};

const STROKES: &str = "100,200 150,150 200,220|300,180 350,120";

both_dbs!(
    async fn the_signer_relationship_is_chosen_and_proxy_writing_is_recorded(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 1).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let csrf = csrf_of(&nurse.get(app.url("/loans/new")).send().await.unwrap().text().await.unwrap());
        let choice = [
            ("csrf", csrf.as_str()),
            ("patient_id", b.patients[0].as_str()),
            ("device_id", b.devices[0].as_str()),
            ("due_on", "2099-01-01"),
        ];
        let page = nurse.post(app.url("/loans/explain")).form(&choice).send().await.unwrap().text().await.unwrap();
        // Nothing is chosen for the signer; the explanation is in the page with its size switch.
        assert!(!page.contains("value=\"self\" required checked") && !page.contains("value=\"self\" checked"), "本人 is not preselected");
        assert!(page.contains("id=\"larger-text\"") && page.contains("文字を大きく"));
        assert!(page.contains("class=\"explanation readable\""));
        assert!(page.contains("id=\"signature-pad\"") && page.contains("aria-label=\"署名欄"), "the pad has an accessible name");
        let css = app.client.get(app.url("/static/staff.css")).send().await.unwrap().text().await.unwrap();
        let rule = css.lines().find(|l| l.starts_with(".explanation {")).unwrap();
        assert!(!rule.contains("overflow") && !rule.contains("max-height"), "no inner scroll box: {rule}");
        assert!(css.contains("#larger-text:checked"), "the switch works without a reload");
        let doc_id = page.split("name=\"document_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();

        // No relationship, and 代筆 ticked without its reason: both reasons at once, and
        // everything entered and drawn is kept (the larger text too).
        let mut sign: Vec<(&str, &str)> = choice.to_vec();
        sign.extend([
            ("document_id", doc_id.as_str()),
            ("signer_name", "山田 花子"),
            ("explained", "yes"),
            ("strokes", STROKES),
            ("larger_text", "yes"),
            ("proxy", "yes"),
            ("proxy_writer", "山田 太郎"),
            ("proxy_for", "山田 花子"),
        ]);
        let r = nurse.post(app.url("/loans")).form(&sign).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let again = r.text().await.unwrap();
        assert!(again.contains("id=\"relationship-error\"") && again.contains("署名する人と患者の関係を選んでください。"));
        assert!(again.contains("id=\"proxy_reason-error\""), "the missing reason is named too");
        assert!(again.contains("id=\"form-errors\""), "the summary at the top");
        assert!(again.contains(&format!("value=\"{STROKES}\"")), "the drawn signature is kept");
        for kept in ["value=\"山田 花子\"", "value=\"山田 太郎\"", "name=\"proxy\" value=\"yes\" checked", "value=\"yes\" form=\"consent-form\" checked"] {
            assert!(again.contains(kept), "{kept} is kept");
        }
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 0);
        drop(tx);

        sign.extend([("relationship", "self"), ("proxy_reason", "手が不自由なため")]);
        let r = nurse.post(app.url("/loans")).form(&sign).send().await.unwrap();
        let to = location(&r);
        assert!(to.ends_with("/copy"), "{} {to}", r.status());
        let copy = nurse.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
        let proxy = copy.split("id=\"proxy-writing\"").nth(1).expect("the copy shows 代筆").split("</table>").next().unwrap();
        assert!(proxy.contains("代筆した人の氏名") && proxy.contains("山田 太郎"));
        assert!(proxy.contains("だれの代わりに書いたか") && proxy.contains("山田 花子"));
        assert!(proxy.contains("手が不自由なため"));

        let mut tx = app.store.read().await.unwrap();
        let consent_id = lending::store::audit::recent(&mut tx, 50).await.unwrap().into_iter().find(|e| e.action == "consent.view").unwrap().target_id;
        let consent = lending::store::loans::consent(&mut tx, &consent_id).await.unwrap().unwrap();
        assert_eq!(
            (consent.relationship.as_str(), consent.proxy_writer.as_str(), consent.proxy_written_for.as_str(), consent.proxy_reason.as_str()),
            ("self", "山田 太郎", "山田 花子", "手が不自由なため")
        );
        // The receipt covers 代筆: changed in the database, it no longer verifies.
        let key = &app.state.receipts;
        let mut forged = consent.clone();
        assert!(lending::receipts::verify(&key.public_key(), &consent, &["T-0000".into()], "2099-01-01"));
        forged.proxy_writer = "別人".into();
        assert!(!lending::receipts::verify(&key.public_key(), &forged, &["T-0000".into()], "2099-01-01"));
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn proxy_writing_over_the_api_and_none_when_the_signer_wrote(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let mut tx = app.store.begin().await.unwrap();
        let out = lending::service::loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0]), &lending::testing::receipt_key())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(out.consent.proxy_writer.is_empty());
        enroll(&app.store, "n1", &app.keys).await;
        let (cookie, _) = app.session("n1", 0).await;
        let copy = |lang: &'static str| {
            app.client
                .get(app.url(&format!("/loans/{}/copy", out.loan.id)))
                .header("cookie", format!("lending_session={cookie}; lang={lang}"))
                .send()
        };
        let ja = copy("ja").await.unwrap().text().await.unwrap();
        assert!(!ja.contains("id=\"proxy-writing\""), "no 代筆 block when the signer wrote it");
        assert!(ja.contains("本人"));
        assert!(copy("en").await.unwrap().text().await.unwrap().contains("The patient"));

        // The API takes 代筆 as an optional part of the consent, checks it, and shows it back.
        let token = app.token("n1").await;
        let mut body = serde_json::json!({
            "patient_id": b.patients[1],
            "device_ids": [b.devices[1]],
            "due_on": "2099-01-01",
            "consent": {
                "signer_name": "山田 花子", "relationship": "self",
                "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [b.document_id],
                "proxy": { "writer": "佐藤 看護師", "written_for": "山田 花子", "reason": "" },
            },
        });
        let post = |body: serde_json::Value| app.client.post(app.url("/api/v1/loans")).bearer_auth(&token).json(&body).send();
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["fields"][0]["field"], "proxy_reason");
        body["consent"]["proxy"]["reason"] = "手が震えて書けないため".into();
        let r = post(body).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<serde_json::Value>().await.unwrap()["loan_id"].as_str().unwrap().to_owned();
        let loan: serde_json::Value = app.client.get(app.url(&format!("/api/v1/loans/{id}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(loan["consent"]["proxy"]["writer"], "佐藤 看護師");
        assert_eq!(loan["consent"]["proxy"]["reason"], "手が震えて書けないため");
        app.stop().await;
    }
);
