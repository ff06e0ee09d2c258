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

/// The part of a page from `id="{id}"` to the end of its section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    html.split(&format!("id=\"{id}\"")).nth(1).map_or("", |s| s.split("</section>").next().unwrap())
}

both_dbs!(
    async fn home_page_per_role(backend) {
        use chrono::Duration;
        use lending::service::{custody, loans, wipes};
        let app = crate::spawn_app(backend).await;
        let b = seed_basic(&app.store, 4).await;
        let clock = app.store.clock().clone();
        let today = clock.today_tokyo();
        let key = lending::testing::receipt_key();
        let mut tx = app.store.begin().await.unwrap();
        // n1: a kit due in 33 days and a device due in 5; n2: one due in 20.
        for (actor, patient, devices, days) in
            [(&b.nurse, 0, &[0, 1][..], 33), (&b.nurse, 1, &[2][..], 5), (&b.nurse2, 2, &[3][..], 20)]
        {
            let mut kit = b.check_out_request(patient, devices);
            kit.due_on = today + Duration::days(days);
            loans::check_out(&mut tx, actor, kit, &key).await.unwrap();
        }
        tx.commit().await.unwrap();
        // 31 days on: the kit is due in 2 days (soon), the other overdue; custody checks are due,
        // except for T-0000, confirmed by phone today. n2's device came back and n2 wiped it.
        clock.advance(Duration::days(31));
        let mut tx = app.store.begin().await.unwrap();
        let check = |d: usize| custody::NewCheck {
            device_id: b.devices[d].clone(),
            method: "phone".into(),
            confirmed: true,
            notes: String::new(),
        };
        custody::record(&mut tx, &b.nurse, check(0)).await.unwrap();
        let back = loans::ReturnRequest {
            device_id: b.devices[3].clone(),
            damaged: false,
            accessories_complete: true,
            cleaned: true,
            condition_notes: String::new(),
            returned_by_name: String::new(),
            signature_svg: None,
        };
        loans::return_device(&mut tx, &b.nurse2, back).await.unwrap();
        let wipe = wipes::WipeRequest {
            device_id: b.devices[3].clone(),
            method: "clear".into(),
            tool: String::new(),
            tool_version: String::new(),
            checklist: b.wipe_steps.clone(),
            evidence_ref: String::new(),
            passed: true,
            destination: String::new(),
            notes: String::new(),
        };
        let wipe = wipes::record(&mut tx, &b.nurse2, wipe).await.unwrap();
        tx.commit().await.unwrap();
        lending::testing::report_alarm(&app.store, &b.devices[2]).await;

        let page = |login: &'static str| {
            let app = &app;
            async move {
                enroll(&app.store, login, &app.keys).await;
                let (cookie, _) = app.session(login, 0).await;
                let r = app.client.get(app.url("/")).header("cookie", format!("lending_session={cookie}")).send();
                r.await.unwrap().text().await.unwrap()
            }
        };

        // The nurse: the lending button, her two loans (not n2's), soonest due first, marked.
        let n1 = page("n1").await;
        let main = n1.split("<main>").nth(1).unwrap();
        assert!(main.contains("class=\"button big\" href=\"/loans/new\">貸出<"));
        let mine = section(main, "my-loans");
        assert!(mine.contains("担当の貸出（2）"), "{mine}");
        let (overdue, soon) = (mine.find("鈴木 一郎").unwrap(), mine.find("山田 花子").unwrap());
        assert!(overdue < soon && !mine.contains("高橋"), "{mine}");
        assert!(mine.contains("class=\"card loan overdue\"") && mine.contains("class=\"card loan soon\""));
        assert!(mine.contains("T-0000（") && mine.contains("T-0001（"), "the kit's devices");
        let custody = section(main, "custody-due");
        assert!(custody.contains("T-0001") && custody.contains("T-0002") && !custody.contains("T-0000"), "{custody}");
        assert!(custody.contains(&format!("/devices/{}/custody", b.devices[1])));
        assert!(section(main, "wipes").contains(&format!("/wipes/{}/certificate#verify", wipe.id)), "n1 may verify n2's wipe");
        let reports = section(main, "reports");
        assert!(reports.contains("未対応の連絡（1）") && reports.contains("T-0002"), "{reports}");
        assert!(section(main, "clinic").is_empty(), "no clinic figures for a nurse");
        // Reading her loans listed patients: audited as the dashboard's lists are.
        let events = lending::store::audit::recent(&mut app.store.read().await.unwrap(), 5).await.unwrap();
        let read = events.iter().find(|e| e.action == "dashboard.view" && e.actor_login == "n1").unwrap();
        assert!(read.details.contains(&b.patients[0]) && read.details.contains(&b.patients[1]));
        assert!(!read.details.contains(&b.patients[2]));

        // n2 recorded the wipe: it is not hers to verify.
        let n2 = page("n2").await;
        assert!(!section(&n2, "wipes").contains("T-0003"), "not listed for the wiper");

        // The admin: her own (no) loans and the clinic's figures; the auditor: figures only.
        let admin = page("a1").await;
        assert!(section(&admin, "my-loans").contains("貸出中の機器はありません"));
        assert!(section(&admin, "clinic").contains("href=\"/dashboard?view=overdue\""));
        let auditor = page("au1").await;
        assert!(!auditor.contains("/loans/new") && section(&auditor, "my-loans").is_empty());
        assert!(!section(&auditor, "wipes").contains("/verify"));
        assert!(section(&auditor, "clinic").contains("返却遅れ"));
        let events = lending::store::audit::recent(&mut app.store.read().await.unwrap(), 5).await.unwrap();
        assert!(!events.iter().any(|e| e.action == "dashboard.view" && e.actor_login == "au1"));
        app.stop().await;
    }
);

#[tokio::test]
async fn staff_pages_have_the_icon() {
    let app = spawn_app(lending::Backend::Sqlite).await;
    let login = app.client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(login.contains("<link rel=\"icon\" href=\"/static/favicon.svg\" type=\"image/svg+xml\">"));
    for path in ["/static/favicon.svg", "/favicon.ico"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
        assert!(r.text().await.unwrap().starts_with("<svg"), "{path}");
    }
    app.stop().await;
}
