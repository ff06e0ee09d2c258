//! Real-browser tests: Debian's headless Chromium driven through chromedriver (WebDriver).
//! A missing browser fails the test with the command that installs it; it never skips.

// Test support: a failed setup should stop the test loudly.
#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver process, stopped when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
    _profile: tempfile::TempDir,
    pub profile_dir: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver on a free loopback port and waits until it answers.
pub async fn start_driver() -> Driver {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: browser tests need Debian's chromium and chromium-driver \
             (apt-get install -y chromium chromium-driver; .ci/run installs them)"
        );
    }
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
    // The browser is the nurse's phone, with a clock of its own: when CI shifts the wall clock
    // of the tests (libfaketime), Chromium runs unshifted (it does not start under the shim).
    let child = Command::new("/usr/bin/chromedriver")
        .env_remove("LD_PRELOAD")
        .env_remove("FAKETIME")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let profile = tempfile::tempdir().expect("profile dir");
    let profile_dir = profile.path().display().to_string();
    let driver = Driver { child, url, _profile: profile, profile_dir };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on port {port}");
}

/// Chrome options for a headless run with no outside network. Narrow sizes (phones) use
/// Chrome's device emulation, since a headless window cannot be narrower than about 500 px.
pub fn chrome_capabilities(profile_dir: &str, width: u32, height: u32) -> serde_json::Map<String, serde_json::Value> {
    let mut caps = serde_json::Map::new();
    let mut options = serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--disable-quic", "--no-first-run", "--disable-component-update",
                "--disable-sync", format!("--window-size={width},{height}"), format!("--user-data-dir={profile_dir}"),
                "--lang=ja-JP"
            ]
    });
    if width < 500 {
        options["mobileEmulation"] = serde_json::json!({ "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2, "touch": true } });
    }
    caps.insert("goog:chromeOptions".into(), options);
    caps
}

/// axe-core's source, from `LENDING_AXE_JS`, else `$CARGO_TARGET_DIR/axe/axe.min.js`, else the
/// workspace's `target/axe/axe.min.js` (`scripts/fetch-axe.sh` puts it there; `.ci/run` runs it).
pub fn axe_source() -> String {
    let path = std::env::var("LENDING_AXE_JS").map_or_else(
        |_| {
            let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
                |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target"),
                std::path::PathBuf::from,
            );
            target.join("axe").join("axe.min.js")
        },
        std::path::PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; the accessibility checks need axe-core: run scripts/fetch-axe.sh", path.display())
    })
}

/// For WebDriver's asynchronous script: runs axe-core (already injected) with its default rules
/// (WCAG 2 A and AA, best practices) on the page and calls back with one line per violation:
/// `rule (impact): selectors`.
pub const AXE_RUN: &str = "const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] }).then(
    r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' @ '
        + v.nodes.map(n => n.target.join(' ')).join(', '))),
    e => done(['axe failed: ' + e]));";
