//! The staff API's routes for what the pages read and do beyond the lending flow: the loan list
//! and kit return, documents, problem reports, incidents, wipes, custody checks, a device's
//! history, the patient record and its edit, `me`, staff, tokens, the audit log.

use lending::both_dbs;
use lending::testing::seed_basic;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::spawn_app_with_clock;

both_dbs!(
    async fn every_staff_read_and_the_kit_return_over_http(backend) {
        let clock = lending::testing::test_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 4).await;
        let (n1, n2, admin, auditor) = (app.token("n1").await, app.token("n2").await, app.token("a1").await, app.token("au1").await);
        let get = |path: String, token: &str| app.client.get(app.url(&path)).bearer_auth(token.to_owned()).send();
        let post = |path: String, token: &str, body: Value| app.client.post(app.url(&path)).bearer_auth(token.to_owned()).json(&body).send();
        let checkout = |patient: usize, devices: Vec<&String>| json!({
            "patient_id": b.patients[patient], "device_ids": devices, "due_on": "2099-01-01",
            "consent": { "signer_name": "山田 花子", "relationship": "self",
                "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [b.document_id] },
        });
        let r = post("/api/v1/loans".into(), &n1, checkout(0, vec![&b.devices[0], &b.devices[1]])).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let first: Value = r.json().await.unwrap();
        let loan_id = first["loan_id"].as_str().unwrap().to_owned();
        let r = post("/api/v1/loans".into(), &n2, checkout(1, vec![&b.devices[2]])).await.unwrap();
        let second: Value = r.json().await.unwrap();

        // The list: filters, paging with its limit, a real array.
        let page: Value = get("/api/v1/loans?state=open&per_page=1".into(), &auditor).await.unwrap().json().await.unwrap();
        assert_eq!((page["total"].as_i64(), page["per_page"].as_i64()), (Some(2), Some(1)));
        assert_eq!(page["loans"].as_array().unwrap().len(), 1);
        let mine: Value = get(format!("/api/v1/loans?patient_id={}", b.patients[0]), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(mine["loans"][0]["id"], loan_id.as_str());
        assert_eq!(mine["loans"][0]["state"], "open");
        assert_eq!(mine["loans"][0]["devices"].as_array().unwrap().len(), 2);
        let by_device: Value = get(format!("/api/v1/loans?device_id={}", b.devices[2]), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(by_device["loans"][0]["id"], second["loan_id"]);
        for bad in ["per_page=201", "state=gone", "page=0", "overdue=maybe"] {
            let r = get(format!("/api/v1/loans?{bad}"), &n1).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"], "validation", "{bad}");
        }
        let e: Value = get("/api/v1/loans?per_page=201".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(e["fields"][0]["field"], "per_page");

        // The document the family signs: text, version, SHA-256 as on the consent.
        let versions: Value = get(format!("/api/v1/models/{}/documents", b.model_id), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(versions[0]["id"], b.document_id.as_str());
        let doc: Value = get(format!("/api/v1/documents/{}", b.document_id), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
        assert!(!doc["body_ja"].as_str().unwrap().is_empty());
        assert_eq!(doc["version"], 1);
        assert_eq!(get("/api/v1/documents/nope".into(), &n1).await.unwrap().status(), StatusCode::NOT_FOUND);

        // Custody checks: only a device out on loan has them (409 naming it otherwise).
        let custody: Value = get(format!("/api/v1/devices/{}/custody-checks", b.devices[0]), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(custody["loan_id"], loan_id.as_str());
        assert_eq!(custody["checks"], json!([]));
        let r = get(format!("/api/v1/devices/{}/custody-checks", b.devices[3]), &n1).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let e: Value = r.json().await.unwrap();
        assert!(e["message_en"].as_str().unwrap().contains("is not on loan"), "{e}");

        // The kit comes back together; the loan closes.
        let kit = json!({ "devices": [{ "device_id": b.devices[0], "cleaned": true }, { "device_id": b.devices[1] }], "returned_by_name": "山田 花子" });
        assert_eq!(post(format!("/api/v1/loans/{loan_id}/returns"), &auditor, kit.clone()).await.unwrap().status(), StatusCode::FORBIDDEN);
        let r = post(format!("/api/v1/loans/{loan_id}/returns"), &n1, kit.clone()).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let returns: Value = r.json().await.unwrap();
        assert_eq!(returns.as_array().unwrap().len(), 2);
        let r = post(format!("/api/v1/loans/{loan_id}/returns"), &n1, kit).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "a closed loan");
        assert!(r.json::<Value>().await.unwrap()["message_en"].as_str().unwrap().contains(&loan_id));
        let closed: Value = get("/api/v1/loans?state=closed".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(closed["total"], 1);

        // Wipes: recorded, listed as pending, read, verified by someone else.
        let wipe = json!({ "device_id": b.devices[0], "method": "clear", "checklist": b.wipe_steps, "passed": true });
        let w: Value = post("/api/v1/wipes".into(), &n1, wipe).await.unwrap().json().await.unwrap();
        let pending: Value = get("/api/v1/wipes?pending=true".into(), &n2).await.unwrap().json().await.unwrap();
        assert_eq!(pending.as_array().unwrap().len(), 1);
        assert_eq!(pending[0]["id"], w["id"]);
        let one: Value = get(format!("/api/v1/wipes/{}", w["id"].as_str().unwrap()), &auditor).await.unwrap().json().await.unwrap();
        assert_eq!(one["verified_by"], Value::Null);
        assert_eq!(post(format!("/api/v1/wipes/{}/verify", w["id"].as_str().unwrap()), &n2, json!({})).await.unwrap().status(), StatusCode::OK);
        let pending: Value = get("/api/v1/wipes?pending=true".into(), &n2).await.unwrap().json().await.unwrap();
        assert_eq!(pending, json!([]));

        // Incidents: a device on loan reported lost.
        let r = post(format!("/api/v1/devices/{}/lost", b.devices[2]), &n2, json!({ "kind": "stolen", "description": "車上荒らし" })).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let incident_id = r.json::<Value>().await.unwrap()["incident_id"].as_str().unwrap().to_owned();
        let open: Value = get("/api/v1/incidents?status=open".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(open[0]["id"], incident_id.as_str());
        let inc: Value = get(format!("/api/v1/incidents/{incident_id}"), &n1).await.unwrap().json().await.unwrap();
        assert_eq!((inc["kind"].as_str(), inc["status"].as_str()), (Some("stolen"), Some("open")));
        assert_eq!(get("/api/v1/incidents?status=maybe".into(), &n1).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);

        // A device's history holds its loan, its wipe.
        let h: Value = get(format!("/api/v1/devices/{}/history", b.devices[0]), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(h["loans"][0]["id"], loan_id.as_str());
        assert_eq!(h["loans"][0]["state"], "closed");
        assert_eq!(h["wipes"][0]["id"], w["id"]);
        let h: Value = get(format!("/api/v1/devices/{}/history", b.devices[2]), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(h["incidents"][0]["id"], incident_id.as_str());
        let found: Value = get(format!("/api/v1/devices/lookup?code={}", h["device"]["asset_tag"].as_str().unwrap().to_lowercase()), &n1)
            .await.unwrap().json().await.unwrap();
        assert_eq!(found["id"], b.devices[2].as_str());

        // Problem reports from the label's page: listed, read, resolved once.
        let qr = lending::store::devices::get(&mut app.store.read().await.unwrap(), &b.devices[3]).await.unwrap().unwrap().qr_token;
        let mut tx = app.store.begin().await.unwrap();
        let input = lending::service::reports::ReportInput { category: "alarm".into(), body: "鳴りやまない".into(), callback_phone: String::new() };
        let report_id = lending::service::reports::submit(&mut tx, &qr, &input).await.unwrap();
        tx.commit().await.unwrap();
        let list: Value = get("/api/v1/problem-reports".into(), &auditor).await.unwrap().json().await.unwrap();
        assert_eq!(list[0]["id"], report_id.as_str());
        assert_eq!(get("/api/v1/problem-reports?status=".into(), &n1).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
        let path = format!("/api/v1/problem-reports/{report_id}/resolve");
        assert_eq!(post(path.clone(), &auditor, json!({ "resolution": "x" })).await.unwrap().status(), StatusCode::FORBIDDEN);
        let done: Value = post(path.clone(), &n1, json!({ "resolution": "電話で確認" })).await.unwrap().json().await.unwrap();
        assert_eq!((done["status"].as_str(), done["resolution"].as_str()), (Some("resolved"), Some("電話で確認")));
        let r = post(path, &n1, json!({ "resolution": "again" })).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.json::<Value>().await.unwrap()["message_ja"].as_str().unwrap().contains("すでに対応済み"));
        let all: Value = get("/api/v1/problem-reports?status=all".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(all[0]["status"], "resolved");
        let open: Value = get("/api/v1/problem-reports".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(open, json!([]));

        // The patient's record with loans; an edit (422 with the field when wrong).
        let p: Value = get(format!("/api/v1/patients/{}", b.patients[0]), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(p["loans"][0]["id"], loan_id.as_str());
        let edit = format!("/api/v1/patients/{}/edit", b.patients[0]);
        let r = post(edit.clone(), &n1, json!({ "name": "試験 花子", "kana": "しけん はなこ", "birth_date": "2999-01-01" })).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json::<Value>().await.unwrap()["fields"][0]["field"], "birth_date");
        assert_eq!(post(edit.clone(), &auditor, json!({ "name": "x" })).await.unwrap().status(), StatusCode::FORBIDDEN);
        let saved: Value = post(edit, &n1, json!({ "name": "試験 花子", "kana": "しけん はなこ", "birth_date": "1950-04-01" })).await.unwrap().json().await.unwrap();
        assert_eq!((saved["kana"].as_str(), saved["birth_date"].as_str()), (Some("シケン ハナコ"), Some("1950-04-01")));

        // Who am I; the staff list and everyone's tokens only for admins and auditors.
        let me: Value = get("/api/v1/me".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!((me["login"].as_str(), me["role"].as_str(), me["credential"].as_str()), (Some("n1"), Some("nurse"), Some("token")));
        assert_eq!(me["may"], json!(["read", "own_account", "operate"]));
        assert_eq!(get("/api/v1/users".into(), &n1).await.unwrap().status(), StatusCode::FORBIDDEN);
        let staff: Value = get("/api/v1/users".into(), &auditor).await.unwrap().json().await.unwrap();
        assert!(staff.as_array().unwrap().iter().any(|u| u["login"] == "n2"));
        assert_eq!(get("/api/v1/tokens".into(), &n1).await.unwrap().status(), StatusCode::FORBIDDEN);
        let mine: Value = get("/api/v1/me/tokens".into(), &n2).await.unwrap().json().await.unwrap();
        assert!(mine.as_array().unwrap().iter().all(|t| t["login"] == "n2"));
        let n2_token = mine[0]["id"].as_str().unwrap().to_owned();
        // Another nurse may not revoke it; its owner may; then it no longer works.
        assert_eq!(post(format!("/api/v1/tokens/{n2_token}/revoke"), &n1, json!({})).await.unwrap().status(), StatusCode::FORBIDDEN);
        assert_eq!(post(format!("/api/v1/tokens/{n2_token}/revoke"), &admin, json!({})).await.unwrap().status(), StatusCode::NO_CONTENT);
        assert_eq!(get("/api/v1/me".into(), &n2).await.unwrap().status(), StatusCode::UNAUTHORIZED);

        // The audit log: the viewer's filters, keyset paging, real JSON details.
        assert_eq!(get("/api/v1/audit".into(), &n1).await.unwrap().status(), StatusCode::FORBIDDEN);
        let page: Value = get("/api/v1/audit?action=loan.check_out&limit=1".into(), &auditor).await.unwrap().json().await.unwrap();
        assert_eq!(page["events"].as_array().unwrap().len(), 1);
        let newest = page["events"][0]["seq"].as_i64().unwrap();
        assert_eq!(page["next_before"], newest);
        assert!(page["events"][0]["details"].is_object());
        let older: Value = get(format!("/api/v1/audit?action=loan.check_out&limit=1&before={newest}"), &auditor).await.unwrap().json().await.unwrap();
        assert!(older["events"][0]["seq"].as_i64().unwrap() < newest);
        let last: Value = get(format!("/api/v1/audit?action=loan.check_out&limit=5&before={newest}"), &auditor).await.unwrap().json().await.unwrap();
        assert_eq!((last["events"].as_array().unwrap().len(), &last["next_before"]), (1, &Value::Null));
        let by_patient: Value = get(format!("/api/v1/audit?patient={}", p["number"].as_str().unwrap()), &auditor).await.unwrap().json().await.unwrap();
        assert!(by_patient["events"].as_array().unwrap().iter().all(|e| e["patient_id"] == b.patients[0].as_str()));
        assert!(!by_patient["events"].as_array().unwrap().is_empty());
        for bad in ["limit=501", "from=2026-1-1", "patient=NO-SUCH", "include_lists=yes"] {
            let r = get(format!("/api/v1/audit?{bad}"), &auditor).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        }
        let check: Value = post("/api/v1/audit/verify".into(), &auditor, json!({})).await.unwrap().json().await.unwrap();
        assert_eq!(check["intact"], true);
        assert!(check["events"].as_i64().unwrap() > 10);

        // Overdue: only open loans past their due date, by the service's clock (Japan time).
        let r = post("/api/v1/loans".into(), &n1, checkout(2, vec![&b.devices[3]])).await.unwrap();
        let third: Value = r.json().await.unwrap();
        let overdue: Value = get("/api/v1/loans?overdue=true".into(), &n1).await.unwrap().json().await.unwrap();
        assert_eq!(overdue["total"], 0);
        clock.set(lending::testing::tokyo(2099, 1, 2, 9, 0));
        let late = app.token("n1").await;
        let overdue: Value = get("/api/v1/loans?overdue=true".into(), &late).await.unwrap().json().await.unwrap();
        assert_eq!(overdue["total"], 1, "{overdue}");
        assert_eq!(overdue["loans"][0]["id"], third["loan_id"]);
        app.stop().await;
    }
);
