//! The public report form as a patient or family member meets it: a long Japanese message is
//! accepted; a refused one comes back opened at the form, the reasons first, everything typed
//! kept; and whatever is refused before our handlers (too large, no such address, wrong method)
//! is a page in the visitor's language with the clinic's phones, never a bare English text.

use lending::both_dbs;
use lending::service::reports;
use reqwest::StatusCode;

use crate::spawn;

both_dbs!(
    async fn a_long_japanese_report_is_accepted_and_a_refused_one_keeps_everything(backend) {
        let app = spawn(backend).await;
        let token = app.token(0).await;
        let url = app.url(&format!("/d/{token}/report?lang=ja"));
        let form_token = app.form_token(&token).await;

        // 1,999 Japanese characters: 9 bytes each once url-encoded, about 18 kB.
        let long = "電源が入りません。".repeat(222) + "あ";
        assert_eq!(long.chars().count(), 1999);
        let r = app.client.post(&url).form(&[("form_token", form_token.as_str()), ("category", "not_working"), ("body", long.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "a 1,999-character report is accepted");
        assert!(r.headers()["location"].to_str().unwrap().ends_with("reported=1#thanks"));
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(reports::list(&mut tx, true).await.unwrap()[0].body, long);
        drop(tx);

        // No category, a phone number that is not one, 2,001 characters: refused, and the page
        // says why at the top of the form it opens at, with every value as typed.
        let too_long = "あ".repeat(2001);
        let r = app
            .client
            .post(&url)
            .form(&[("form_token", form_token.as_str()), ("body", too_long.as_str()), ("callback_phone", "０９０ー１２３４abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = r.text().await.unwrap();
        let errors = page.find("id=\"report-errors\"").expect("the reasons are listed");
        let form = page.find(&format!("action=\"/d/{token}/report?lang=ja#report\"")).expect("the form posts back to itself, opened at the form");
        let report = page.find("id=\"report\"").unwrap();
        assert!(report < errors && errors < form, "the reasons come first in the form's section");
        for reason in ["どのようなことか、お選びください。", "2000文字以内でお書きください", "電話番号は、数字"] {
            assert!(page[errors..form].contains(reason), "{reason} at the top");
        }
        assert!(page.contains("id=\"category-error\"") && page.contains("id=\"body-error\"") && page.contains("id=\"callback_phone-error\""), "and beside each field");
        assert!(page.contains(&format!(">{too_long}</textarea>")), "the message is kept");
        assert!(page.contains("value=\"０９０ー１２３４abc\""), "the phone number is kept as typed");

        // With a category chosen, that choice is kept too.
        let r = app.client.post(&url).form(&[("form_token", form_token.as_str()), ("category", "alarm"), ("callback_phone", "x")]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("value=\"alarm\" required checked"));
        let mut tx = app.store.read().await.unwrap();
        assert_eq!(reports::list(&mut tx, true).await.unwrap().len(), 1, "nothing refused was stored");
        drop(tx);
        app.stop().await;
    }
);

both_dbs!(
    async fn refusals_on_public_pages_are_pages_with_the_clinic_phones(backend) {
        let app = spawn(backend).await;
        let token = app.token(0).await;
        let form_token = app.form_token(&token).await;
        let huge = "あ".repeat(5000);
        let phones = |page: &str| page.contains("tel:0300001111") && page.contains("tel:0300002222");

        // Larger than the body limit: a Japanese page (English on request), headers as usual.
        for (lang, words) in [("ja", "長すぎるため"), ("en", "too long")] {
            let r = reqwest::Client::new()
                .post(app.url(&format!("/d/{token}/report?lang={lang}")))
                .form(&[("form_token", form_token.as_str()), ("category", "other"), ("body", huge.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
            assert!(r.headers().get("content-security-policy").is_some());
            let page = r.text().await.unwrap();
            assert!(page.contains(words) && phones(&page), "{lang}: {page}");
            assert!(!page.contains("length limit exceeded"));
        }
        // No such address, the wrong method, a post from another site.
        let r = app.client.get(app.url("/no/such/page")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(phones(&r.text().await.unwrap()));
        let r = app.client.get(app.url(&format!("/d/{token}/report"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        let page = r.text().await.unwrap();
        assert!(page.contains("お電話で") && phones(&page), "{page}");
        let r = app
            .client
            .post(app.url(&format!("/d/{token}/report")))
            .header("sec-fetch-site", "cross-site")
            .form(&[("form_token", form_token.as_str()), ("category", "other")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(phones(&r.text().await.unwrap()));

        // The API keeps answering JSON.
        let r = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/devices/{token}/reports")))
            .json(&serde_json::json!({ "category": "other", "body": "あ".repeat(20_000) }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let j: serde_json::Value = r.json().await.unwrap();
        assert_eq!(j["error"], "payload_too_large");
        assert!(j["message_ja"].as_str().unwrap().contains("大きすぎ"));
        app.stop().await;
    }
);
