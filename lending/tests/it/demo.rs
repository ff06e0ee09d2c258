//! `demo` seeds a realistic clinic through the domain operations, on both backends.

use lending::store::{audit, devices, loans};
use lending::testing::TestDb;
use lending::{both_dbs, DeviceStatus};

both_dbs!(
    async fn demo_clinic_has_every_lifecycle_state(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let seeded = lending::demo::seed(&store, &lending::testing::receipt_key()).await.unwrap().expect("an empty database is seeded");
        assert!(seeded.devices >= 20 && seeded.patients == 10 && seeded.loans >= 10);

        let mut tx = store.read().await.unwrap();
        let all = devices::list(&mut tx, None).await.unwrap();
        for status in DeviceStatus::ALL {
            assert!(all.iter().any(|d| d.status == status), "a demo device is {status}");
        }
        let today = store.clock().today_tokyo();
        let overdue: i64 = match backend {
            lending::Backend::Sqlite => sqlx::query_scalar("SELECT COUNT(*) FROM loans WHERE closed_at IS NULL AND due_on < $1")
                .bind(today)
                .fetch_one(store.sqlite_pool().unwrap())
                .await
                .unwrap(),
            lending::Backend::Postgres => sqlx::query_scalar("SELECT COUNT(*) FROM loans WHERE closed_at IS NULL AND due_on < $1")
                .bind(today)
                .fetch_one(store.pg_pool().unwrap())
                .await
                .unwrap(),
        };
        assert!(overdue >= 2, "some loans are overdue ({overdue})");
        let v = loans::invariant_violations(&mut tx).await.unwrap();
        assert!(v.is_clean(), "{v:?}");
        drop(tx);
        assert!(audit::verify(&store).await.unwrap().is_ok());

        // Never mixed into a database that already has a clinic.
        assert!(lending::demo::seed(&store, &lending::testing::receipt_key()).await.unwrap().is_none());
        store.close().await;
    }
);
