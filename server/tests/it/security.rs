//! Issue #16, security hardening: one test per weakness, named after its item, on both databases.

use chrono::{DateTime, Utc};
use lending::service::users::{create_token, TokenFor};
use lending::service::{loans, wipes};
use lending::testing::{enroll, seed_basic, Basic};
use lending::{both_dbs, Actor, Clock, Error, Store};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{spawn_app_with_clock, TestApp};

/// A fixed "now" (tests never read the real clock).
fn clock() -> Clock {
    Clock::manual("2026-11-20T01:00:00Z".parse::<DateTime<Utc>>().unwrap())
}

/// Lends device 0 to patient 0, takes it back and records its wipe as nurse n1; the wipe's id.
async fn wipe_recorded(store: &Store, b: &Basic) -> String {
    let mut tx = store.begin().await.unwrap();
    loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0]), &lending::testing::receipt_key()).await.unwrap();
    let back = loans::ReturnRequest { device_id: b.devices[0].clone(), ..Default::default() };
    loans::return_device(&mut tx, &b.nurse, back).await.unwrap();
    let req = wipes::WipeRequest {
        device_id: b.devices[0].clone(),
        method: "clear".into(),
        tool: "factory reset".into(),
        tool_version: "1".into(),
        checklist: b.wipe_steps.clone(),
        evidence_ref: String::new(),
        passed: true,
        destination: String::new(),
        notes: String::new(),
    };
    let wipe = wipes::record(&mut tx, &b.nurse, req).await.unwrap();
    tx.commit().await.unwrap();
    wipe.id
}

/// The token shown once on the person's own tokens page after creating one.
async fn token_from_page(app: &TestApp, browser: &reqwest::Client, name: &str) -> String {
    let csrf = app.csrf(browser, "/account/tokens").await;
    let r =
        browser.post(app.url("/account/tokens")).form(&[("csrf", csrf.as_str()), ("name", name)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let page = r.text().await.unwrap();
    page.split("id=\"shown-once\">").nth(1).unwrap().split('<').next().unwrap().to_owned()
}

/// The details of the newest audit event with this action.
async fn last_details(store: &Store, action: &str) -> Value {
    let mut tx = store.read().await.unwrap();
    let rows = lending::store::audit::recent(&mut tx, 500).await.unwrap();
    let row = rows.iter().find(|r| r.action == action).unwrap_or_else(|| panic!("no {action} event"));
    serde_json::from_str(&row.details).unwrap()
}

both_dbs!(
    async fn w1_admin_cannot_mint_token_for_another_user(backend) {
        let app = spawn_app_with_clock(backend, clock()).await;
        let b = seed_basic(&app.store, 1).await;
        let (a1, n2) = (enroll(&app.store, "a1", &app.keys).await, enroll(&app.store, "n2", &app.keys).await);

        // The admin pages no longer mint tokens; the service refuses a token for someone else
        // to anyone but the command line, whatever their role or credential.
        let admin = app.sign_in("a1", &a1).await;
        let csrf = app.csrf(&admin, "/admin/tokens").await;
        let r = admin.post(app.url("/admin/tokens")).form(&[("csrf", csrf.as_str()), ("login", "n2"), ("name", "x")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        let mut tx = app.store.begin().await.unwrap();
        let minted = create_token(&mut tx, &b.admin, TokenFor::Login("n2"), "x", 90).await;
        assert!(matches!(minted, Err(Error::Forbidden)), "{minted:?}");
        let no_session = Actor { credential: lending::Credential::None, ..b.nurse2.clone() };
        assert!(matches!(create_token(&mut tx, &no_session, TokenFor::Myself, "x", 90).await, Err(Error::Forbidden)));
        // The command line still sets tokens up, and the audit names the OS user who ran it.
        let cli_token = create_token(&mut tx, &Actor::cli(), TokenFor::Login("n2"), "setup", 90).await.unwrap();
        tx.commit().await.unwrap();
        let created = last_details(&app.store, "token.create").await;
        assert!(created["credential"].as_str().unwrap().starts_with("cli:"), "{created}");

        // The wipe n1 recorded: a token minted for n2 by someone else is not n2's own credential.
        let wipe_id = wipe_recorded(&app.store, &b).await;
        let verify = |token: String| {
            app.client.post(app.url(&format!("/api/v1/wipes/{wipe_id}/verify"))).bearer_auth(token).send()
        };
        let r = verify(cli_token).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert!(r.json::<Value>().await.unwrap()["message_en"].as_str().unwrap().contains("yourself"));

        // n2 signs in, creates their own token, and verifies with it; the audit names the token.
        let nurse2 = app.sign_in("n2", &n2).await;
        let own = token_from_page(&app, &nurse2, "wipes").await;
        assert_eq!(verify(own).await.unwrap().status(), StatusCode::OK);
        let verified = last_details(&app.store, "wipe.verify").await;
        assert!(verified["credential"].as_str().unwrap().starts_with("token:"), "{verified}");
        // n2's page lists only n2's tokens; the admin sees everyone's and may revoke them.
        let mine = nurse2.get(app.url("/account/tokens")).send().await.unwrap().text().await.unwrap();
        assert!(mine.contains("wipes") && mine.contains("setup"));
        let all = admin.get(app.url("/admin/tokens")).send().await.unwrap().text().await.unwrap();
        assert!(all.contains("n2") && all.contains("/admin/tokens/"));
        // Page actions carry the session as their credential.
        let login_event = last_details(&app.store, "token.create").await;
        assert!(login_event["credential"].as_str().unwrap().starts_with("session:"), "{login_event}");
        app.stop().await;
    }
);
