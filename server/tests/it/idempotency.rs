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
