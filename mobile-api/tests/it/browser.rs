//! The help page in a real phone-sized browser (390×844), in Japanese and English: screenshots
//! kept in test-artifacts/, tel: links present, no patient field anywhere on the page, and no
//! accessibility violation (axe-core) on the help page, its report form after a mistake, the
//! thank-you page or an unknown label's page.

use fantoccini::{ClientBuilder, Locator};
use lending::browser::{axe_source, chrome_capabilities, start_driver, AXE_RUN};
use lending::service::loans;
use lending::Backend;

use crate::spawn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_page_on_a_phone_in_japanese_and_english() {
    let app = spawn(Backend::Sqlite).await;
    // The device is out on loan to a patient, so patient data exists in the database.
    let mut tx = app.store.begin().await.unwrap();
    loans::check_out(&mut tx, &app.basic.nurse, app.basic.check_out_request(0, &[0]), &lending::testing::receipt_key())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let token = app.token(0).await;
    let driver = start_driver().await;
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(chrome_capabilities(&driver.profile_dir, 390, 844))
        .connect(&driver.url)
        .await
        .expect("chromedriver session");
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let (axe_js, mut violations) = (axe_source(), Vec::new());
    for (lang, heading) in [("ja", "お困りのときの連絡先"), ("en", "Whom to call")] {
        c.goto(&app.url(&format!("/d/{token}?lang={lang}"))).await.unwrap();
        let body = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
        assert!(body.contains(heading), "{lang}: {body}");
        for private in ["山田", "花子", "P-000000", "Hanako"] {
            assert!(!body.contains(private), "{lang}: the page shows {private}");
        }
        let tels = c.find_all(Locator::Css("a[href^='tel:']")).await.unwrap();
        assert!(tels.len() >= 2, "day and night numbers are tappable");
        assert_eq!(tels[0].attr("href").await.unwrap().as_deref(), Some("tel:0300001111"));
        std::fs::write(artifacts.join(format!("public-help-{lang}-390x844.png")), c.screenshot().await.unwrap())
            .unwrap();
        let sizes =
            c.execute("return [document.documentElement.scrollWidth, window.innerWidth]", vec![]).await.unwrap();
        let (scroll, inner) = (sizes[0].as_i64().unwrap(), sizes[1].as_i64().unwrap());
        assert!(scroll <= inner, "{lang}: no sideways scrolling on a phone (content {scroll} px, window {inner} px)");
        violations.extend(axe(&c, &axe_js, &format!("{lang} help page")).await);
        // A report sent without its kind: the page comes back with the message.
        c.execute("document.querySelector('input[name=category]').removeAttribute('required')", vec![]).await.unwrap();
        c.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Locator::Css("body")).await.unwrap();
        violations.extend(axe(&c, &axe_js, &format!("{lang} report with a mistake")).await);
        c.find(Locator::Css("input[name=category]")).await.unwrap().click().await.unwrap();
        c.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
        c.wait().for_element(Locator::Css("body")).await.unwrap();
        violations.extend(axe(&c, &axe_js, &format!("{lang} report sent")).await);
        c.goto(&app.url(&format!("/d/unknown-label?lang={lang}"))).await.unwrap();
        violations.extend(axe(&c, &axe_js, &format!("{lang} unknown label")).await);
    }

    // A report refused (a phone number that is not one): the page opens at the form, the
    // reasons in view, everything typed still there; corrected, it is sent.
    c.goto(&app.url(&format!("/d/{token}?lang=ja"))).await.unwrap();
    c.find(Locator::Css("input[name=category][value=alarm]")).await.unwrap().click().await.unwrap();
    let typed = "アラームが鳴りやみません。";
    c.find(Locator::Css("textarea[name=body]")).await.unwrap().send_keys(typed).await.unwrap();
    c.find(Locator::Css("input[name=callback_phone]")).await.unwrap().send_keys("でんわ").await.unwrap();
    c.find(Locator::Css("form[action*='/report'] button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Id("report-errors")).await.unwrap();
    let view = c
        .execute(
            "const r = document.getElementById('report-errors').getBoundingClientRect(); \
             return [r.top, r.bottom, window.innerHeight, window.scrollY, document.querySelector('textarea[name=body]').value, \
                     document.querySelector('input[name=callback_phone]').value, document.querySelector('input[value=alarm]').checked];",
            vec![],
        )
        .await
        .unwrap();
    std::fs::write(artifacts.join("public-report-error-390x844.png"), c.screenshot().await.unwrap()).unwrap();
    let (top, bottom, height, scrolled) =
        (view[0].as_f64().unwrap(), view[1].as_f64().unwrap(), view[2].as_f64().unwrap(), view[3].as_f64().unwrap());
    assert!(scrolled > 500.0 && top >= 0.0 && bottom <= height, "the reasons are in view at the form: {view}");
    assert_eq!(
        (view[4].as_str(), view[5].as_str(), view[6].as_bool()),
        (Some(typed), Some("でんわ"), Some(true)),
        "kept: {view}"
    );
    let phone = c.find(Locator::Css("input[name=callback_phone]")).await.unwrap();
    phone.clear().await.unwrap();
    phone.send_keys("０９０－１２３４－５６７８").await.unwrap();
    c.find(Locator::Css("form[action*='/report'] button[type=submit]")).await.unwrap().click().await.unwrap();
    let thanks = c.wait().for_element(Locator::Id("thanks")).await.unwrap();
    assert!(thanks.text().await.unwrap().contains("ご連絡ありがとうございました"));
    std::fs::write(artifacts.join("public-report-sent-390x844.png"), c.screenshot().await.unwrap()).unwrap();
    let mut tx = app.store.read().await.unwrap();
    let stored = lending::service::reports::list(&mut tx, true).await.unwrap();
    assert!(
        stored.iter().any(|r| (r.body.as_str(), r.callback_phone.as_str()) == (typed, "090-1234-5678")),
        "stored as typed, the phone half width"
    );
    drop(tx);
    assert!(violations.is_empty(), "axe-core violations:\n{}", violations.join("\n"));
    c.close().await.unwrap();
    app.stop().await;
}

/// axe-core's violations on the page `c` shows, one line each, prefixed with `what`.
async fn axe(c: &fantoccini::Client, axe_js: &str, what: &str) -> Vec<String> {
    c.execute(axe_js, vec![]).await.unwrap();
    let found = c.execute_async(AXE_RUN, vec![]).await.unwrap();
    found.as_array().unwrap().iter().map(|v| format!("{what}: {}", v.as_str().unwrap())).collect()
}
