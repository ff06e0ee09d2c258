//! A double tap or a retried request never makes a second record: check-out, return, wipe and
//! verification sent twice with the same idempotency key, 50 ms apart, write once and both
//! answers lead to the same loan, return or wipe.

use std::time::Duration;

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{location, spawn_app};

/// Sends the same request twice, the second 50 ms after the first, and returns both answers.
async fn twice(send: impl Fn() -> reqwest::RequestBuilder) -> (reqwest::Response, reqwest::Response) {
    let first = tokio::spawn(send().send());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = send().send().await.unwrap();
    (first.await.unwrap().unwrap(), second)
}

async fn json_of(r: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    r.json().await.unwrap()
}

both_dbs!(
    async fn api_double_submits_write_once_and_answer_alike(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 2).await;
        let (n1, n2) = (app.token("n1").await, app.token("n2").await);
        let post = |path: &str, token: &str, key: &str, body: Value| {
            let (url, token, key) = (app.url(path), token.to_owned(), key.to_owned());
            let client = app.client.clone();
            move || client.post(&url).bearer_auth(&token).header("idempotency-key", &key).json(&body)
        };
        let checkout = json!({
            "patient_id": b.patients[0],
            "device_ids": [b.devices[0], b.devices[1]],
            "due_on": "2099-01-01",
            "consent": {
                "signer_name": "山田 太郎", "relationship": "family",
                "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [b.document_id],
            },
        });
        let (a, z) = twice(post("/api/v1/loans", &n1, "checkout-key-0000000001", checkout.clone())).await;
        let (a, z) = (json_of(a, StatusCode::CREATED).await, json_of(z, StatusCode::CREATED).await);
        assert_eq!(a["loan_id"], z["loan_id"]);
        assert_eq!(a["verification_code"], z["verification_code"], "the same consent, the same copy");
        // The same key for another request is refused, not replayed.
        let mut other = checkout.clone();
        other["patient_id"] = json!(b.patients[1]);
        let r = post("/api/v1/loans", &n1, "checkout-key-0000000001", other)().send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // Another user's identical key is that user's own: no answer leaks across users.
        let r = post("/api/v1/loans", &n2, "checkout-key-0000000001", checkout.clone())().send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "the devices are on loan now");

        let ret = json!({ "device_id": b.devices[0], "returned_by_name": "山田 太郎" });
        let (a, z) = twice(post("/api/v1/returns", &n1, "return-key-00000000001", ret)).await;
        let (a, z) = (json_of(a, StatusCode::CREATED).await, json_of(z, StatusCode::CREATED).await);
        assert_eq!(a["return_id"], z["return_id"]);

        let wipe = json!({ "device_id": b.devices[0], "method": "clear", "checklist": b.wipe_steps, "passed": true });
        let (a, z) = twice(post("/api/v1/wipes", &n1, "wipe-key-000000000001", wipe)).await;
        let (a, z) = (json_of(a, StatusCode::CREATED).await, json_of(z, StatusCode::CREATED).await);
        assert_eq!(a["id"], z["id"]);
        let wipe_id = a["id"].as_str().unwrap().to_owned();

        let (a, z) = twice(post(&format!("/api/v1/wipes/{wipe_id}/verify"), &n2, "verify-key-00000000001", json!({}))).await;
        let (a, z) = (json_of(a, StatusCode::OK).await, json_of(z, StatusCode::OK).await);
        assert_eq!(a["id"], z["id"]);
        assert_eq!(a["verified_by"], z["verified_by"]);
        // Without a key a repeat is a new request: the lifecycle says no.
        let r = app.client.post(app.url(&format!("/api/v1/wipes/{wipe_id}/verify"))).bearer_auth(&n2).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        // A malformed key is bad input.
        let r = app.client.post(app.url(&format!("/api/v1/wipes/{wipe_id}/verify"))).bearer_auth(&n2).header("idempotency-key", "short").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

        let mut tx = app.store.read().await.unwrap();
        for (action, n) in [("loan.check_out", 1), ("loan.return", 1), ("wipe.record", 1), ("wipe.verify", 1)] {
            assert_eq!(lending::store::audit::count_action(&mut tx, action).await.unwrap(), n, "{action}");
        }
        assert!(lending::store::loans::invariant_violations(&mut tx).await.unwrap().is_clean());
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn a_double_tap_on_the_consent_page_records_one_loan_and_shows_its_copy(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 1).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let csrf = app.csrf(&nurse, "/loans/new").await;
        let explain = nurse
            .post(app.url("/loans/explain"))
            .form(&[("csrf", csrf.as_str()), ("patient_id", &b.patients[0]), ("device_id", &b.devices[0]), ("due_on", "2099-01-01")])
            .send().await.unwrap().text().await.unwrap();
        let key = explain.split("name=\"idempotency_key\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let form = vec![
            ("csrf", csrf.clone()), ("idempotency_key", key), ("patient_id", b.patients[0].clone()),
            ("device_id", b.devices[0].clone()), ("document_id", b.document_id.clone()), ("due_on", "2099-01-01".into()),
            ("signer_name", "山田 花子".into()), ("relationship", "self".into()), ("strokes", "10,10 200,100".into()),
            ("explained", "yes".into()),
        ];
        let (a, z) = twice(|| nurse.post(app.url("/loans")).form(&form)).await;
        assert_eq!(a.status(), StatusCode::SEE_OTHER);
        assert_eq!(z.status(), StatusCode::SEE_OTHER, "the second tap is not an error page");
        assert!(location(&a).starts_with("/loans/") && location(&a).ends_with("/copy"));
        assert_eq!(location(&a), location(&z), "both taps lead to the same patient's copy");
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn a_consent_signed_after_the_idle_lock_is_kept_and_sent_after_signing_in_again(backend) {
        // SPEC §9 / R27: a 1-minute idle limit; the family signs 75 s after the page was shown.
        let clock = lending::testing::test_clock();
        let app = crate::spawn_configured(lending::testing::TestDb::new(backend).await, clock.clone(), |cfg| {
            cfg.session_idle_minutes = 1;
        })
        .await;
        let b = seed_basic(&app.store, 1).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let csrf = app.csrf(&nurse, "/loans/new").await;
        let explain = nurse
            .post(app.url("/loans/explain"))
            .form(&[("csrf", csrf.as_str()), ("patient_id", &b.patients[0]), ("device_id", &b.devices[0]), ("due_on", "2099-01-01")])
            .send().await.unwrap().text().await.unwrap();
        assert!(explain.contains("data-idle-seconds=\"60\"") && explain.contains("id=\"idle-warning\""), "the page warns before the lock");
        let key = explain.split("name=\"idempotency_key\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let strokes = "12,34 56,78 90,12|300,150 320,170";
        let form = vec![
            ("csrf", csrf.clone()), ("idempotency_key", key), ("patient_id", b.patients[0].clone()),
            ("device_id", b.devices[0].clone()), ("document_id", b.document_id.clone()), ("due_on", "2099-01-01".into()),
            ("signer_name", "山田 花子".into()), ("relationship", "family".into()), ("strokes", strokes.into()),
            ("explained", "yes".into()),
        ];
        clock.advance(chrono::Duration::seconds(75));
        let r = nurse.post(app.url("/loans")).form(&form).send().await.unwrap();
        assert_eq!(location(&r), "/login?signed_out=locked", "locked: sign in again");
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 0, "nothing lent while locked");
        assert_eq!(lending::store::audit::count_action(&mut tx, "consent.draft_kept").await.unwrap(), 1);
        drop(tx);
        let login = app.client.get(app.url("/login?signed_out=locked")).send().await.unwrap().text().await.unwrap();
        assert!(login.contains("署名は保存してあります"), "the sign-in page says nothing is lost");
        // The old session is gone; the nurse signs in again (password and second factor).
        assert_eq!(location(&nurse.get(app.url("/")).send().await.unwrap()), "/login");
        clock.advance(chrono::Duration::seconds(30));
        let again = app.sign_in("n1", &n1).await;
        let home = again.get(app.url("/")).send().await.unwrap().text().await.unwrap();
        let draft = home.split("href=\"/loans/drafts/").nth(1).expect("the home page offers the kept consent").split('"').next().unwrap().to_owned();
        // Another nurse cannot open it.
        let n2 = enroll(&app.store, "n2", &app.keys).await;
        let other = app.sign_in("n2", &n2).await;
        assert_eq!(other.get(app.url(&format!("/loans/drafts/{draft}"))).send().await.unwrap().status(), StatusCode::NOT_FOUND);
        let page = again.get(app.url(&format!("/loans/drafts/{draft}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(&format!("value=\"{strokes}\"")) && page.contains("value=\"山田 花子\""), "signature and signer kept");
        // Sent from the draft with the new session's form token: recorded with the original strokes.
        let csrf2 = crate::csrf_of(&page);
        let resent: Vec<(&str, String)> = page
            .split("<input ")
            .skip(1)
            .filter_map(|i| {
                let name = i.split("name=\"").nth(1)?.split('"').next()?;
                let value = i.split("value=\"").nth(1)?.split('"').next()?;
                let kept = i.contains("type=\"hidden\"") || i.contains(" checked") || !i.contains("type=");
                (kept && name != "csrf").then(|| (name, value.to_owned()))
            })
            .chain([("csrf", csrf2)])
            .map(|(k, v)| (k, v.replace("&#x20;", " ")))
            .collect();
        let r = again.post(app.url("/loans")).form(&resent).send().await.unwrap();
        assert!(location(&r).ends_with("/copy"), "recorded: {}", location(&r));
        let mut tx = app.store.read().await.unwrap();
        let loan = lending::store::loans::open_loan_of_device(&mut tx, &b.devices[0]).await.unwrap().expect("lent");
        let consent = lending::store::loans::consent(&mut tx, &loan.consent_id).await.unwrap().unwrap();
        assert_eq!(consent.signature_svg.matches("<path").count(), 2, "the two strokes drawn before the lock");
        assert!(consent.signature_svg.contains("M12 34 L56 78 L90 12"));
        assert_eq!(consent.relationship, "family");
        // The audit shows the lock (draft kept) and the re-authentication before the loan.
        let events = lending::store::audit::recent(&mut tx, 200).await.unwrap();
        let at = |action: &str| events.iter().filter(|e| e.action == action).map(|e| e.seq).max().unwrap_or(0);
        assert!(at("consent.draft_kept") < at("loan.check_out"));
        let reauth = events.iter().filter(|e| e.action.starts_with("auth.") && e.actor_login == "n1").map(|e| e.seq).filter(|s| *s > at("consent.draft_kept")).count();
        assert!(reauth >= 1, "signed in again after the lock: {:?}", events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>());
        assert!(lending::service::drafts::mine(&mut tx, &lending::Actor::user(&b.nurse.user_id, "n1", lending::Role::Nurse, "test")).await.unwrap().is_empty(), "the draft is gone once sent");
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn every_other_api_write_is_done_once_per_key(backend) {
        // The API's other state-changing requests take an Idempotency-Key too (SPEC §9): the
        // same request again with the key gets the first answer and writes nothing (the audit
        // chain's head does not move); the key on another request is refused.
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 3).await;
        let (a1, n1) = (app.token("a1").await, app.token("n1").await);
        let head = async || {
            let mut tx = app.store.read().await.unwrap();
            lending::store::audit::head(&mut tx).await.unwrap().0
        };
        let post = |path: &str, token: &str, key: &str, body: Option<Value>| {
            let r = app.client.post(app.url(path)).bearer_auth(token).header("idempotency-key", key);
            match body {
                Some(body) => r.json(&body),
                None => r,
            }
        };
        let institution = json!({
            "name": "さくら訪問看護ステーション", "name_en": "Sakura Home Nursing",
            "day_phone": "03-1234-5678", "day_hours": "平日 9:00〜17:00", "day_hours_en": "Weekdays 9:00-17:00",
            "night_phone": "090-1234-5678", "night_hours": "夜間・休日", "night_hours_en": "Nights and holidays",
            "email": "info@example.jp", "address": "東京都", "public_base_url": "https://help.example.jp",
        });
        let device = b.devices[2].clone();
        // Lent, so that it can be reported lost.
        let checkout = json!({
            "patient_id": b.patients[0], "device_ids": [device], "due_on": "2099-01-01",
            "consent": {
                "signer_name": "山田 太郎", "relationship": "family",
                "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [b.document_id],
            },
        });
        let r = app.client.post(app.url("/api/v1/loans")).bearer_auth(&n1).json(&checkout).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let cases: Vec<(&str, String, Option<Value>, &str, StatusCode)> = vec![
            ("a1", "/api/v1/patients".into(), Some(json!({ "number": "P-900001", "name": "青木 花" })), "patient", StatusCode::CREATED),
            ("a1", "/api/v1/vendors".into(), Some(json!({ "name": "ケア機器株式会社" })), "vendor", StatusCode::CREATED),
            ("a1", "/api/v1/institution".into(), Some(institution), "institution", StatusCode::NO_CONTENT),
            (
                "a1",
                format!("/api/v1/models/{}/documents", b.model_id),
                Some(json!({ "title_ja": "ご説明（第2版）", "body_ja": "本文" })),
                "document",
                StatusCode::CREATED,
            ),
            ("a1", format!("/api/v1/devices/{device}/rotate-label"), None, "rotate", StatusCode::OK),
            (
                "n1",
                format!("/api/v1/devices/{device}/lost"),
                Some(json!({ "kind": "lost", "description": "訪問先で見当たらない" })),
                "lost",
                StatusCode::CREATED,
            ),
            ("n1", format!("/api/v1/devices/{device}/found"), None, "found", StatusCode::NO_CONTENT),
            ("n1", format!("/api/v1/devices/{device}/maintenance"), None, "maintenance", StatusCode::NO_CONTENT),
        ];
        for (who, path, body, name, status) in cases {
            let token = if who == "a1" { &a1 } else { &n1 };
            let key = format!("{name}-key-000000000001");
            let first = post(&path, token, &key, body.clone()).send().await.unwrap();
            assert_eq!(first.status(), status, "{path}");
            let first = first.text().await.unwrap();
            let before = head().await;
            let again = post(&path, token, &key, body.clone()).send().await.unwrap();
            assert_eq!(again.status(), status, "{path}: the repeat gets the first answer");
            assert_eq!(again.text().await.unwrap(), first, "{path}");
            assert_eq!(head().await, before, "{path}: the repeat wrote nothing");
            // The same key for another request (another body, or another device) is refused.
            let (other_path, other) = match body {
                Some(mut v) => {
                    v["name"] = json!("別の名前");
                    v["title_ja"] = json!("別の表題");
                    v["description"] = json!("別の説明");
                    (path.clone(), Some(v))
                }
                None => (path.replace(&device, &b.devices[1]), None),
            };
            let r = post(&other_path, token, &key, other).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["fields"][0]["field"], "idempotency_key", "{path}");
        }
        // Without a key a repeat is a new request; a key sent empty is refused.
        let rotate = app.url(&format!("/api/v1/devices/{device}/rotate-label"));
        let r = app.client.post(&rotate).bearer_auth(&a1).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        for bad in ["", "short"] {
            let r = post(&format!("/api/v1/devices/{device}/rotate-label"), &a1, bad, None).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "key {bad:?}");
        }
        app.stop().await;
    }
);
