//! Picking devices by QR label on the check-out page: the staff lookup from a scanned label
//! URL (or asset tag) to the device, and the no-camera fallback of typed asset tags or pasted
//! label URLs, resolved by the server.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;
use serde_json::Value;

use crate::spawn_app_with_clock;

both_dbs!(
    async fn devices_are_picked_by_label_url_or_asset_tag(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 3).await;
        let mut tx = app.store.read().await.unwrap();
        let d2 = lending::store::devices::get(&mut tx, &b.devices[2]).await.unwrap().unwrap();
        drop(tx);
        let url = lending::labels::label_url("https://help.example.jp", &d2.qr_token);
        assert!(url.ends_with(&format!("/d/{}", d2.qr_token)), "{url}");
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;

        let js = nurse.get(app.url("/static/scan.js")).send().await.unwrap();
        assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
        assert!(js.text().await.unwrap().contains("BarcodeDetector"));
        let page = nurse.get(app.url("/loans/new")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("/static/scan.js") && page.contains("id=\"scan\"") && page.contains("name=\"asset_tags\""));
        assert!(!page.contains("<script>"), "no inline script");

        let lookup = |code: String| {
            let nurse = nurse.clone();
            let u = app.url("/devices/lookup");
            async move { nurse.get(u).query(&[("code", code)]).send().await.unwrap() }
        };
        let r = lookup(url.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let j: Value = r.json().await.unwrap();
        assert_eq!((j["id"].as_str().unwrap(), j["asset_tag"].as_str().unwrap(), j["available"].as_bool()), (d2.id.as_str(), "T-0002", Some(true)));
        // As typed on a phone or read aloud: lower case and full width find the same device.
        for typed in ["t-0002", "Ｔ－０００２", "ｔ－０００２ "] {
            let j: Value = lookup(typed.into()).await.json().await.unwrap();
            assert_eq!(j["asset_tag"], "T-0002", "{typed}");
        }
        let j: Value = lookup("T-0001".into()).await.json().await.unwrap();
        assert_eq!(j["id"], b.devices[1].as_str());
        for unknown in ["https://help.example.jp/d/AAAAAAAAAAAAAAAAAAAAAA", "NOPE-1", ""] {
            assert_eq!(lookup(unknown.into()).await.status(), StatusCode::NOT_FOUND, "{unknown}");
        }
        // Anonymous callers learn nothing.
        let r = app.client.get(app.url("/devices/lookup")).query(&[("code", url.as_str())]).send().await.unwrap();
        assert_eq!(crate::location(&r), "/login");

        // Without the camera: tags typed, a label URL pasted; the server resolves both.
        let csrf = crate::csrf_of(&page);
        let typed = format!("T-0001、 {url}");
        let form = [("csrf", csrf.as_str()), ("patient_id", b.patients[0].as_str()), ("asset_tags", typed.as_str()), ("due_on", "2099-01-01")];
        let r = nurse.post(app.url("/loans/explain")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let sign = r.text().await.unwrap();
        assert!(sign.contains("T-0001、T-0002"), "both devices in the kit");
        for id in [&b.devices[1], &b.devices[2]] {
            assert!(sign.contains(&format!("name=\"device_id\" value=\"{id}\"")));
        }
        let form = [("csrf", csrf.as_str()), ("patient_id", b.patients[0].as_str()), ("asset_tags", "NOPE-9"), ("due_on", "2099-01-01")];
        let r = nurse.post(app.url("/loans/explain")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("資産番号「NOPE-9」の機器が見つかりません。"));
        app.stop().await;
    }
);
