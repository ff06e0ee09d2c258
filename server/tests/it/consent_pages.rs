//! The consent verify page: the code from a patient's copy verifies; a mistyped or altered
//! code finds nothing; a receipt not signed by this institution's key does not verify.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::{spawn_app_with_clock, TestApp};

async fn lend(
    app: &TestApp,
    b: &lending::testing::Basic,
    device: usize,
    key: &lending::receipts::ReceiptKey,
) -> String {
    let mut tx = app.store.begin().await.unwrap();
    let out =
        lending::service::loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[device]), key).await.unwrap();
    tx.commit().await.unwrap();
    out.consent.verification_code
}

async fn check(app: &TestApp, who: &reqwest::Client, code: &str) -> String {
    let r = who.get(app.url("/consents/verify")).query(&[("code", code)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

both_dbs!(
    async fn the_verify_page_accepts_a_real_code_and_rejects_a_tampered_one(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        // The service's own key (data/keys/receipt.key, made at start-up).
        let ours = lending::Config::for_tests(&app.db.data_dir, &app.db.url).receipt_key().unwrap();
        let code = lend(&app, &b, 0, &ours).await;
        let foreign = lend(&app, &b, 1, &lending::testing::receipt_key()).await;

        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let empty = check(&app, &nurse, "").await;
        assert!(empty.contains("確認コード") && !empty.contains("id=\"verify-"));
        let page = check(&app, &nurse, &code).await;
        assert!(page.contains("id=\"verify-ok\"") && page.contains("確認できました"), "the real code verifies");
        let page = check(&app, &nurse, &code.to_lowercase()).await;
        assert!(page.contains("id=\"verify-ok\""), "lower case typing is fine");

        let last = code.chars().last().unwrap();
        let tampered = format!("{}{}", &code[..code.len() - 1], if last == 'A' { 'B' } else { 'A' });
        let page = check(&app, &nurse, &tampered).await;
        assert!(page.contains("id=\"verify-unknown\"") && !page.contains("id=\"verify-ok\""), "an altered code finds nothing");
        let page = check(&app, &nurse, "<script>x</script>").await;
        assert!(page.contains("id=\"verify-unknown\"") && !page.contains("<script>x"));

        let page = check(&app, &nurse, &foreign).await;
        assert!(page.contains("id=\"verify-bad\"") && page.contains("一致しません"), "another key's receipt does not verify");

        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let auditor = app.sign_in("au1", &au1).await;
        assert!(check(&app, &auditor, &code).await.contains("id=\"verify-ok\""), "auditors may check too");
        app.stop().await;
    }
);
