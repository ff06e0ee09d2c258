//! The public API's one error format: every refusal under `/api/v1` (an undecodable or NUL
//! token, an unknown route, a method the route does not take, a query or body that does not
//! parse, a body too large or not JSON) is `{error, message_ja, message_en, fields}` in JSON.

use lending::both_dbs;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::spawn;

async fn error_body(r: reqwest::Response, status: StatusCode, code: &str, what: &str) -> Value {
    assert_eq!(r.status(), status, "{what}");
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{what}: content type {content_type:?}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(!body["message_ja"].as_str().unwrap().is_empty(), "{what}: {body}");
    assert!(!body["message_en"].as_str().unwrap().is_empty(), "{what}: {body}");
    assert!(body["fields"].is_array(), "{what}: {body}");
    body
}

both_dbs!(
    async fn every_api_refusal_is_the_json_error_body(backend) {
        let app = spawn(backend).await;
        let token = app.token(0).await;
        let device = format!("/api/v1/devices/{token}");
        let reports = format!("{device}/reports");
        let send = |method: Method, path: &str| app.client.request(method, app.url(path)).send();

        for path in ["/api/v1/devices/%FF", "/api/v1/devices/%00", "/api/v1/devices/%00/reports", "/api/v1/no-such-route"] {
            error_body(send(Method::GET, path).await.unwrap(), StatusCode::NOT_FOUND, "not_found", path).await;
        }
        for (method, path, allow) in [(Method::POST, device.as_str(), "GET"), (Method::GET, reports.as_str(), "POST")] {
            let what = format!("{method} {path}");
            let r = send(method, path).await.unwrap();
            assert!(r.headers()["allow"].to_str().unwrap().contains(allow), "{what}");
            error_body(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &what).await;
        }
        for path in [format!("{device}?lang=ja&lang=en"), format!("{device}?lang=%00")] {
            let body = error_body(send(Method::GET, &path).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "validation", &path).await;
            assert_eq!(body["fields"][0]["field"], "query", "{path}");
        }

        let post = |content_type: &str, body: String| {
            app.client.post(app.url(&reports)).header("content-type", content_type.to_owned()).body(body).send()
        };
        let r = post("text/plain", r#"{"category":"alarm"}"#.into()).await.unwrap();
        error_body(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "text/plain").await;
        let r = post("application/json", r#"{"category":5}"#.into()).await.unwrap();
        let body = error_body(r, StatusCode::UNPROCESSABLE_ENTITY, "validation", "a number for a text").await;
        assert_eq!(body["fields"][0]["field"], "body");
        // Past the service's body limit (the outer layer's refusal, before any route).
        let huge = json!({ "category": "other", "body": "x".repeat(40 * 1024) }).to_string();
        let r = reqwest::Client::new()
            .post(app.url(&reports))
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap();
        error_body(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "40 kB").await;

        // The pages keep answering as pages.
        let r = send(Method::GET, "/d/no-such-token").await.unwrap();
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        app.stop().await;
    }
);
