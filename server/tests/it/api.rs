//! The staff JSON API over real HTTP: tokens, the lending flow, and the 409s of illegal steps.

use lending::testing::seed_basic;
use lending::{both_dbs, DeviceStatus};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::spawn_app;

both_dbs!(
    async fn health_answers_and_api_needs_a_token(backend) {
        let app = spawn_app(backend).await;
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));

        for path in ["/api/v1/devices", "/api/v1/patients", "/api/v1/no-such-route"] {
            let r = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized");
            assert_eq!(body["message_ja"], "ログインが必要です。");
            let r = app.client.get(app.url(path)).bearer_auth("lnd_not-a-real-token").send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        app.stop().await;
    }
);

both_dbs!(
    async fn lending_flow_and_illegal_steps_over_http(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 4).await;
        let (n1, n2, auditor) = (app.token("n1").await, app.token("n2").await, app.token("au1").await);
        let post = |path: &str, token: &str, body: Value| {
            app.client.post(app.url(path)).bearer_auth(token).json(&body).send()
        };
        let checkout = serde_json::to_value(json!({
            "patient_id": b.patients[0],
            "device_ids": [b.devices[0], b.devices[1], b.devices[2]],
            "due_on": "2099-01-01",
            "consent": {
                "signer_name": "山田 花子", "relationship": "self",
                "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [b.document_id],
            },
        }))
        .unwrap();

        // Auditors read everything and change nothing.
        assert_eq!(post("/api/v1/loans", &auditor, checkout.clone()).await.unwrap().status(), StatusCode::FORBIDDEN);
        // No consent, or a consent without a signature: wrong input whatever the state (422 with
        // the field), not a lifecycle conflict; nothing written.
        let mut no_consent = checkout.clone();
        no_consent["consent"] = Value::Null;
        let mut unsigned = checkout.clone();
        unsigned["consent"]["signature_svg"] = json!("");
        for (body, field) in [(no_consent, "consent"), (unsigned, "signature_svg")] {
            let r = post("/api/v1/loans", &n1, body).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "validation", "{field}");
            assert_eq!(body["fields"][0]["field"], field);
            assert!(body["message_ja"].as_str().unwrap().contains("署名"), "{body}");
        }
        assert_eq!(lending::store::audit::count_action(&mut app.store.read().await.unwrap(), "loan.check_out").await.unwrap(), 0);

        let r = post("/api/v1/loans", &n1, checkout.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let loan: Value = r.json().await.unwrap();
        assert_eq!(loan["devices"].as_array().unwrap().len(), 3, "a 3-device kit under one consent");
        let receipt: Value = app
            .client
            .get(app.url(&format!("/api/v1/consents/{}/receipt", loan["consent_id"].as_str().unwrap())))
            .bearer_auth(&n1)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(receipt["valid"], true);
        assert_eq!(receipt["verification_code"], loan["verification_code"]);

        // The same device again: 409 with the reason in both languages.
        let r = post("/api/v1/loans", &n2, checkout.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body: Value = r.json().await.unwrap();
        assert!(body["message_ja"].as_str().unwrap().contains("貸出中"), "{body}");
        assert!(body["message_en"].as_str().unwrap().contains("on loan"), "{body}");

        // Wiping a device that is on loan: 409.
        let wipe = json!({ "device_id": b.devices[0], "method": "clear", "checklist": b.wipe_steps, "passed": true });
        assert_eq!(post("/api/v1/wipes", &n1, wipe.clone()).await.unwrap().status(), StatusCode::CONFLICT);
        // A device that is not lost cannot be "found": 409.
        let r = app.client.post(app.url(&format!("/api/v1/devices/{}/found", b.devices[0]))).bearer_auth(&n1).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);

        assert_eq!(post("/api/v1/returns", &n1, json!({ "device_id": b.devices[0] })).await.unwrap().status(), StatusCode::CREATED);
        let r = post("/api/v1/wipes", &n1, wipe).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let wipe_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        let verify = |token: &str| app.client.post(app.url(&format!("/api/v1/wipes/{wipe_id}/verify"))).bearer_auth(token.to_owned()).send();
        assert_eq!(verify(&n1).await.unwrap().status(), StatusCode::CONFLICT, "the wiper cannot verify");
        assert_eq!(verify(&n2).await.unwrap().status(), StatusCode::OK);

        let r = app.client.get(app.url(&format!("/api/v1/devices/{}", b.devices[0]))).bearer_auth(&n1).send().await.unwrap();
        let device: Value = r.json().await.unwrap();
        assert_eq!(device["status"], json!(DeviceStatus::Available));
        assert_eq!(device["status_label_ja"], "貸出可能");
        assert!(device.get("qr_token").is_none(), "the label token is not part of the API's device view");

        // The wiped device goes out again, with a fresh consent, next to one never lent.
        let mut second = checkout.clone();
        second["device_ids"] = json!([b.devices[0], b.devices[3]]);
        second["patient_id"] = json!(b.patients[1]);
        assert_eq!(post("/api/v1/loans", &n2, second).await.unwrap().status(), StatusCode::CREATED);
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::loans::invariant_violations(&mut tx).await.unwrap().is_clean());
        assert_eq!(lending::store::audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 2);
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn bad_input_gets_a_clear_error_and_patient_reads_are_audited(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 1).await;
        let n1 = app.token("n1").await;
        let r = app.client.post(app.url("/api/v1/loans")).bearer_auth(&n1).header("content-type", "application/json").body("{not json").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "validation");
        assert!(!body["message_ja"].as_str().unwrap().is_empty());

        let r = app.client.get(app.url("/api/v1/devices?status=flying")).bearer_auth(&n1).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // PostgreSQL text cannot hold NUL: refused as bad input, nothing written, never a 500.
        let nul = app.client.post(app.url("/api/v1/patients")).bearer_auth(&n1)
            .header("content-type", "application/json").body(r#"{"number":"N-1","name":"a\u0000b"}"#).send().await.unwrap();
        assert_eq!(nul.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = nul.json().await.unwrap();
        assert!(body["message_ja"].as_str().unwrap().contains("NUL"));
        let plain = app.client.post(app.url("/api/v1/patients")).bearer_auth(&n1).body(r#"{"number":"N-1","name":"a"}"#).send().await.unwrap();
        assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "without a JSON content type");
        assert_eq!(plain.json::<Value>().await.unwrap()["error"], "unsupported_media_type");
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::patients::by_number(&mut tx, "N-1").await.unwrap().is_none());
        drop(tx);

        let r = app.client.get(app.url(&format!("/api/v1/patients/{}", b.patients[1]))).bearer_auth(&n1).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let mut tx = app.store.read().await.unwrap();
        let events = lending::store::audit::for_target(&mut tx, "patient", &b.patients[1]).await.unwrap();
        let view = events.iter().find(|e| e.action == "patient.view").expect("the view was audited");
        assert_eq!((view.actor_login.as_str(), view.source.as_str()), ("n1", "127.0.0.1"));
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn pages_and_filters_out_of_range_are_refused_not_guessed(backend) {
        // Found by Schemathesis: page 0 was read as page 1, a page past the last one as the last,
        // and an empty audit or inspection filter as "any". Each is now a 422 naming the field.
        let app = spawn_app(backend).await;
        seed_basic(&app.store, 1).await;
        let a1 = app.token("a1").await;
        for (path, field) in [
            ("/api/v1/patients?page=0", "page"),
            ("/api/v1/patients?page=100001", "page"),
            ("/api/v1/loans?page=0", "page"),
            ("/api/v1/reports/outstanding?page=0", "page"),
            ("/api/v1/reports/outstanding?page=100001", "page"),
            ("/api/v1/reports/outstanding?nurse=", "nurse"),
            ("/api/v1/audit?until=", "until"),
            ("/api/v1/audit?patient=&action=", "patient"),
            ("/api/v1/reports/inspection.csv?from=&until=2026-11-30", "from"),
            ("/api/v1/reports/monthly?month=0000-00", "month"),
        ] {
            let r = app.client.get(app.url(path)).bearer_auth(&a1).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "validation", "{path}");
            assert_eq!(body["fields"][0]["field"], field, "{path}");
            assert!(!body["message_ja"].as_str().unwrap().is_empty(), "{path}");
        }
        // Both empty audit filters are named at once.
        let r = app.client.get(app.url("/api/v1/audit?patient=&action=")).bearer_auth(&a1).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["fields"].as_array().unwrap().len(), 2);
        // The same filters left out still mean "any".
        for path in ["/api/v1/patients?page=1", "/api/v1/audit?limit=5", "/api/v1/reports/outstanding?page=100000"] {
            let r = app.client.get(app.url(path)).bearer_auth(&a1).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
        app.stop().await;
    }
);

both_dbs!(
    async fn every_view_sorts_every_way_and_a_nul_in_the_address_is_never_a_500(backend) {
        // Regressions found by Schemathesis: sorting a device-only view by lent_at was a 500 (the
        // query has no loans table), and a NUL (%00) in a path id or query text was a 500 on
        // PostgreSQL.
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 2).await;
        let n1 = app.token("n1").await;
        for view in lending::store::dashboard::View::ALL {
            for sort in lending::store::dashboard::Sort::ALL {
                for path in ["/api/v1/reports/outstanding", "/api/v1/reports/outstanding.csv"] {
                    let url = app.url(&format!("{path}?view={}&sort={}", view.as_str(), sort.as_str()));
                    let r = app.client.get(url).bearer_auth(&n1).send().await.unwrap();
                    assert_eq!(r.status(), StatusCode::OK, "{path} view={} sort={}", view.as_str(), sort.as_str());
                }
            }
        }
        // A NUL in a path id names nothing (404, as SQLite answers); in query text it is bad
        // input (422). Both in the API's JSON error format.
        for (path, status, error) in [
            ("/api/v1/devices/%00".to_owned(), StatusCode::NOT_FOUND, "not_found"),
            (format!("/api/v1/devices/{}%00", b.devices[0]), StatusCode::NOT_FOUND, "not_found"),
            (format!("/api/v1/loans/%00{}", b.devices[0]), StatusCode::NOT_FOUND, "not_found"),
            ("/api/v1/patients?q=%00".to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ("/api/v1/reports/outstanding?nurse=%00".to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            ("/api/v1/consents/verify?code=AB%00".to_owned(), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ] {
            let r = app.client.get(app.url(&path)).bearer_auth(&n1).send().await.unwrap();
            assert_eq!(r.status(), status, "{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], error, "{path}");
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                assert!(body["message_ja"].as_str().unwrap().contains("NUL"), "{path}");
                assert_eq!(body["fields"][0]["field"], "query", "{path}");
            }
        }
        app.stop().await;
    }
);
