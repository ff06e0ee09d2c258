//! Incidents through the devices page: lost/stolen with a description, found (→ awaiting
//! wipe), to and back from maintenance, write-off; buttons only where the lifecycle allows;
//! an illegal step shows the domain's reason; auditors are refused.

use lending::testing::{enroll, receipt_key, seed_basic};
use lending::{both_dbs, DeviceStatus};
use reqwest::StatusCode;

use crate::{location, spawn_app_with_clock, TestApp};

/// The devices page's row for one asset tag.
async fn row(app: &TestApp, b: &reqwest::Client, tag: &str) -> String {
    let page = b.get(app.url("/devices")).send().await.unwrap().text().await.unwrap();
    let at = page.find(&format!("id=\"dev-{tag}\"")).unwrap();
    page[at..].split("</tr>").next().unwrap().to_owned()
}

async fn status(app: &TestApp, id: &str) -> DeviceStatus {
    let mut tx = app.store.read().await.unwrap();
    lending::store::devices::get(&mut tx, id).await.unwrap().unwrap().status
}

both_dbs!(
    async fn incidents_through_the_devices_page(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 3).await;
        let mut tx = app.store.begin().await.unwrap();
        lending::service::loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0, 1]), &receipt_key()).await.unwrap();
        tx.commit().await.unwrap();
        let (d0, d1) = (b.devices[0].clone(), b.devices[1].clone());
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let csrf = app.csrf(&nurse, "/devices").await;
        let post = |path: String, form: Vec<(&'static str, String)>| {
            let nurse = nurse.clone();
            let csrf = csrf.clone();
            let url = app.url(&path);
            async move {
                let mut f = vec![("csrf", csrf)];
                f.extend(form);
                nurse.post(url).form(&f).send().await.unwrap()
            }
        };

        // Only the steps the lifecycle allows are offered.
        let on_loan = row(&app, &nurse, "T-0000").await;
        assert!(on_loan.contains(&format!("/devices/{d0}/lost")) && !on_loan.contains("/found"));
        let available = row(&app, &nurse, "T-0002").await;
        assert!(!available.contains("/lost") && !available.contains("/maintenance") && !available.contains("write-off"));

        // Stolen, with what happened.
        let page = nurse.get(app.url(&format!("/devices/{d0}/lost"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("紛失・盗難の報告") && page.contains("value=\"stolen\""));
        let bad = post(format!("/devices/{d0}/lost"), vec![("kind", "broken".into())]).await;
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.text().await.unwrap().contains("紛失か盗難かを選んでください"));
        let r = post(format!("/devices/{d0}/lost"), vec![("kind", "stolen".into()), ("description", "訪問時に玄関先から無くなっていた".into())]).await;
        assert_eq!(location(&r), "/devices");
        assert_eq!(status(&app, &d0).await, DeviceStatus::Lost);
        let lost = row(&app, &nurse, "T-0000").await;
        assert!(lost.contains("/found") && !lost.contains("/write-off") && !lost.contains("/maintenance"));
        let again = nurse.get(app.url(&format!("/devices/{d0}/lost"))).send().await.unwrap().text().await.unwrap();
        assert!(!again.contains("name=\"kind\""), "no second report for a lost device");
        assert!(again.contains(&format!("/devices/{d0}/write-off")) && again.contains("name=\"confirm\""), "write-off asks first");

        // An illegal step: a clear reason, nothing changed.
        let r = post(format!("/devices/{d0}/maintenance"), vec![]).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.text().await.unwrap().contains("機器の状態が「紛失」のため「修理・保守中」にできません。"));
        assert_eq!(status(&app, &d0).await, DeviceStatus::Lost);

        // Found → awaiting wipe → maintenance → back, awaiting wipe again.
        let r = post(format!("/devices/{d0}/found"), vec![]).await;
        assert_eq!(location(&r), "/devices");
        assert_eq!(status(&app, &d0).await, DeviceStatus::AwaitingWipe);
        assert!(row(&app, &nurse, "T-0000").await.contains(&format!("/devices/{d0}/maintenance\"")));
        post(format!("/devices/{d0}/maintenance"), vec![]).await;
        assert_eq!(status(&app, &d0).await, DeviceStatus::Maintenance);
        assert!(row(&app, &nurse, "T-0000").await.contains("/maintenance/return"));
        post(format!("/devices/{d0}/maintenance/return"), vec![]).await;
        assert_eq!(status(&app, &d0).await, DeviceStatus::AwaitingWipe);

        // Lost, then written off; a second write-off is refused.
        post(format!("/devices/{d1}/lost"), vec![("kind", "lost".into()), ("description", String::new())]).await;
        let r = post(format!("/devices/{d1}/write-off"), vec![]).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "not without the confirmation");
        assert!(r.text().await.unwrap().contains("確認の欄にチェックを入れてください"));
        assert_eq!(status(&app, &d1).await, DeviceStatus::Lost);
        let r = post(format!("/devices/{d1}/write-off"), vec![("confirm", "yes".into())]).await;
        assert_eq!(location(&r), "/devices");
        assert_eq!(status(&app, &d1).await, DeviceStatus::Retired);
        let r = post(format!("/devices/{d1}/write-off"), vec![("confirm", "yes".into())]).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.text().await.unwrap().contains("機器の状態が「廃棄済み」のため"));

        // Each step is in the audit chain, with the description's incident.
        let mut tx = app.store.read().await.unwrap();
        let events = lending::store::audit::recent(&mut tx, 100).await.unwrap();
        drop(tx);
        for a in ["device.lost", "device.found", "device.maintenance_out", "device.maintenance_back", "device.write_off"] {
            assert!(events.iter().any(|e| e.action == a), "{a} audited");
        }

        // The auditor sees the page and can do none of it.
        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let auditor = app.sign_in("au1", &au1).await;
        assert!(!row(&app, &auditor, "T-0000").await.contains("<form"));
        let mut tx = app.store.begin().await.unwrap();
        lending::service::loans::check_out(&mut tx, &b.nurse, b.check_out_request(1, &[2]), &receipt_key()).await.unwrap();
        tx.commit().await.unwrap();
        let page = auditor.get(app.url(&format!("/devices/{}/lost", b.devices[2]))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("貸出中") && !page.contains("name=\"kind\""), "no report form for auditors");
        let csrf = app.csrf(&auditor, "/devices").await;
        let r = auditor.post(app.url(&format!("/devices/{d0}/maintenance"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(status(&app, &d0).await, DeviceStatus::AwaitingWipe);
        app.stop().await;
    }
);
