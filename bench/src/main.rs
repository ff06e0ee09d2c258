//! Benchmarks for SPEC §7, each reported with a baseline measured in the same run.
//!
//! `cargo run --release -p bench -- audit --events 1000000 [--postgres URL]`

use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use lending::audit::{EventRow, GENESIS};
use lending::store::{audit, PoolSize};
use lending::{Clock, Store};

#[derive(Parser)]
#[command(about = "Benchmarks of the SPEC §7 targets")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Seed a chain of N audit events, then time `audit verify` against a plain scan of the same rows.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        events: i64,
        /// A PostgreSQL server URL (a scratch database is created and dropped); default SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Bench::Audit { events, postgres } => rt.block_on(audit_bench(events, postgres)),
    }
}

/// A scratch database that is removed afterwards.
struct Scratch {
    url: String,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

async fn scratch(postgres: Option<String>) -> anyhow::Result<Scratch> {
    let dir = tempfile::tempdir()?;
    Ok(match postgres {
        None => Scratch { url: format!("sqlite://{}", dir.path().join("bench.sqlite").display()), _dir: dir, pg: None },
        Some(admin) => {
            use sqlx::Connection as _;
            let name = format!("bench_{}", std::process::id());
            let mut c = sqlx::PgConnection::connect(&admin).await.context("connect to PostgreSQL")?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut c).await?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            Scratch { url: format!("{base}/{name}"), _dir: dir, pg: Some((admin.clone(), name)) }
        }
    })
}

async fn drop_scratch(s: Scratch) -> anyhow::Result<()> {
    if let Some((admin, name)) = s.pg {
        use sqlx::Connection as _;
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await?;
    }
    Ok(())
}

/// A realistic event for seeding: a check-out with details, as the service writes them.
fn event(seq: i64, prev_hash: String) -> EventRow {
    let mut row = EventRow {
        seq,
        at: format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
            1 + (seq / 2_600_000) % 12,
            1 + (seq / 86_400) % 28,
            (seq / 3600) % 24,
            (seq / 60) % 60,
            seq % 60
        ),
        actor_id: "5d7e2f0c-7c1a-4a8e-9a51-3b3f2d0e9c11".into(),
        actor_login: "sato.nurse".into(),
        role: "nurse".into(),
        action: "loan.check_out".into(),
        target_type: "loan".into(),
        target_id: format!("{seq:032x}"),
        patient_id: format!("{:032x}", seq % 10_000),
        details: format!(
            "{{\"consent_id\":\"{seq:032x}\",\"devices\":[\"ECG-{:03}\",\"GW-{:03}\"],\"due_on\":\"2026-12-01\"}}",
            seq % 1000,
            seq % 1000
        ),
        source: "10.0.0.15".into(),
        prev_hash,
        hash: String::new(),
    };
    row.hash = row.compute_hash();
    row
}

async fn seed_chain(store: &Store, n: i64) -> anyhow::Result<()> {
    const BATCH: i64 = 10_000;
    let mut prev = GENESIS.to_owned();
    let mut seq = 1;
    while seq <= n {
        let mut tx = store.begin().await?;
        let end = (seq + BATCH - 1).min(n);
        for s in seq..=end {
            let row = event(s, std::mem::take(&mut prev));
            audit::insert_row(&mut tx, &row).await?;
            prev = row.hash;
        }
        if end == n {
            audit::set_head(&mut tx, n, &prev).await?;
        }
        tx.commit().await?;
        seq = end + 1;
    }
    Ok(())
}

/// The baseline: stream the same rows in the same order, checking nothing.
async fn plain_scan(store: &Store) -> anyhow::Result<i64> {
    let mut n = 0;
    audit::for_each_in(store, 1, i64::MAX, |_| {
        n += 1;
        true
    })
    .await?;
    Ok(n)
}

async fn audit_bench(events: i64, postgres: Option<String>) -> anyhow::Result<()> {
    let s = scratch(postgres).await?;
    let store = Store::connect(&s.url, Clock::system(), PoolSize(4)).await?;
    store.migrate().await?;
    let backend = store.backend();
    let t = Instant::now();
    seed_chain(&store, events).await?;
    println!("seeded {events} chained audit events on {backend:?} in {:.1} s", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let scanned = plain_scan(&store).await?;
    let baseline = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let verified = audit::verify(&store).await?.map_err(|b| anyhow::anyhow!(b.describe()))?;
    let verify = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        verified == events && scanned == events,
        "verified {verified}, scanned {scanned}, expected {events}"
    );
    println!("baseline: stream {events} rows without checking: {baseline:.2} s");
    println!("audit verify: {events} events in {verify:.2} s ({:.2}x the baseline scan)", verify / baseline.max(1e-9));
    println!(
        "target: < 10 s for 1,000,000 events (issue 2), < 30 s for 5,000,000 (SPEC §7): {}",
        if verify * 1e6 < 10.0 * f64::from(u32::try_from(events).unwrap_or(u32::MAX)) { "met" } else { "NOT met" }
    );
    store.close().await;
    drop_scratch(s).await
}
