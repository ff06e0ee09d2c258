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
