//! The admins' and auditors' pages over HTTP: the dashboard and its CSV (UTF-8 with BOM), the
//! outstanding report in the API, custody checks from the page, the audit log viewer with its
//! filters and `audit verify`, and the monthly report. Reads of patient data are audited.

use chrono::{Duration, TimeZone};
use lending::service::loans;
use lending::testing::{enroll, receipt_key, seed_basic};
use lending::{both_dbs, Clock};
use reqwest::StatusCode;

use crate::{csrf_of, location, spawn_app_with_clock};

both_dbs!(
    async fn admins_see_what_is_outstanding_and_auditors_review_the_log(backend) {
        // 10:00 in Tokyo on 2026-11-22.
        let clock = Clock::manual(chrono::Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 3).await;
        let mut tx = app.store.begin().await.unwrap();
        let mut kit = b.check_out_request(0, &[0, 1]);
        kit.due_on = clock.today_tokyo() + Duration::days(1);
        loans::check_out(&mut tx, &b.nurse, kit, &receipt_key()).await.unwrap();
        tx.commit().await.unwrap();
        clock.advance(Duration::days(4));

        let a1 = enroll(&app.store, "a1", &app.keys).await;
        let admin = app.sign_in("a1", &a1).await;
        let page = admin.get(app.url("/dashboard?view=overdue")).send().await.unwrap().text().await.unwrap();
        let tile = |code: &str| page.split(&format!("id=\"tile-{code}\"")).nth(1).unwrap().split("class=\"n\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert_eq!((tile("on_loan"), tile("overdue"), tile("lost")), ("2".into(), "2".into(), "0".into()));
        let table = page.split("id=\"outstanding\"").nth(1).unwrap();
        assert!(table.contains("T-0000") && table.contains("T-0001") && !table.contains("T-0002"));
        assert!(table.contains("P-000000 山田 花子") && table.contains("職員 n1"));
        assert!(table.contains("2026年11月23日"), "the due date in Japanese");
        assert!(page.contains("2件"), "the total");
        let bad = admin.get(app.url("/dashboard?view=everything")).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.text().await.unwrap().contains("一覧の種類が正しくありません"));

        // The CSV: a BOM, a Japanese header, one row per device, formulas defused.
        let csv = admin.get(app.url("/dashboard/outstanding.csv?view=overdue")).send().await.unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(csv.headers()["content-disposition"].to_str().unwrap().contains("overdue-2026-11-26.csv"));
        let bytes = csv.bytes().await.unwrap();
        assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 with BOM for Excel");
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("資産番号,機種,状態,拠点,院内ID,患者氏名"));
        assert!(lines[1].starts_with("T-0000,") && lines[1].contains(",P-000000,山田 花子,職員 n1,") && lines[1].contains(",3,"));

        // Each list that showed patients is an audit event naming them.
        let mut tx = app.store.read().await.unwrap();
        let recent = lending::store::audit::recent(&mut tx, 20).await.unwrap();
        drop(tx);
        let shown = recent.iter().find(|e| e.action == "report.outstanding").unwrap();
        assert!(shown.details.contains(&b.patients[0]) && shown.actor_login == "a1");
        assert!(recent.iter().any(|e| e.action == "dashboard.view" && e.details.contains(&b.patients[0])));

        // The same over the API, with a token.
        let token = app.token("a1").await;
        let json: serde_json::Value = app.client.get(app.url("/api/v1/reports/outstanding?view=overdue&sort=asset_tag&desc=true"))
            .bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(json["total"], 2);
        assert_eq!(json["rows"][0]["asset_tag"], "T-0001");
        assert_eq!(json["rows"][0]["patient_number"], "P-000000");
        let api_csv = app.client.get(app.url("/api/v1/reports/outstanding.csv")).bearer_auth(&token).send().await.unwrap();
        assert!(api_csv.bytes().await.unwrap().starts_with(b"\xEF\xBB\xBF\xE8\xB3\x87"), "BOM, then 資");
        let bad = app.client.get(app.url("/api/v1/reports/outstanding?page=0")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: serde_json::Value = bad.json().await.unwrap();
        assert!(body["message_ja"].as_str().is_some() && body["message_en"].as_str().is_some());
        let summary: serde_json::Value = app.client.get(app.url("/api/v1/reports/summary")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(summary["by_view"][1], serde_json::json!(["overdue", 2]));

        // A nurse records a custody check from the page; the device leaves the "due" list.
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let path = format!("/devices/{}/custody", b.devices[0]);
        let csrf = app.csrf(&nurse, &path).await;
        let r = nurse.post(app.url(&path)).form(&[("csrf", csrf.as_str()), ("method", "visit"), ("confirmed", "yes"), ("notes", "居間で充電中")]).send().await.unwrap();
        assert_eq!(location(&r), path);
        let page = nurse.get(app.url(&path)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("訪問") && page.contains("確認済み") && page.contains("居間で充電中"));
        let not_on_loan = nurse.get(app.url(&format!("/devices/{}/custody", b.devices[2]))).send().await.unwrap();
        assert_eq!(not_on_loan.status(), StatusCode::CONFLICT);
        let api = app.client.post(app.url("/api/v1/custody-checks")).bearer_auth(app.token("n1").await)
            .json(&serde_json::json!({ "device_id": b.devices[1], "method": "fax", "confirmed": true })).send().await.unwrap();
        assert_eq!(api.status(), StatusCode::UNPROCESSABLE_ENTITY, "an unknown method is refused");
        let nurse_audit = nurse.get(app.url("/audit")).send().await.unwrap();
        assert_eq!(nurse_audit.status(), StatusCode::FORBIDDEN, "the log is for admins and auditors");

        // The auditor filters the log by patient and by user, and verifies the chain.
        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let auditor = app.sign_in("au1", &au1).await;
        let log = auditor.get(app.url("/audit?patient=P-000000")).send().await.unwrap().text().await.unwrap();
        let events = log.split("id=\"events\"").nth(1).unwrap();
        for action in ["loan.check_out", "custody.check", "dashboard.view", "report.outstanding"] {
            assert!(events.contains(action), "{action} is about patient P-000000");
        }
        assert!(!events.contains("auth.sign_in"), "sign-ins name no patient");
        let by_user = auditor.get(app.url(&format!("/audit?user={}&action=custody.check", b.nurse.user_id))).send().await.unwrap().text().await.unwrap();
        let events = by_user.split("id=\"events\"").nth(1).unwrap();
        assert_eq!(events.matches("<tr>").count(), 2, "the header and n1's one custody check");
        let unknown = auditor.get(app.url("/audit?patient=P-999999")).send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let csrf = csrf_of(&log);
        let verified = auditor.post(app.url("/audit/verify")).form(&[("csrf", csrf.as_str())]).send().await.unwrap().text().await.unwrap();
        assert!(verified.contains("id=\"verify-result\"") && verified.contains("改ざん・欠落は見つかりませんでした"), "{verified}");

        // The monthly report, as printed for the 企画管理者.
        let report = auditor.get(app.url("/management-report?month=2026-11")).send().await.unwrap().text().await.unwrap();
        assert!(report.contains("月次報告（2026年11月）") && report.contains("暫定値"), "November is not over yet");
        let loans_table = report.split("id=\"loans\"").nth(1).unwrap();
        assert!(loans_table.contains("<td class=\"num\">1</td>") && loans_table.contains("<td class=\"num\">2</td>"));
        assert!(report.contains("id=\"head\""));
        let readers = report.split("id=\"readers\"").nth(1).unwrap();
        assert!(readers.contains("a1"), "the admin read patient data this month");
        let bad = auditor.get(app.url("/management-report?month=2026-13")).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        app.stop().await;
    }
);
