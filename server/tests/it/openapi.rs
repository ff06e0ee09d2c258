//! The staff OpenAPI document (SPEC §5) cannot go stale: every `/api/v1` route of the router
//! is in it with its method, it names no route the router lacks, every `$ref` resolves, and
//! the service serves exactly this file (to token holders, like every `/api/v1` route).

use std::collections::BTreeSet;

use lending::both_dbs;
use lending::testing::seed_basic;
use reqwest::StatusCode;
use serde_json::Value;

use crate::spawn_app_with_clock;

const DOC: &str = include_str!("../../openapi.json");

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                }
                refs(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_lists_every_api_route_and_nothing_else() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let routed: BTreeSet<(String, String)> = server::routes::routes()
        .list()
        .iter()
        .filter(|(_, p)| p.starts_with("/api/v1/"))
        .map(|(m, p)| (m.as_str().to_ascii_lowercase(), p.clone()))
        .collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (m.clone(), p.clone())))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routes missing from server/openapi.json: {missing:?}");
    assert!(stale.is_empty(), "server/openapi.json names routes the router lacks: {stale:?}");
    for (m, p) in &documented {
        let op = &doc["paths"][p][m];
        assert!(op["summary"].is_string(), "{m} {p}: summary");
        assert!(op["responses"]["401"].is_object(), "{m} {p}: documents the 401 error");
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.keys().any(|s| s.starts_with('2')), "{m} {p}: a success response");
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if m == "post" {
            assert!(responses.contains_key("403"), "{m} {p}: writes document the 403 for read-only roles");
            // SPEC §9: every state-changing request takes an idempotency key. Verifying the audit
            // chain writes only its own audit event, and a repeat should verify again.
            let keyed = params.iter().any(|x| x["$ref"] == "#/components/parameters/IdempotencyKey");
            assert_eq!(keyed, p != "/api/v1/audit/verify", "{m} {p}: the Idempotency-Key header");
            assert!(!keyed || responses.contains_key("422"), "{m} {p}: a malformed key is 422");
        }
        // One error format: a JSON body that is not JSON is 415, input that cannot be read 422.
        if op["requestBody"]["content"]["application/json"].is_object() {
            assert!(responses.contains_key("415") && responses.contains_key("422"), "{m} {p}: 415 and 422");
        }
        if params.iter().any(|x| x["in"] == "query") {
            assert!(responses.contains_key("422"), "{m} {p}: a query that cannot be read is 422");
        }
        for param in p.split('/').filter(|s| s.starts_with('{')) {
            let name = param.trim_matches(|c| c == '{' || c == '}');
            assert!(
                op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|x| x["name"] == name && x["in"] == "path")),
                "{m} {p}: path parameter {name}"
            );
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let path = r.strip_prefix("#/").unwrap();
        let target = path.split('/').fold(&doc, |v, k| &v[k]);
        assert!(target.is_object(), "{r} resolves");
    }
    let error = &doc["components"]["schemas"]["Error"]["properties"];
    for f in ["error", "message_ja", "message_en", "fields"] {
        assert!(error[f].is_object(), "the error body has {f}");
    }
}

both_dbs!(
    async fn the_service_serves_the_document_to_token_holders(backend) {
    let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
    seed_basic(&app.store, 0).await;
    let r = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unauthorized");
    let token = app.token("au1").await;
    let r = app.client.get(app.url("/api/v1/openapi.json")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let served: Value = r.json().await.unwrap();
    assert_eq!(served, serde_json::from_str::<Value>(DOC).unwrap());
    app.stop().await;
    }
);
