//! On PostgreSQL the public service connects as its own role, which `server migrate` creates
//! with exactly two rights: read the public views, insert problem reports.

use lending::service::reports::{self, ReportInput};
use lending::store::PoolSize;
use lending::testing::{seed_basic, TestDb};
use lending::{Backend, Store};

#[tokio::test]
async fn the_public_role_reads_only_public_views_and_inserts_only_reports() {
    let db = TestDb::new(Backend::Postgres).await;
    let admin = db.store(lending::testing::test_clock()).await;
    let b = seed_basic(&admin, 1).await;
    let mut tx = admin.begin().await.unwrap();
    lending::service::loans::check_out(
        &mut tx,
        &b.nurse,
        b.check_out_request(0, &[0]),
        &lending::testing::receipt_key(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let role = format!("mobile_{}", &db.url[db.url.rfind("t_").unwrap() + 2..][..12]);
    lending::store::roles::ensure_mobile_role(&admin, &role, "it's-a-secret").await.unwrap();
    lending::store::roles::ensure_mobile_role(&admin, &role, "it's-a-secret").await.unwrap();

    let url = db.url.replacen("postgres@", &format!("{role}:it%27s-a-secret@"), 1);
    let public = Store::connect(&url, lending::testing::test_clock(), PoolSize(2)).await.unwrap();
    let pool = public.pg_pool().unwrap();
    for table in ["patients", "loans", "consents", "users", "devices", "audit_events", "problem_reports", "sessions"] {
        let e = sqlx::query(&format!("SELECT * FROM {table} LIMIT 1")).fetch_all(pool).await.unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{table}: {e}");
    }
    for write in [
        "DELETE FROM problem_reports",
        "UPDATE public_version SET version = 0",
        "INSERT INTO audit_events (seq, at, action, prev_hash, hash) VALUES (99, 'x', 'x', 'x', 'x')",
    ] {
        assert!(sqlx::query(write).execute(pool).await.is_err(), "{write}");
    }
    // w10: a report cannot be inserted already resolved or already alerted (column grants).
    let device: String =
        sqlx::query_scalar("SELECT id FROM devices LIMIT 1").fetch_one(admin.pg_pool().unwrap()).await.unwrap();
    for write in [
        format!("INSERT INTO problem_reports (id, device_id, category, body, callback_phone, created_at, status) VALUES ('r1', '{device}', 'other', 'x', '', now(), 'resolved')"),
        format!("INSERT INTO problem_reports (id, device_id, category, body, callback_phone, created_at, alerted_at) VALUES ('r2', '{device}', 'other', 'x', '', now(), now())"),
    ] {
        let e = sqlx::query(&write).execute(pool).await.unwrap_err();
        assert!(e.to_string().contains("permission denied"), "{write}: {e}");
    }
    // What it may do, through the same code mobile-api runs.
    let mut tx = public.read().await.unwrap();
    let token =
        sqlx::query_scalar::<_, String>("SELECT token FROM public_device_help LIMIT 1").fetch_one(pool).await.unwrap();
    assert!(lending::store::public::device_help(&mut tx, &token).await.unwrap().is_some());
    assert!(lending::store::public::institution(&mut tx).await.unwrap().is_some());
    drop(tx);
    let mut tx = public.begin().await.unwrap();
    reports::submit(
        &mut tx,
        &token,
        &ReportInput { category: "alarm".into(), body: "鳴っています".into(), callback_phone: String::new() },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut tx = admin.read().await.unwrap();
    assert_eq!(reports::list(&mut tx, true).await.unwrap().len(), 1);
    drop(tx);
    public.close().await;
    admin.close().await;
    let drop_role = format!("DROP OWNED BY {role}; DROP ROLE {role}");
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    sqlx::raw_sql(&drop_role).execute(&mut c).await.unwrap();
}
