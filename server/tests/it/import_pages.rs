//! The CSV import page: one bad row imports nothing and the page names its line; a good file
//! imports every row; the upload limit is the import's, not the forms'; auditors are refused.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::{location, spawn_app_with_clock, TestApp};

async fn device_count(app: &TestApp) -> usize {
    let mut tx = app.store.read().await.unwrap();
    lending::store::devices::list(&mut tx, None).await.unwrap().len()
}

both_dbs!(
    async fn a_csv_with_one_bad_row_imports_nothing_and_names_the_line(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        seed_basic(&app.store, 1).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let page = nurse.get(app.url("/devices/import")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("name=\"csv\"") && page.contains("/static/csv-file.js"));
        let csrf = crate::csrf_of(&page);

        let bad = "資産番号,シリアル番号,機種,ファームウェア更新日\nIMP-001,S1,パルスオキシメータ T1,2026-11-01\nIMP-002,S2,存在しない機種,\nIMP-003,S3,パルスオキシメータ T1,2026/11/02\n";
        let r = nurse.post(app.url("/devices/import")).form(&[("csrf", csrf.as_str()), ("csv", bad)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"import-errors\""));
        assert!(page.contains("3行目: 機種「存在しない機種」が登録されていません。"), "names the line and the reason");
        assert!(page.contains("IMP-003,S3"), "the text stays for fixing");
        assert_eq!(device_count(&app).await, 1, "nothing imported");

        let good = bad.replace("存在しない機種", "Pulse oximeter T1");
        let r = nurse.post(app.url("/devices/import")).form(&[("csrf", csrf.as_str()), ("csv", good.as_str())]).send().await.unwrap();
        assert_eq!(location(&r), "/devices/import?imported=3");
        let page = nurse.get(app.url("/devices/import?imported=3")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("3台を登録しました。"));
        assert_eq!(device_count(&app).await, 4);
        let mut tx = app.store.read().await.unwrap();
        let d = lending::store::devices::by_asset_tag(&mut tx, "IMP-003").await.unwrap().unwrap();
        assert_eq!(d.firmware_updated_on, chrono::NaiveDate::from_ymd_opt(2026, 11, 2));
        let events = lending::store::audit::recent(&mut tx, 20).await.unwrap();
        assert!(events.iter().any(|e| e.action == "device.import"));
        drop(tx);

        // Again: every row is now a duplicate, each named.
        let r = nurse.post(app.url("/devices/import")).form(&[("csrf", csrf.as_str()), ("csv", good.as_str())]).send().await.unwrap();
        let page = r.text().await.unwrap();
        assert!(page.contains("2行目") && page.contains("4行目") && page.contains("IMP-001"));

        // Larger than a form (256 KiB) but within the import limit: read, checked, refused by row.
        let notes = "あ".repeat(600);
        let mut big = String::from("asset_tag,model,notes\n");
        for n in 0..200 {
            big.extend([format!("BIG-{n:04},パルスオキシメータ T1,{notes}\n")]);
        }
        big.push_str("BIG-0000,パルスオキシメータ T1,\n");
        assert!(big.len() > lending::web::MAX_BODY_BYTES);
        let r = nurse.post(app.url("/devices/import")).form(&[("csrf", csrf.as_str()), ("csv", big.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("202行目"));
        assert_eq!(device_count(&app).await, 4);
        // Other forms keep the small limit. On its own connection: the server answers without
        // reading the rest of the body and may close it.
        let n2 = enroll(&app.store, "n2", &app.keys).await;
        let other = app.sign_in("n2", &n2).await;
        let csrf2 = app.csrf(&other, "/patients").await;
        let big_form = [("csrf", csrf2.as_str()), ("number", "X"), ("name", big.as_str())];
        if let Ok(r) = other.post(app.url("/patients")).form(&big_form).send().await {
            assert!(r.status().is_client_error(), "{}", r.status());
        }
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::patients::search(&mut tx, &lending::store::patients::Search::new("X"), 10, 0).await.unwrap().iter().all(|p| p.number != "X"));
        drop(tx);

        let r = nurse.post(app.url("/devices/import")).form(&[("csrf", csrf.as_str()), ("csv", "asset_tag,model\nN\0UL,x\n")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // No token, no import; auditors neither see nor use the page.
        let r = nurse.post(app.url("/devices/import")).form(&[("csv", good.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let auditor = app.sign_in("au1", &au1).await;
        assert_eq!(auditor.get(app.url("/devices/import")).send().await.unwrap().status(), StatusCode::FORBIDDEN);
        let csrf = app.csrf(&auditor, "/devices").await;
        let csv = "asset_tag,model\nAUD-1,パルスオキシメータ T1\n";
        let r = auditor.post(app.url("/devices/import")).form(&[("csrf", csrf.as_str()), ("csv", csv)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(device_count(&app).await, 4);
        app.stop().await;
    }
);
