//! The admins' views on a small clinic moved through time with an injected clock: every
//! dashboard view and count, filters and order, custody checks, the monthly report and the
//! admins' daily digest (counts only, no patient data).

use chrono::{Duration, TimeZone};
use lending::service::custody::{self, NewCheck};
use lending::service::loans::{self, ReturnRequest};
use lending::service::monthly::{self, Month};
use lending::service::{incidents, registry, reminders};
use lending::store::dashboard::{self, Filter, Sort, Thresholds, View};
use lending::store::outbox;
use lending::testing::{receipt_key, seed_basic, TestDb};
use lending::{both_dbs, Clock, Store};

async fn rows(store: &Store, f: &Filter, t: Thresholds) -> (Vec<String>, i64) {
    let mut tx = store.read().await.unwrap();
    let (rows, total) = dashboard::list(&mut tx, f, t).await.unwrap();
    (rows.into_iter().map(|r| r.asset_tag).collect(), total)
}

fn view(v: View) -> Filter {
    Filter { view: v, page: 1, ..Filter::default() }
}

both_dbs!(
    async fn the_dashboard_shows_what_needs_attention(backend) {
        let db = TestDb::new(backend).await;
        // 10:00 in Tokyo on 2026-11-22.
        let clock = Clock::manual(chrono::Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, 0).unwrap());
        let store = db.store(clock.clone()).await;
        let b = seed_basic(&store, 6).await;
        let today = clock.today_tokyo();
        let t = Thresholds { custody_days: 3, wipe_days: 2 };

        let mut tx = store.begin().await.unwrap();
        let mut lend = b.check_out_request(0, &[0]);
        lend.due_on = today + Duration::days(10);
        loans::check_out(&mut tx, &b.nurse, lend, &receipt_key()).await.unwrap();
        let mut kit = b.check_out_request(1, &[1, 2]);
        kit.due_on = today + Duration::days(2);
        loans::check_out(&mut tx, &b.nurse2, kit, &receipt_key()).await.unwrap();
        for (patient, device) in [(2, 3), (2, 4)] {
            loans::check_out(&mut tx, &b.nurse, b.check_out_request(patient, &[device]), &receipt_key()).await.unwrap();
        }
        tx.commit().await.unwrap();

        clock.advance(Duration::days(5));
        let mut tx = store.begin().await.unwrap();
        let back = ReturnRequest { device_id: b.devices[3].clone(), ..Default::default() };
        loans::return_device(&mut tx, &b.nurse, back).await.unwrap();
        incidents::report_lost(&mut tx, &b.nurse, &b.devices[4], "lost", "訪問時に見当たらず").await.unwrap();
        tx.commit().await.unwrap();

        let tags = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        // By due date, soonest first; the asset tag breaks ties.
        assert_eq!(rows(&store, &view(View::OnLoan), t).await, (tags(&["T-0001", "T-0002", "T-0000"]), 3));
        let reversed = Filter { desc: true, ..view(View::OnLoan) };
        assert_eq!(rows(&store, &reversed, t).await.0, tags(&["T-0000", "T-0002", "T-0001"]));
        let by_tag = Filter { sort: Sort::AssetTag, ..view(View::OnLoan) };
        assert_eq!(rows(&store, &by_tag, t).await.0, tags(&["T-0000", "T-0001", "T-0002"]));
        assert_eq!(rows(&store, &view(View::Overdue), t).await, (tags(&["T-0001", "T-0002"]), 2));
        let of_nurse2 = Filter { nurse: Some(b.nurse2.user_id.clone()), ..view(View::OnLoan) };
        assert_eq!(rows(&store, &of_nurse2, t).await.0, tags(&["T-0001", "T-0002"]));
        let other_site = Filter { site: Some("分院".into()), ..view(View::OnLoan) };
        assert_eq!(rows(&store, &other_site, t).await.1, 0);
        assert_eq!(rows(&store, &view(View::AwaitingWipe), t).await.0, tags(&["T-0003"]));
        assert_eq!(rows(&store, &view(View::Lost), t).await.0, tags(&["T-0004"]));
        assert_eq!(rows(&store, &view(View::Maintenance), t).await.1, 0);
        assert_eq!(rows(&store, &view(View::OutdatedConsent), t).await.1, 0);
        assert_eq!(rows(&store, &view(View::FirmwareBehind), t).await.1, 0);
        // Lent five days ago, the limit is three: all three need a custody check.
        assert_eq!(rows(&store, &view(View::Unconfirmed), t).await.1, 3);

        // A confirmed check clears a device; a check that did not find it does not.
        let mut tx = store.begin().await.unwrap();
        let check = |device: usize, confirmed: bool| NewCheck {
            device_id: b.devices[device].clone(),
            method: "phone".into(),
            confirmed,
            notes: String::new(),
        };
        custody::record(&mut tx, &b.nurse, check(0, true)).await.unwrap();
        custody::record(&mut tx, &b.nurse2, check(1, false)).await.unwrap();
        let refused = custody::record(&mut tx, &b.nurse, check(3, true)).await.unwrap_err();
        assert!(matches!(refused, lending::Error::Conflict(_)), "no custody check without an open loan: {refused:?}");
        let auditor = custody::record(&mut tx, &b.auditor, check(0, true)).await.unwrap_err();
        assert!(matches!(auditor, lending::Error::Forbidden));
        tx.commit().await.unwrap();
        assert_eq!(rows(&store, &view(View::Unconfirmed), t).await.0, tags(&["T-0001", "T-0002"]));
        let mut tx = store.read().await.unwrap();
        let (all, _) = dashboard::list(&mut tx, &view(View::OnLoan), t).await.unwrap();
        drop(tx);
        let t0 = all.iter().find(|r| r.asset_tag == "T-0000").unwrap();
        assert_eq!(t0.last_confirmed, Some(clock.now()));
        assert_eq!(t0.patient_number.as_deref(), Some("P-000000"));
        assert_eq!(t0.nurse_name.as_deref(), Some("職員 n1"));
        assert!(all.iter().find(|r| r.asset_tag == "T-0001").unwrap().last_confirmed.is_none());

        // A new explanation version: every open loan on the old one needs re-consent. Newer
        // firmware for the model: every device not on it is behind.
        let mut tx = store.begin().await.unwrap();
        let doc = registry::NewDocument {
            title_ja: "貸出に関するご説明（第2版）".into(),
            title_en: String::new(),
            body_ja: "改訂しました。".into(),
            body_en: String::new(),
        };
        registry::add_document_version(&mut tx, &lending::Actor::cli(), &b.model_id, doc).await.unwrap();
        tx.commit().await.unwrap();
        match (store.sqlite_pool(), store.pg_pool()) {
            (Some(p), _) => sqlx::query("UPDATE device_models SET latest_firmware = '2.0'").execute(p).await.map(|_| ()),
            (_, Some(p)) => sqlx::query("UPDATE device_models SET latest_firmware = '2.0'").execute(p).await.map(|_| ()),
            _ => unreachable!(),
        }
        .unwrap();
        assert_eq!(rows(&store, &view(View::OutdatedConsent), t).await.1, 3);
        assert_eq!(rows(&store, &view(View::FirmwareBehind), t).await.1, 6);

        let mut tx = store.read().await.unwrap();
        let s = dashboard::summary(&mut tx, t).await.unwrap();
        drop(tx);
        let count = |v: View| s.by_view.iter().find(|(w, _)| *w == v).unwrap().1;
        assert_eq!(
            View::ALL.map(count),
            [3, 2, 2, 3, 1, 1, 0, 6, 0],
            "on loan, overdue, unconfirmed, re-consent, awaiting wipe, lost, maintenance, firmware, support ended"
        );
        assert_eq!(s.wipe_waiting_long, 0, "returned just now");
        assert_eq!(s.by_nurse[0].label, "職員 n2", "the nurse with the most overdue first");
        assert_eq!((s.by_nurse[0].on_loan, s.by_nurse[0].overdue), (2, 2));
        assert_eq!((s.by_nurse[1].on_loan, s.by_nurse[1].overdue), (1, 0));
        assert_eq!(s.by_site.len(), 1);
        assert_eq!((s.by_site[0].key.as_str(), s.by_site[0].on_loan), ("本院", 3));

        // The admins' digest: once a day, counts only.
        clock.advance(Duration::days(3));
        let mut tx = store.begin().await.unwrap();
        let digest = reminders::queue_digest(&mut tx, t, "https://staff.example").await.unwrap();
        assert_eq!(reminders::queue_digest(&mut tx, t, "https://staff.example").await.unwrap(), 0, "once a day");
        tx.commit().await.unwrap();
        assert_eq!(digest, 1, "one admin with an address");
        let mut tx = store.read().await.unwrap();
        let mail = outbox::all(&mut tx).await.unwrap().into_iter().find(|m| m.dedupe_key.starts_with("digest:")).unwrap();
        drop(tx);
        assert_eq!(mail.recipient, "a1@example.jp");
        assert!(mail.body_text.contains("返却遅れの機器: 2件"), "{}", mail.body_text);
        assert!(mail.body_text.contains("返却後2日以上データ消去されていない機器: 1件"), "{}", mail.body_text);
        assert!(mail.body_text.contains("https://staff.example/dashboard"));
        for name in ["山田", "鈴木", "高橋", "P-0000"] {
            assert!(!mail.body_text.contains(name) && !mail.subject.contains(name), "no patient data in the digest");
        }

        // The month's report, read in December: four loans of five devices, one back, one lost.
        clock.set(chrono::Utc.with_ymd_and_hms(2026, 12, 3, 1, 0, 0).unwrap());
        let mut tx = store.read().await.unwrap();
        let r = monthly::build(&mut tx, Month::parse("2026-11").unwrap()).await.unwrap();
        let head = lending::store::audit::head(&mut tx).await.unwrap();
        drop(tx);
        assert!(r.complete);
        assert_eq!((r.figures.loans_made, r.figures.devices_lent, r.figures.devices_returned, r.figures.lost_or_stolen), (4, 5, 1, 1));
        assert_eq!((r.figures.outstanding_at_end, r.figures.overdue_at_end), (3, 2), "the kit was due on 11-24; T-0000 on 12-02");
        assert_eq!((r.figures.custody_checks, r.figures.incidents_opened), (2, 1));
        assert_eq!(r.head_at_end, Some(head), "nothing happened since November");
        assert!(r.events_by_action.iter().any(|(a, n)| a == "loan.check_out" && *n == 4));
        let december = {
            let mut tx = store.read().await.unwrap();
            monthly::build(&mut tx, Month::parse("2026-12").unwrap()).await.unwrap()
        };
        assert_eq!((december.figures.loans_made, december.complete), (0, false));
        assert!(Month::parse("2026-13").is_err() && Month::parse("november").is_err());
        store.close().await;
    }
);
