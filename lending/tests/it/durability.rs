//! The store refuses settings that could lose an acknowledged write.

use std::str::FromStr;

use lending::store::PoolSize;
use lending::testing::TestDb;
use lending::{Backend, Store};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[tokio::test]
async fn every_pooled_sqlite_connection_is_durable() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store_unmigrated(lending::testing::test_clock(), PoolSize(8)).await;
    let pool = store.sqlite_pool().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(pool.acquire().await.unwrap());
    }
    for c in &mut held {
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut **c).await.unwrap();
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **c).await.unwrap();
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut **c).await.unwrap();
        assert_eq!((journal.as_str(), sync, fk), ("wal", 2, 1));
    }
}

#[tokio::test]
async fn weak_sqlite_settings_are_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (journal, sync, expect) in [
        (SqliteJournalMode::Wal, SqliteSynchronous::Normal, "synchronous"),
        (SqliteJournalMode::Delete, SqliteSynchronous::Full, "journal_mode"),
    ] {
        let opts = SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(journal)
            .synchronous(sync);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
        let err =
            Store::from_sqlite_pool(pool.clone(), lending::testing::test_clock()).check_durability().await.unwrap_err();
        assert!(err.to_string().contains(expect), "{err}");
        pool.close().await;
    }
}

#[tokio::test]
async fn postgres_durability_settings_are_checked() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store_unmigrated(lending::testing::test_clock(), PoolSize(2)).await;
    store.check_durability().await.unwrap();
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(store.pg_pool().unwrap()).await.unwrap();
    assert_eq!(fsync, "on");
    store.close().await;
}

/// A mobile-api on another host reaches PostgreSQL over the network: the connection can be
/// TLS (`sslmode=require`, or `verify-full` with `sslrootcert=` for the clinic's own CA).
#[tokio::test]
async fn postgres_connections_can_use_tls() {
    let db = TestDb::new(Backend::Postgres).await;
    let url = format!("{}?sslmode=require", db.url);
    let store = Store::connect(&url, lending::testing::test_clock(), PoolSize(1)).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pg_pool().unwrap())
        .await
        .unwrap();
    assert!(ssl, "the session is encrypted");
    store.close().await;
}
