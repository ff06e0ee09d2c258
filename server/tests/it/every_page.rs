//! Every staff page in the states a clinic sees them (a kit out, a device back and wiped, a
//! patient report): axe-core finds no accessibility violation of any impact on a phone, in
//! Japanese and in English; and each language's pages are wholly in that language, apart from
//! codes and what people entered.

use chrono::Duration;
use lending::browser::{axe_source, AXE_RUN};
use lending::service::{loans, wipes};
use lending::testing::{enroll, seed_basic, Basic};
use lending::{both_dbs, Backend};

use crate::browser::{browser_sign_in, open_browser};
use crate::TestApp;

/// What the pages are about: ids to fill the routes with.
struct Seeded {
    b: Basic,
    /// The open kit (devices 0 and 1) of patient 0.
    loan: String,
    /// Patient 1's loan of device 2, returned.
    returned_loan: String,
    verification_code: String,
    /// The wipe of device 2, waiting for a second person.
    wipe: String,
}

async fn seed(app: &TestApp) -> Seeded {
    let b = seed_basic(&app.store, 4).await;
    let key = lending::testing::receipt_key();
    let today = app.store.clock().today_tokyo();
    let mut tx = app.store.begin().await.unwrap();
    let mut kit = b.check_out_request(0, &[0, 1]);
    kit.due_on = today + Duration::days(14);
    let open = loans::check_out(&mut tx, &b.nurse, kit, &key).await.unwrap();
    let mut one = b.check_out_request(1, &[2]);
    one.due_on = today + Duration::days(3);
    let returned = loans::check_out(&mut tx, &b.nurse, one, &key).await.unwrap();
    tx.commit().await.unwrap();
    app.store.clock().advance(Duration::days(5));
    let mut tx = app.store.begin().await.unwrap();
    let back =
        loans::ReturnRequest {
            device_id: b.devices[2].clone(), returned_by_name: "山田".into(), ..Default::default()
        };
    loans::return_device(&mut tx, &b.nurse, back).await.unwrap();
    let wipe = wipes::record(&mut tx, &b.nurse, b.wipe_request(&b.devices[2])).await.unwrap();
    tx.commit().await.unwrap();
    lending::testing::report_alarm(&app.store, &b.devices[1]).await;
    Seeded {
        loan: open.loan.id,
        returned_loan: returned.loan.id,
        verification_code: open.consent.verification_code,
        wipe: wipe.id,
        b,
    }
}

/// Every page an admin can open, with real ids (an admin sees what a nurse sees, and more).
fn pages(s: &Seeded) -> Vec<String> {
    let (d, b) = (&s.b.devices, &s.b);
    vec![
        "/".into(),
        "/loans/new".into(),
        format!("/loans/{}", s.loan),
        format!("/loans/{}/copy", s.loan),
        format!("/loans/{}", s.returned_loan),
        format!("/loans/{}/returns/receipt", s.returned_loan),
        format!("/consents/verify?code={}", s.verification_code),
        "/patients?q=山田".into(),
        format!("/patients/{}", b.patients[0]),
        format!("/patients/{}/edit", b.patients[0]),
        "/devices".into(),
        format!("/devices/{}/return", d[0]),
        format!("/devices/{}/custody", d[0]),
        format!("/devices/{}/lost", d[0]),
        format!("/devices/{}/wipe", d[3]),
        format!("/wipes/{}/certificate", s.wipe),
        "/devices/import".into(),
        "/reports".into(),
        "/labels".into(),
        "/dashboard".into(),
        "/dashboard?view=awaiting_wipe".into(),
        "/registry/institution".into(),
        "/registry/vendors".into(),
        "/registry/models".into(),
        format!("/registry/models/{}", b.model_id),
        "/audit".into(),
        "/management-report?month=2026-11".into(),
        "/inspection".into(),
        "/admin/users".into(),
        "/admin/tokens".into(),
        "/admin/mail".into(),
        "/account/password".into(),
        "/account/tokens".into(),
        "/offline".into(),
        "/offline/conflicts".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_violation_on_any_page_in_japanese_or_english() {
    let app = crate::spawn_app(Backend::Sqlite).await;
    let s = seed(&app).await;
    let secret = enroll(&app.store, "a1", &app.keys).await;
    let axe = axe_source();
    let (_driver, c) = open_browser(390, 844).await;
    let mut found = Vec::new();
    let mut check = async |what: &str| {
        c.execute(&axe, vec![]).await.unwrap();
        let v = c.execute_async(AXE_RUN, vec![]).await.unwrap();
        for line in v.as_array().unwrap() {
            found.push(format!("{what}: {}", line.as_str().unwrap()));
        }
    };
    c.goto(&app.url("/login")).await.unwrap();
    check("/login").await;
    browser_sign_in(&c, &app, "a1", &secret).await;
    for lang in ["ja", "en"] {
        c.goto(&app.url(&format!("/lang?to={lang}"))).await.unwrap();
        for path in pages(&s) {
            c.goto(&app.url(&path)).await.unwrap();
            let at = c.current_url().await.unwrap();
            assert!(!at.path().starts_with("/login"), "{path}: signed out");
            check(&format!("{lang} {path}")).await;
        }
    }
    c.close().await.unwrap();
    app.stop().await;
    assert!(found.is_empty(), "axe-core violations:\n{}", found.join("\n"));
}

both_dbs!(
    async fn each_language_s_pages_are_wholly_in_it(backend) {
        let app = crate::spawn_app(backend).await;
        let s = seed(&app).await;
        enroll(&app.store, "a1", &app.keys).await;
        let (cookie, _) = app.session("a1", 0).await;
        let entered = entered_texts(&app, &s).await;
        let mut found = Vec::new();
        for lang in ["ja", "en"] {
            for path in pages(&s) {
                let r = app
                    .client
                    .get(app.url(&path))
                    .header("cookie", format!("lending_session={cookie}; lang={lang}"))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{lang} {path}: {}", r.status());
                let mut text = visible_text(&r.text().await.unwrap());
                for e in &entered {
                    text = text.replace(e.as_str(), " ");
                }
                let foreign = if lang == "ja" { latin_words(&text) } else { japanese_runs(&text) };
                if !foreign.is_empty() {
                    found.push(format!("{lang} {path}: {foreign:?}"));
                }
            }
        }
        app.stop().await;
        assert!(found.is_empty(), "words of the other language:\n{}", found.join("\n"));
    }
);

/// What people typed into the registry and records (names, model and vendor texts, the signed
/// explanation): shown as entered, in whatever language it was entered.
async fn entered_texts(app: &TestApp, s: &Seeded) -> Vec<String> {
    let mut tx = app.store.read().await.unwrap();
    let mut out: Vec<String> = Vec::new();
    let i = lending::store::registry::institution(&mut tx).await.unwrap().unwrap();
    out.extend([i.name, i.name_en, i.address, i.day_hours, i.night_hours, i.email]);
    for m in lending::store::registry::models(&mut tx).await.unwrap() {
        if let Some(d) = &m.current_document_id {
            let d = lending::store::registry::document(&mut tx, d).await.unwrap().unwrap();
            out.extend([d.title_ja, d.title_en, d.body_ja, d.body_en]);
        }
        out.extend(serde_json::from_str::<Vec<String>>(&m.wipe_steps).unwrap_or_default());
        out.extend([m.manufacturer, m.model_name, m.model_name_en, m.connectivity, m.summary_ja, m.summary_en]);
    }
    for p in
        lending::store::patients::search(&mut tx, &lending::store::patients::Search::new(""), 100, 0).await.unwrap()
    {
        out.extend(p.name.split_whitespace().map(str::to_owned));
        out.extend([p.name, p.kana]);
    }
    // The wipe as recorded (its tool as typed).
    let wipe = lending::store::wipes::get(&mut tx, &s.wipe).await.unwrap().unwrap();
    out.extend([wipe.tool, wipe.tool_version]);
    // The explanation as it was signed.
    for loan in [&s.loan, &s.returned_loan] {
        let loan = lending::store::loans::get(&mut tx, loan).await.unwrap().unwrap();
        out.push(lending::store::loans::consent(&mut tx, &loan.consent_id).await.unwrap().unwrap().document_text);
    }
    for u in lending::store::users::list(&mut tx).await.unwrap() {
        out.extend([u.name, u.login, u.site]);
    }
    out.extend(["貸出に関するご説明", "日中は", "夜間は", "へご連絡ください", "山田", "テスト"].map(str::to_owned));
    // Longest first, so a name is not cut by a shorter one inside it.
    out.retain(|t| !t.trim().is_empty());
    out.sort_by_key(|t| std::cmp::Reverse(t.chars().count()));
    out
}

/// The text a reader sees: no scripts, styles or drawings; tags become spaces; a few entities.
fn visible_text(html: &str) -> String {
    // Codes are codes in any language: `<code>` (audit actions, details), and placeholders.
    let html = ["script", "style", "svg", "code"].iter().fold(html.to_owned(), |h, tag| without(&h, tag));
    let mut text = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'")
}

/// `html` without its `<tag …>…</tag>` elements.
fn without(html: &str, tag: &str) -> String {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = String::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start]);
        rest = rest[start..].find(&close).map_or("", |end| &rest[start + end + close.len()..]);
    }
    out.push_str(rest);
    out
}

/// Words of two or more Latin letters that are not codes, units or URLs.
fn latin_words(text: &str) -> Vec<String> {
    // Initialisms and product names Japanese staff read as they are; units (SpO₂).
    const ALLOWED: &[&str] = &[
        "QR",
        "ID",
        "CSV",
        "PDF",
        "ZIP",
        "FHIR",
        "API",
        "URL",
        "SHA",
        "IoT",
        "NIST",
        "SP",
        "Excel",
        "mm",
        "English",
        "SpO",
        "iPhone",
        "Safari",
        "JavaScript",
    ];
    // A code: verification codes, asset tags, ids and hashes (capitals, digits, hyphens; or hex).
    let code = |w: &str| {
        w.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
            || (w.len() >= 16 && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
            || (w.starts_with('{') && w.ends_with('}'))
    };
    text.split(|c: char| c.is_whitespace() || "（）()「」、。：／,".contains(c))
        .filter(|w| !w.contains("://") && !w.contains('@') && !code(w))
        .flat_map(|w| w.split(|c: char| !c.is_ascii_alphabetic()))
        .filter(|w| w.len() >= 2 && !ALLOWED.contains(w))
        .map(str::to_owned)
        .collect()
}

/// Runs of kana or kanji (the language switch's 「日本語」 is named in its own language).
fn japanese_runs(text: &str) -> Vec<String> {
    let japanese = |c: char| matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{9fff}' | '\u{ff66}'..='\u{ff9f}');
    text.split(|c: char| !japanese(c)).filter(|r| !r.is_empty() && *r != "日本語").map(str::to_owned).collect()
}
