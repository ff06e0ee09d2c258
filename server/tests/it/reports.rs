//! Problem reports from the QR page reach staff: listed in the staff app, alerted by mail
//! through the outbox by the background worker, resolved (audited).

use lending::both_dbs;
use lending::service::reports::{self, ReportInput};
use lending::testing::{enroll, seed_basic, test_clock, tokyo};
use reqwest::StatusCode;

use crate::{location, spawn_app_with_clock};

both_dbs!(
    async fn staff_see_alert_mails_and_resolve_reports(backend) {
        // 01:00 in Japan: before the admins' 08:00 digest, so only the report alert is due.
        let clock = test_clock();
        clock.set(tokyo(2026, 11, 20, 1, 0));
        let app = spawn_app_with_clock(backend, clock.clone()).await;
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
        // Written to data/outbox once each: the alert and the first signed audit checkpoint (#16).
        assert_eq!(std::fs::read_dir(app.db.data_dir.join("outbox")).unwrap().count(), queued.len());
        // At 08:00 the digest is due and counts the unanswered report: one more mail, once.
        clock.set(tokyo(2026, 11, 20, 8, 0));
        server::worker::tick(&state, &state_mailer).await.unwrap();
        server::worker::tick(&state, &state_mailer).await.unwrap();
        let mut tx = app.store.read().await.unwrap();
        let queued = lending::store::outbox::all(&mut tx).await.unwrap();
        drop(tx);
        assert_eq!(queued.iter().filter(|m| m.dedupe_key.starts_with("digest:")).count(), 1, "the digest, once");
        assert_eq!(std::fs::read_dir(app.db.data_dir.join("outbox")).unwrap().count(), queued.len());

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

both_dbs!(
    async fn two_workers_racing_queue_and_send_each_mail_once(backend) {
        // Two staff replicas on one database, their background rounds at the same moment, at
        // 10:00 in Japan with a new report, an overdue loan and the digest all due.
        let clock = test_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 2).await;
        let mut tx = app.store.begin().await.unwrap();
        let mut req = b.check_out_request(0, &[0]);
        req.due_on = clock.today_tokyo() + chrono::Duration::days(1);
        lending::service::loans::check_out(&mut tx, &b.nurse, req, &lending::testing::receipt_key()).await.unwrap();
        tx.commit().await.unwrap();
        clock.advance(chrono::Duration::days(8));
        let mut tx = app.store.read().await.unwrap();
        let token = lending::store::devices::get(&mut tx, &b.devices[1]).await.unwrap().unwrap().qr_token;
        drop(tx);
        let mut tx = app.store.begin().await.unwrap();
        let input = ReportInput { category: "other".into(), body: "音が鳴りません".into(), callback_phone: String::new() };
        reports::submit(&mut tx, &token, &input).await.unwrap();
        tx.commit().await.unwrap();

        let replica = || async {
            server::AppState::new(
                app.db.store(clock.clone()).await,
                lending::Config::for_tests(&app.db.data_dir, &app.db.url),
                app.keys.clone(),
                lending::testing::receipt_key(),
            )
        };
        let (one, two) = (replica().await, replica().await);
        let mailer = lending::mail::Mailer::Files(app.db.data_dir.join("outbox"));
        let (a, b2) = tokio::join!(server::worker::tick(&one, &mailer), server::worker::tick(&two, &mailer));
        a.unwrap();
        b2.unwrap();
        let (a, b2) = tokio::join!(server::worker::tick(&one, &mailer), server::worker::tick(&two, &mailer));
        a.unwrap();
        b2.unwrap();

        let mut tx = app.store.read().await.unwrap();
        let queued = lending::store::outbox::all(&mut tx).await.unwrap();
        let keys: std::collections::BTreeSet<&str> = queued.iter().map(|m| m.dedupe_key.as_str()).collect();
        assert_eq!(keys.len(), queued.len());
        // The report, the digest and the signed audit checkpoint to the one admin; 7 days overdue: the lending nurse's reminder, the site's
        // (both nurses) and the admins'; the digest to the admin.
        let kinds = |p: &str| queued.iter().filter(|m| m.dedupe_key.starts_with(p)).count();
        assert_eq!((kinds("report:"), kinds("digest:"), kinds("checkpoint:")), (1, 1, 1), "{keys:?}");
        assert_eq!(kinds("reminder:"), 4, "{keys:?}");
        assert_eq!(lending::store::audit::count_action(&mut tx, "problem_report.received").await.unwrap(), 1);
        assert_eq!(lending::store::audit::count_action(&mut tx, "reminder.queue").await.unwrap(), 4);
        assert_eq!(lending::store::audit::count_action(&mut tx, "reminder.digest").await.unwrap(), 1);
        assert_eq!(lending::store::outbox::count_pending(&mut tx).await.unwrap(), 0, "all sent");
        drop(tx);
        let files = std::fs::read_dir(app.db.data_dir.join("outbox")).unwrap().count();
        assert_eq!(files, queued.len(), "each mail written once");
        one.store.close().await;
        two.store.close().await;
        app.stop().await;
    }
);

both_dbs!(
    async fn admins_see_undelivered_mail_with_the_reason_and_send_it_again(backend) {
        let app = spawn_app_with_clock(backend, test_clock()).await;
        seed_basic(&app.store, 1).await;
        let a1 = enroll(&app.store, "a1", &app.keys).await;
        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let mut tx = app.store.begin().await.unwrap();
        let mail = lending::store::outbox::Mail {
            id: "m-refused".into(),
            dedupe_key: "test:refused".into(),
            recipient: "nobody@example.jp".into(),
            subject: "【貸出機器】テスト".into(),
            body_text: "本文".into(),
            body_html: String::new(),
            attempts: 2,
        };
        lending::store::outbox::enqueue(&mut tx, &mail).await.unwrap();
        let retry = lending::store::outbox::Retry::GiveUp;
        lending::store::outbox::mark_failed(&mut tx, "m-refused", retry, "permanent error (550): 5.1.1 no such mailbox").await.unwrap();
        tx.commit().await.unwrap();

        let auditor = app.sign_in("au1", &au1).await;
        let page = auditor.get(app.url("/admin/mail")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("nobody@example.jp") && page.contains("5.1.1 no such mailbox"), "{page}");
        assert!(!page.contains("/admin/mail/m-refused/retry"), "auditors look, they do not act");

        let admin = app.sign_in("a1", &a1).await;
        let page = admin.get(app.url("/admin/mail")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("送信できなかったメール") && page.contains("/admin/mail/m-refused/retry"));
        let csrf = app.csrf(&admin, "/admin/mail").await;
        let r = admin.post(app.url("/admin/mail/m-refused/retry")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(location(&r), "/admin/mail");
        let page = admin.get(app.url("/admin/mail")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("送信できなかったメールはありません"), "queued again");
        let r = admin.post(app.url("/admin/mail/m-refused/retry")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "not failed any more");
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::outbox::count_pending(&mut tx).await.unwrap(), 1);
        assert_eq!(lending::store::audit::count_action(&mut tx, "mail.retry").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn w8_report_alerts_are_one_mail_per_admin_every_few_minutes(backend) {
        let clock = test_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 3).await;
        let mut tokens = Vec::new();
        let mut tx = app.store.read().await.unwrap();
        for d in &b.devices {
            tokens.push(lending::store::devices::get(&mut tx, d).await.unwrap().unwrap().qr_token);
        }
        drop(tx);
        let submit = |token: String, body: &'static str| {
            let store = app.store.clone();
            async move {
                let mut tx = store.begin().await.unwrap();
                let input = ReportInput { category: "other".into(), body: body.into(), callback_phone: String::new() };
                reports::submit(&mut tx, &token, &input).await.unwrap();
                tx.commit().await.unwrap();
            }
        };
        let report_mails = || async {
            let mut tx = app.store.read().await.unwrap();
            let all = lending::store::outbox::all(&mut tx).await.unwrap();
            all.into_iter().filter(|m| m.dedupe_key.starts_with("report:")).collect::<Vec<_>>()
        };
        // A burst of three reports: one mail to the admin, listing the three devices, no text.
        submit(tokens[0].clone(), "電源が入りません（非公開の本文）").await;
        submit(tokens[1].clone(), "充電できません").await;
        // A phone number in full width, as a Japanese keyboard types it, is stored half width.
        let mut tx = app.store.begin().await.unwrap();
        let wide = ReportInput { category: "other".into(), body: "折り返しください".into(), callback_phone: "０９０－１２３４－５６７８".into() };
        let id = reports::submit(&mut tx, &tokens[2], &wide).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = app.store.read().await.unwrap();
        let stored = reports::list(&mut tx, true).await.unwrap().into_iter().find(|r| r.id == id).unwrap();
        assert_eq!(stored.callback_phone, "090-1234-5678");
        drop(tx);
        submit(tokens[2].clone(), "アラームが鳴ります").await;
        let mut tx = app.store.begin().await.unwrap();
        assert_eq!(reports::alert_new(&mut tx, "https://staff.example").await.unwrap(), 4);
        tx.commit().await.unwrap();
        let mails = report_mails().await;
        assert_eq!(mails.len(), 1, "one admin, one mail for the burst");
        assert!(mails[0].subject.contains("4件"), "{}", mails[0].subject);
        assert!(["T-0000", "T-0001", "T-0002"].iter().all(|t| mails[0].body_text.contains(t)));
        assert!(!mails[0].body_text.contains("非公開の本文"), "never the report's text");
        // Another report two minutes later waits for the next window.
        clock.advance(chrono::Duration::minutes(2));
        submit(tokens[0].clone(), "まだ直りません").await;
        let mut tx = app.store.begin().await.unwrap();
        assert_eq!(reports::alert_new(&mut tx, "https://staff.example").await.unwrap(), 0);
        tx.commit().await.unwrap();
        assert_eq!(report_mails().await.len(), 1);
        clock.advance(chrono::Duration::minutes(reports::ALERT_EVERY_MINUTES));
        let mut tx = app.store.begin().await.unwrap();
        assert_eq!(reports::alert_new(&mut tx, "https://staff.example").await.unwrap(), 1);
        tx.commit().await.unwrap();
        assert_eq!(report_mails().await.len(), 2);
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "problem_report.received").await.unwrap(), 5, "each report audited");
        drop(tx);
        app.stop().await;
    }
);
