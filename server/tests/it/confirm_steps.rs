//! Admin actions that take away access or cannot be undone (disable a user, reset a second
//! factor or a password, revoke a token) have a confirmation step: the page says what will
//! happen, and a post that did not come from it changes nothing. Nobody is shown a button
//! whose action would answer 403.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::{location, TestApp};

/// A page as a signed-in `login` sees it: (status, body).
async fn get(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = app.client.get(app.url(path)).header("cookie", format!("lending_session={cookie}")).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn post(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", format!("lending_session={cookie}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn user(app: &TestApp, login: &str) -> lending::store::users::User {
    let mut tx = app.store.read().await.unwrap();
    lending::store::users::by_login(&mut tx, login).await.unwrap().unwrap()
}

async fn audited(app: &TestApp, action: &str) -> i64 {
    let mut tx = app.store.read().await.unwrap();
    lending::store::audit::count_action(&mut tx, action).await.unwrap()
}

both_dbs!(
    async fn user_changes_ask_first_and_an_unconfirmed_post_does_nothing(backend) {
        let app = crate::spawn_app(backend).await;
        seed_basic(&app.store, 0).await;
        enroll(&app.store, "a1", &app.keys).await;
        enroll(&app.store, "n2", &app.keys).await;
        let (admin, csrf) = app.session("a1", 0).await;
        let n2 = user(&app, "n2").await;
        let (list_status, list) = get(&app, &admin, "/admin/users").await;
        assert_eq!(list_status, StatusCode::OK);
        let me = user(&app, "a1").await;
        assert!(!list.contains(&format!("/admin/users/{}/disable", me.id)), "nobody is offered to disable themselves");
        for (path, ja_title, ja_point, event) in [
            ("disable", "職員を無効にしますか", "サインインできなくなります。", "user.disable"),
            ("reset-second-factor", "二要素認証をリセットしますか", "次のサインインで、二要素認証を設定し直します。", "user.reset_second_factor"),
            ("reset-password", "仮パスワードを発行しますか", "仮パスワードを一度だけ表示します。", "user.reset_password"),
        ] {
            let url = format!("/admin/users/{}/{path}", n2.id);
            // The list links to the confirmation page; nothing on it posts straight to the action.
            assert!(list.contains(&format!("href=\"{url}\"")), "{path}: the list links to its confirmation");
            assert!(!list.contains(&format!("action=\"{url}\"")), "{path}: no one-click form");
            let (status, page) = get(&app, &admin, &url).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(page.contains(ja_title) && page.contains(ja_point), "{path}: says what will happen");
            assert!(page.contains(&n2.name) && page.contains("n2"), "{path}: names the person");
            assert!(page.contains(&format!("action=\"{url}\"")) && page.contains("name=\"confirm\" value=\"yes\""));
            // A post without the confirmation shows the step again and changes nothing.
            let r = post(&app, &admin, &url, &[("csrf", &csrf)]).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert!(r.text().await.unwrap().contains(ja_title));
            assert_eq!(audited(&app, event).await, 0, "{path}: nothing done without confirmation");
            assert_eq!(user(&app, "n2").await.disabled, path != "disable", "{path}: still as it was");
            // Confirmed, it acts (and is audited).
            let r = post(&app, &admin, &url, &[("csrf", &csrf), ("confirm", "yes")]).await;
            assert!(r.status().is_success() || r.status().is_redirection(), "{path}: {}", r.status());
            if path == "reset-password" {
                assert!(r.text().await.unwrap().contains("id=\"shown-once\""), "the temporary password is shown once");
            } else {
                assert_eq!(location(&r), "/admin/users");
            }
            assert_eq!(audited(&app, event).await, 1, "{path}");
        }
        assert!(user(&app, "n2").await.disabled);

        // In English, the same step in English.
        let (_, page) = {
            let r = app
                .client
                .get(app.url(&format!("/admin/users/{}/reset-password", n2.id)))
                .header("cookie", format!("lending_session={admin}; lang=en"))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        };
        assert!(page.contains("Issue a temporary password?") && page.contains("Their current password stops working."));
        app.stop().await;
    }
);

both_dbs!(
    async fn revoking_a_token_asks_first_for_its_owner_and_for_admins(backend) {
        let app = crate::spawn_app(backend).await;
        seed_basic(&app.store, 0).await;
        for login in ["n1", "a1", "au1"] {
            enroll(&app.store, login, &app.keys).await;
        }
        let _token = app.token("n1").await;
        let id = {
            let mut tx = app.store.read().await.unwrap();
            lending::store::users::tokens(&mut tx, None).await.unwrap()[0].id.clone()
        };
        let (nurse, nurse_csrf) = app.session("n1", 0).await;
        let (_, mine) = get(&app, &nurse, "/account/tokens").await;
        let own_url = format!("/account/tokens/{id}/revoke");
        assert!(mine.contains(&format!("href=\"{own_url}\"")));
        let (status, page) = get(&app, &nurse, &own_url).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("トークンを失効させますか") && page.contains("元に戻せません"));
        let r = post(&app, &nurse, &own_url, &[("csrf", &nurse_csrf)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(audited(&app, "token.revoke").await, 0, "not without confirmation");

        // The auditor sees everyone's tokens, with no revoke button, and may not open the step.
        let (auditor, _) = app.session("au1", 0).await;
        let (_, all) = get(&app, &auditor, "/admin/tokens").await;
        assert!(all.contains("n1") && !all.contains("/revoke"), "no button the auditor may not use");
        assert_eq!(get(&app, &auditor, &format!("/admin/tokens/{id}/revoke")).await.0, StatusCode::FORBIDDEN);
        let (_, users) = get(&app, &auditor, "/admin/users").await;
        assert!(!users.contains("/disable") && !users.contains("/reset-"), "no admin-only buttons for the auditor");

        let (admin, admin_csrf) = app.session("a1", 0).await;
        let admin_url = format!("/admin/tokens/{id}/revoke");
        let (_, all) = get(&app, &admin, "/admin/tokens").await;
        assert!(all.contains(&format!("href=\"{admin_url}\"")));
        let r = post(&app, &admin, &admin_url, &[("csrf", &admin_csrf), ("confirm", "yes")]).await;
        assert_eq!(location(&r), "/admin/tokens");
        assert_eq!(audited(&app, "token.revoke").await, 1);
        app.stop().await;
    }
);
