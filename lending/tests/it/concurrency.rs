//! 200 check-outs of one device at once, each on its own pooled connection: exactly one wins.

use lending::service::loans;
use lending::store::{audit, PoolSize};
use lending::testing::{seed_basic, TestDb};
use lending::{both_dbs, Error};

both_dbs!(
    async fn two_hundred_concurrent_check_outs_of_one_device(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store_unmigrated(lending::testing::test_clock(), PoolSize(24)).await;
        store.migrate().await.unwrap();
        let b = seed_basic(&store, 1).await;
        let events_before = audit::verify(&store).await.unwrap().unwrap();

        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(200));
        let mut tasks = Vec::new();
        for i in 0..200 {
            let (store, barrier) = (store.clone(), barrier.clone());
            let (actor, req) = (if i % 2 == 0 { b.nurse.clone() } else { b.nurse2.clone() }, b.check_out_request(i % 3, &[0]));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let mut tx = store.begin().await?;
                loans::check_out(&mut tx, &actor, req, &lending::testing::receipt_key()).await?;
                tx.commit().await
            }));
        }
        let (mut ok, mut conflicts, mut other) = (0, 0, Vec::new());
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(Error::Conflict(_)) => conflicts += 1,
                Err(e) => other.push(e.to_string()),
            }
        }
        assert!(other.is_empty(), "every loser gets the conflict error, not: {other:?}");
        assert_eq!((ok, conflicts), (1, 199));

        let mut tx = store.read().await.unwrap();
        assert_eq!(audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 1);
        let v = lending::store::loans::invariant_violations(&mut tx).await.unwrap();
        assert!(v.is_clean(), "{v:?}");
        drop(tx);
        assert_eq!(audit::verify(&store).await.unwrap(), Ok(events_before + 1));
        store.close().await;
    }
);

both_dbs!(
    /// Many nurses lending at once: on SQLite the queued writers are committed together (fewer
    /// database commits than check-outs), and a writer that fails after writing takes nothing
    /// of the others with it, nor leaves anything of its own.
    async fn queued_writers_commit_together_and_a_failed_one_leaves_nothing(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store_unmigrated(lending::testing::test_clock(), PoolSize(24)).await;
        store.migrate().await.unwrap();
        let b = std::sync::Arc::new(seed_basic(&store, 96).await);
        let events_before = audit::verify(&store).await.unwrap().unwrap();
        let commits_before = store.group_commits();

        // Even tasks lend devices 0..48 and commit; odd ones lend devices 48..96 and are dropped
        // after writing (an error after the statements); 16 more try device 0 again (409).
        let tasks_n = 96 + 16;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tasks_n));
        let mut tasks = Vec::new();
        for i in 0..tasks_n {
            let (store, barrier, b) = (store.clone(), barrier.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                let (device, commit) = match i {
                    i if i >= 96 => (0, true),
                    i if i % 2 == 0 => (i / 2, true),
                    i => (48 + i / 2, false),
                };
                barrier.wait().await;
                let mut tx = store.begin().await?;
                loans::check_out(&mut tx, &b.nurse, b.check_out_request(i % 3, &[device]), &lending::testing::receipt_key())
                    .await?;
                if commit {
                    tx.commit().await.map(|()| true)
                } else {
                    drop(tx);
                    Ok(false)
                }
            }));
        }
        let (mut committed, mut dropped, mut conflicts, mut other) = (0, 0, 0, Vec::new());
        for t in tasks {
            match t.await.unwrap() {
                Ok(true) => committed += 1,
                Ok(false) => dropped += 1,
                Err(Error::Conflict(_)) => conflicts += 1,
                Err(e) => other.push(e.to_string()),
            }
        }
        assert!(other.is_empty(), "{other:?}");
        assert_eq!((committed, dropped, conflicts), (48, 48, 16));

        let mut tx = store.read().await.unwrap();
        assert_eq!(audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 48);
        for (i, id) in b.devices.iter().enumerate() {
            let d = lending::store::devices::get(&mut tx, id).await.unwrap().unwrap();
            let want = if i < 48 { lending::DeviceStatus::OnLoan } else { lending::DeviceStatus::Available };
            assert_eq!(d.status, want, "device {i}");
        }
        let v = lending::store::loans::invariant_violations(&mut tx).await.unwrap();
        assert!(v.is_clean(), "{v:?}");
        drop(tx);
        assert_eq!(audit::verify(&store).await.unwrap(), Ok(events_before + 48));

        match (commits_before, store.group_commits()) {
            (Some(before), Some(after)) => {
                assert_eq!(after.transactions - before.transactions, 48, "every committed check-out is counted once");
                let commits = after.commits - before.commits;
                assert!(commits < 48, "queued check-outs shared commits: {commits} commits for 48");
            }
            (None, None) => assert_eq!(backend, lending::store::Backend::Postgres),
            other => panic!("{other:?}"),
        }
        store.close().await;
    }
);

both_dbs!(
    /// Requests whose clients go away: check-outs cancelled at whatever point they reached
    /// (queued, mid-statement, mid-commit, waiting for the batch) leave the database consistent,
    /// every finished one is there, and the writer is free for the next request.
    async fn cancelled_writers_leave_the_database_consistent_and_the_writer_free(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store_unmigrated(lending::testing::test_clock(), PoolSize(24)).await;
        store.migrate().await.unwrap();
        let b = std::sync::Arc::new(seed_basic(&store, 65).await);
        let events_before = audit::verify(&store).await.unwrap().unwrap();

        // Every third one tells when it has its turn (i % 6 == 0) or has written (i % 6 == 3)
        // and is cancelled right then, midway through its statements or its commit, while the
        // others queue behind it or wait for the batch it is in.
        let (said, mut heard) = tokio::sync::mpsc::unbounded_channel::<usize>();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let (store, b, said) = (store.clone(), b.clone(), said.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await?;
                if i % 6 == 0 {
                    let _ = said.send(i);
                }
                loans::check_out(&mut tx, &b.nurse, b.check_out_request(i % 3, &[i]), &lending::testing::receipt_key())
                    .await?;
                if i % 6 == 3 {
                    let _ = said.send(i);
                }
                tx.commit().await
            }));
        }
        drop(said);
        while let Some(i) = heard.recv().await {
            tasks[i].abort();
        }
        // A cancelled writer's commit runs to its end when others wait on it, so each of them
        // learns the real outcome: the ones not cancelled all succeed.
        let (mut finished, mut unknown, mut cancelled) = (0_i64, Vec::new(), 0);
        for t in tasks {
            match tokio::time::timeout(std::time::Duration::from_mins(1), t).await.expect("no writer hangs") {
                Ok(Ok(())) => finished += 1,
                Ok(Err(e)) if e.to_string().contains("group commit") => unknown.push(e.to_string()),
                Ok(Err(e)) => panic!("a check-out failed: {e}"),
                Err(c) => {
                    assert!(c.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        assert!(unknown.is_empty(), "{unknown:?}");
        assert!(cancelled <= 22 && finished + cancelled == 64, "{finished} finished, {cancelled} cancelled");

        // The writer is free: one more check-out goes through at once.
        let next = async {
            let mut tx = store.begin().await.unwrap();
            loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[64]), &lending::testing::receipt_key())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        };
        tokio::time::timeout(std::time::Duration::from_mins(1), next).await.expect("the writer is free");

        // Every check-out that got through is whole: its loan, its device on loan, its event.
        let mut tx = store.read().await.unwrap();
        let lent = audit::count_action(&mut tx, "loan.check_out").await.unwrap();
        assert!(lent > finished, "{lent} check-outs recorded, {finished} + 1 acknowledged");
        let mut on_loan = 0;
        for id in &b.devices {
            let d = lending::store::devices::get(&mut tx, id).await.unwrap().unwrap();
            if d.status == lending::DeviceStatus::OnLoan {
                on_loan += 1;
                assert!(lending::store::loans::open_loan_of_device(&mut tx, id).await.unwrap().is_some());
            }
        }
        assert_eq!(on_loan, lent);
        let v = lending::store::loans::invariant_violations(&mut tx).await.unwrap();
        assert!(v.is_clean(), "{v:?}");
        drop(tx);
        assert_eq!(audit::verify(&store).await.unwrap(), Ok(events_before + lent));
        store.close().await;
    }
);

both_dbs!(
    /// A later writer of a SQLite batch sends its audit rows with its RELEASE in one query
    /// (issue #20). If the chain head this process remembers is stale (another process appended
    /// since), the rows must still link to the real head, and the whole batch commits.
    async fn a_batched_writer_with_a_stale_chain_head_links_to_the_real_one(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = std::sync::Arc::new(seed_basic(&store, 8).await);
        let key = lending::testing::receipt_key();
        let mut tx = store.begin().await.unwrap();
        loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0]), &key).await.unwrap();
        tx.commit().await.unwrap();
        // Another process appends: this one's remembered head is now stale.
        let other = db.store(lending::testing::test_clock()).await;
        let mut tx = other.begin().await.unwrap();
        tx.audit(&b.nurse, lending::audit::NewEvent::new("test.other", "loan", "y"));
        tx.commit().await.unwrap();
        other.close().await;
        let events_before = audit::verify(&store).await.unwrap().unwrap();
        let commits_before = store.group_commits();

        // The first writer of the batch appends nothing and keeps the turn until the seven
        // others queue, so the first to append is a later writer, with the stale head.
        let first = store.begin().await.unwrap();
        let mut tasks = Vec::new();
        for i in 1..8 {
            let (store, b, key) = (store.clone(), b.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await?;
                loans::check_out(&mut tx, &b.nurse, b.check_out_request(i % 3, &[i]), &key).await?;
                tx.commit().await
            }));
        }
        if commits_before.is_some() {
            let queued = async {
                while store.group_commits().is_some_and(|g| g.queued < 7) {
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(std::time::Duration::from_mins(1), queued).await.expect("the writers queue");
        }
        first.commit().await.unwrap();
        for t in tasks {
            t.await.unwrap().unwrap();
        }

        let mut tx = store.read().await.unwrap();
        assert_eq!(audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 8);
        let v = lending::store::loans::invariant_violations(&mut tx).await.unwrap();
        assert!(v.is_clean(), "{v:?}");
        drop(tx);
        assert_eq!(audit::verify(&store).await.unwrap(), Ok(events_before + 7), "one chain, linked on");
        if let (Some(before), Some(after)) = (commits_before, store.group_commits()) {
            assert_eq!(after.transactions - before.transactions, 8);
            assert!(after.commits - before.commits < 8, "the writers were batched: {after:?}");
        }
        store.close().await;
    }
);
