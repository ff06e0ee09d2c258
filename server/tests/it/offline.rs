//! The offline sync over HTTP (issue #18): a phone enrols, an admin approves it, its signed
//! records sync once (201, then 200 duplicate), a conflict is 409 with what to do, an altered
//! record is 422, and revoking the phone shows on the user's phone list.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lending::both_dbs;
use lending::service::offline::SIGNED_PREFIX;
use lending::testing::{seed_basic, test_now, Basic};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{spawn_app_with_clock, TestApp};

/// What the phone's page sends for one check-out it completed offline.
async fn signed_check_out(
    app: &TestApp,
    b: &Basic,
    key: &SigningKey,
    enrolment: &str,
    record_key: &str,
    devices: &[usize],
) -> Value {
    let req = b.check_out_request(0, devices);
    let mut tx = app.store.read().await.unwrap();
    let explained = lending::service::loans::explain(&mut tx, &req.device_ids).await.unwrap();
    drop(tx);
    let payload = json!({
        "key": record_key,
        "enrolment_id": enrolment,
        "phone_time": (test_now() - chrono::Duration::minutes(25)).to_rfc3339(),
        "check_out": {
            "document_sha256": lending::ids::sha256_hex(&explained.text),
            "request": {
                "patient_id": req.patient_id,
                "device_ids": req.device_ids,
                "due_on": "2099-01-01",
                "consent": {
                    "signer_name": "山田 花子",
                    "relationship": "self",
                    "signature_svg": lending::demo::DEMO_SIGNATURE,
                    "document_ids": [b.document_id],
                },
            },
        },
    })
    .to_string();
    let sig: Signature = key.sign([SIGNED_PREFIX.as_bytes(), payload.as_bytes()].concat().as_slice());
    json!({ "enrolment_id": enrolment, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(sig.to_bytes()) })
}

both_dbs!(
    async fn a_phone_enrols_and_its_records_sync_over_the_api(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 3).await;
        let nurse = app.token("n1").await;
        let admin = app.token("a1").await;
        let post = |token: &str, path: &str, body: &Value| {
            app.client.post(app.url(path)).bearer_auth(token).json(body).send()
        };

        let key = SigningKey::from_bytes(&[21; 32].into()).unwrap();
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        let r = post(&nurse, "/api/v1/offline/phones", &json!({ "label": "訪問用", "algorithm": "ES256", "public_key": public }))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let phone: Value = r.json().await.unwrap();
        assert_eq!(phone["state"], "requested");
        let id = phone["id"].as_str().unwrap().to_owned();
        let r = post(&admin, &format!("/api/v1/offline/phones/{id}/approve"), &json!({})).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["state"], "approved");

        // Synced once; the repeat (with the record's key as Idempotency-Key) writes nothing.
        let record = signed_check_out(&app, &b, &key, &id, "offline-api-record-0001", &[0, 1]).await;
        // Made offline too, before the first record reached the server.
        let clash = signed_check_out(&app, &b, &key, &id, "offline-api-record-0003", &[0]).await;
        let r = post(&nurse, "/api/v1/offline/records", &record).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let first: Value = r.json().await.unwrap();
        assert_eq!(first["status"], "synced");
        assert!(first["phone_time"].as_str().unwrap() < first["server_time"].as_str().unwrap());
        let r = app
            .client
            .post(app.url("/api/v1/offline/records"))
            .bearer_auth(&nurse)
            .header("Idempotency-Key", "offline-api-record-0001")
            .json(&record)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let again: Value = r.json().await.unwrap();
        assert_eq!((again["status"].as_str(), &again["loan_id"]), (Some("duplicate"), &first["loan_id"]));
        let loan: Value = app
            .client
            .get(app.url(&format!("/api/v1/loans/{}", first["loan_id"].as_str().unwrap())))
            .bearer_auth(&nurse)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(loan["consent"]["receipt_valid"], true, "{loan}");

        // Altered after signing: refused (422) with the error body.
        let mut altered = signed_check_out(&app, &b, &key, &id, "offline-api-record-0002", &[2]).await;
        let text = altered["payload"].as_str().unwrap().replace("山田 花子", "別人");
        altered["payload"] = json!(text);
        let r = post(&nurse, "/api/v1/offline/records", &altered).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let refused: Value = r.json().await.unwrap();
        assert_eq!((refused["status"].as_str(), refused["error"].as_str()), (Some("refused"), Some("validation")));

        // Device 0 is on the loan just synced: a second offline check-out of it is a conflict.
        let r = post(&nurse, "/api/v1/offline/records", &clash).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let c: Value = r.json().await.unwrap();
        assert_eq!(c["status"], "conflict");
        assert_eq!(c["conflict"]["kind"], "device_unavailable");
        assert!(c["conflict"]["what_to_do_ja"].as_str().unwrap().contains("記録されていません"));
        let mine: Value = app
            .client
            .get(app.url("/api/v1/offline/conflicts"))
            .bearer_auth(&nurse)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(mine.as_array().unwrap().len(), 1);
        let conflict_id = mine[0]["id"].as_str().unwrap();
        let r = post(&nurse, &format!("/api/v1/offline/conflicts/{conflict_id}/resolve"), &json!({ "resolution": "" }))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "what was done must be said");
        let r = post(&nurse, &format!("/api/v1/offline/conflicts/{conflict_id}/resolve"), &json!({ "resolution": "次回訪問時に確認" }))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // Revoked: the admin sees it on the nurse's phone list.
        let r = post(&admin, &format!("/api/v1/offline/phones/{id}/revoke"), &json!({})).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let phones: Value = app
            .client
            .get(app.url(&format!("/api/v1/users/{}/phones", b.nurse.user_id)))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(phones[0]["state"], "revoked");
        let late = signed_check_out(&app, &b, &key, &id, "offline-api-record-0004", &[2]).await;
        let r = post(&nurse, "/api/v1/offline/records", &late).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.json::<Value>().await.unwrap()["conflict"]["kind"], "enrolment_revoked");
        app.stop().await;
    }
);

both_dbs!(
    async fn admins_approve_and_revoke_phones_on_the_user_page_and_nurses_see_their_conflicts(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let key = SigningKey::from_bytes(&[23; 32].into()).unwrap();
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        let mut tx = app.store.begin().await.unwrap();
        let phone =
            lending::service::offline::request_enrolment(&mut tx, &b.nurse, "訪問用スマホ", "ES256", &public).await.unwrap();
        tx.commit().await.unwrap();
        lending::testing::enroll(&app.store, "a1", &app.keys).await;
        lending::testing::enroll(&app.store, "n1", &app.keys).await;
        let (admin, admin_csrf) = app.session("a1", 0).await;
        let get = |cookie: &str, path: &str| {
            app.client.get(app.url(path)).header("cookie", format!("lending_session={cookie}")).send()
        };
        let post = |cookie: &str, path: &str, form: Vec<(&'static str, String)>| {
            app.client.post(app.url(path)).header("cookie", format!("lending_session={cookie}")).form(&form).send()
        };

        let page = get(&admin, "/admin/users").await.unwrap().text().await.unwrap();
        assert!(page.contains("訪問用スマホ: 承認待ち"), "the user page lists the phone: {page}");
        assert!(page.contains(&format!("/admin/phones/{}/approve", phone.id)));
        let r = post(&admin, &format!("/admin/phones/{}/approve", phone.id), vec![("csrf", admin_csrf.clone())])
            .await
            .unwrap();
        assert_eq!(crate::location(&r), "/admin/users");
        let page = get(&admin, "/admin/users").await.unwrap().text().await.unwrap();
        assert!(page.contains("訪問用スマホ: 利用可"));

        // The nurse's record made offline meets the device lent meanwhile: a conflict to resolve.
        let record = signed_check_out(&app, &b, &key, &phone.id, "offline-page-record-01", &[0]).await;
        let mut tx = app.store.begin().await.unwrap();
        lending::service::loans::check_out(&mut tx, &b.nurse2, b.check_out_request(1, &[0]), &app.state.receipts)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let nurse_token = app.token("n1").await;
        let r = app.client.post(app.url("/api/v1/offline/records")).bearer_auth(&nurse_token).json(&record).send();
        assert_eq!(r.await.unwrap().status(), StatusCode::CONFLICT);
        let (nurse, nurse_csrf) = app.session("n1", 0).await;
        let page = get(&nurse, "/offline/conflicts").await.unwrap().text().await.unwrap();
        assert!(page.contains("この貸出は記録されていません"), "what to do is on the page");
        assert!(page.contains("offline-page-record-01"));
        let mut tx = app.store.read().await.unwrap();
        let id = lending::store::offline::open_conflicts(&mut tx, None).await.unwrap()[0].id.clone();
        drop(tx);
        let form = vec![("csrf", nurse_csrf), ("resolution", "次回訪問時に別の機器で再同意".to_owned())];
        let r = post(&nurse, &format!("/offline/conflicts/{id}/resolve"), form).await.unwrap();
        assert_eq!(crate::location(&r), "/offline/conflicts");
        let page = get(&nurse, "/offline/conflicts").await.unwrap().text().await.unwrap();
        assert!(page.contains("id=\"no-conflicts\""));

        // Revoking asks first; an unconfirmed post changes nothing.
        let confirm = get(&admin, &format!("/admin/phones/{}/revoke", phone.id)).await.unwrap().text().await.unwrap();
        assert!(confirm.contains("端末の登録を取り消しますか"));
        let path = format!("/admin/phones/{}/revoke", phone.id);
        post(&admin, &path, vec![("csrf", admin_csrf.clone())]).await.unwrap();
        assert!(get(&admin, "/admin/users").await.unwrap().text().await.unwrap().contains("訪問用スマホ: 利用可"));
        let r = post(&admin, &path, vec![("csrf", admin_csrf), ("confirm", "yes".into())]).await.unwrap();
        assert_eq!(crate::location(&r), "/admin/users");
        assert!(get(&admin, "/admin/users").await.unwrap().text().await.unwrap().contains("訪問用スマホ: 取り消し済み"));
        app.stop().await;
    }
);
