//! Issue #18, done-when 1, in a real browser: a nurse signs in online on a phone-sized Chromium,
//! enrols the phone (an admin approves), prepares the visits, goes offline (CDP
//! `Network.emulateNetworkConditions`), lends a 2-device kit with a drawn signature, reloads the
//! page while offline (the outbox survives), takes back a device of another loan, and comes back
//! online: both records sync once, the consent's receipt verifies, and the audit shows the
//! phone's time and the server's.

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::Locator;
use lending::both_dbs;
use lending::service::{loans, offline};
use lending::testing::{enroll, seed_basic};
use serde_json::{json, Value};

use crate::browser::{browser_sign_in, open_browser, save_screenshot};
use crate::spawn_app_with_clock;

/// Sends a Chrome DevTools Protocol command through chromedriver.
async fn cdp(driver: &lending::browser::Driver, c: &fantoccini::Client, cmd: &str, params: Value) {
    let id = c.session_id().await.unwrap().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/session/{id}/goog/cdp/execute", driver.url))
        .json(&json!({ "cmd": cmd, "params": params }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(status.is_success(), "{cmd}: {status} {}", r.text().await.unwrap());
}

async fn offline_mode(driver: &lending::browser::Driver, c: &fantoccini::Client, offline: bool) {
    let conditions = json!({ "offline": offline, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 });
    cdp(driver, c, "Network.emulateNetworkConditions", conditions).await;
}

/// Runs `js` until it returns true (up to 15 s).
async fn until(c: &fantoccini::Client, js: &str, what: &str) {
    for _ in 0..150 {
        if c.execute(js, vec![]).await.ok().and_then(|v| v.as_bool()) == Some(true) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let status = c.execute("return document.getElementById('offline-status')?.textContent", vec![]).await;
    panic!("{what} did not happen (status: {status:?})");
}

async fn click(c: &fantoccini::Client, css: &str) {
    c.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

async fn set_value(c: &fantoccini::Client, css: &str, value: &str) {
    let js = "const e = document.querySelector(arguments[0]); e.value = arguments[1];";
    c.execute(js, vec![css.into(), value.into()]).await.unwrap();
}

fn status_has(text: &str) -> String {
    format!("return (document.getElementById('offline-status')?.textContent || '').includes('{text}')")
}

fn badge_is(n: usize) -> String {
    format!(
        "const b = document.getElementById('outbox-badge'); \
         return !!b && !b.hidden && document.getElementById('outbox-count').textContent === '{n}'"
    )
}

/// A phone-sized Chromium signed in as n1 on the offline page, its phone enrolled (and approved
/// by the admin) and the visits of `numbers` with the devices `tags` prepared.
async fn phone_ready(
    app: &crate::TestApp,
    b: &lending::testing::Basic,
    secret: &[u8],
    numbers: &[String],
    tags: &[String],
) -> (lending::browser::Driver, fantoccini::Client) {
    let (driver, c) = open_browser(390, 844).await;
    browser_sign_in(&c, app, "n1", secret).await;
    c.goto(&app.url("/offline")).await.unwrap();
    until(&c, "return !document.getElementById('offline-app').hidden", "the offline app").await;
    set_value(&c, "#enrol-label", "訪問用スマホ 1").await;
    click(&c, "#enrol-button").await;
    until(&c, "return document.getElementById('enrol-state').textContent.includes('申請')", "enrolment").await;
    // An admin approves it (the user page's button is tested elsewhere).
    let mut tx = app.store.begin().await.unwrap();
    let phone = offline::enrolments(&mut tx, &b.admin, &b.nurse.user_id).await.unwrap().remove(0);
    assert_eq!(phone.algorithm, "ES256");
    offline::approve_enrolment(&mut tx, &b.admin, &phone.id).await.unwrap();
    tx.commit().await.unwrap();
    set_value(&c, "#prepare-patients", &numbers.join("\n")).await;
    set_value(&c, "#prepare-devices", &tags.join("\n")).await;
    click(&c, "#prepare-button").await;
    until(&c, &status_has("準備しました"), "preparing the visits").await;
    until(&c, "return !!navigator.serviceWorker.controller", "the service worker taking the page").await;
    let kept = "const done = arguments[arguments.length - 1]; \
            Promise.all(['/offline', '/static/offline.js', '/static/staff.css'].map(p => caches.match(p))) \
            .then(rs => done(rs.every(r => !!r && r.ok)), () => done(false));";
    assert_eq!(c.execute_async(kept, vec![]).await.unwrap(), json!(true), "the app's page and files are kept");

    (driver, c)
}

both_dbs!(
    async fn a_phone_lends_and_takes_back_offline_and_both_records_sync_once(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 4).await;
        let secret = enroll(&app.store, "n1", &app.keys).await;
        // A loan made online before the round (patient 1, device 3): it comes back at the visit.
        let mut tx = app.store.begin().await.unwrap();
        let other = loans::check_out(&mut tx, &b.nurse, b.check_out_request(1, &[3]), &app.state.receipts)
            .await
            .unwrap()
            .loan
            .id;
        let mut numbers = Vec::new();
        for p in &b.patients[..2] {
            numbers.push(lending::store::patients::get(&mut tx, p).await.unwrap().unwrap().number);
        }
        let mut tags = Vec::new();
        for d in &b.devices[..2] {
            tags.push(lending::store::devices::get(&mut tx, d).await.unwrap().unwrap().asset_tag);
        }
        tx.commit().await.unwrap();

        let (driver, c) = phone_ready(&app, &b, &secret, &numbers, &tags).await;

        // No signal from here.
        cdp(&driver, &c, "Network.enable", json!({})).await;
        offline_mode(&driver, &c, true).await;
        until(&c, "return navigator.onLine === false", "going offline").await;
        click(&c, &format!("input[name=patient_id][value='{}']", b.patients[0])).await;
        click(&c, &format!("input[name=device_id][value='{}']", b.devices[0])).await;
        click(&c, &format!("input[name=device_id][value='{}']", b.devices[1])).await;
        until(&c, "return document.getElementById('offline-explanation').textContent.length > 20", "the explanation").await;
        set_value(&c, "#lend-due-on", "2099-01-01").await;
        set_value(&c, "#lend-signer", "山田 花子").await;
        click(&c, "input[name=relationship][value=self]").await;
        let pad = c.find(Locator::Id("signature-pad")).await.unwrap();
        c.execute("document.getElementById('signature-pad').scrollIntoView({block: 'center'})", vec![]).await.unwrap();
        let step = Some(std::time::Duration::from_millis(20));
        let mut strokes = MouseActions::new("finger".into())
            .then(PointerAction::MoveToElement { element: pad, duration: None, x: -100.0, y: 0.0 })
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT });
        for (x, y) in [(20.0, -25.0), (25.0, 30.0), (30.0, -20.0)] {
            strokes = strokes.then(PointerAction::MoveBy { duration: step, x, y });
        }
        c.perform_actions(strokes.then(PointerAction::Up { button: MOUSE_BUTTON_LEFT })).await.unwrap();
        click(&c, "#offline-lend input[name=explained]").await;
        save_screenshot(&c, "offline-1-lend-signed-390x844.png").await;
        click(&c, "#lend-submit").await;
        until(&c, &status_has("端末に保存しました"), "keeping the loan on the phone").await;
        until(&c, &badge_is(1), "「未送信 1件」").await;
        save_screenshot(&c, "offline-2-kept-on-the-phone-390x844.png").await;

        // Reloaded without a signal: the page comes from the service worker, the outbox stays.
        c.refresh().await.unwrap();
        until(&c, "return !!document.getElementById('offline-app') && !document.getElementById('offline-app').hidden", "the page offline").await;
        until(&c, &badge_is(1), "the outbox after the reload").await;
        until(&c, &format!("return !!document.querySelector(\"input[name=return][value='{other}|{}']\")", b.devices[3]), "the other loan").await;
        click(&c, &format!("input[name=return][value='{other}|{}']", b.devices[3])).await;
        set_value(&c, "#return-by", "山田 太郎").await;
        click(&c, "#return-submit").await;
        until(&c, &badge_is(2), "「未送信 2件」").await;
        save_screenshot(&c, "offline-3-two-unsent-after-reload-390x844.png").await;
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::loans::open_loan_of_device(&mut tx, &b.devices[0]).await.unwrap().is_none());
        assert!(lending::store::loans::open_loan_of_device(&mut tx, &b.devices[3]).await.unwrap().is_some());
        drop(tx);

        // The signal returns: the `online` event sends both.
        offline_mode(&driver, &c, false).await;
        until(&c, "return document.getElementById('outbox-badge').hidden", "the outbox emptying").await;
        click(&c, "#sync-button").await;
        // The visits' patients are cleared from the phone once the records were sent.
        until(&c, "return document.querySelectorAll('#lend-patients input').length === 0", "clearing the cache").await;
        c.close().await.unwrap();
        drop(driver);

        let mut tx = app.store.read().await.unwrap();
        let loan = lending::store::loans::open_loan_of_device(&mut tx, &b.devices[0]).await.unwrap().unwrap();
        assert_eq!(lending::store::loans::open_loan_of_device(&mut tx, &b.devices[1]).await.unwrap().unwrap().id, loan.id);
        assert!(lending::store::loans::open_loan_of_device(&mut tx, &b.devices[3]).await.unwrap().is_none());
        let receipt = loans::check_receipt(&mut tx, &app.state.receipts, &loan.consent_id).await.unwrap();
        assert!(receipt.valid, "the consent's receipt verifies");
        let consent = lending::store::loans::consent(&mut tx, &loan.consent_id).await.unwrap().unwrap();
        assert_eq!(consent.signature_svg.matches("<path").count(), 1, "the drawn stroke");
        for (action, n) in [("offline.check_out", 1), ("offline.return", 1), ("loan.check_out", 2), ("loan.return", 1)] {
            assert_eq!(lending::store::audit::count_action(&mut tx, action).await.unwrap(), n, "{action}");
        }
        let events = lending::store::audit::for_target(&mut tx, "loan", &loan.id).await.unwrap();
        let ev = events.iter().find(|e| e.action == "offline.check_out").unwrap();
        let details: Value = serde_json::from_str(&ev.details).unwrap();
        assert!(details["phone_time"].is_string() && details["server_time"].is_string(), "{details}");
        assert_ne!(details["phone_time"], details["server_time"]);
        drop(tx);
        app.stop().await;
    }
);

/// Reads, alters and re-encrypts the first record of the outbox, as someone holding the unlocked
/// phone could (the AES key is usable by the page, not extractable): `from` becomes `to` in it.
const TAMPER: &str = "const [from, to, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
(async () => {
  const db = await new Promise((ok, fail) => { const r = indexedDB.open('lending-offline', 1); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const req = (store, f) => new Promise((ok, fail) => { const r = f(db.transaction(store, 'readwrite').objectStore(store)); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const aes = await req('keys', s => s.get('aes'));
  const item = (await req('outbox', s => s.getAll()))[0];
  const rec = JSON.parse(new TextDecoder().decode(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: item.box.iv }, aes, item.box.data)));
  rec.payload = rec.payload.split(from).join(to);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  item.box = { iv, data: await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, aes, new TextEncoder().encode(JSON.stringify(rec))) };
  await req('outbox', s => s.put(item));
  db.close();
  done(true);
})().catch(e => done(String(e)));";

both_dbs!(
    async fn a_record_altered_on_the_phone_is_refused_and_audited(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let secret = enroll(&app.store, "n1", &app.keys).await;
        let mut tx = app.store.read().await.unwrap();
        let number = lending::store::patients::get(&mut tx, &b.patients[0]).await.unwrap().unwrap().number;
        let tag = lending::store::devices::get(&mut tx, &b.devices[0]).await.unwrap().unwrap().asset_tag;
        drop(tx);
        let (driver, c) = phone_ready(&app, &b, &secret, &[number], &[tag]).await;
        cdp(&driver, &c, "Network.enable", json!({})).await;
        offline_mode(&driver, &c, true).await;
        until(&c, "return navigator.onLine === false", "going offline").await;
        click(&c, &format!("input[name=patient_id][value='{}']", b.patients[0])).await;
        click(&c, &format!("input[name=device_id][value='{}']", b.devices[0])).await;
        set_value(&c, "#lend-due-on", "2099-01-01").await;
        set_value(&c, "#lend-signer", "山田 花子").await;
        click(&c, "input[name=relationship][value=self]").await;
        let pad = c.find(Locator::Id("signature-pad")).await.unwrap();
        c.execute("document.getElementById('signature-pad').scrollIntoView({block: 'center'})", vec![]).await.unwrap();
        let stroke = MouseActions::new("finger".into())
            .then(PointerAction::MoveToElement { element: pad, duration: None, x: -50.0, y: 0.0 })
            .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
            .then(PointerAction::MoveBy { duration: Some(std::time::Duration::from_millis(20)), x: 80.0, y: 20.0 })
            .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
        c.perform_actions(stroke).await.unwrap();
        click(&c, "#offline-lend input[name=explained]").await;
        click(&c, "#lend-submit").await;
        until(&c, &badge_is(1), "「未送信 1件」").await;

        // Another device written into the record after it was signed.
        let args = vec![json!(b.devices[0]), json!(b.devices[1])];
        assert_eq!(c.execute_async(TAMPER, args).await.unwrap(), json!(true));
        offline_mode(&driver, &c, false).await;
        click(&c, "#sync-button").await;
        until(&c, "return !!document.querySelector('#sync-results .sync-refused')", "the refusal shown").await;
        until(&c, &badge_is(1), "the refused record kept on the phone").await;
        // Signing out clears the visits' patients from the phone, never the outbox.
        let stores = "const done = arguments[arguments.length - 1]; \
            const r = indexedDB.open('lending-offline', 1); r.onsuccess = () => { const db = r.result; \
            const t = db.transaction(['cache', 'outbox']); const a = t.objectStore('cache').count(); \
            const b = t.objectStore('outbox').count(); t.oncomplete = () => { db.close(); done([a.result, b.result]); }; }; \
            r.onerror = () => done(null);";
        assert_eq!(c.execute_async(stores, vec![]).await.unwrap(), json!([1, 1]), "prepared and unsent before");
        c.execute("document.querySelector(\"form[action='/logout']\").requestSubmit()", vec![]).await.unwrap();
        until(&c, "return location.pathname === '/login'", "signing out").await;
        assert_eq!(c.execute_async(stores, vec![]).await.unwrap(), json!([0, 1]), "patients cleared, outbox kept");
        c.close().await.unwrap();
        drop(driver);

        let mut tx = app.store.read().await.unwrap();
        assert_eq!(lending::store::audit::count_action(&mut tx, "offline.refused").await.unwrap(), 1);
        for d in &b.devices {
            assert!(lending::store::loans::open_loan_of_device(&mut tx, d).await.unwrap().is_none(), "nothing lent");
        }
        drop(tx);
        app.stop().await;
    }
);
