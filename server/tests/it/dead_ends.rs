//! No dead ends: every link each role is shown opens (never 403), and every form a role is
//! shown posts to a route that role may use (by the route × caller table in `matrix.rs`). The
//! pages are walked from the home page over a clinic with a loan, a lost device, a wipe waiting
//! for its second person and a patient report.

use std::collections::{BTreeSet, VecDeque};

use lending::service::{incidents, loans, reports, wipes};
use lending::testing::{enroll, receipt_key, seed_basic};
use lending::Backend;
use reqwest::StatusCode;

use crate::matrix::{Got, CALLERS, STAFF};
use crate::spawn_app;

/// The values of `attr="…"` in each tag named `tag`, with the tag's other attributes.
fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    html.split(&format!("<{tag} ")).skip(1).map(|t| t.split('>').next().unwrap_or_default()).collect()
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(tag[at..].split('"').next()?.replace("&amp;", "&").replace("&#x2f;", "/"))
}

/// The route pattern `path` answers to (`{id}` segments match anything).
fn pattern_of(method: &str, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('?').next()?.split('/').collect();
    STAFF.iter().filter(|(m, _, _, _)| *m == method).map(|(_, p, _, _)| *p).find(|p| {
        let want: Vec<&str> = p.split('/').collect();
        want.len() == segments.len() && want.iter().zip(&segments).all(|(w, s)| w.starts_with('{') || w == s)
    })
}

async fn walk(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = seed_basic(&app.store, 4).await;
    let key = receipt_key();
    let mut tx = app.store.begin().await.unwrap();
    loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0]), &key).await.unwrap();
    loans::check_out(&mut tx, &b.nurse, b.check_out_request(1, &[1]), &key).await.unwrap();
    incidents::report_lost(&mut tx, &b.nurse, &b.devices[1], "lost", "").await.unwrap();
    loans::check_out(&mut tx, &b.nurse, b.check_out_request(0, &[2]), &key).await.unwrap();
    let ret = loans::ReturnRequest {
        device_id: b.devices[2].clone(),
        cleaned: true,
        returned_by_name: "山田".into(),
        ..Default::default()
    };
    loans::return_device(&mut tx, &b.nurse, ret).await.unwrap();
    wipes::record(&mut tx, &b.nurse, b.wipe_request(&b.devices[2])).await.unwrap();
    let qr = lending::store::devices::get(&mut tx, &b.devices[0]).await.unwrap().unwrap().qr_token;
    let input =
        reports::ReportInput {
            category: "alarm".into(), body: "鳴りやみません".into(), callback_phone: String::new()
        };
    reports::submit(&mut tx, &qr, &input).await.unwrap();
    tx.commit().await.unwrap();

    for (col, login) in [(1, "n1"), (2, "a1"), (3, "au1")] {
        enroll(&app.store, login, &app.keys).await;
        let (cookie, _) = app.session(login, 0).await;
        let mut seen = BTreeSet::from(["/".to_owned()]);
        let mut queue = VecDeque::from(["/".to_owned()]);
        let mut forms = BTreeSet::new();
        let mut pages = 0;
        while let Some(path) = queue.pop_front() {
            pages += 1;
            if pages > 150 {
                break;
            }
            let r = app
                .client
                .get(app.url(&path))
                .header("cookie", format!("lending_session={cookie}"))
                .send()
                .await
                .unwrap();
            let status = r.status();
            assert!(status != StatusCode::FORBIDDEN && !status.is_server_error(), "{login}: {path} answers {status}");
            if !r.headers().get("content-type").is_some_and(|t| t.to_str().unwrap().starts_with("text/html")) {
                continue;
            }
            let html = r.text().await.unwrap();
            for a in tags(&html, "a") {
                let Some(href) = attr(a, "href") else { continue };
                let href = href.split('#').next().unwrap().to_owned();
                let skip = !href.starts_with('/')
                    || ["/static/", "/lang", "/logout"].iter().any(|s| href.starts_with(s))
                    || href.contains(".csv");
                if !skip && seen.insert(href.clone()) {
                    queue.push_back(href);
                }
            }
            for form in tags(&html, "form") {
                let method = attr(form, "method").unwrap_or_else(|| "get".into()).to_ascii_uppercase();
                let Some(action) = attr(form, "action") else { continue };
                if method == "GET" {
                    if seen.insert(action.clone()) {
                        queue.push_back(action);
                    }
                } else {
                    forms.insert((path.clone(), action));
                }
            }
        }
        assert!(pages > 20, "{login}: only {pages} pages walked");
        for (page, action) in &forms {
            let pattern = pattern_of("POST", action)
                .unwrap_or_else(|| panic!("{login}: {page} posts to {action}, which no route serves"));
            let row = STAFF.iter().find(|(m, p, _, _)| *m == "POST" && *p == pattern).unwrap();
            assert_ne!(
                row.3[col],
                Got::Forbidden,
                "{login} ({}): {page} shows a form for {pattern}, which refuses them",
                CALLERS[col]
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_link_or_button_ends_in_403_sqlite() {
    walk(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_link_or_button_ends_in_403_postgres() {
    walk(Backend::Postgres).await;
}
