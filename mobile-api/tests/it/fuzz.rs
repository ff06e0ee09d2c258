//! Random and malformed tokens, JSON and form bodies against every public route: never a 5xx,
//! never a panic (a panic in a handler would surface as a dropped connection or a 500).

use lending::Backend;
use proptest::prelude::*;

use crate::spawn;

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{22}",
        ".{0,40}",
        Just(String::new()),
        Just("../../etc/passwd".to_owned()),
        Just("' OR 1=1 --".to_owned()),
        "[A-Za-z0-9_-]{0,300}",
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        Just("{}".to_owned()),
        Just(r#"{"category":"alarm","body":null}"#.to_owned()),
        Just(r#"{"category":["x"],"callback_phone":123}"#.to_owned()),
        "\\{\"category\":\"[a-z_]{0,12}\",\"body\":\".{0,50}\",\"callback_phone\":\"[0-9+() -]{0,25}\"\\}",
        Just("category=alarm&body=%FF%FE&callback_phone=abc".to_owned()),
        "[a-z_]{1,10}=[^&]{0,30}(&[a-z_]{1,10}=[^&]{0,30}){0,4}",
    ]
}

#[test]
fn random_input_never_gets_a_server_error() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = rt.block_on(spawn(Backend::Sqlite));
    let real = rt.block_on(app.token(0));
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(t in token(), b in body(), use_real in prop::bool::weighted(0.3), ct in 0..3usize)| {
        let t = if use_real { real.clone() } else { t };
        let content_type = ["application/json", "application/x-www-form-urlencoded", "text/plain"][ct];
        let statuses = rt.block_on(async {
            let mut out = Vec::new();
            for (method, path) in [
                ("GET", format!("/d/{}", encode(&t))),
                ("GET", format!("/api/v1/devices/{}?lang={}", encode(&t), encode(&b))),
                ("POST", format!("/d/{}/report", encode(&t))),
                ("POST", format!("/api/v1/devices/{}/reports", encode(&t))),
                ("GET", "/healthz".to_owned()),
                ("GET", "/api/v1/openapi.json".to_owned()),
            ] {
                let req = if method == "GET" { app.client.get(app.url(&path)) } else { app.client.post(app.url(&path)).header("content-type", content_type).body(b.clone()) };
                let r = req.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
                out.push((path, r.status()));
            }
            Ok::<_, String>(out)
        });
        let statuses = statuses.map_err(TestCaseError::fail)?;
        for (path, status) in statuses {
            prop_assert!(!status.is_server_error(), "{} -> {}", path, status);
        }
    });
    rt.block_on(app.stop());
}
