//! Reminders escalate on their cadence with an injected clock, once per step, and stop when the
//! devices come back. No patient data in any of them.

use chrono::{Duration, TimeZone};
use lending::service::loans::{self, ReturnRequest};
use lending::service::reminders::{queue_due, Cadence};
use lending::store::outbox;
use lending::testing::{receipt_key, seed_basic, TestDb};
use lending::{both_dbs, Clock};

both_dbs!(
    async fn an_overdue_loan_escalates_and_a_return_stops_it(backend) {
        let db = TestDb::new(backend).await;
        // 10:00 in Tokyo, so "today" is unambiguous.
        let clock = Clock::manual(chrono::Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
        let store = db.store(clock.clone()).await;
        let b = seed_basic(&store, 2).await;
        let mut req = b.check_out_request(0, &[0]);
        req.due_on = clock.today_tokyo() + Duration::days(2);
        let mut tx = store.begin().await.unwrap();
        loans::check_out(&mut tx, &b.nurse, req, &receipt_key()).await.unwrap();
        tx.commit().await.unwrap();

        let run = |days: i64| {
            let (store, clock) = (store.clone(), clock.clone());
            async move {
                clock.advance(Duration::days(days));
                let mut tx = store.begin().await.unwrap();
                let n = queue_due(&mut tx, Cadence::default(), "https://staff.example").await.unwrap();
                tx.commit().await.unwrap();
                let mut tx = store.read().await.unwrap();
                let all = outbox::all(&mut tx).await.unwrap();
                (n, all)
            }
        };
        let (n, _) = run(0).await;
        assert_eq!(n, 1, "due in 2 days: the lending nurse");
        assert_eq!(run(0).await.0, 0, "each step once");
        assert_eq!(run(3).await.0, 1, "1 day overdue: the nurse again");
        let (n, all) = run(2).await;
        assert_eq!(n, 2, "3 days overdue: both nurses of the site");
        assert!(all.iter().any(|m| m.recipient == "n2@example.jp"));
        let (n, all) = run(4).await;
        assert_eq!(n, 1, "7 days overdue: the admin");
        assert!(all.iter().any(|m| m.recipient == "a1@example.jp" && m.subject.contains("管理者")));
        for m in &all {
            assert!(!m.body_text.contains("山田") && !m.subject.contains("山田"), "no patient name: {}", m.body_text);
            assert!(m.body_text.contains("T-0000"));
        }

        let mut tx = store.begin().await.unwrap();
        loans::return_device(&mut tx, &b.nurse, ReturnRequest { device_id: b.devices[0].clone(), ..Default::default() }).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(run(30).await.0, 0, "nothing after the return");
        store.close().await;
    }
);
