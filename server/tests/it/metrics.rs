//! `/metrics` of both services under a small load, read with a strict Prometheus text-format
//! parser: requests by route template and status, rate-limit refusals, the outbox backlog when
//! mail cannot be delivered, the last backup's age; and no label carries patient data or a token.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use lending::testing::seed_basic;
use lending::{both_dbs, Clock};

use crate::spawn_app_with_clock;

#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Parses the Prometheus text format (0.0.4) strictly: every line is a HELP, a TYPE before its
/// family's samples, or a sample of the family last typed; label values are quoted with only
/// `\\`, `\"` and `\n` escapes; no series twice; histogram buckets never decrease and end in
/// `+Inf` equal to `_count`.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples: Vec<Sample> = Vec::new();
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut family: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, arg) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(is_name(name, true), "metric name {name:?}");
            match kind {
                "HELP" => assert!(!arg.is_empty(), "{line}"),
                "TYPE" => {
                    assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg), "{line}");
                    assert!(types.insert(name.to_owned(), arg.to_owned()).is_none(), "TYPE twice: {line}");
                    family = Some((name.to_owned(), arg.to_owned()));
                }
                _ => panic!("unknown comment {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "blank line");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("value {v:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (name, labels_of(body, line))
            }
        };
        assert!(is_name(name, true), "metric name {name:?}");
        let (fam, kind) = family.as_ref().unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
        let ok = name == fam
            || (kind == "histogram"
                && [format!("{fam}_bucket"), format!("{fam}_sum"), format!("{fam}_count")].iter().any(|n| n == name));
        assert!(ok, "{name} is not of the family {fam} ({kind})");
        assert!(!samples.iter().any(|s| s.name == name && s.labels == labels), "series twice: {line}");
        samples.push(Sample { name: name.to_owned(), labels, value });
    }
    for (fam, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.name == format!("{fam}_bucket")) {
            let mut key = s.labels.clone();
            let le = key.remove("le").expect("a bucket has le");
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
            series.entry(key).or_default().push((le, s.value));
        }
        for (key, buckets) in series {
            assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{fam} {key:?}: {buckets:?}");
            let last = buckets.last().unwrap();
            assert!(last.0.is_infinite());
            let count = samples.iter().find(|s| s.name == format!("{fam}_count") && s.labels == key).unwrap();
            assert!((count.value - last.1).abs() < f64::EPSILON, "{fam} {key:?}: +Inf bucket is the count");
        }
    }
    samples
}

fn labels_of(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("label: {line}"));
        assert!(is_name(name, false), "label name {name:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?}: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        };
        assert!(out.insert(name.to_owned(), value).is_none(), "label twice: {line}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

async fn scrape(client: &reqwest::Client, base: &str) -> (String, Vec<Sample>) {
    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let samples = parse(&text);
    (text, samples)
}

/// Serves `router` on 127.0.0.1:0 until the test ends; its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

both_dbs!(
    async fn both_services_report_metrics_without_patient_data(backend) {
        let clock = Clock::manual(Utc.with_ymd_and_hms(2026, 11, 20, 1, 0, 0).unwrap());
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 2).await;
        let staff_metrics = serve(server::metrics::router(app.state.clone())).await;
        let mut tx = app.store.read().await.unwrap();
        let qr = lending::store::devices::get(&mut tx, &b.devices[0]).await.unwrap().unwrap().qr_token;
        let patient = lending::store::patients::get(&mut tx, &b.patients[0]).await.unwrap().unwrap();
        drop(tx);
        let token = app.token("a1").await;
        let c = reqwest::Client::new();

        // The public service on the same database, with its own metrics listener.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public = format!("http://{}", listener.local_addr().unwrap());
        let cfg = lending::Config::for_tests(&app.db.data_dir, &app.db.url);
        let state = mobile_api::AppState::new(app.store.clone(), cfg, std::time::Duration::ZERO);
        let public_metrics = serve(mobile_api::metrics_router(state.clone())).await;
        tokio::spawn(mobile_api::run(listener, state, std::future::pending()));

        let (_, before) = scrape(&c, &staff_metrics).await;
        assert_eq!(value(&before, "lending_mail_outbox_queued", &[]), Some(0.0));
        assert_eq!(value(&before, "lending_database_up", &[]), Some(1.0));
        assert_eq!(value(&before, "lending_backup_age_seconds", &[]), None, "no backup yet");

        // A small load: staff reads patients and labels; a family scans the label and reports a
        // problem (naming the patient), someone guesses tokens until the rate limit refuses.
        for _ in 0..3 {
            let r = c.get(app.url("/api/v1/patients")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
        let r = c.get(app.url(&format!("/api/v1/devices/{}/label.svg", b.devices[0]))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(c.get(app.url("/api/v1/patients")).send().await.unwrap().status(), 401);
        assert_eq!(c.get(app.url(&format!("/no/such/{}", patient.number))).send().await.unwrap().status(), 404);
        for _ in 0..4 {
            assert_eq!(c.get(format!("{public}/d/{qr}")).send().await.unwrap().status(), 200);
        }
        let r = c
            .post(format!("{public}/api/v1/devices/{qr}/reports"))
            .json(&serde_json::json!({ "category": "damaged", "body": format!("{} が落としました", patient.name), "callback_phone": "090-1111-2222" }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let mut refused = 0;
        for n in 0..(mobile_api::limits::UNKNOWN_PER_MINUTE + 3) {
            if c.get(format!("{public}/d/guess{n:0>20}")).send().await.unwrap().status() == 429 {
                refused += 1;
            }
        }
        assert!(refused >= 3);

        // Mail cannot be delivered: SMTP on a loopback port nobody listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let mailer = lending::mail::Mailer::smtp(&format!("smtp://127.0.0.1:{closed}")).unwrap();
        server::worker::tick(&app.state, &mailer).await.unwrap();
        clock.advance(chrono::Duration::minutes(10));
        let dir = tempfile::tempdir().unwrap();
        lending::backup::backup(&app.store, &app.db.url, &dir.path().join("b.bak"), None, &lending::testing::receipt_key()).await.unwrap();
        clock.advance(chrono::Duration::hours(1));

        let (staff_text, staff) = scrape(&c, &staff_metrics).await;
        let (public_text, public_samples) = scrape(&c, &public_metrics).await;
        let requests = "lending_server_http_requests_total";
        assert_eq!(value(&staff, requests, &[("route", "/api/v1/patients"), ("method", "GET"), ("status", "200")]), Some(3.0));
        assert_eq!(value(&staff, requests, &[("route", "/api/v1/patients"), ("status", "401")]), Some(1.0));
        assert_eq!(value(&staff, requests, &[("route", "/api/v1/devices/{id}/label.svg"), ("status", "200")]), Some(1.0));
        assert_eq!(value(&staff, requests, &[("route", "unmatched"), ("status", "404")]), Some(1.0));
        assert_eq!(
            value(&staff, "lending_server_http_request_duration_seconds_count", &[("route", "/api/v1/patients"), ("method", "GET")]),
            Some(4.0)
        );
        let queued = value(&staff, "lending_mail_outbox_queued", &[]).unwrap();
        assert!(queued >= 1.0, "the alert mail waits in the outbox");
        // Every waiting mail failed once, but the checkpoint mail the backup queued after the round.
        assert_eq!(value(&staff, "lending_mail_outbox_failed", &[]), Some(queued - 1.0));
        assert!(value(&staff, "lending_mail_outbox_oldest_age_seconds", &[]).unwrap() >= 4200.0);
        assert_eq!(value(&staff, "lending_problem_reports_unanswered", &[]), Some(1.0));
        let mut tx = app.store.read().await.unwrap();
        let (head, _) = lending::store::audit::head(&mut tx).await.unwrap();
        drop(tx);
        assert_eq!(value(&staff, "lending_audit_head_seq", &[]), Some(f64::from(i32::try_from(head).unwrap())));
        assert_eq!(value(&staff, "lending_backup_age_seconds", &[]), Some(3600.0));
        assert!(value(&staff, "lending_db_pool_max_connections", &[]).unwrap() >= 1.0);
        assert!(value(&staff, "lending_db_pool_connections", &[("state", "idle")]).is_some());
        // SQLite only: write transactions and the durable commits they took (never more commits).
        let commits = value(&staff, "lending_sqlite_commits_total", &[]);
        let writes = value(&staff, "lending_sqlite_write_transactions_total", &[]);
        match backend {
            lending::store::Backend::Sqlite => {
                let (commits, writes) = (commits.unwrap(), writes.unwrap());
                assert!(commits >= 1.0 && commits <= writes, "{commits} commits for {writes} writes");
            }
            lending::store::Backend::Postgres => assert_eq!((commits, writes), (None, None)),
        }

        let public_requests = "lending_public_http_requests_total";
        assert_eq!(value(&public_samples, public_requests, &[("route", "/d/{token}"), ("status", "200")]), Some(4.0));
        assert_eq!(value(&public_samples, public_requests, &[("route", "/d/{token}"), ("status", "429")]), Some(f64::from(refused)));
        assert_eq!(value(&public_samples, public_requests, &[("route", "/api/v1/devices/{token}/reports"), ("method", "POST")]), Some(1.0));
        assert_eq!(value(&public_samples, "lending_public_rate_limited_total", &[("limit", "unknown_token")]), Some(f64::from(refused)));

        // Nothing identifying anywhere: not in labels, not in the text at all.
        let secrets = [patient.name.as_str(), patient.number.as_str(), "山田", qr.as_str(), token.as_str(), b.devices[0].as_str(), "090-1111-2222", "guess"];
        for (text, samples) in [(&staff_text, &staff), (&public_text, &public_samples)] {
            for s in samples {
                for v in s.labels.values() {
                    assert!(!secrets.iter().any(|x| v.contains(x)), "label {v:?} of {}", s.name);
                }
            }
            for x in secrets {
                assert!(!text.contains(x), "{x:?} appears in /metrics");
            }
        }
        app.stop().await;
    }
);
