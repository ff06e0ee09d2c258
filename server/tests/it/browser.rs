//! A real browser (headless Chromium via chromedriver): an admin signs in with password and
//! TOTP, adds a nurse, signs out; the nurse signs in with the temporary password, sets a new
//! one, enrols the second factor from the page, gets recovery codes, and signs out.

use fantoccini::{ClientBuilder, Locator};
use lending::browser::{chrome_capabilities, start_driver};
use lending::testing::{enroll, seed_basic, TEST_PASSWORD};
use lending::Backend;

use crate::{spawn_app_with_clock, TestApp};

/// A headless Chromium of the given window (phone sizes are emulated) and its driver, which
/// must outlive the session.
pub async fn open_browser(width: u32, height: u32) -> (lending::browser::Driver, fantoccini::Client) {
    let driver = start_driver().await;
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(chrome_capabilities(&driver.profile_dir, width, height))
        .connect(&driver.url)
        .await
        .expect("chromedriver session");
    (driver, c)
}

/// Signs in through the pages in Japanese: password, then the authenticator's code.
pub async fn browser_sign_in(c: &fantoccini::Client, app: &TestApp, login: &str, secret: &[u8]) {
    c.goto(&app.url("/lang?to=ja")).await.unwrap();
    c.goto(&app.url("/login")).await.unwrap();
    fill(c, "input[name=login]", login).await;
    fill(c, "input[name=password]", TEST_PASSWORD).await;
    submit(c, "/login").await;
    expect_path(c, "/login/code").await;
    fill(c, "input[name=code]", &app.code(secret)).await;
    submit(c, "/login/code").await;
    expect_path(c, "/").await;
}

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
    keep_screenshot(c, "failure.png").await;
    let source = c.source().await.unwrap_or_default();
    panic!("expected to be at {expected}, but the browser is at {now}:\n{source}");
}

/// The text of an element, waiting (up to fantoccini's default) for the page that has it; an
/// element found while the next page replaces the current one is looked up again.
async fn text(c: &fantoccini::Client, css: &str) -> String {
    for _ in 0..50 {
        let found = c.wait().for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        if let Ok(t) = found.text().await {
            return t;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css}: the element kept going stale");
}

/// Keeps a screenshot of the page in test-artifacts/ and checks the page with axe-core: every
/// state a browser test looks at must have no accessibility violation of any impact.
pub async fn save_screenshot(c: &fantoccini::Client, name: &str) {
    keep_screenshot(c, name).await;
    c.execute(&lending::browser::axe_source(), vec![]).await.unwrap();
    let found = c.execute_async(lending::browser::AXE_RUN, vec![]).await.unwrap();
    let found: Vec<&str> = found.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(found.is_empty(), "{name}: axe-core violations:\n{}", found.join("\n"));
}

async fn keep_screenshot(c: &fantoccini::Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), c.screenshot().await.unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_totp_enrol_a_new_user_and_sign_out_in_chromium() {
    let app = spawn_app_with_clock(Backend::Sqlite, lending::testing::test_clock()).await;
    seed_basic(&app.store, 2).await;
    let admin_secret = enroll(&app.store, "a1", &app.keys).await;
    let (_driver, c) = open_browser(1280, 900).await;

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
    assert!(signed_in_as(&c).await.contains("職員 a1"));

    // The admin adds a nurse; the temporary password is shown once.
    c.goto(&app.url("/admin/users")).await.unwrap();
    fill(&c, "form[action='/admin/users'] input[name=login]", "suzuki").await;
    fill(&c, "form[action='/admin/users'] input[name=name]", "鈴木 看護師").await;
    submit(&c, "/admin/users").await;
    let temporary = text(&c, "#shown-once").await;
    assert_eq!(temporary.len(), 23, "a temporary password is shown: {temporary:?}");
    save_screenshot(&c, "staff-users-after-add.png").await;
    // Issuing another temporary password goes through its confirmation page.
    let mut tx = app.store.read().await.unwrap();
    let suzuki = lending::store::users::by_login(&mut tx, "suzuki").await.unwrap().unwrap().id;
    drop(tx);
    click(&c, &format!("a[href='/admin/users/{suzuki}/reset-password']")).await;
    expect_path(&c, &format!("/admin/users/{suzuki}/reset-password")).await;
    let step = text(&c, "main").await;
    assert!(step.contains("仮パスワードを発行しますか") && step.contains("鈴木 看護師（suzuki）"), "{step}");
    save_screenshot(&c, "staff-confirm-reset-password.png").await;
    click(&c, "form[action$='/reset-password'] button.danger").await;
    let temporary = text(&c, "#shown-once").await;
    assert_eq!(temporary.len(), 23, "the new temporary password is shown: {temporary:?}");
    sign_out(&c).await;
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
    let secret = totp_rs::Secret::Encoded(text(&c, "#totp-secret").await.replace(' ', "")).to_bytes().unwrap();
    save_screenshot(&c, "staff-totp-enrolment.png").await;
    fill(&c, "input[name=code]", &app.code(&secret)).await;
    submit(&c, "/account/totp").await;
    // The recovery codes come back on the same path: wait for them, not for a URL.
    c.wait().for_element(Locator::Css("ol.codes code")).await.unwrap();
    let codes = c.find_all(Locator::Css("ol.codes code")).await.unwrap();
    assert_eq!(codes.len(), lending::service::auth::RECOVERY_CODES);
    c.find(Locator::Css("a.button")).await.unwrap().click().await.unwrap();
    expect_path(&c, "/").await;
    assert!(signed_in_as(&c).await.contains("鈴木 看護師"));
    sign_out(&c).await;
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

/// A nurse on a phone-sized screen lends a device: the patient signs with pointer strokes on the
/// pad; the stored consent has those strokes and the document hash; the patient's copy is kept
/// as a screenshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_on_a_phone_lends_a_device_and_the_patient_signs() {
    use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};

    let app = spawn_app_with_clock(Backend::Sqlite, lending::testing::test_clock()).await;
    let b = seed_basic(&app.store, 2).await;
    let secret = enroll(&app.store, "n1", &app.keys).await;
    let (_driver, c) = open_browser(390, 844).await;
    browser_sign_in(&c, &app, "n1", &secret).await;

    c.goto(&app.url("/loans/new")).await.unwrap();
    c.find(Locator::Css(&format!("input[name=patient_id][value='{}']", b.patients[0])))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css(&format!("input[name=device_id][value='{}']", b.devices[0])))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    submit(&c, "/loans/explain").await;
    c.wait().for_element(Locator::Id("signature-pad")).await.unwrap();
    fill(&c, "input[name=signer_name]", "山田 花子").await;
    // The relationship is chosen (nothing is preselected).
    click(&c, "input[name=relationship][value=self]").await;
    // The explanation is part of the page (no inner scroll box); 「文字を大きく」 enlarges it at once.
    let explanation = "const e = document.getElementById('explanation'); const s = getComputedStyle(e); \
        return [parseFloat(s.fontSize), s.overflowY, e.scrollHeight <= e.clientHeight + 1];";
    let before = c.execute(explanation, vec![]).await.unwrap();
    assert_eq!((before[1].as_str(), before[2].as_bool()), (Some("visible"), Some(true)), "no inner scroll: {before}");
    click(&c, "#larger-text").await;
    let after = c.execute(explanation, vec![]).await.unwrap();
    assert!(after[0].as_f64().unwrap() > before[0].as_f64().unwrap() * 1.2, "larger text: {before} → {after}");
    c.execute("document.getElementById('explanation').scrollIntoView()", vec![]).await.unwrap();
    save_screenshot(&c, "consent-larger-text-390x844.png").await;

    // Two strokes across the pad, as a finger would draw them.
    let pad = c.find(Locator::Id("signature-pad")).await.unwrap();
    let step = Some(std::time::Duration::from_millis(20));
    let mut strokes = MouseActions::new("finger".into())
        .then(PointerAction::MoveToElement { element: pad.clone(), duration: None, x: -120.0, y: 10.0 })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT });
    for (x, y) in [(20.0, -25.0), (25.0, 30.0), (30.0, -20.0), (25.0, 15.0)] {
        strokes = strokes.then(PointerAction::MoveBy { duration: step, x, y });
    }
    strokes = strokes
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::MoveToElement { element: pad, duration: None, x: 40.0, y: -10.0 })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::MoveBy { duration: step, x: 60.0, y: 20.0 })
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    c.perform_actions(strokes).await.unwrap();
    let recorded =
        c.find(Locator::Id("signature-strokes")).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(recorded.split('|').count(), 2, "two strokes recorded: {recorded}");
    c.find(Locator::Css("input[name=explained]")).await.unwrap().click().await.unwrap();
    submit(&c, "/loans").await;
    c.wait().for_element(Locator::Id("verification-code")).await.unwrap();
    let code = text(&c, "#verification-code").await;
    assert_eq!(code.len(), 19);
    assert!(text(&c, "article.copy").await.contains("山田 花子 様"));
    save_screenshot(&c, "patient-copy-390x844.png").await;
    c.close().await.unwrap();

    let mut tx = app.store.read().await.unwrap();
    let loan =
        lending::store::loans::open_loan_of_device(&mut tx, &b.devices[0]).await.unwrap().expect("the device is out");
    let consent = lending::store::loans::consent(&mut tx, &loan.consent_id).await.unwrap().unwrap();
    assert_eq!(consent.signature_svg.matches("<path").count(), 2, "the strokes are stored as vector paths");
    assert_eq!(consent.document_sha256, lending::ids::sha256_hex(&consent.document_text));
    assert_eq!(consent.verification_code, code);
    drop(tx);
    app.stop().await;
}

/// Waits (up to 10 s) until the text of `css` contains `needle`: the page a form was sent from
/// can still be showing when the next one is asked for.
async fn wait_for_text(c: &fantoccini::Client, css: &str, needle: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(found) = c.find(Locator::Css(css)).await {
            if let Ok(t) = found.text().await {
                if t.contains(needle) {
                    return;
                }
                last = t;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{css} never showed {needle:?}; last: {last:?}");
}

/// Clicks the element `css` (the first that matches).
async fn click(c: &fantoccini::Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

/// Sets a form field's value directly (a date picker, or a value the browser would refuse).
async fn set_value(c: &fantoccini::Client, css: &str, value: &str) {
    let js = "const e = document.querySelector(arguments[0]); e.value = arguments[1];";
    c.execute(js, vec![css.into(), value.into()]).await.unwrap();
}

/// Sends the form at `action` as a browser without form validation would (the server's checks).
async fn submit_unchecked(c: &fantoccini::Client, action: &str) {
    let js = "const f = document.querySelector(`form[action='${arguments[0]}']`); f.noValidate = true;";
    c.execute(js, vec![action.into()]).await.unwrap();
    submit(c, action).await;
}

/// Signs out from the menu: on a phone the menu button is pressed first. On a wide screen the
/// menu is shown by CSS without being opened, which chromedriver's own visibility check does not
/// follow (it calls the button not interactable), so the form is sent from a script there.
async fn sign_out(c: &fantoccini::Client) {
    if visible(c, ".menu summary").await {
        click(c, ".menu summary").await;
        submit(c, "/logout").await;
    } else {
        let js = "document.querySelector(\"form[action='/logout']\").requestSubmit()";
        c.execute(js, vec![]).await.unwrap();
    }
}

/// Who the menu says is signed in (its text, whether the menu is open or not).
async fn signed_in_as(c: &fantoccini::Client) -> String {
    c.wait().for_element(Locator::Css(".menu .who")).await.unwrap();
    let who = c.execute("return document.querySelector('.menu .who').textContent", vec![]).await.unwrap();
    who.as_str().unwrap_or_default().to_owned()
}

/// Whether the element `css` is rendered (`checkVisibility`: a closed `<details>` hides its content).
async fn visible(c: &fantoccini::Client, css: &str) -> bool {
    let js = "return document.querySelector(arguments[0]).checkVisibility()";
    c.execute(js, vec![css.into()]).await.unwrap() == serde_json::Value::Bool(true)
}

async fn is_checked(c: &fantoccini::Client, css: &str) -> bool {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).prop("checked").await.unwrap().as_deref()
        == Some("true")
}

async fn field_value(c: &fantoccini::Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Draws one stroke across the signature pad, as a finger would.
async fn draw_signature(c: &fantoccini::Client) {
    use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
    let pad = c.find(Locator::Id("signature-pad")).await.unwrap();
    let step = Some(std::time::Duration::from_millis(20));
    let mut stroke = MouseActions::new("finger".into())
        .then(PointerAction::MoveToElement { element: pad, duration: None, x: -100.0, y: 0.0 })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT });
    for (x, y) in [(30.0, -20.0), (30.0, 25.0), (40.0, -10.0)] {
        stroke = stroke.then(PointerAction::MoveBy { duration: step, x, y });
    }
    c.perform_actions(stroke.then(PointerAction::Up { button: MOUSE_BUTTON_LEFT })).await.unwrap();
}

/// Every mistake a nurse can make on a phone comes back on the same page with the reason beside
/// the field and everything else as it was; after fixing that one field the flow goes on, and
/// the family signs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_keep_everything_after_each_mistake_on_a_phone() {
    let app = spawn_app_with_clock(Backend::Sqlite, lending::testing::test_clock()).await;
    let b = seed_basic(&app.store, 3).await;
    let n1 = enroll(&app.store, "n1", &app.keys).await;
    let n2 = enroll(&app.store, "n2", &app.keys).await;
    let (_driver, c) = open_browser(390, 844).await;
    browser_sign_in(&c, &app, "n1", &n1).await;
    let patient = format!("input[name=patient_id][value='{}']", b.patients[0]);
    let device0 = format!("input[name=device_id][value='{}']", b.devices[0]);

    // 1. No device chosen: the patient, due date and purpose stay.
    c.goto(&app.url("/loans/new")).await.unwrap();
    click(&c, &patient).await;
    fill(&c, "input[name=purpose]", "在宅での血中酸素の見守り").await;
    submit(&c, "/loans/explain").await;
    text(&c, "#device_ids-error").await;
    save_screenshot(&c, "never-lose-1-no-device-390x844.png").await;
    assert!(is_checked(&c, &patient).await, "the patient is still chosen");
    assert_eq!(field_value(&c, "input[name=purpose]").await, "在宅での血中酸素の見守り");

    // 2. An unknown asset tag typed: the text stays to be fixed; a lower-case tag is found.
    click(&c, &device0).await;
    fill(&c, "input[name=asset_tags]", "t-0001 X-9999").await;
    submit(&c, "/loans/explain").await;
    assert!(text(&c, "#asset_tags-error").await.contains("X-9999"));
    assert!(is_checked(&c, &device0).await && is_checked(&c, &patient).await);
    assert_eq!(field_value(&c, "input[name=asset_tags]").await, "t-0001 X-9999");
    set_value(&c, "input[name=asset_tags]", "t-0001").await;

    // 3. A due date in the past: the browser refuses it; a browser that does not is told by
    //    the server, before anyone signs.
    set_value(&c, "input[name=due_on]", "2020-01-01").await;
    let valid = c
        .execute("return document.querySelector(\"form[action='/loans/explain']\").checkValidity()", vec![])
        .await
        .unwrap();
    assert_eq!(valid, serde_json::Value::Bool(false), "the browser checks the date first");
    submit_unchecked(&c, "/loans/explain").await;
    assert!(text(&c, "#due_on-error").await.contains("過去"));
    save_screenshot(&c, "never-lose-3-past-due-date-390x844.png").await;
    assert_eq!(field_value(&c, "input[name=asset_tags]").await, "t-0001");
    assert!(is_checked(&c, &device0).await && is_checked(&c, &patient).await);
    assert_eq!(field_value(&c, "input[name=purpose]").await, "在宅での血中酸素の見守り");
    set_value(&c, "input[name=due_on]", "2026-12-04").await;
    submit(&c, "/loans/explain").await;

    // 4. On the consent page: no signature. The page says so and sends nothing.
    c.wait().for_element(Locator::Id("signature-pad")).await.unwrap();
    assert!(text(&c, "main").await.contains("T-0000、T-0001"), "both devices of the kit are explained");
    fill(&c, "input[name=signer_name]", "山田 太郎").await;
    click(&c, "input[name=relationship][value=family]").await;
    click(&c, "input[name=explained]").await;
    submit(&c, "/loans").await;
    assert!(c.find(Locator::Css("#signature-missing:not([hidden])")).await.is_ok(), "the missing signature is shown");
    save_screenshot(&c, "never-lose-4-no-signature-390x844.png").await;
    draw_signature(&c).await;
    let drawn = field_value(&c, "#signature-strokes").await;
    assert!(!drawn.is_empty());

    // 5. Sent without the "explained" tick (no browser check): the page comes back with the
    //    signature still drawn, the signer and relationship kept; tick it and it is recorded.
    click(&c, "input[name=explained]").await;
    submit_unchecked(&c, "/loans").await;
    text(&c, "#explained-error").await;
    save_screenshot(&c, "never-lose-5-kept-signature-390x844.png").await;
    assert_eq!(field_value(&c, "#signature-strokes").await, drawn, "the drawn signature is kept");
    assert_eq!(field_value(&c, "input[name=signer_name]").await, "山田 太郎");
    assert!(is_checked(&c, "input[name=relationship][value=family]").await);
    click(&c, "input[name=explained]").await;
    submit(&c, "/loans").await;
    c.wait().for_element(Locator::Id("verification-code")).await.unwrap();

    let mut tx = app.store.read().await.unwrap();
    let loan = lending::store::loans::open_loan_of_device(&mut tx, &b.devices[1]).await.unwrap().expect("lent");
    let consent = lending::store::loans::consent(&mut tx, &loan.consent_id).await.unwrap().unwrap();
    assert_eq!(consent.signature_svg.matches("<path").count(), 1, "signed once, with the first drawing");
    assert_eq!((consent.signer_name.as_str(), consent.relationship.as_str()), ("山田 太郎", "family"));
    assert_eq!(lending::store::loans::device_ids(&mut tx, &loan.id).await.unwrap().len(), 2);
    drop(tx);

    // 6. The return, then the wipe with a step not ticked: what was ticked and typed stays.
    c.goto(&app.url(&format!("/devices/{}/return", b.devices[0]))).await.unwrap();
    assert!(!is_checked(&c, "input[name=accessories_complete]").await, "nothing is ticked for the nurse");
    click(&c, "input[name=accessories_complete]").await;
    submit(&c, &format!("/devices/{}/return", b.devices[0])).await;
    expect_path(&c, "/devices").await;
    let wipe_action = format!("/devices/{}/wipe", b.devices[0]);
    c.goto(&app.url(&wipe_action)).await.unwrap();
    click(&c, &format!("input[name=checklist][value='{}']", b.wipe_steps[0])).await;
    fill(&c, "input[name=tool]", "初期化アプリ").await;
    submit(&c, &wipe_action).await;
    text(&c, "#checklist-error").await;
    save_screenshot(&c, "never-lose-6-wipe-checklist-390x844.png").await;
    assert!(is_checked(&c, &format!("input[name=checklist][value='{}']", b.wipe_steps[0])).await);
    assert_eq!(field_value(&c, "input[name=tool]").await, "初期化アプリ");
    for step in &b.wipe_steps[1..] {
        click(&c, &format!("input[name=checklist][value='{step}']")).await;
    }
    submit(&c, &wipe_action).await;
    wait_for_text(&c, "article.copy h1", "データ消去証明書").await;
    // The wiper is not offered the check; another nurse is, and confirms what she checked.
    let certificate = c.current_url().await.unwrap().path().to_owned();
    assert!(c.find(Locator::Css("form[action$='/verify']")).await.is_err(), "no verify form for the wiper");
    c.goto(&app.url("/devices")).await.unwrap();
    assert!(c.find(Locator::Css("a[href$='/certificate#verify']")).await.is_err(), "no verify link for the wiper");
    sign_out(&c).await;
    expect_path(&c, "/login").await;
    browser_sign_in(&c, &app, "n2", &n2).await;
    c.goto(&app.url("/devices")).await.unwrap();
    click(&c, "a[href$='/certificate#verify']").await;
    let verify = format!("{}/verify", certificate.trim_end_matches("/certificate"));
    c.wait().for_element(Locator::Css(&format!("form[action='{verify}']"))).await.unwrap();
    click(&c, "input[name=confirmed]").await;
    submit(&c, &verify).await;
    wait_for_text(&c, "article.copy", "職員 n2").await;
    save_screenshot(&c, "certificate-verified-390x844.png").await;
    c.close().await.unwrap();
    app.stop().await;
}

/// The staff pages on a 390×844 phone: the header (menu closed) takes under a tenth of the
/// screen, no page scrolls sideways (wide tables scroll in their own box), the menu opens from
/// its button and marks the page shown; on a desktop the menu is open without a click.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_pages_fit_a_phone() {
    let app = spawn_app_with_clock(Backend::Sqlite, lending::testing::test_clock()).await;
    let b = seed_basic(&app.store, 3).await;
    // The nurse's own loan, due tomorrow, for her home page.
    let mut kit = b.check_out_request(0, &[0, 1]);
    kit.due_on = app.store.clock().today_tokyo() + chrono::Duration::days(1);
    let mut tx = app.store.begin().await.unwrap();
    let lent =
        lending::service::loans::check_out(&mut tx, &b.nurse, kit, &lending::testing::receipt_key()).await.unwrap();
    tx.commit().await.unwrap();
    let nurse = enroll(&app.store, "n1", &app.keys).await;
    let (_driver, c) = open_browser(390, 844).await;
    browser_sign_in(&c, &app, "n1", &nurse).await;
    let fits = "return [document.documentElement.scrollWidth, window.innerWidth, \
                document.querySelector('header').getBoundingClientRect().height, window.innerHeight]";
    let patient = format!("/patients/{}", b.patients[0]);
    let patient_edit = format!("{patient}/edit");
    let loan = format!("/loans/{}", lent.loan.id);
    for (path, shot) in [
        ("/", "home"),
        ("/loans/new", "loans-new"),
        (loan.as_str(), "loan"),
        ("/dashboard", "dashboard"),
        ("/devices", "devices"),
        ("/patients", "patients"),
        (patient.as_str(), "patient"),
        (patient_edit.as_str(), "patient-edit"),
    ] {
        c.goto(&app.url(path)).await.unwrap();
        expect_path(&c, path).await;
        let v = c.execute(fits, vec![]).await.unwrap();
        let [scroll, width, header, height] = [0, 1, 2, 3].map(|i| v[i].as_f64().unwrap());
        save_screenshot(&c, &format!("phone-{shot}-390x844.png")).await;
        assert!(scroll <= width, "{path} scrolls sideways: {scroll} > {width}");
        assert!(header < height / 10.0, "{path}: the header takes {header} of {height}");
        assert!(!visible(&c, ".menu nav a").await, "{path}: the menu starts closed");
    }
    click(&c, ".menu summary").await;
    assert!(visible(&c, ".menu nav a[aria-current=page][href='/patients']").await);
    save_screenshot(&c, "phone-menu-open-390x844.png").await;
    c.close().await.unwrap();

    // An admin at a desk.
    let secret = enroll(&app.store, "a1", &app.keys).await;
    let (_driver, c) = open_browser(1280, 900).await;
    browser_sign_in(&c, &app, "a1", &secret).await;
    c.goto(&app.url("/dashboard")).await.unwrap();
    expect_path(&c, "/dashboard").await;
    save_screenshot(&c, "desktop-dashboard-1280x900.png").await;
    assert!(visible(&c, ".menu nav a[aria-current=page][href='/dashboard']").await, "the menu is open");
    assert!(!visible(&c, ".menu summary").await, "no menu button on a desktop");
    c.close().await.unwrap();
    app.stop().await;
}
