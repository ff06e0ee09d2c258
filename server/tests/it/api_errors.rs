//! The staff API's one error format and its strict input: every refusal (query, path, JSON
//! body, 404, 405, 413, 415) is `{error, message_ja, message_en, fields}` in JSON, and input that
//! is wrong whatever the state (an unknown or empty filter, a boolean that is not `true` or
//! `false`, a month not written `YYYY-MM`, a phone number that is not one) is 422 with its field.

use lending::both_dbs;
use lending::testing::seed_basic;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::spawn_app;

/// The JSON error body of `r`, checked to be one: status, content type, and all four members.
pub async fn error_body(r: reqwest::Response, status: StatusCode, code: &str, what: &str) -> Value {
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
    async fn every_refusal_is_the_json_error_body(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 1).await;
        let n1 = app.token("n1").await;
        let device = format!("/api/v1/devices/{}", b.devices[0]);
        let send = |method: Method, path: &str| app.client.request(method, app.url(path)).bearer_auth(&n1);

        // A path that cannot be decoded names nothing: 404, not plain text.
        let r = send(Method::GET, "/api/v1/devices/%FF").send().await.unwrap();
        error_body(r, StatusCode::NOT_FOUND, "not_found", "%FF in a path").await;
        let r = send(Method::GET, "/api/v1/no-such-route").send().await.unwrap();
        error_body(r, StatusCode::NOT_FOUND, "not_found", "unknown route").await;

        // A query string that does not parse: 422 naming the query.
        for path in ["/api/v1/patients?page=abc", "/api/v1/patients?page=1&page=2", "/api/v1/consents/verify"] {
            let r = send(Method::GET, path).send().await.unwrap();
            let body = error_body(r, StatusCode::UNPROCESSABLE_ENTITY, "validation", path).await;
            assert_eq!(body["fields"][0]["field"], "query", "{path}");
        }

        // A method the route does not take: 405 with `Allow`, and only after the token.
        for (method, path, allow) in [
            (Method::PUT, "/api/v1/loans", "POST"),
            (Method::DELETE, device.as_str(), "GET"),
            (Method::PUT, "/api/v1/institution", "GET"),
        ] {
            let what = format!("{method} {path}");
            let r = send(method.clone(), path).send().await.unwrap();
            assert!(r.headers()["allow"].to_str().unwrap().contains(allow), "{what}");
            error_body(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &what).await;
            let r = app.client.request(method, app.url(path)).send().await.unwrap();
            error_body(r, StatusCode::UNAUTHORIZED, "unauthorized", &format!("{what} without a token")).await;
        }

        // A JSON route sent something else: 415.
        let r = send(Method::POST, "/api/v1/patients")
            .header("content-type", "text/plain")
            .body(r#"{"number":"N-1","name":"a"}"#)
            .send()
            .await
            .unwrap();
        error_body(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "text/plain").await;

        // Too large: past the JSON limit (refused while reading; this body fits the socket's
        // buffers, so it is all sent before the answer comes).
        let body = json!({ "number": "N-1", "name": "x".repeat(300 * 1024) }).to_string();
        let r = reqwest::Client::new()
            .post(app.url("/api/v1/patients"))
            .bearer_auth(&n1)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        error_body(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "300 kB of JSON").await;
        // Past the service's outer limit, refused before any route from the declared length
        // alone (the body is never sent: the answer comes first).
        for path in ["/api/v1/patients", "/api/v1/devices/import"] {
            let (status, head, body) = declare_only(&app.base, path, &n1, 5 * 1024 * 1024).await;
            assert_eq!(status, 413, "{path}: {head}");
            assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{path}: {head}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "payload_too_large", "{path}");
            assert!(body["message_ja"].is_string() && body["message_en"].is_string() && body["fields"].is_array());
        }

        // JSON that does not fit the request: 422 naming the body.
        for body in [r#"{"number":5,"name":"a"}"#, "[]", "{not json"] {
            let r = send(Method::POST, "/api/v1/patients")
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let got = error_body(r, StatusCode::UNPROCESSABLE_ENTITY, "validation", body).await;
            assert_eq!(got["fields"][0]["field"], "body", "{body}");
        }
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::patients::by_number(&mut tx, "N-1").await.unwrap().is_none(), "nothing was written");
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn invalid_input_is_refused_not_guessed(backend) {
        let app = spawn_app(backend).await;
        seed_basic(&app.store, 1).await;
        let (n1, a1) = (app.token("n1").await, app.token("a1").await);
        let get = |path: &str, token: &str| app.client.get(app.url(path)).bearer_auth(token.to_owned()).send();

        for (path, field) in [
            ("/api/v1/reports/outstanding?desc=foo", "desc"),
            ("/api/v1/reports/outstanding?desc=1", "desc"),
            ("/api/v1/reports/outstanding.csv?desc=on", "desc"),
            ("/api/v1/reports/outstanding?view=", "view"),
            ("/api/v1/reports/outstanding?view=everything", "view"),
            ("/api/v1/reports/outstanding?sort=", "sort"),
            ("/api/v1/reports/outstanding?nurse=", "nurse"),
            ("/api/v1/reports/outstanding.csv?site=", "site"),
            ("/api/v1/reports/outstanding?page=0", "page"),
            ("/api/v1/devices?status=", "status"),
            ("/api/v1/devices?status=flying", "status"),
        ] {
            let body = error_body(get(path, &n1).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "validation", path).await;
            assert_eq!(body["fields"][0]["field"], field, "{path}");
        }
        // Every wrong filter at once, each with its field.
        let r = get("/api/v1/reports/outstanding?view=x&desc=x", &n1).await.unwrap();
        let body = error_body(r, StatusCode::UNPROCESSABLE_ENTITY, "validation", "two wrong filters").await;
        assert_eq!(body["fields"].as_array().unwrap().len(), 2);
        for path in [
            "/api/v1/reports/outstanding?desc=true",
            "/api/v1/reports/outstanding?desc=false&view=lost&sort=lent_at",
            "/api/v1/devices?status=available",
        ] {
            assert_eq!(get(path, &n1).await.unwrap().status(), StatusCode::OK, "{path}");
        }

        for month in ["2026-1", "2026-011", "26-11", "2026-13", "2026/11", "", " 2026-11"] {
            let path = format!("/api/v1/reports/monthly?month={month}");
            let body = error_body(get(&path, &a1).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "validation", &path).await;
            assert_eq!(body["fields"][0]["field"], "month", "{path}");
        }
        assert_eq!(get("/api/v1/reports/monthly?month=2026-01", &a1).await.unwrap().status(), StatusCode::OK);

        // The clinic's phone numbers: digits and hyphens, as typed (full width folds to ASCII).
        let institution = |day: &str, night: &str| {
            json!({
                "name": "テスト在宅クリニック", "name_en": "", "day_phone": day, "day_hours": "", "day_hours_en": "",
                "night_phone": night, "night_hours": "", "night_hours_en": "", "email": "", "address": "",
                "public_base_url": "",
            })
        };
        let save = |body: Value| app.client.post(app.url("/api/v1/institution")).bearer_auth(&a1).json(&body).send();
        for (day, night, field) in [
            ("いつでも", "03-0000-2222", "day_phone"),
            ("03-0000-1111", "", "night_phone"),
            ("03-0000-1111", "03 0000 2222", "night_phone"),
            ("03--0000-1111", "03-0000-2222", "day_phone"),
            ("3-0000-1111", "03-0000-2222", "day_phone"),
            ("03-0000-111", "03-0000-2222", "day_phone"),
            ("03-0000-2222-", "03-0000-2222", "day_phone"),
        ] {
            let what = format!("{day:?} / {night:?}");
            let body = error_body(save(institution(day, night)).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "validation", &what).await;
            assert_eq!(body["fields"][0]["field"], field, "{what}");
        }
        let r = save(institution("０３－１２３４－５６７８", " 090-1234-5678 ")).await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let saved: Value = get("/api/v1/institution", &n1).await.unwrap().json().await.unwrap();
        assert_eq!((saved["day_phone"].as_str(), saved["night_phone"].as_str()), (Some("03-1234-5678"), Some("090-1234-5678")));

        // The dashboard page's form sends its "any" choices empty: still accepted there.
        lending::testing::enroll(&app.store, "a1", &app.keys).await;
        let (cookie, _) = app.session("a1", 0).await;
        let r = app
            .client
            .get(app.url("/dashboard?view=overdue&nurse=&site=&sort=due&desc=true"))
            .header("cookie", format!("lending_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        app.stop().await;
    }
);

/// A POST that declares `length` bytes of JSON and sends none of them: the status, head and body
/// of the answer (read until the server closes or the body's declared length arrives).
async fn declare_only(base: &str, path: &str, token: &str, length: usize) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let declared = head.lines().find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
            });
            if n == 0 || declared.is_some_and(|d| body.len() >= d) {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, head.to_owned(), body.to_owned());
            }
        }
        assert!(n > 0, "the connection closed before an answer: {got:?}");
    }
}
