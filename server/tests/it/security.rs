//! Issue #16, security hardening: one test per weakness, named after its item, on both databases.

use chrono::{DateTime, Utc};
use lending::service::users::{create_token, TokenFor};
use lending::service::{auth, loans, wipes};
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
    let req = b.wipe_request(&b.devices[0]);
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

/// Whether `token` opens the staff API now.
async fn api_ok(app: &TestApp, token: &str) -> bool {
    let r = app.client.get(app.url("/api/v1/devices")).bearer_auth(token).send().await.unwrap();
    match r.status() {
        StatusCode::OK => true,
        StatusCode::UNAUTHORIZED => false,
        s => panic!("unexpected {s}"),
    }
}

async fn last_used(store: &Store, login: &str) -> Option<DateTime<Utc>> {
    let mut tx = store.read().await.unwrap();
    let u = lending::store::users::by_login(&mut tx, login).await.unwrap().unwrap();
    lending::store::users::tokens(&mut tx, Some(&u.id)).await.unwrap()[0].last_used_at
}

both_dbs!(
    async fn w3_tokens_expire_are_revoked_on_credential_resets_and_record_last_use(backend) {
        let clock = clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        let b = seed_basic(&app.store, 1).await;
        let start = clock.now();

        // Last use is recorded, at most once a minute.
        let token = app.token("n1").await;
        assert_eq!(last_used(&app.store, "n1").await, None);
        assert!(api_ok(&app, &token).await);
        assert_eq!(last_used(&app.store, "n1").await, Some(start));
        clock.advance(chrono::Duration::seconds(30));
        assert!(api_ok(&app, &token).await);
        assert_eq!(last_used(&app.store, "n1").await, Some(start), "not written again within the minute");
        clock.advance(chrono::Duration::seconds(31));
        assert!(api_ok(&app, &token).await);
        assert_eq!(last_used(&app.store, "n1").await, Some(start + chrono::Duration::seconds(61)));

        // Tokens expire after the configured days (90 by default).
        clock.advance(chrono::Duration::days(90));
        assert!(!api_ok(&app, &token).await, "expired after 90 days");

        // Disabling, a password reset and a second-factor reset each revoke the user's tokens.
        for what in ["disable", "reset_password", "reset_second_factor"] {
            let token = app.token("n2").await;
            assert!(api_ok(&app, &token).await, "{what}: works before");
            let (mut tx, id) = (app.store.begin().await.unwrap(), b.nurse2.user_id.as_str());
            match what {
                "disable" => auth::set_disabled(&mut tx, &b.admin, id, true).await.unwrap(),
                "reset_password" => drop(auth::reset_password(&mut tx, &b.admin, id).await.unwrap()),
                _ => auth::reset_second_factor(&mut tx, &b.admin, id).await.unwrap(),
            }
            lending::store::users::set_disabled(&mut tx, id, false).await.unwrap();
            tx.commit().await.unwrap();
            assert!(!api_ok(&app, &token).await, "{what}: revoked (and stays so after re-enabling)");
        }
        let mut tx = app.store.read().await.unwrap();
        let events = lending::store::audit::for_target(&mut tx, "user", &b.nurse2.user_id).await.unwrap();
        assert!(events.iter().filter(|e| e.details.contains("\"tokens_revoked\":1")).count() == 3);
        drop(tx);
        app.stop().await;
    }
);

/// Sign-in failures counted for (`login`, `source`): (failures, held until).
async fn throttle_of(store: &Store, login: &str, source: &str) -> (i32, Option<DateTime<Utc>>) {
    let mut tx = store.begin().await.unwrap();
    let u = lending::store::users::by_login(&mut tx, login).await.unwrap().unwrap();
    let a = lending::store::throttle::lock(&mut tx, &u.id, source).await.unwrap();
    tx.commit().await.unwrap();
    (a.failures, a.locked_until)
}

async fn password(store: &Store, login: &str, password: &str, source: &str) -> bool {
    matches!(auth::sign_in_password(store, login, password, source).await.unwrap(), auth::SignIn::Started { .. })
}

both_dbs!(
    async fn w5_parallel_guesses_all_count_and_none_past_the_limit_is_checked(backend) {
        let app = spawn_app_with_clock(backend, clock()).await;
        let b = seed_basic(&app.store, 0).await;
        enroll(&app.store, "n1", &app.keys).await;
        let guesses: Vec<_> = (0..20)
            .map(|i| {
                let store = app.store.clone();
                tokio::spawn(async move { password(&store, "n1", &format!("wrong guess {i}"), "198.51.100.7").await })
            })
            .collect();
        for g in guesses {
            assert!(!g.await.unwrap());
        }
        assert_eq!(throttle_of(&app.store, "n1", "198.51.100.7").await.0, 20, "every parallel guess counted");
        let mut tx = app.store.read().await.unwrap();
        let events = lending::store::audit::for_target(&mut tx, "user", &b.nurse.user_id).await.unwrap();
        let checked = events.iter().filter(|e| e.action == "auth.failed" && e.details.contains("\"failures\"")).count();
        let held = events.iter().filter(|e| e.action == "auth.failed" && e.details.contains("\"locked\"")).count();
        assert_eq!((checked, held), (usize::try_from(auth::LOCK_AFTER).unwrap(), 20 - 5), "none past the limit was checked");
        drop(tx);
        // The right password from there is held back too.
        assert!(!password(&app.store, "n1", lending::testing::TEST_PASSWORD, "198.51.100.7").await);
        app.stop().await;
    }
);

both_dbs!(
    async fn w2_failures_from_one_source_do_not_lock_the_owner_out_and_bursts_alert_admins(backend) {
        let clock = clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        seed_basic(&app.store, 0).await;
        enroll(&app.store, "n1", &app.keys).await;
        let (attacker, owner) = ("203.0.113.9", "192.0.2.10");
        for _ in 0..auth::LOCK_AFTER {
            assert!(!password(&app.store, "n1", "not the password", attacker).await);
        }
        // The guesser is held back, even with the right password; the owner signs in from her PC.
        assert!(!password(&app.store, "n1", lending::testing::TEST_PASSWORD, attacker).await);
        assert!(password(&app.store, "n1", lending::testing::TEST_PASSWORD, owner).await);
        assert_eq!(throttle_of(&app.store, "n1", owner).await, (0, None), "her right password does not count");

        // Growing delays: after the hold, one more guess; wrong, it doubles the hold for each
        // failure past the limit (the held-back try counted too: 7 failures, 15 min × 2²).
        clock.advance(chrono::Duration::minutes(auth::LOCK_MINUTES + 1));
        assert!(!password(&app.store, "n1", "still not it", attacker).await);
        let (failures, until) = throttle_of(&app.store, "n1", attacker).await;
        assert_eq!((failures, until), (7, Some(clock.now() + chrono::Duration::minutes(4 * auth::LOCK_MINUTES))));

        // A burst on one account from many sources mails the admins once per window, no patient data.
        for i in 0..12 {
            password(&app.store, "n1", "spray", &format!("198.51.100.{i}")).await;
        }
        let mut tx = app.store.read().await.unwrap();
        let mails = lending::store::outbox::all(&mut tx).await.unwrap();
        drop(tx);
        let alerts: Vec<_> = mails.iter().filter(|m| m.dedupe_key.starts_with("auth-burst:")).collect();
        assert_eq!(alerts.len(), 1, "one alert per window to the one admin");
        assert_eq!(alerts[0].recipient, "a1@example.jp");
        assert!(alerts[0].subject.contains("n1") && !alerts[0].body_text.contains("山田"));

        // Sources quiet for a day whose hold has ended are forgotten.
        clock.advance(chrono::Duration::hours(auth::FORGET_AFTER_HOURS + 1));
        let mut tx = app.store.begin().await.unwrap();
        assert!(auth::forget_stale_failures(&mut tx).await.unwrap() >= 12);
        tx.commit().await.unwrap();
        assert_eq!(throttle_of(&app.store, "n1", attacker).await, (0, None));
        app.stop().await;
    }
);

both_dbs!(
    async fn w6_password_change_ends_other_sessions_and_wrong_current_passwords_count(backend) {
        let clock = clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        seed_basic(&app.store, 0).await;
        let secret = enroll(&app.store, "n1", &app.keys).await;
        let here = app.sign_in("n1", &secret).await;
        clock.advance(chrono::Duration::seconds(30)); // a fresh code: each is accepted once
        let elsewhere = app.sign_in("n1", &secret).await;
        let change = |current: &str, new: &str| {
            let (current, new, here) = (current.to_owned(), new.to_owned(), here.clone());
            let app = &app;
            async move {
                let csrf = app.csrf(&here, "/account/password").await;
                let form = [("csrf", csrf.as_str()), ("current", &current), ("password", &new), ("password_again", &new)];
                here.post(app.url("/account/password")).form(&form).send().await.unwrap()
            }
        };
        let new = "amber-glacier-pocket-violin";
        let r = change(lending::testing::TEST_PASSWORD, new).await;
        assert_eq!(crate::location(&r), "/");
        assert_eq!(here.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK, "this session stays");
        assert_eq!(crate::location(&elsewhere.get(app.url("/")).send().await.unwrap()), "/login", "the other one ended");

        // Wrong current passwords count like failed sign-ins from this address.
        for _ in 0..auth::LOCK_AFTER {
            let r = change("not my password", "cobalt-meadow-lantern-fig").await;
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
        assert_eq!(throttle_of(&app.store, "n1", "127.0.0.1").await.0, auth::LOCK_AFTER);
        let r = change(new, "cobalt-meadow-lantern-fig").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "held back: even the right one is not checked");
        assert!(r.text().await.unwrap().contains("しばらくしてから"));
        assert!(!password(&app.store, "n1", new, "127.0.0.1").await, "and sign-in from here is held back too");
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "auth.locked").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn w7_hosts_and_origins_are_checked_against_the_configured_base_url(backend) {
        let app = spawn_app_with_clock(backend, clock()).await;
        seed_basic(&app.store, 0).await;
        let a1 = enroll(&app.store, "a1", &app.keys).await;
        let admin = app.sign_in("a1", &a1).await;
        let csrf = app.csrf(&admin, "/admin/users").await;
        let form = [("csrf", csrf.as_str()), ("login", "mallory"), ("name", "x"), ("role", "admin")];

        // A rebinding name is refused outright; the health check answers whatever the name.
        let r = admin.get(app.url("/")).header("host", "rebind.evil.example").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
        let r = app.client.get(app.url("/healthz")).header("host", "rebind.evil.example").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // An Origin that merely matches the request's own Host is not ours (before, it passed).
        let other = "127.0.0.1:1";
        let r = admin.post(app.url("/admin/users")).header("host", other).header("origin", format!("http://{other}")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::users::by_login(&mut tx, "mallory").await.unwrap().is_none(), "nothing written");
        drop(tx);
        // The configured origin passes.
        let r = admin.post(app.url("/admin/users")).header("origin", app.base.as_str()).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        app.stop().await;
    }
);

both_dbs!(
    async fn w8_proxies_match_as_networks_and_ipv6_clients_count_by_64(backend) {
        let db = lending::testing::TestDb::new(backend).await;
        let app = crate::spawn_configured(db, clock(), |cfg| {
            cfg.trusted_proxies = vec![lending::web::IpNet::parse("127.0.0.0/8").unwrap()];
        })
        .await;
        let b = seed_basic(&app.store, 0).await;
        enroll(&app.store, "n1", &app.keys).await;
        let login = |client: &str| {
            let form = [("login", "n1"), ("password", "wrong guess")];
            app.client.post(app.url("/login")).header("x-forwarded-for", client).form(&form).send()
        };
        // Behind the proxy network, clients of one /64 share one count.
        for client in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3", "2001:db8:1:2::4", "2001:db8:1:2::5"] {
            assert_eq!(login(client).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        }
        let (failures, held) = throttle_of(&app.store, "n1", "2001:db8:1:2::").await;
        assert_eq!(failures, auth::LOCK_AFTER);
        assert!(held.is_some());
        // A v4-mapped client is recorded as the IPv4 address it is.
        login("::ffff:198.51.100.7").await.unwrap();
        let mut tx = app.store.read().await.unwrap();
        let events = lending::store::audit::for_target(&mut tx, "user", &b.nurse.user_id).await.unwrap();
        drop(tx);
        let sources: Vec<&str> = events.iter().map(|e| e.source.as_str()).collect();
        assert!(sources.contains(&"2001:db8:1:2::1") && sources.contains(&"198.51.100.7"), "{sources:?}");
        assert_eq!(throttle_of(&app.store, "n1", "198.51.100.7").await.0, 1);
        app.stop().await;
    }
);

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
both_dbs!(
    async fn w9_data_folder_database_and_outbox_are_private_whatever_the_umask(backend) {
        let db = lending::testing::TestDb::new(backend).await;
        let fresh = db.data_dir.join("fresh").join("data");
        let mut migrate = std::process::Command::new("sh");
        migrate
            .args(["-c", "umask 000 && exec \"$0\" migrate", env!("CARGO_BIN_EXE_server")])
            .env("LENDING_DATA_DIR", &fresh)
            .env("LENDING_LOG", "warn");
        if backend == lending::Backend::Postgres {
            migrate.env("LENDING_DATABASE_URL", &db.url);
        }
        let o = migrate.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        if backend == lending::Backend::Sqlite {
            assert_eq!(mode(&fresh), 0o700, "the data folder");
            assert_eq!(mode(&fresh.join("lending.sqlite")), 0o600, "the database");
        }

        // The outbox folder and each mail in it (mail names devices and staff).
        let store = db.store(clock()).await;
        let mut tx = store.begin().await.unwrap();
        let mail = lending::store::outbox::Mail {
            id: "m1".into(),
            dedupe_key: "w9".into(),
            recipient: "a1@example.jp".into(),
            subject: "s".into(),
            body_text: "b".into(),
            body_html: String::new(),
            attempts: 0,
        };
        lending::store::outbox::enqueue(&mut tx, &mail).await.unwrap();
        tx.commit().await.unwrap();
        let outbox = fresh.join("outbox");
        let mailer = lending::mail::Mailer::Files(outbox.clone());
        assert_eq!(lending::mail::deliver_due(&store, &mailer, "lending@localhost").await.unwrap(), (1, 0));
        assert_eq!(mode(&outbox), 0o700);
        let file = std::fs::read_dir(&outbox).unwrap().next().unwrap().unwrap().path();
        assert_eq!(mode(&file), 0o600, "{}", file.display());
        store.close().await;
    }
);

both_dbs!(
    async fn w10_signatures_codes_csv_emails_and_refused_tokens(backend) {
        let app = spawn_app_with_clock(backend, clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let n1 = app.token("n1").await;

        // A patient whose name Japanese Excel would run as a formula.
        let mut tx = app.store.begin().await.unwrap();
        let p = lending::service::registry::create_patient(
            &mut tx,
            &b.nurse,
            lending::service::registry::NewPatient { number: "P-X".into(), name: "＝HYPERLINK(\"x\")".into(), kana: String::new(), birth_date: String::new(), phone: String::new() },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();

        // Signatures through the API: a drawing with a stroke, nothing else.
        let lend = |svg: &str| {
            let body = serde_json::json!({
                "patient_id": p.id, "device_ids": [b.devices[0]], "due_on": "2099-01-01",
                "consent": { "signer_name": "本人", "relationship": "self", "signature_svg": svg, "document_ids": [b.document_id] },
            });
            app.client.post(app.url("/api/v1/loans")).bearer_auth(&n1).json(&body).send()
        };
        let script = r#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><path d="M1 1 L9 9"/></svg>"#;
        assert_eq!(lend(script).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
        // An empty drawing is a missing signature: wrong input whatever the state (422).
        assert_eq!(lend(r#"<svg xmlns="http://www.w3.org/2000/svg"></svg>"#).await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = lend(lending::demo::DEMO_SIGNATURE).await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let loan: Value = r.json().await.unwrap();

        // The verification code: 16 characters from the raw digest (80 bits), and it verifies.
        let code = loan["verification_code"].as_str().unwrap();
        assert_eq!(code.len(), 19);
        let r = app.client.get(app.url(&format!("/api/v1/consents/verify?code={code}"))).bearer_auth(&n1).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        // The CSV export neutralises full-width formula signs too.
        let csv = app.client.get(app.url("/api/v1/reports/outstanding.csv")).bearer_auth(&n1).send().await.unwrap().text().await.unwrap();
        assert!(csv.contains("'＝HYPERLINK"), "{csv}");

        // Staff e-mail addresses are checked when entered.
        let mut tx = app.store.begin().await.unwrap();
        let bad = lending::service::users::NewUser {
            login: "mailless".into(),
            name: "x".into(),
            role: lending::Role::Nurse,
            site: String::new(),
            email: "nurse at clinic".into(),
        };
        let e = lending::service::users::add_user(&mut tx, &Actor::cli(), bad).await.unwrap_err();
        assert!(matches!(&e, Error::Validation(_)), "{e:?}");
        drop(tx);

        // Refused API tokens leave a trace, at most one a minute per client.
        for _ in 0..3 {
            let r = app.client.get(app.url("/api/v1/devices")).bearer_auth("lnd_guessed-token").send().await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "auth.token_failed").await.unwrap(), 1);
        drop(tx);
        let failed = last_details(&app.store, "auth.token_failed").await;
        assert_eq!(failed["reason"], "unknown_or_revoked");
        app.stop().await;
    }
);

/// Rewrites the whole chain from event `from` on, as someone holding the database (and not the
/// key) would: the event's details changed, every later hash recomputed, the head moved along.
async fn rewrite_chain(store: &Store, from: i64) {
    let exec = |sql: String| async move {
        match store.backend() {
            lending::Backend::Sqlite => sqlx::query(&sql).execute(store.sqlite_pool().unwrap()).await.map(|_| ()),
            lending::Backend::Postgres => sqlx::query(&sql).execute(store.pg_pool().unwrap()).await.map(|_| ()),
        }
        .unwrap();
    };
    match store.backend() {
        lending::Backend::Sqlite => {
            exec("DROP TRIGGER audit_events_no_update".into()).await;
        }
        lending::Backend::Postgres => exec("DROP TRIGGER audit_events_no_change ON audit_events".into()).await,
    }
    let mut tx = store.read().await.unwrap();
    let mut rows = lending::store::audit::recent(&mut tx, 100_000).await.unwrap();
    drop(tx);
    rows.reverse();
    let mut prev = rows[usize::try_from(from - 2).unwrap()].hash.clone();
    for mut row in rows.into_iter().filter(|r| r.seq >= from) {
        if row.seq == from {
            row.details = r#"{"rewritten":true}"#.into();
        }
        row.prev_hash = prev;
        row.hash = row.compute_hash();
        exec(format!(
            "UPDATE audit_events SET details = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
            row.details, row.prev_hash, row.hash, row.seq
        ))
        .await;
        exec(format!("UPDATE audit_head SET seq = {}, hash = '{}' WHERE id = 1", row.seq, row.hash)).await;
        prev = row.hash;
    }
}

both_dbs!(
    async fn w4_signed_checkpoints_detect_a_chain_rewritten_as_a_whole(backend) {
        use lending::audit::Break;
        use lending::service::checkpoints;
        let clock = clock();
        let db = lending::testing::TestDb::new(backend).await;
        let store = db.store(clock.clone()).await;
        seed_basic(&store, 1).await;
        let key = lending::testing::receipt_key();

        // The head is signed once an hour at most, and mailed to the admins.
        let mut tx = store.begin().await.unwrap();
        let c = checkpoints::sign_head(&mut tx, &key).await.unwrap().expect("a first checkpoint");
        assert!(checkpoints::sign_head(&mut tx, &key).await.unwrap().is_none(), "not again at once");
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let mails = lending::store::outbox::all(&mut tx).await.unwrap();
        drop(tx);
        let anchor = mails.iter().find(|m| m.dedupe_key.starts_with("checkpoint:")).expect("anchor mail");
        assert_eq!(anchor.recipient, "a1@example.jp");
        assert!(anchor.body_text.contains(&format!("--anchor {}:{}", c.seq, c.hash)));
        assert_eq!(checkpoints::verify(&store, &key.public_key(), &[]).await.unwrap(), Ok(1));

        // A chain rewritten as a whole passes the bare hash-chain check, not the checkpoint.
        rewrite_chain(&store, 2).await;
        assert!(lending::store::audit::verify(&store).await.unwrap().is_ok(), "the bare chain cannot tell");
        assert_eq!(checkpoints::verify(&store, &key.public_key(), &[]).await.unwrap(), Err(Break::CheckpointMismatch { seq: c.seq }));
        // Re-pointing the stored checkpoint needs the key.
        let forged = format!("UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_events WHERE seq = {0}) WHERE seq = {0}", c.seq);
        match backend {
            lending::Backend::Sqlite => sqlx::query(&forged).execute(store.sqlite_pool().unwrap()).await.map(|_| ()),
            lending::Backend::Postgres => sqlx::query(&forged).execute(store.pg_pool().unwrap()).await.map(|_| ()),
        }
        .unwrap();
        assert_eq!(checkpoints::verify(&store, &key.public_key(), &[]).await.unwrap(), Err(Break::BadCheckpointSignature { seq: c.seq }));
        // And the anchor mailed out catches it even with the stored checkpoints gone.
        let gone = "DELETE FROM audit_checkpoints";
        match backend {
            lending::Backend::Sqlite => sqlx::query(gone).execute(store.sqlite_pool().unwrap()).await.map(|_| ()),
            lending::Backend::Postgres => sqlx::query(gone).execute(store.pg_pool().unwrap()).await.map(|_| ()),
        }
        .unwrap();
        let anchors = [(c.seq, c.hash.clone())];
        assert_eq!(checkpoints::verify(&store, &key.public_key(), &anchors).await.unwrap(), Err(Break::CheckpointMismatch { seq: c.seq }));
        store.close().await;
    }
);
