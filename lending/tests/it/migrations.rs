//! The two migration folders are kept in lock-step: same files, same tables, columns and indexes.

use std::collections::BTreeSet;
use std::path::Path;

use lending::testing::TestDb;
use lending::Backend;

fn files(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(dir);
    let mut names: Vec<String> = std::fs::read_dir(root)
        .expect("migrations folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_folders_hold_the_same_migrations() {
    let sqlite = files("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, files("postgres"), "migrations/sqlite and migrations/postgres must list the same files");
}

async fn sqlite_schema() -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store(lending::testing::test_clock()).await;
    let pool = store.sqlite_pool().expect("sqlite");
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(pool)
            .await
            .expect("indexes");
    let triggers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'")
        .fetch_one(pool)
        .await
        .expect("triggers");
    (
        columns.into_iter().map(|(t, c)| format!("{t}.{c}")).collect(),
        indexes.into_iter().collect(),
        usize::try_from(triggers).unwrap(),
    )
}

async fn pg_schema() -> (BTreeSet<String>, BTreeSet<String>) {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store(lending::testing::test_clock()).await;
    let pool = store.pg_pool().expect("pg");
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
         AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
    )
    .fetch_all(pool)
    .await
    .expect("indexes");
    store.close().await;
    (columns.into_iter().map(|(t, c)| format!("{t}.{c}")).collect(), indexes.into_iter().collect())
}

#[tokio::test]
async fn both_backends_end_with_the_same_schema() {
    let (sqlite_columns, sqlite_indexes, sqlite_triggers) = sqlite_schema().await;
    let (pg_columns, pg_indexes) = pg_schema().await;
    let only_sqlite: Vec<_> = sqlite_columns.difference(&pg_columns).collect();
    let only_pg: Vec<_> = pg_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "columns differ: only in SQLite {only_sqlite:?}, only in PostgreSQL {only_pg:?}"
    );
    assert_eq!(sqlite_indexes, pg_indexes, "explicit indexes differ");
    assert!(sqlite_triggers >= 10, "append-only and lifecycle triggers are installed");
}
