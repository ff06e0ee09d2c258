//! The audit chain: written with every change, refused edits, and `verify` naming the first
//! bad event after an attacker with the database file edits, deletes, inserts or swaps rows.

use lending::audit::{Break, EventRow};
use lending::service::loans;
use lending::store::audit;
use lending::testing::{seed_basic, TestDb};
use lending::{both_dbs, Backend, Store};

/// Runs SQL directly on the database, as someone holding the file or a superuser would.
async fn raw(store: &Store, sql: &str) -> Result<(), sqlx::Error> {
    match store.backend() {
        Backend::Sqlite => sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.map(|_| ()),
        Backend::Postgres => sqlx::query(sql).execute(store.pg_pool().unwrap()).await.map(|_| ()),
    }
}

async fn drop_triggers(store: &Store) {
    match store.backend() {
        Backend::Sqlite => {
            raw(store, "DROP TRIGGER audit_events_no_update").await.unwrap();
            raw(store, "DROP TRIGGER audit_events_no_delete").await.unwrap();
        }
        Backend::Postgres => raw(store, "DROP TRIGGER audit_events_no_change ON audit_events").await.unwrap(),
    }
}

/// A store with a realistic chain: setup events, a check-out and a return.
async fn chain(backend: Backend) -> (TestDb, Store, i64) {
    let db = TestDb::new(backend).await;
    let store = db.store(lending::testing::test_clock()).await;
    let b = seed_basic(&store, 3).await;
    let mut tx = store.begin().await.unwrap();
    loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0, 1]), &lending::testing::receipt_key())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    loans::return_device(
        &mut tx,
        &b.nurse,
        loans::ReturnRequest { device_id: b.devices[0].clone(), ..Default::default() },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let n = verify(&store).await.expect("an untouched chain verifies");
    (db, store, n)
}

/// Verifies the whole chain in one part and in parts of 2 and 3 events; all must agree.
async fn verify(store: &Store) -> Result<i64, Break> {
    let whole = audit::verify(store).await.unwrap();
    for part in [2, 3] {
        assert_eq!(audit::verify_in_parts(store, part).await.unwrap(), whole, "parts of {part}");
    }
    whole
}

async fn row(store: &Store, seq: i64) -> EventRow {
    let mut tx = store.read().await.unwrap();
    audit::recent(&mut tx, 1_000).await.unwrap().into_iter().find(|r| r.seq == seq).unwrap()
}

both_dbs!(
    async fn untouched_chain_verifies_and_edits_are_refused(backend) {
        let (_db, store, n) = chain(backend).await;
        assert!(n >= 15, "setup, check-out and return were all audited ({n} events)");
        let mut tx = store.read().await.unwrap();
        assert_eq!(audit::head(&mut tx).await.unwrap().0, n);
        assert_eq!(audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 1);
        drop(tx);
        // The fast walk (one text per chunk) checks out on its own, not through its fallback.
        let head_hash = audit::head(&mut store.read().await.unwrap()).await.unwrap().1;
        assert_eq!(audit::verify_range_fast(&store, 1, n).await.unwrap(), Some(Ok(head_hash.clone())));
        assert_eq!(audit::verify_range_fast(&store, 4, n).await.unwrap(), Some(Ok(head_hash)));
        assert!(raw(&store, "UPDATE audit_events SET details = '{}' WHERE seq = 3").await.is_err());
        assert!(raw(&store, "DELETE FROM audit_events WHERE seq = 3").await.is_err());
        assert_eq!(verify(&store).await, Ok(n));
    }
);

both_dbs!(
    async fn an_edited_event_is_named(backend) {
        let (_db, store, _) = chain(backend).await;
        drop_triggers(&store).await;
        raw(&store, "UPDATE audit_events SET actor_login = 'someone-else' WHERE seq = 5").await.unwrap();
        assert_eq!(verify(&store).await, Err(Break::BadHash { seq: 5 }));
    }
);

both_dbs!(
    async fn a_deleted_event_is_named(backend) {
        let (_db, store, n) = chain(backend).await;
        drop_triggers(&store).await;
        raw(&store, "DELETE FROM audit_events WHERE seq = 7").await.unwrap();
        assert_eq!(verify(&store).await, Err(Break::Missing { seq: 7 }));
        // Cutting the tail off is caught against the recorded head.
        raw(&store, &format!("DELETE FROM audit_events WHERE seq >= 7 AND seq <= {n}")).await.unwrap();
        let b = verify(&store).await.unwrap_err();
        assert_eq!(b.seq(), 7, "{}", b.describe());
    }
);

both_dbs!(
    async fn an_inserted_event_is_named(backend) {
        let (_db, store, _) = chain(backend).await;
        drop_triggers(&store).await;
        // A forged event made with the published algorithm, slipped in as event 5.
        let before = row(&store, 4).await;
        raw(&store, "UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= 5").await.unwrap();
        raw(&store, "UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000").await.unwrap();
        let mut forged = EventRow { seq: 5, action: "patient.view".into(), prev_hash: before.hash.clone(), ..before };
        forged.hash = forged.compute_hash();
        let mut tx = store.begin().await.unwrap();
        audit::insert_row(&mut tx, &forged).await.unwrap();
        tx.commit().await.unwrap();
        let b = verify(&store).await.unwrap_err();
        assert_eq!(b, Break::BadLink { seq: 6 });
        assert!(b.describe().contains("event 5"), "{}", b.describe());

    }
);

both_dbs!(
    async fn swapped_events_are_named(backend) {
        let (_db, store, _) = chain(backend).await;
        drop_triggers(&store).await;
        let (a, b) = (row(&store, 8).await, row(&store, 9).await);
        raw(&store, "DELETE FROM audit_events WHERE seq IN (8, 9)").await.unwrap();
        let mut tx = store.begin().await.unwrap();
        audit::insert_row(&mut tx, &EventRow { seq: 8, ..b }).await.unwrap();
        audit::insert_row(&mut tx, &EventRow { seq: 9, ..a }).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(verify(&store).await, Err(Break::BadLink { seq: 8 }));
    }
);

both_dbs!(
    async fn an_event_appended_at_the_end_is_named(backend) {
        let (_db, store, n) = chain(backend).await;
        drop_triggers(&store).await;
        let last = row(&store, n).await;
        let mut forged = EventRow { seq: n + 1, prev_hash: last.hash.clone(), ..last };
        forged.hash = "0".repeat(64);
        let mut tx = store.begin().await.unwrap();
        audit::insert_row(&mut tx, &forged).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(verify(&store).await, Err(Break::BadHash { seq: n + 1 }));
        // Even with a correctly computed hash, the chain no longer ends at the recorded head.
        raw(&store, &format!("DELETE FROM audit_events WHERE seq = {}", n + 1)).await.unwrap();
        forged.hash = forged.compute_hash();
        let mut tx = store.begin().await.unwrap();
        audit::insert_row(&mut tx, &forged).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(verify(&store).await, Err(Break::HeadMismatch { head_seq: n }));
    }
);

both_dbs!(
    /// Check-out remembers the registry and the chain head between transactions (issue #20); a
    /// second process changing both in between must still be seen: the new contacts in the
    /// consent, and a chain that does not fork.
    async fn check_out_sees_changes_made_by_another_process(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 3).await;
        let key = lending::testing::receipt_key();
        let mut tx = store.read().await.unwrap();
        let old_phone = lending::store::registry::institution(&mut tx).await.unwrap().unwrap().day_phone;
        drop(tx);
        let mut tx = store.begin().await.unwrap();
        let first = loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0]), &key).await.unwrap();
        tx.commit().await.unwrap();
        assert!(first.consent.document_text.contains(&old_phone), "the consent names the day phone");

        // Another process: its own pool and memory, on the same database.
        let other = db.store(lending::testing::test_clock()).await;
        raw(&other, "UPDATE institution SET day_phone = '03-9999-0000' WHERE id = 1").await.unwrap();
        let mut tx = other.begin().await.unwrap();
        loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[1]), &key).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.begin().await.unwrap();
        let third = loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[2]), &key).await.unwrap();
        tx.commit().await.unwrap();
        assert!(third.consent.document_text.contains("03-9999-0000"), "the new phone, not the remembered one");
        assert!(!third.consent.document_text.contains(&old_phone));

        // The other process appends again; this one's remembered head is then stale and the
        // next append must still link to the real head.
        let mut tx = store.read().await.unwrap();
        assert_eq!(audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 3);
        drop(tx);
        let n = verify(&store).await.expect("one unforked chain");
        let mut tx = other.begin().await.unwrap();
        tx.audit(&b.nurse, lending::audit::NewEvent::new("test.other", "loan", "y"));
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.audit(&b.nurse, lending::audit::NewEvent::new("test.after", "loan", "z"));
        tx.commit().await.unwrap();
        assert_eq!(verify(&store).await, Ok(n + 2));
        let mut tx = store.read().await.unwrap();
        let last = audit::recent(&mut tx, 2).await.unwrap();
        assert_eq!((last[0].action.as_str(), last[1].action.as_str()), ("test.after", "test.other"));
        drop(tx);
        other.close().await;
    }
);

both_dbs!(
    /// The quick check (issue #20): only the events after the last signed checkpoint, which must
    /// link on from the checkpointed event and end on the head; tampering after it is named.
    async fn the_events_since_the_last_checkpoint_are_checked(backend) {
        let (_db, store, n) = chain(backend).await;
        let key = lending::testing::receipt_key();
        let quick = |store: Store| async move {
            lending::service::checkpoints::verify_since_last(&store, &lending::testing::receipt_key().public_key())
                .await
                .unwrap()
        };
        // No checkpoint yet: the whole chain.
        assert_eq!(quick(store.clone()).await, Ok(n));
        let mut tx = store.begin().await.unwrap();
        let c = lending::service::checkpoints::sign_now(&mut tx, &key).await.unwrap().expect("a checkpoint");
        tx.commit().await.unwrap();
        assert_eq!(c.seq, n);
        assert_eq!(quick(store.clone()).await, Ok(0));
        for i in 0..3 {
            let mut tx = store.begin().await.unwrap();
            let actor = lending::actor::Actor::cli();
            tx.audit(&actor, lending::audit::NewEvent::new("test.after", "loan", &format!("x{i}")));
            tx.commit().await.unwrap();
        }
        assert_eq!(quick(store.clone()).await, Ok(3));
        assert_eq!(audit::verify_since(&store, 0, lending::audit::GENESIS).await.unwrap(), Ok(n + 3));
        drop_triggers(&store).await;
        raw(&store, &format!("UPDATE audit_events SET details = '{{}}' WHERE seq = {}", n + 2)).await.unwrap();
        assert_eq!(quick(store.clone()).await, Err(Break::BadHash { seq: n + 2 }));
        assert_eq!(verify(&store).await, Err(Break::BadHash { seq: n + 2 }));
        // The checkpointed event itself rewritten: the quick check names it.
        raw(&store, &format!("UPDATE audit_events SET hash = '{}' WHERE seq = {n}", "1".repeat(64))).await.unwrap();
        assert_eq!(quick(store.clone()).await, Err(Break::CheckpointMismatch { seq: n }));
    }
);
