//! A real browser (headless Chromium via chromedriver): an admin signs in with password and
//! TOTP, adds a nurse, signs out; the nurse signs in with the temporary password, sets a new
//! one, enrols the second factor from the page, gets recovery codes, and signs out.

use fantoccini::{ClientBuilder, Locator};
use lending::browser::{chrome_capabilities, start_driver};
use lending::testing::{enroll, seed_basic, TEST_PASSWORD};
use lending::{Backend, Clock};

use crate::spawn_app_with_clock;

async fn fill(c: &fantoccini::Client, css: &str, text: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).send_keys(text).await.unwrap();
}

async fn submit(c: &fantoccini::Client, form_action: &str) {
    let css = format!("form[action='{form_action}'] button[type=submit]");
    c.find(Locator::Css(&css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

/// Waits (up to 10 s) for the browser to arrive at `expected`, then checks it did.
async fn expect_path(c: &fantoccini::Client, expected: &str) {
    let mut now = String::new();
    for _ in 0..100 {
        c.current_url().await.unwrap().path().clone_into(&mut now);
        let ready = c.execute("return document.readyState", vec![]).await.unwrap();
        if now == expected && ready == "complete" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    save_screenshot(c, "failure.png").await;
    let source = c.source().await.unwrap_or_default();
    panic!("expected to be at {expected}, but the browser is at {now}:\n{source}");
}

async fn text(c: &fantoccini::Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
}

async fn save_screenshot(c: &fantoccini::Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), c.screenshot().await.unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_totp_enrol_a_new_user_and_sign_out_in_chromium() {
    let app = spawn_app_with_clock(Backend::Sqlite, Clock::manual(chrono::Utc::now())).await;
    seed_basic(&app.store, 2).await;
    let admin_secret = enroll(&app.store, "a1", &app.keys).await;
    let driver = start_driver().await;
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(chrome_capabilities(&driver.profile_dir, 1280, 900))
        .connect(&driver.url)
        .await
        .expect("chromedriver session");

    // Japanese pages (the browser itself may prefer English).
    c.goto(&app.url("/lang?to=ja")).await.unwrap();
    // The admin: password, then the code from the authenticator.
    c.goto(&app.url("/")).await.unwrap();
    expect_path(&c, "/login").await;
    fill(&c, "input[name=login]", "a1").await;
    fill(&c, "input[name=password]", TEST_PASSWORD).await;
    submit(&c, "/login").await;
    expect_path(&c, "/login/code").await;
    fill(&c, "input[name=code]", &app.code(&admin_secret)).await;
    submit(&c, "/login/code").await;
    expect_path(&c, "/").await;
    assert!(text(&c, "header").await.contains("職員 a1"));

    // The admin adds a nurse; the temporary password is shown once.
    c.goto(&app.url("/admin/users")).await.unwrap();
    fill(&c, "form[action='/admin/users'] input[name=login]", "suzuki").await;
    fill(&c, "form[action='/admin/users'] input[name=name]", "鈴木 看護師").await;
    submit(&c, "/admin/users").await;
    let temporary = text(&c, "#shown-once").await;
    assert_eq!(temporary.len(), 23, "a temporary password is shown: {temporary:?}");
    save_screenshot(&c, "staff-users-after-add.png").await;
    submit(&c, "/logout").await;
    expect_path(&c, "/login").await;

    // The nurse's first sign-in: a new password, then the second factor.
    fill(&c, "input[name=login]", "suzuki").await;
    fill(&c, "input[name=password]", &temporary).await;
    submit(&c, "/login").await;
    expect_path(&c, "/account/password").await;
    let new_password = "maple-kettle-orbit-violin";
    fill(&c, "input[name=password]", new_password).await;
    fill(&c, "input[name=password_again]", new_password).await;
    submit(&c, "/account/password").await;
    expect_path(&c, "/account/totp").await;
    assert!(c.find(Locator::Css(".qr svg")).await.is_ok(), "the QR code is on the page");
    let secret = totp_rs::Secret::Encoded(text(&c, "#totp-secret").await).to_bytes().unwrap();
    save_screenshot(&c, "staff-totp-enrolment.png").await;
    fill(&c, "input[name=code]", &app.code(&secret)).await;
    submit(&c, "/account/totp").await;
    let codes = c.find_all(Locator::Css("ol.codes code")).await.unwrap();
    assert_eq!(codes.len(), lending::service::auth::RECOVERY_CODES);
    c.find(Locator::Css("a.button")).await.unwrap().click().await.unwrap();
    expect_path(&c, "/").await;
    assert!(text(&c, "header").await.contains("鈴木 看護師"));
    submit(&c, "/logout").await;
    expect_path(&c, "/login").await;
    let flash = text(&c, ".flash").await;
    assert!(flash.contains("サインアウトしました"), "{flash}");
    c.goto(&app.url("/")).await.unwrap();
    expect_path(&c, "/login").await;

    c.close().await.unwrap();
    let mut tx = app.store.read().await.unwrap();
    assert_eq!(lending::store::audit::count_action(&mut tx, "auth.totp_enrolled").await.unwrap(), 1);
    assert_eq!(lending::store::audit::count_action(&mut tx, "auth.sign_out").await.unwrap(), 2);
    drop(tx);
    app.stop().await;
}
