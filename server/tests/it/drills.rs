//! Drills against the real `server` binary on loopback (issue #8).
//!
//! - Crash: `kill -9` the service at a random moment while several clients check kits out,
//!   take them back, wipe and verify; after each kill every acknowledged write is there with
//!   its consent and audit event, nothing is orphaned, SQLite's `PRAGMA integrity_check` is ok
//!   and the audit chain verifies (library and `server audit verify`).
//! - Double booking: `DRILL_CHECKOUTS` simultaneous check-outs of one device over HTTP: one 201,
//!   every other answer a 409 with its Japanese reason, one loan, one audit event.
//!
//! CI runs the crash drill at its full 20 rounds (`DRILL_ROUNDS`, about 11 s a backend) and the
//! double booking at 500 (`DRILL_CHECKOUTS`); `scripts/drill.sh` runs the
//! long form. `DRILL_SEED` replays a crash drill's kill moments and choices.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lending::store::{audit, devices, loans, wipes};
use lending::testing::{seed_basic, TestDb};
use lending::{both_dbs, Config, DeviceStatus, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Concurrent clients in the crash drill, and the devices each one owns.
const WORKERS: usize = 4;
const DEVICES_PER_WORKER: usize = 6;
/// The kill comes this many milliseconds after the clients start (uniformly random).
const KILL_AFTER_MS: (u64, u64) = (50, 600);
/// A bound on each client's requests per round, should the kill never come.
const MAX_STEPS: usize = 2_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// SplitMix64: small, seeded, good enough to pick kill moments and kits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn between(&mut self, (lo, hi): (u64, u64)) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// `server serve` on 127.0.0.1 with a free port, answering `/healthz`.
struct Server {
    child: Child,
    base: String,
    // Held open: the service's stdout stays a live pipe.
    _stdout: BufReader<ChildStdout>,
}

async fn start(db: &TestDb) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("serve")
        .env("LENDING_DATA_DIR", &db.data_dir)
        // Where Config::for_tests finds the keys too (the drill checks receipts with them).
        .env("LENDING_KEY_DIR", db.data_dir.join("keys"))
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_SERVER_LISTEN", "127.0.0.1:0")
        .env("LENDING_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start server serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_mins(1), stdout.read_line(&mut line))
        .await
        .expect("serve prints its address within a minute")
        .unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve printed {line:?}")).to_owned();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status() == StatusCode::OK => break,
            other => assert!(Instant::now() < deadline, "/healthz does not answer: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server { child, base, _stdout: stdout }
}

impl Server {
    /// SIGKILL; waits for the process and checks it died of it (it was not already gone).
    async fn kill_9(mut self) {
        use std::os::unix::process::ExitStatusExt as _;
        self.child.start_kill().unwrap();
        let status = self.child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(9), "the service was still running when killed: {status}");
    }

    /// SIGTERM; a graceful stop exits 0.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().await.unwrap().success());
        let status = tokio::time::timeout(Duration::from_mins(1), self.child.wait()).await.unwrap().unwrap();
        assert!(status.success(), "a graceful stop exits 0, got {status}");
    }
}

/// What the crash drill's clients need: where the service is, two nurses' tokens, the seed data.
struct Ctx {
    http: reqwest::Client,
    base: String,
    n1: String,
    n2: String,
    patients: Vec<String>,
    document_id: String,
    wipe_steps: Vec<String>,
}

/// Why a client stopped.
enum Stop {
    /// No complete answer (the service was killed): not acknowledged, may or may not be stored.
    Unanswered,
    /// An answer the drill does not expect (each client owns its devices: no 4xx, no 5xx).
    Unexpected(String),
}

impl Ctx {
    async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Result<Value, Stop> {
        let mut req = self.http.post(format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let r = req.send().await.map_err(|_| Stop::Unanswered)?;
        let status = r.status();
        // A body cut short by the kill is not an acknowledgement.
        let text = r.text().await.map_err(|_| Stop::Unanswered)?;
        if !status.is_success() {
            return Err(Stop::Unexpected(format!("POST {path}: {status} {text}")));
        }
        serde_json::from_str(&text).map_err(|e| Stop::Unexpected(format!("POST {path}: {status} {e}: {text}")))
    }
}

/// A device as its owning client believes it to be.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dev {
    Available,
    OnLoan,
    AwaitingWipe,
    /// Wiped by n1 (this wipe id), to be verified by n2.
    Wiped(String),
    Other,
}

struct AckLoan {
    loan_id: String,
    consent_id: String,
    devices: Vec<String>,
}

struct AckReturn {
    id: String,
    loan_id: String,
    device_id: String,
}

/// Every write the service acknowledged (2xx with a complete body) in one round.
#[derive(Default)]
struct Acked {
    loans: Vec<AckLoan>,
    returns: Vec<AckReturn>,
    wipes: Vec<String>,
    verified: Vec<String>,
}

impl Acked {
    fn len(&self) -> usize {
        self.loans.len() + self.returns.len() + self.wipes.len() + self.verified.len()
    }

    fn absorb(&mut self, other: Self) {
        self.loans.extend(other.loans);
        self.returns.extend(other.returns);
        self.wipes.extend(other.wipes);
        self.verified.extend(other.verified);
    }
}

#[derive(Default)]
struct Outcome {
    acked: Acked,
    unanswered: usize,
    unexpected: Vec<String>,
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

/// One client: lends kits of 1–2 of its devices, takes them back, wipes and verifies them, in a
/// random order, until the service stops answering.
async fn client(ctx: Arc<Ctx>, mut devices: Vec<(String, Dev)>, mut rng: Rng) -> Outcome {
    let mut out = Outcome::default();
    for _ in 0..MAX_STEPS {
        let available: Vec<usize> = (0..devices.len()).filter(|&i| devices[i].1 == Dev::Available).collect();
        let busy: Vec<usize> =
            (0..devices.len()).filter(|&i| !matches!(devices[i].1, Dev::Available | Dev::Other)).collect();
        let step = if !available.is_empty() && (busy.is_empty() || rng.below(2) == 0) {
            let first = rng.below(available.len());
            let kit: Vec<usize> = (0..(1 + rng.below(2)).min(available.len()))
                .map(|k| available[(first + k) % available.len()])
                .collect();
            let ids: Vec<String> = kit.iter().map(|&i| devices[i].0.clone()).collect();
            let body = json!({
                "patient_id": ctx.patients[rng.below(ctx.patients.len())],
                "device_ids": ids,
                "due_on": "2099-01-01",
                "purpose": "訓練",
                "consent": {
                    "signer_name": "山田 花子", "relationship": "self",
                    "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [ctx.document_id],
                },
            });
            let token = if rng.below(2) == 0 { &ctx.n1 } else { &ctx.n2 };
            ctx.post("/api/v1/loans", token, Some(body)).await.map(|v| {
                for &i in &kit {
                    devices[i].1 = Dev::OnLoan;
                }
                out.acked.loans.push(AckLoan {
                    loan_id: text(&v, "loan_id"),
                    consent_id: text(&v, "consent_id"),
                    devices: ids,
                });
            })
        } else if busy.is_empty() {
            break;
        } else {
            let i = busy[rng.below(busy.len())];
            let device_id = devices[i].0.clone();
            match devices[i].1.clone() {
                Dev::OnLoan => {
                    let token = if rng.below(2) == 0 { &ctx.n1 } else { &ctx.n2 };
                    let body = json!({ "device_id": device_id, "returned_by_name": "山田 花子" });
                    ctx.post("/api/v1/returns", token, Some(body)).await.map(|v| {
                        devices[i].1 = Dev::AwaitingWipe;
                        out.acked.returns.push(AckReturn {
                            id: text(&v, "return_id"),
                            loan_id: text(&v, "loan_id"),
                            device_id,
                        });
                    })
                }
                Dev::AwaitingWipe => {
                    let body = json!({ "device_id": device_id, "method": "clear", "checklist": ctx.wipe_steps, "passed": true });
                    ctx.post("/api/v1/wipes", &ctx.n1, Some(body)).await.map(|v| {
                        let id = text(&v, "id");
                        devices[i].1 = Dev::Wiped(id.clone());
                        out.acked.wipes.push(id);
                    })
                }
                Dev::Wiped(wipe_id) => {
                    ctx.post(&format!("/api/v1/wipes/{wipe_id}/verify"), &ctx.n2, None).await.map(|_| {
                        devices[i].1 = Dev::Available;
                        out.acked.verified.push(wipe_id);
                    })
                }
                Dev::Available | Dev::Other => unreachable!("not busy"),
            }
        };
        match step {
            Ok(()) => {}
            Err(Stop::Unanswered) => {
                out.unanswered += 1;
                break;
            }
            Err(Stop::Unexpected(e)) => {
                out.unexpected.push(e);
                break;
            }
        }
    }
    out
}

/// `SELECT COUNT(*)`-like query on either backend.
async fn scalar(store: &Store, sql: &str, binds: &[&str]) -> i64 {
    if let Some(pool) = store.sqlite_pool() {
        let mut q = sqlx::query_scalar::<_, i64>(sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_one(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    } else {
        let mut q = sqlx::query_scalar::<_, i64>(sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_one(store.pg_pool().unwrap()).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// Rows that must not exist, whichever writes were cut off (each count must be 0).
const ORPHANS: &[(&str, &str)] = &[
    ("loans without devices", "SELECT COUNT(*) FROM loans l WHERE NOT EXISTS (SELECT 1 FROM loan_devices ld WHERE ld.loan_id = l.id)"),
    (
        "consents not tied to their loan",
        "SELECT COUNT(*) FROM consents c WHERE NOT EXISTS (SELECT 1 FROM loans l WHERE l.id = c.loan_id AND l.consent_id = c.id)",
    ),
    (
        "consents without the documents shown",
        "SELECT COUNT(*) FROM consents c WHERE NOT EXISTS (SELECT 1 FROM consent_documents cd WHERE cd.consent_id = c.id)",
    ),
    (
        "returns of a device still out on that loan",
        "SELECT COUNT(*) FROM returns r WHERE NOT EXISTS (SELECT 1 FROM loan_devices ld WHERE ld.loan_id = r.loan_id \
         AND ld.device_id = r.device_id AND ld.ended_at IS NOT NULL)",
    ),
    (
        "loans whose closed_at disagrees with their devices",
        "SELECT COUNT(*) FROM loans l WHERE (l.closed_at IS NULL) <> \
         EXISTS (SELECT 1 FROM loan_devices ld WHERE ld.loan_id = l.id AND ld.ended_at IS NULL)",
    ),
    (
        "loans without their check-out event",
        "SELECT COUNT(*) FROM loans l WHERE NOT EXISTS (SELECT 1 FROM audit_events e \
         WHERE e.action = 'loan.check_out' AND e.target_id = l.id)",
    ),
    (
        "check-out events without their loan",
        "SELECT COUNT(*) FROM audit_events e WHERE e.action = 'loan.check_out' \
         AND NOT EXISTS (SELECT 1 FROM loans l WHERE l.id = e.target_id)",
    ),
    (
        "returns minus return events",
        "SELECT (SELECT COUNT(*) FROM returns) - (SELECT COUNT(*) FROM audit_events WHERE action = 'loan.return')",
    ),
    (
        "wipes without their event, or the reverse",
        "SELECT (SELECT COUNT(*) FROM wipes w WHERE NOT EXISTS (SELECT 1 FROM audit_events e \
           WHERE e.action = 'wipe.record' AND e.target_id = w.id)) \
         + (SELECT COUNT(*) FROM audit_events e WHERE e.action = 'wipe.record' \
           AND NOT EXISTS (SELECT 1 FROM wipes w WHERE w.id = e.target_id))",
    ),
    (
        "verifications without their event, or the reverse",
        "SELECT COUNT(*) FROM wipes w WHERE (w.verified_by IS NOT NULL) <> \
         EXISTS (SELECT 1 FROM audit_events e WHERE e.action = 'wipe.verify' AND e.target_id = w.id)",
    ),
];

/// On PostgreSQL, waits until no transaction of the killed service is still running (a COMMIT
/// the database had already received completes), so the checks see what a restart would.
async fn wait_for_dead_transactions(db: &TestDb) {
    use sqlx::Connection as _;
    if db.backend != lending::Backend::Postgres {
        return;
    }
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let busy: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        if busy.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "transactions of the killed service linger: {busy:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.close().await.unwrap();
}

/// With the service dead: the file is sound, the rows are consistent, the chain verifies.
/// Returns the number of audit events.
async fn check_store(db: &TestDb, store: &Store) -> i64 {
    if let Some(pool) = store.sqlite_pool() {
        let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await.unwrap();
        assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
        let fk: Vec<sqlx::sqlite::SqliteRow> = sqlx::query("PRAGMA foreign_key_check").fetch_all(pool).await.unwrap();
        assert!(fk.is_empty(), "PRAGMA foreign_key_check: {} rows", fk.len());
    }
    let mut tx = store.read().await.unwrap();
    let v = loans::invariant_violations(&mut tx).await.unwrap();
    assert!(v.is_clean(), "{v:?}");
    // Ended explicitly: a dropped transaction's connection can outlive `Store::close`.
    tx.commit().await.unwrap();
    for (what, sql) in ORPHANS {
        assert_eq!(scalar(store, sql, &[]).await, 0, "{what}");
    }
    let events = match audit::verify(store).await.unwrap() {
        Ok(n) => n,
        Err(b) => panic!("audit chain broken at event {}: {}", b.seq(), b.describe()),
    };
    let o = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["audit", "verify"])
        .env("LENDING_DATA_DIR", &db.data_dir)
        // Where Config::for_tests finds the keys too (the drill checks receipts with them).
        .env("LENDING_KEY_DIR", db.data_dir.join("keys"))
        .env("LENDING_DATABASE_URL", &db.url)
        .env("LENDING_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "server audit verify: {}", String::from_utf8_lossy(&o.stdout));
    events
}

/// Every acknowledged write is stored, with its consent (valid receipt) and its audit event.
async fn check_acked(store: &Store, receipts: &lending::receipts::ReceiptKey, acked: &Acked) {
    let mut tx = store.read().await.unwrap();
    let has_event = |events: &[lending::audit::EventRow], action: &str, detail: &str| {
        events.iter().any(|e| e.action == action && e.details.contains(detail))
    };
    for l in &acked.loans {
        let loan = loans::get(&mut tx, &l.loan_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged loan {} lost", l.loan_id));
        assert_eq!(loan.consent_id, l.consent_id);
        let consent = loans::consent(&mut tx, &l.consent_id).await.unwrap().expect("its consent");
        assert_eq!(consent.loan_id, l.loan_id);
        let mut want = l.devices.clone();
        want.sort();
        assert_eq!(loans::device_ids(&mut tx, &l.loan_id).await.unwrap(), want, "the kit of loan {}", l.loan_id);
        let receipt = lending::service::loans::check_receipt(&mut tx, receipts, &l.consent_id).await.unwrap();
        assert!(receipt.valid, "the consent receipt of loan {} verifies", l.loan_id);
        let events = audit::for_target(&mut tx, "loan", &l.loan_id).await.unwrap();
        assert!(has_event(&events, "loan.check_out", &l.consent_id), "the check-out event of loan {}", l.loan_id);
    }
    for r in &acked.returns {
        let sql = "SELECT COUNT(*) FROM returns WHERE id = $1 AND loan_id = $2 AND device_id = $3";
        assert_eq!(scalar(store, sql, &[&r.id, &r.loan_id, &r.device_id]).await, 1, "acknowledged return {}", r.id);
        let events = audit::for_target(&mut tx, "device", &r.device_id).await.unwrap();
        assert!(has_event(&events, "loan.return", &r.loan_id), "the return event of {}", r.id);
    }
    for id in &acked.wipes {
        assert!(wipes::get(&mut tx, id).await.unwrap().is_some(), "acknowledged wipe {id}");
        let events = audit::for_target(&mut tx, "wipe", id).await.unwrap();
        assert!(has_event(&events, "wipe.record", ""), "the event of wipe {id}");
    }
    for id in &acked.verified {
        let w = wipes::get(&mut tx, id).await.unwrap().expect("verified wipe");
        assert!(w.verified_by.is_some(), "acknowledged verification of wipe {id}");
        let events = audit::for_target(&mut tx, "wipe", id).await.unwrap();
        assert!(has_event(&events, "wipe.verify", ""), "the verification event of wipe {id}");
    }
    tx.commit().await.unwrap();
}

/// The devices' stored states, as the next round's clients start from them.
async fn device_states(store: &Store, ids: &[String]) -> Vec<(String, Dev)> {
    let mut tx = store.read().await.unwrap();
    let mut out = Vec::new();
    for id in ids {
        let d = devices::get(&mut tx, id).await.unwrap().unwrap();
        let dev = match d.status {
            DeviceStatus::Available => Dev::Available,
            DeviceStatus::OnLoan => Dev::OnLoan,
            DeviceStatus::AwaitingWipe => Dev::AwaitingWipe,
            _ => Dev::Other,
        };
        out.push((id.clone(), dev));
    }
    tx.commit().await.unwrap();
    out
}

async fn token(store: &Store, login: &str) -> String {
    lending::testing::own_token(store, login).await
}

both_dbs!(
    async fn crash_drill_kill_9_during_check_outs_and_returns(backend) {
        let rounds = env_number("DRILL_ROUNDS", 20);
        let seed = env_number(
            "DRILL_SEED",
            u64::from_le_bytes(lending::ids::random_bytes::<8>()) % (1 << 48),
        );
        let mut rng = Rng(seed);
        let began = Instant::now();
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, WORKERS * DEVICES_PER_WORKER).await;
        let (n1, n2) = (token(&store, "n1").await, token(&store, "n2").await);
        let mut states = device_states(&store, &b.devices).await;
        store.close().await;
        println!("crash drill ({backend:?}): {rounds} rounds, {WORKERS} clients × {DEVICES_PER_WORKER} devices, DRILL_SEED={seed}");

        let mut all = Acked::default();
        let (mut unanswered, mut kill_ms_total) = (0, 0);
        for round in 1..=rounds {
            let round_began = Instant::now();
            let server = start(&db).await;
            let startup = round_began.elapsed();
            let ctx = Arc::new(Ctx {
                http: reqwest::Client::new(),
                base: server.base.clone(),
                n1: n1.clone(),
                n2: n2.clone(),
                patients: b.patients.clone(),
                document_id: b.document_id.clone(),
                wipe_steps: b.wipe_steps.clone(),
            });
            let kill_after = rng.between(KILL_AFTER_MS);
            let clients: Vec<_> = states
                .chunks(DEVICES_PER_WORKER)
                .map(|own| tokio::spawn(client(ctx.clone(), own.to_vec(), Rng(rng.next()))))
                .collect();
            tokio::time::sleep(Duration::from_millis(kill_after)).await;
            server.kill_9().await;
            let mut acked = Acked::default();
            let mut unexpected = Vec::new();
            let mut cut = 0;
            for c in clients {
                let o = tokio::time::timeout(Duration::from_mins(1), c).await.expect("clients stop after the kill").unwrap();
                cut += o.unanswered;
                unexpected.extend(o.unexpected);
                acked.absorb(o.acked);
            }
            assert!(unexpected.is_empty(), "round {round}: unexpected answers: {unexpected:?}");

            let checks_began = Instant::now();
            wait_for_dead_transactions(&db).await;
            let store = db.store(lending::testing::test_clock()).await;
            let receipts = Config::for_tests(&db.data_dir, &db.url).receipt_key().unwrap();
            let events = check_store(&db, &store).await;
            check_acked(&store, &receipts, &acked).await;
            states = device_states(&store, &b.devices).await;
            store.close().await;
            println!(
                "round {round}/{rounds}: start {:.0} ms, killed at {kill_after} ms with {cut} requests unanswered; \
                 {} acknowledged writes ({} check-outs, {} returns, {} wipes, {} verifications) all present; \
                 {events} audit events verify; checks {:.0} ms, round {:.2} s",
                startup.as_secs_f64() * 1e3,
                acked.len(),
                acked.loans.len(),
                acked.returns.len(),
                acked.wipes.len(),
                acked.verified.len(),
                checks_began.elapsed().as_secs_f64() * 1e3,
                round_began.elapsed().as_secs_f64(),
            );
            unanswered += cut;
            kill_ms_total += kill_after;
            all.absorb(acked);
        }

        // Once more at the end: nothing acknowledged in any round went missing later.
        let store = db.store(lending::testing::test_clock()).await;
        let receipts = Config::for_tests(&db.data_dir, &db.url).receipt_key().unwrap();
        check_acked(&store, &receipts, &all).await;
        store.close().await;
        println!(
            "crash drill ({backend:?}) passed: {rounds} kills (mean {} ms in), {} acknowledged writes \
             ({} check-outs, {} returns, {} wipes, {} verifications), {unanswered} unanswered, {:.1} s",
            kill_ms_total / rounds.max(1),
            all.len(),
            all.loans.len(),
            all.returns.len(),
            all.wipes.len(),
            all.verified.len(),
            began.elapsed().as_secs_f64(),
        );
        assert!(all.len() > 0, "the drill wrote something");
    }
);

both_dbs!(
    async fn double_booking_drill_simultaneous_check_outs_of_one_device(backend) {
        let n = usize::try_from(env_number("DRILL_CHECKOUTS", 500)).unwrap();
        let began = Instant::now();
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 1).await;
        let tokens = [token(&store, "n1").await, token(&store, "n2").await];
        store.close().await;
        let server = start(&db).await;

        // All requests built first, then released together; reqwest opens a connection for each.
        let http = reqwest::Client::builder().timeout(Duration::from_mins(2)).build().unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(n));
        let mut tasks = Vec::new();
        for i in 0..n {
            let (http, barrier) = (http.clone(), barrier.clone());
            let req = http
                .post(format!("{}/api/v1/loans", server.base))
                .bearer_auth(&tokens[i % 2])
                .json(&json!({
                    "patient_id": b.patients[i % b.patients.len()],
                    "device_ids": [b.devices[0]],
                    "due_on": "2099-01-01",
                    "consent": {
                        "signer_name": "山田 花子", "relationship": "self",
                        "signature_svg": lending::demo::DEMO_SIGNATURE, "document_ids": [b.document_id],
                    },
                }))
                .build()
                .unwrap();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let r = http.execute(req).await.expect("every request is answered");
                let status = r.status();
                (status, r.json::<Value>().await.expect("a JSON answer"))
            }));
        }
        let fired = Instant::now();
        let mut created = Vec::new();
        let mut reasons = std::collections::BTreeMap::<String, usize>::new();
        let mut other = Vec::new();
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                StatusCode::CREATED => created.push(body),
                StatusCode::CONFLICT if body["error"] == "conflict" => {
                    *reasons.entry(body["message_ja"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
                }
                _ => other.push(format!("{status} {body}")),
            }
        }
        let answered = fired.elapsed();
        server.stop().await;

        assert!(other.is_empty(), "only 201 and 409 answers, not: {other:?}");
        assert_eq!(created.len(), 1, "exactly one check-out succeeds");
        assert_eq!(reasons.values().sum::<usize>(), n - 1, "every other one is refused");
        let asset_tag = "T-0000";
        for reason in reasons.keys() {
            assert!(
                reason.contains(asset_tag) || reason.contains("ほかの操作で変わりました"),
                "a Japanese reason naming the device or the race: {reason}"
            );
        }

        let store = db.store(lending::testing::test_clock()).await;
        let mut tx = store.read().await.unwrap();
        assert_eq!(audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 1, "one check-out event");
        let open = loans::open_loan_of_device(&mut tx, &b.devices[0]).await.unwrap().expect("the device is out");
        assert_eq!(open.id, created[0]["loan_id"].as_str().unwrap(), "on the loan that was acknowledged");
        let v = loans::invariant_violations(&mut tx).await.unwrap();
        assert!(v.is_clean(), "{v:?}");
        tx.commit().await.unwrap();
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM loans", &[]).await, 1, "one loan");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM consents", &[]).await, 1, "one consent");
        assert!(audit::verify(&store).await.unwrap().is_ok(), "the audit chain verifies");
        store.close().await;
        println!(
            "double-booking drill ({backend:?}) passed: {n} simultaneous check-outs answered in {:.2} s: \
             1 × 201, {} × 409 {reasons:?}; {:.1} s in all",
            answered.as_secs_f64(),
            n - 1,
            began.elapsed().as_secs_f64(),
        );
    }
);

#[test]
fn the_drill_rng_is_seeded() {
    let (mut a, mut b) = (Rng(7), Rng(7));
    let xs: Vec<u64> = (0..5).map(|_| a.between(KILL_AFTER_MS)).collect();
    let ys: Vec<u64> = (0..5).map(|_| b.between(KILL_AFTER_MS)).collect();
    assert_eq!(xs, ys);
    assert!(xs.iter().all(|x| (50..=600).contains(x)));
}
