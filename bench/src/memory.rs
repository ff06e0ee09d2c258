//! Resident memory of the two real service binaries (release build, demo clinic, SQLite or
//! PostgreSQL), idle and after a load, against a bare axum process measured the same way
//! (SPEC §7: idle < 40 MB per service).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{drop_scratch, load, scratch};

/// Kibibytes of a /proc/<pid>/status field (VmRSS: now, VmHWM: peak).
fn kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{field} missing for {pid}"))
}

fn mib(k: u64) -> f64 {
    f64::from(u32::try_from(k).unwrap_or(u32::MAX)) / 1024.0
}

/// A binary next to this one (`cargo build --release -p server -p mobile-api -p bench`).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.parent().map(|d| d.join(name)).ok_or_else(|| anyhow::anyhow!("no folder"))?;
    anyhow::ensure!(path.exists(), "{} is missing: build it with `cargo build --release -p {name}`", path.display());
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(bin: &Path, data: &Path, db: &str, staff: u16, public: u16) -> Command {
    let mut c = Command::new(bin);
    c.env("LENDING_DATA_DIR", data)
        .env("LENDING_DATABASE_URL", db)
        .env("LENDING_MOBILE_DATABASE_URL", db)
        .env("LENDING_SERVER_LISTEN", format!("127.0.0.1:{staff}"))
        .env("LENDING_MOBILE_LISTEN", format!("127.0.0.1:{public}"))
        .env("LENDING_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if reqwest::get(url).await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{url} did not come up")
}

/// The baseline process: this binary serving one fixed page with bare axum.
pub async fn bare(port: u16) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { axum::response::Html("<!doctype html><p>hello</p>") }))
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    axum::serve(tokio::net::TcpListener::bind(("127.0.0.1", port)).await?, app).await?;
    Ok(())
}

pub async fn run(requests: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let (server, mobile) = (sibling("server")?, sibling("mobile-api")?);
    let s = scratch(postgres).await?;
    let data = s.dir.path().join("data");
    let (staff, public, bare_port) = (free_port()?, free_port()?, free_port()?);
    for args in [&["migrate"][..], &["demo"]] {
        let ok = command(&server, &data, &s.url, staff, public).args(args).status()?.success();
        anyhow::ensure!(ok, "server {args:?} failed");
    }
    let out = command(&server, &data, &s.url, staff, public)
        .args(["token", "create", "--login", "mori.admin"])
        .stdout(Stdio::piped())
        .output()?;
    let token = String::from_utf8(out.stdout)?.lines().last().unwrap_or_default().trim().to_owned();

    let baseline = Service {
        child: Command::new(std::env::current_exe()?)
            .args(["bare-server", "--port", &bare_port.to_string()])
            .stdout(Stdio::null())
            .spawn()?,
    };
    let staff_service = Service { child: command(&server, &data, &s.url, staff, public).arg("serve").spawn()? };
    let public_service = Service { child: command(&mobile, &data, &s.url, staff, public).spawn()? };
    wait_healthy(&format!("http://127.0.0.1:{bare_port}/healthz")).await?;
    wait_healthy(&format!("http://127.0.0.1:{staff}/healthz")).await?;
    wait_healthy(&format!("http://127.0.0.1:{public}/healthz")).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = [&baseline, &staff_service, &public_service].map(|p| kib(p.child.id(), "VmRSS:"));

    // Load: the public help page and the bare page as in the throughput benchmark; the staff
    // service's device list, dashboard report and CSV export with an API token.
    let help_token: String = {
        let store = lending::Store::connect(&s.url, lending::Clock::system(), lending::store::PoolSize(1)).await?;
        let mut tx = store.read().await?;
        let on_loan = lending::store::devices::list(&mut tx, Some(lending::DeviceStatus::OnLoan)).await?;
        drop(tx);
        store.close().await;
        on_loan.first().map(|d| d.qr_token.clone()).ok_or_else(|| anyhow::anyhow!("the demo has devices on loan"))?
    };
    load(&format!("http://127.0.0.1:{bare_port}/"), requests, 16).await?;
    load(&format!("http://127.0.0.1:{public}/d/{help_token}"), requests, 16).await?;
    let client = reqwest::Client::new();
    for n in 0..requests / 20 {
        let path = ["/api/v1/devices", "/api/v1/reports/outstanding", "/api/v1/reports/outstanding.csv"][n % 3];
        let r = client.get(format!("http://127.0.0.1:{staff}{path}")).bearer_auth(&token).send().await?;
        anyhow::ensure!(r.status().is_success(), "{path}: {}", r.status());
        r.bytes().await?;
    }
    let loaded = [&baseline, &staff_service, &public_service].map(|p| kib(p.child.id(), "VmRSS:"));
    let peak = [&baseline, &staff_service, &public_service].map(|p| kib(p.child.id(), "VmHWM:"));
    println!("| process | idle RSS | after load | peak | idle / baseline idle | target idle < 40 MB |");
    println!("|---|---|---|---|---|---|");
    let base_idle = mib(*idle[0].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?);
    for (k, name) in ["baseline: bare axum", "server (staff)", "mobile-api (public)"].iter().enumerate() {
        let (i, l, p) = (
            mib(*idle[k].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?),
            mib(*loaded[k].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?),
            mib(*peak[k].as_ref().map_err(|e| anyhow::anyhow!("{e}"))?),
        );
        println!(
            "| {name} | {i:.1} MiB | {l:.1} MiB | {p:.1} MiB | {:.1}× | {} |",
            i / base_idle.max(0.1),
            if k == 0 {
                "—"
            } else if i < 40.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    drop((baseline, staff_service, public_service));
    drop_scratch(s).await
}
