//! Problem reports from the QR page reach staff: listed in the staff app, alerted by mail
//! through the outbox by the background worker, resolved (audited).

use lending::service::reports::{self, ReportInput};
use lending::testing::{enroll, seed_basic};
use lending::{both_dbs, Clock};
use reqwest::StatusCode;

use crate::{location, spawn_app_with_clock};

both_dbs!(
    async fn staff_see_alert_mails_and_resolve_reports(backend) {
        let app = spawn_app_with_clock(backend, Clock::system()).await;
        let b = seed_basic(&app.store, 1).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let mut tx = app.store.read().await.unwrap();
        let token = lending::store::devices::get(&mut tx, &b.devices[0]).await.unwrap().unwrap().qr_token;
        drop(tx);
        let mut tx = app.store.begin().await.unwrap();
        let input = ReportInput { category: "damaged".into(), body: "落としてしまいました".into(), callback_phone: "090-0000-0001".into() };
        let id = reports::submit(&mut tx, &token, &input).await.unwrap();
        tx.commit().await.unwrap();

        // The worker's round: the report is picked up and one mail is written to data/outbox.
        let state_mailer = lending::mail::Mailer::Files(app.db.data_dir.join("outbox"));
        let state = server::AppState::new(
            app.store.clone(),
            lending::Config::for_tests(&app.db.data_dir, &app.db.url),
            app.keys.clone(),
            lending::testing::receipt_key(),
        );
        server::worker::tick(&state, &state_mailer).await.unwrap();
        server::worker::tick(&state, &state_mailer).await.unwrap();
        let mut tx = app.store.read().await.unwrap();
        let queued = lending::store::outbox::all(&mut tx).await.unwrap();
        drop(tx);
        assert_eq!(queued.iter().filter(|m| m.dedupe_key.starts_with("report:")).count(), 1, "one admin, one mail, once");
        // Written to data/outbox: the alert, and the first signed audit checkpoint (issue #16).
        assert_eq!(std::fs::read_dir(app.db.data_dir.join("outbox")).unwrap().count(), 2);

        let nurse = app.sign_in("n1", &n1).await;
        let page = nurse.get(app.url("/reports")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("落としてしまいました") && page.contains("tel:090-0000-0001") && page.contains("T-0000"));
        let csrf = app.csrf(&nurse, "/reports").await;
        let r = nurse.post(app.url(&format!("/reports/{id}/resolve"))).form(&[("csrf", csrf.as_str()), ("resolution", "電話で確認し交換")]).send().await.unwrap();
        assert_eq!(location(&r), "/reports");
        let r = nurse.post(app.url(&format!("/reports/{id}/resolve"))).form(&[("csrf", csrf.as_str()), ("resolution", "again")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "already resolved");
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "problem_report.resolve").await.unwrap(), 1);
        assert_eq!(lending::store::audit::count_action(&mut tx, "problem_report.received").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);
