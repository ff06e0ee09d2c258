//! The staff menu and the home page per role.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::spawn_app;

/// The `href`s of the menu (`<nav aria-label=…>` inside the header) and the current one.
fn menu_links(html: &str) -> (Vec<String>, Vec<String>) {
    let menu = html.split("<details class=\"menu\">").nth(1).and_then(|m| m.split("</details>").next()).unwrap();
    let mut links = Vec::new();
    let mut current = Vec::new();
    for a in menu.split("<a href=\"").skip(1) {
        let href = a.split('"').next().unwrap().to_owned();
        if a.split('>').next().unwrap().contains("aria-current=\"page\"") {
            current.push(href.clone());
        }
        links.push(href);
    }
    (links, current)
}

// Each role's menu holds only pages it may open (none answers 403), marks the page shown, and
// auditors get no lending link.
both_dbs!(
    async fn menu_per_role(backend) {
    let app = spawn_app(backend).await;
    seed_basic(&app.store, 1).await;
    for (login, expect_lend) in [("n1", true), ("a1", true), ("au1", false)] {
        enroll(&app.store, login, &app.keys).await;
        let (cookie, _) = app.session(login, 0).await;
        let get = |path: String| {
            app.client.get(app.url(&path)).header("cookie", format!("lending_session={cookie}")).send()
        };
        let home = get("/".into()).await.unwrap().text().await.unwrap();
        let (links, current) = menu_links(&home);
        assert_eq!(current, ["/"], "{login}: the home page is marked");
        assert_eq!(links.iter().any(|l| l == "/loans/new"), expect_lend, "{login}: {links:?}");
        assert_eq!(links.iter().any(|l| l == "/audit"), login != "n1", "{login}: {links:?}");
        for link in links.iter().filter(|l| l.starts_with('/') && !l.starts_with("/lang")) {
            let r = get(link.clone()).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{login}: {link}");
            let (_, current) = menu_links(&r.text().await.unwrap());
            assert_eq!(current, std::slice::from_ref(link), "{login}: {link} is marked");
        }
        let deeper = get("/registry/models".into()).await.unwrap().text().await.unwrap();
        assert_eq!(menu_links(&deeper).1, ["/registry/models"]);
    }
    app.stop().await;
}
);
