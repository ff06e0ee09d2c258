//! Staff sign-in over real HTTP: password + TOTP, replay, lockout across a restart, idle
//! timeout, disabling a user, first sign-in, and cross-site posts.

use chrono::Duration;
use lending::testing::{enroll, seed_basic, TEST_PASSWORD};
use lending::{both_dbs, Clock};
use reqwest::StatusCode;

use crate::{location, spawn_app_with_clock, spawn_on};

fn manual_clock() -> Clock {
    lending::testing::test_clock()
}

both_dbs!(
    async fn password_then_totp_signs_in_and_a_replayed_code_is_refused(backend) {
        let app = spawn_app_with_clock(backend, manual_clock()).await;
        seed_basic(&app.store, 0).await;
        let secret = enroll(&app.store, "n1", &app.keys).await;

        // Before the second factor, nothing but the code page is reachable.
        let b = app.browser();
        let r = b.post(app.url("/login")).form(&[("login", "n1"), ("password", TEST_PASSWORD)]).send().await.unwrap();
        let pending_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(pending_cookie.contains("HttpOnly") && pending_cookie.contains("SameSite=Strict"));
        assert_eq!(location(&b.get(app.url("/")).send().await.unwrap()), "/login/code");
        let csrf = app.csrf(&b, "/login/code").await;
        let code = app.code(&secret);
        let r = b.post(app.url("/login/code")).form(&[("csrf", csrf.as_str()), ("code", &code)]).send().await.unwrap();
        assert_eq!(location(&r), "/");
        let full_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert_ne!(pending_cookie.split(';').next(), full_cookie.split(';').next(), "the session id is renewed at sign-in");
        let home = b.get(app.url("/")).send().await.unwrap();
        assert_eq!(home.status(), StatusCode::OK);
        assert_eq!(home.headers()["cache-control"], "no-store");
        assert!(home.text().await.unwrap().contains("職員 n1"));

        // The same code again (same 30-second step): refused and logged.
        let b2 = app.browser();
        b2.post(app.url("/login")).form(&[("login", "n1"), ("password", TEST_PASSWORD)]).send().await.unwrap();
        let csrf = app.csrf(&b2, "/login/code").await;
        let r = b2.post(app.url("/login/code")).form(&[("csrf", csrf.as_str()), ("code", &code)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.text().await.unwrap().contains("すでに使われています"));
        assert_eq!(location(&b2.get(app.url("/")).send().await.unwrap()), "/login/code", "still not signed in");
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "auth.totp_replay").await.unwrap(), 1);
        assert_eq!(lending::store::audit::count_action(&mut tx, "auth.sign_in").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn lockout_after_failures_survives_a_restart(backend) {
        let clock = manual_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        seed_basic(&app.store, 0).await;
        let secret = enroll(&app.store, "n1", &app.keys).await;
        let b = app.browser();
        for _ in 0..lending::service::auth::LOCK_AFTER {
            let r = b.post(app.url("/login")).form(&[("login", "n1"), ("password", "wrong password here")]).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // The right password is refused now, with the same words as a wrong one or an unknown login.
        let right = b.post(app.url("/login")).form(&[("login", "n1"), ("password", TEST_PASSWORD)]).send().await.unwrap();
        assert_eq!(right.status(), StatusCode::UNAUTHORIZED);
        let right = right.text().await.unwrap();
        let unknown = b.post(app.url("/login")).form(&[("login", "nobody"), ("password", "x")]).send().await.unwrap();
        let unknown = unknown.text().await.unwrap();
        assert!(right.contains("一時的にロック"));
        assert_eq!(right.replace("value=\"n1\"", ""), unknown.replace("value=\"nobody\"", ""), "no hint whether a login exists");

        let db = app.into_db().await;
        let app = spawn_on(db, clock.clone()).await;
        let r = app.browser().post(app.url("/login")).form(&[("login", "n1"), ("password", TEST_PASSWORD)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "still locked after a restart");
        clock.advance(Duration::minutes(lending::service::auth::LOCK_MINUTES + 1));
        app.sign_in("n1", &secret).await;
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "auth.locked").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn an_idle_session_ends_and_disabling_a_user_ends_theirs(backend) {
        let clock = manual_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        seed_basic(&app.store, 0).await;
        let (n1, a1) = (enroll(&app.store, "n1", &app.keys).await, enroll(&app.store, "a1", &app.keys).await);
        let nurse = app.sign_in("n1", &n1).await;
        assert_eq!(nurse.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK);
        clock.advance(Duration::minutes(14));
        assert_eq!(nurse.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK, "14 idle minutes are fine");
        clock.advance(Duration::minutes(16));
        assert_eq!(location(&nurse.get(app.url("/")).send().await.unwrap()), "/login", "16 idle minutes lock it");

        let nurse = app.sign_in("n1", &n1).await;
        clock.advance(Duration::seconds(31));
        let admin = app.sign_in("a1", &a1).await;
        let mut tx = app.store.read().await.unwrap();
        let n1_id = lending::store::users::by_login(&mut tx, "n1").await.unwrap().unwrap().id;
        drop(tx);
        let csrf = app.csrf(&admin, "/admin/users").await;
        let r = admin.post(app.url(&format!("/admin/users/{n1_id}/disable"))).form(&[("csrf", csrf.as_str()), ("confirm", "yes")]).send().await.unwrap();
        assert_eq!(location(&r), "/admin/users");
        assert_eq!(location(&nurse.get(app.url("/")).send().await.unwrap()), "/login", "the live session ended at once");
        let r = app.browser().post(app.url("/login")).form(&[("login", "n1"), ("password", TEST_PASSWORD)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "and a disabled user cannot sign in");
        app.stop().await;
    }
);

both_dbs!(
    async fn first_sign_in_forces_a_new_password_and_totp_enrolment(backend) {
        let app = spawn_app_with_clock(backend, manual_clock()).await;
        seed_basic(&app.store, 0).await;
        let mut tx = app.store.begin().await.unwrap();
        let (_, temporary) = lending::service::users::add_user(
            &mut tx,
            &lending::Actor::cli(),
            lending::service::users::NewUser { login: "tanaka".into(), name: "田中 由美".into(), role: lending::Role::Nurse, site: String::new(), email: String::new() },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let b = app.browser();
        let r = b.post(app.url("/login")).form(&[("login", "tanaka"), ("password", temporary.as_str())]).send().await.unwrap();
        assert_eq!(location(&r), "/account/password");
        assert_eq!(location(&b.get(app.url("/")).send().await.unwrap()), "/account/password");
        assert_eq!(location(&b.get(app.url("/account/totp")).send().await.unwrap()), "/account/password", "password first");
        let csrf = app.csrf(&b, "/account/password").await;
        for weak in ["password", "tanaka2026!", "sakura"] {
            let r = b.post(app.url("/account/password")).form(&[("csrf", csrf.as_str()), ("password", weak), ("password_again", weak)]).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{weak} is refused");
        }
        let new = "river-lantern-pocket-cedar";
        let r = b.post(app.url("/account/password")).form(&[("csrf", csrf.as_str()), ("password", new), ("password_again", new)]).send().await.unwrap();
        assert_eq!(location(&r), "/account/totp");
        let page = b.get(app.url("/account/totp")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("<svg"), "the otpauth QR code is shown");
        let shown = page.split("id=\"totp-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        let groups: Vec<&str> = shown.split(' ').collect();
        assert!(groups.len() > 1 && groups.iter().all(|g| g.len() == 4), "the key in groups of four: {shown}");
        let secret_b32 = shown.replace(' ', "");
        // The same key behind a link that opens the authenticator on this phone.
        let link = page.split("id=\"totp-link\" href=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(link.starts_with("otpauth://totp/") && link.contains(&format!("?secret={secret_b32}&#38;")), "{link}");
        let secret = totp_rs::Secret::Encoded(secret_b32).to_bytes().unwrap();
        let r = b.post(app.url("/account/totp")).form(&[("csrf", csrf.as_str()), ("code", "000000")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = b.post(app.url("/account/totp")).form(&[("csrf", csrf.as_str()), ("code", &app.code(&secret))]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let recovery = r.text().await.unwrap();
        let codes: Vec<&str> = recovery.split("<code>").skip(1).map(|c| c.split('<').next().unwrap()).collect();
        assert_eq!(codes.len(), lending::service::auth::RECOVERY_CODES);
        assert_eq!(b.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK);

        // A recovery code replaces the phone once.
        for expect_ok in [true, false] {
            let b = app.browser();
            b.post(app.url("/login")).form(&[("login", "tanaka"), ("password", new)]).send().await.unwrap();
            let csrf = app.csrf(&b, "/login/code").await;
            let r = b.post(app.url("/login/code")).form(&[("csrf", csrf.as_str()), ("code", codes[3])]).send().await.unwrap();
            assert_eq!(location(&r) == "/", expect_ok);
        }
        app.stop().await;
    }
);

both_dbs!(
    async fn cross_site_posts_are_refused_and_write_nothing(backend) {
        let app = spawn_app_with_clock(backend, manual_clock()).await;
        seed_basic(&app.store, 0).await;
        let a1 = enroll(&app.store, "a1", &app.keys).await;
        let admin = app.sign_in("a1", &a1).await;
        let csrf = app.csrf(&admin, "/admin/users").await;
        let count = || async {
            let mut tx = app.store.read().await.unwrap();
            lending::store::users::list(&mut tx).await.unwrap().len()
        };
        let before = count().await;
        let form = [("csrf", csrf.as_str()), ("login", "mallory"), ("name", "x"), ("role", "admin")];
        let evil_origin = admin.post(app.url("/admin/users")).header("origin", "https://evil.example").form(&form).send().await.unwrap();
        assert_eq!(evil_origin.status(), StatusCode::FORBIDDEN);
        let cross_site = admin.post(app.url("/admin/users")).header("sec-fetch-site", "cross-site").form(&form).send().await.unwrap();
        assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
        let no_token = admin.post(app.url("/admin/users")).form(&[("login", "mallory"), ("name", "x"), ("role", "admin")]).send().await.unwrap();
        assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
        let token = app.token("a1").await;
        let api = app.client.post(app.url("/api/v1/devices/x/found")).bearer_auth(&token).header("origin", "https://evil.example").send().await.unwrap();
        assert_eq!(api.status(), StatusCode::FORBIDDEN);
        assert_eq!(count().await, before, "nothing was written");
        // The same form from our own page works.
        let ok = admin.post(app.url("/admin/users")).header("origin", app.base.as_str()).form(&form).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::CREATED);
        assert_eq!(count().await, before + 1);
        app.stop().await;
    }
);

#[tokio::test]
async fn sign_ins_from_one_address_are_throttled() {
    let app = spawn_app_with_clock(lending::Backend::Sqlite, manual_clock()).await;
    seed_basic(&app.store, 0).await;
    let b = app.browser();
    let mut statuses = Vec::new();
    for n in 0..(server::web::throttle::SIGN_INS_PER_MINUTE + 2) {
        // Different logins: a spraying client, not one account's lockout.
        let login = format!("user{n}");
        let r =
            b.post(app.url("/login")).form(&[("login", login.as_str()), ("password", "guess")]).send().await.unwrap();
        statuses.push(r.status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 2);
    app.stop().await;
}
