//! Check-out throughput (consent + loan + audit event in one durable commit) against raw durable
//! single-row inserts into the same database, measured in the same run (SPEC §7: ≥ 25%).

use std::time::Instant;

use chrono::Duration;
use lending::service::loans::{self, CheckOutRequest, ConsentInput};
use lending::store::PoolSize;
use lending::{Actor, Clock, Store};

use crate::{drop_scratch, exec, scratch, strings};

const KEY: &str = "YmVuY2gtcmVjZWlwdC1rZXktMDAwMDAwMDAwMDAwMDA";

pub async fn run(count: usize, clients: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let s = scratch(postgres).await?;
    let store = Store::connect(&s.url, Clock::system(), PoolSize(if clients > 1 { 16 } else { 4 })).await?;
    store.migrate().await?;
    let receipts = lending::receipts::ReceiptKey::from_base64(KEY).ok_or_else(|| anyhow::anyhow!("key"))?;
    lending::demo::seed(&store, &receipts).await?.ok_or_else(|| anyhow::anyhow!("not empty"))?;
    let backend = store.backend();

    // Devices to lend: one model's, registered by the service like any other.
    let model = strings(&store, "SELECT id FROM device_models ORDER BY id").await?.remove(0);
    let document = strings(&store, &format!("SELECT current_document_id FROM device_models WHERE id = '{model}'"))
        .await?
        .remove(0);
    let patient = strings(&store, "SELECT id FROM patients ORDER BY number").await?.remove(0);
    let nurse_id = strings(&store, "SELECT id FROM users WHERE role = 'nurse' ORDER BY login").await?.remove(0);
    let nurse = Actor::user(&nurse_id, "bench", lending::Role::Nurse, "bench");
    // The single-client run lends the first `count`, the concurrent run (if any) the next `count`.
    let registered = if clients > 1 { 2 * count } else { count };
    let mut devices = Vec::with_capacity(registered);
    let mut tx = store.begin().await?;
    for n in 0..registered {
        let d = lending::service::registry::register_device(
            &mut tx,
            &Actor::cli(),
            lending::service::registry::NewDevice::tagged(format!("CO-{n:05}"), model.clone()),
        )
        .await?;
        devices.push(d.id);
    }
    tx.commit().await?;

    // Baseline: raw single-row inserts, one durable commit each, same database and settings.
    exec(&store, "CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, v TEXT NOT NULL)").await?;
    let t = Instant::now();
    for n in 0..count {
        match (store.sqlite_pool(), store.pg_pool()) {
            (Some(p), _) => {
                sqlx::query("INSERT INTO bench_raw (id, v) VALUES ($1, $2)")
                    .bind(i64::try_from(n)?)
                    .bind("x")
                    .execute(p)
                    .await?;
            }
            (_, Some(p)) => {
                sqlx::query("INSERT INTO bench_raw (id, v) VALUES ($1, $2)")
                    .bind(i64::try_from(n)?)
                    .bind("x")
                    .execute(p)
                    .await?;
            }
            _ => anyhow::bail!("no pool"),
        }
    }
    let per = f64::from(u32::try_from(count)?);
    let raw_rate = per / t.elapsed().as_secs_f64();

    // Check-outs through the domain: validation, consent with its signed receipt, loan, device
    // status, audit event, one durable commit.
    let due = store.clock().today_tokyo() + Duration::days(14);
    let request = move |device: &String| CheckOutRequest {
        patient_id: patient.clone(),
        device_ids: vec![device.clone()],
        due_on: due,
        purpose: String::new(),
        consent: Some(ConsentInput {
            signer_name: "ベンチ 太郎".into(),
            relationship: "self".into(),
            relationship_note: String::new(),
            signature_svg: lending::demo::DEMO_SIGNATURE.into(),
            document_ids: vec![document.clone()],
            proxy: None,
        }),
    };
    let t = Instant::now();
    let (mut in_tx, mut committing) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    for device in &devices[..count] {
        let req = request(device);
        let t0 = Instant::now();
        let mut tx = store.begin().await?;
        loans::check_out(&mut tx, &nurse, req, &receipts).await?;
        let t1 = Instant::now();
        tx.commit().await?;
        in_tx += t1 - t0;
        committing += t1.elapsed();
    }
    let checkout_rate = per / t.elapsed().as_secs_f64();
    let ratio = checkout_rate / raw_rate;
    println!("{backend:?}, {count} of each, one durable commit each, one connection at a time");
    println!("baseline: raw single-row inserts: {raw_rate:.0}/s");
    println!("check-outs (consent + receipt + loan + device + audit): {checkout_rate:.0}/s");
    println!(
        "  per check-out: {:.2} ms begin + statements, {:.2} ms audit append + commit",
        in_tx.as_secs_f64() * 1000.0 / per,
        committing.as_secs_f64() * 1000.0 / per
    );
    println!(
        "ratio: {:.0}% of the raw insert rate (SPEC §7 >= 25%: {}; issue #20 goal >= 50%: {})",
        ratio * 100.0,
        crate::verdict(ratio >= 0.25),
        crate::verdict(ratio >= 0.5)
    );
    if clients > 1 {
        concurrent(&store, &nurse, &receipts, &devices[count..], clients, &request, raw_rate).await?;
    }
    store.close().await;
    drop_scratch(s).await
}

/// `clients` concurrent clients, each lending its share of `devices` one check-out (one durable
/// commit) at a time; throughput and latency against the single-client raw insert rate.
async fn concurrent(
    store: &Store,
    nurse: &Actor,
    receipts: &lending::receipts::ReceiptKey,
    devices: &[String],
    clients: usize,
    request: &(impl Fn(&String) -> CheckOutRequest + Sync),
    raw_rate: f64,
) -> anyhow::Result<()> {
    let per_client = devices.len() / clients;
    let commits_before = store.group_commits();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for share in devices.chunks(per_client.max(1)).take(clients) {
        let (store, nurse, receipts) = (store.clone(), nurse.clone(), receipts.clone());
        let reqs: Vec<CheckOutRequest> = share.iter().map(request).collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(reqs.len());
            for req in reqs {
                let t = Instant::now();
                let mut tx = store.begin().await?;
                loans::check_out(&mut tx, &nurse, req, &receipts).await?;
                tx.commit().await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let rate = f64::from(u32::try_from(all.len())?) / secs;
    let ratio = rate / raw_rate;
    println!(
        "{clients} concurrent clients, {} check-outs: {rate:.0}/s, latency p50 {:.1} ms, p99 {:.1} ms",
        all.len(),
        crate::percentile(&all, 50),
        crate::percentile(&all, 99)
    );
    if let (Some(before), Some(after)) = (commits_before, store.group_commits()) {
        let (commits, writes) = (after.commits - before.commits, after.transactions - before.transactions);
        println!(
            "  group commit: {writes} write transactions in {commits} database commits ({:.1} a commit)",
            f64::from(u32::try_from(writes).unwrap_or(u32::MAX))
                / f64::from(u32::try_from(commits.max(1)).unwrap_or(1))
        );
    }
    println!(
        "ratio: {:.0}% of the single-client raw insert rate (issue #20 goal >= 100%: {})",
        ratio * 100.0,
        crate::verdict(ratio >= 1.0)
    );
    Ok(())
}
