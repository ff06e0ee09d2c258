//! Every route of both services, from their routers, against every kind of caller:
//! anonymous, nurse, admin, auditor, a disabled user, and an expired session. 100% of cells
//! must match the explicit table below; a route missing from the table fails the test.

use std::collections::BTreeSet;

use lending::testing::seed_basic;
use lending::Backend;
use reqwest::{Method, StatusCode};

use crate::spawn_app_with_clock;

/// What a caller gets from a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Got {
    /// Past authorisation: the handler ran (any 2xx/3xx other than the sign-in redirect, or a
    /// domain answer such as 404/409/422).
    Ok,
    /// 403: signed in, but the role may not.
    Forbidden,
    /// Not signed in: pages redirect to /login, the API answers 401.
    SignIn,
}
use Got::{Forbidden as F, Ok as A, SignIn as S};

/// Callers, in column order.
pub(crate) const CALLERS: [&str; 6] = ["anonymous", "nurse", "admin", "auditor", "disabled", "expired"];

/// (method, route pattern, form body, expected per caller)
pub(crate) const STAFF: &[(&str, &str, &str, [Got; 6])] = &[
    ("GET", "/healthz", "", [A, A, A, A, A, A]),
    ("GET", "/readyz", "", [A, A, A, A, A, A]),
    ("GET", "/static/staff.css", "", [A, A, A, A, A, A]),
    ("GET", "/static/favicon.svg", "", [A, A, A, A, A, A]),
    ("GET", "/favicon.ico", "", [A, A, A, A, A, A]),
    ("GET", "/lang", "to=en", [A, A, A, A, A, A]),
    ("GET", "/login", "", [A, A, A, A, A, A]),
    ("POST", "/login", "login=nobody&password=x", [A, A, A, A, A, A]),
    ("GET", "/login/code", "", [S, A, A, A, S, S]),
    ("POST", "/login/code", "code=000000", [S, A, A, A, S, S]),
    ("POST", "/logout", "", [S, A, A, A, S, S]),
    ("GET", "/", "", [S, A, A, A, S, S]),
    ("GET", "/account/password", "", [S, A, A, A, S, S]),
    ("POST", "/account/password", "current=x&password=y&password_again=y", [S, A, A, A, S, S]),
    ("GET", "/account/totp", "", [S, A, A, A, S, S]),
    ("POST", "/account/totp", "code=000000", [S, A, A, A, S, S]),
    ("POST", "/account/sign-out-everywhere", "", [S, A, A, A, S, S]),
    ("GET", "/account/tokens", "", [S, A, A, A, S, S]),
    ("POST", "/account/tokens", "name=matrix", [S, A, A, A, S, S]),
    // The row's token is the admin's: only its owner (or an admin) may revoke it.
    ("GET", "/account/tokens/{id}/revoke", "", [S, F, A, F, S, S]),
    ("POST", "/account/tokens/{id}/revoke", "confirm=yes", [S, F, A, F, S, S]),
    ("GET", "/admin/users", "", [S, F, A, A, S, S]),
    ("POST", "/admin/users", "login=matrix{n}&name=x&role=nurse", [S, F, A, F, S, S]),
    ("GET", "/admin/users/{id}/disable", "", [S, F, A, F, S, S]),
    ("POST", "/admin/users/{id}/disable", "confirm=yes", [S, F, A, F, S, S]),
    ("POST", "/admin/users/{id}/enable", "", [S, F, A, F, S, S]),
    ("GET", "/admin/users/{id}/reset-second-factor", "", [S, F, A, F, S, S]),
    ("POST", "/admin/users/{id}/reset-second-factor", "confirm=yes", [S, F, A, F, S, S]),
    ("GET", "/admin/users/{id}/reset-password", "", [S, F, A, F, S, S]),
    ("POST", "/admin/users/{id}/reset-password", "confirm=yes", [S, F, A, F, S, S]),
    ("GET", "/admin/tokens", "", [S, F, A, A, S, S]),
    ("GET", "/admin/tokens/{id}/revoke", "", [S, F, A, F, S, S]),
    ("POST", "/admin/tokens/{id}/revoke", "confirm=yes", [S, F, A, F, S, S]),
    ("GET", "/admin/mail", "", [S, F, A, A, S, S]),
    ("POST", "/admin/mail/{id}/retry", "", [S, F, A, F, S, S]),
    ("POST", "/admin/mail/{id}/dismiss", "", [S, F, A, F, S, S]),
    // A kept consent draft leads back to the check-out form: lending, which auditors may not do.
    ("GET", "/loans/drafts/{id}", "", [S, A, A, F, S, S]),
    ("GET", "/reports", "", [S, A, A, A, S, S]),
    ("POST", "/reports/{id}/resolve", "resolution=called", [S, A, A, F, S, S]),
    ("GET", "/static/signature.js", "", [A, A, A, A, A, A]),
    ("GET", "/static/scan.js", "", [A, A, A, A, A, A]),
    ("GET", "/devices/lookup", "code=T-0000", [S, A, A, A, S, S]),
    ("GET", "/static/csv-file.js", "", [A, A, A, A, A, A]),
    ("GET", "/devices/import", "", [S, A, A, F, S, S]),
    ("POST", "/devices/import", "csv=asset_tag,model", [S, A, A, F, S, S]),
    ("GET", "/loans/new", "", [S, A, A, F, S, S]),
    ("POST", "/loans/explain", "patient_id={patient}&device_id={device}&due_on=2099-01-01", [S, A, A, A, S, S]),
    ("POST", "/loans", "patient_id={patient}&device_id={device}&due_on=2099-01-01&strokes=1,1&explained=yes&signer_name=x&relationship=self", [S, A, A, F, S, S]),
    ("GET", "/loans/{id}/copy", "", [S, A, A, A, S, S]),
    ("GET", "/loans/{id}/copy.pdf", "", [S, A, A, A, S, S]),
    ("GET", "/loans/{id}/returns/receipt.pdf", "", [S, A, A, A, S, S]),
    ("GET", "/loans/{id}/ehr.zip", "", [S, A, A, A, S, S]),
    ("GET", "/patients/{id}/ehr.zip", "", [S, A, A, A, S, S]),
    ("GET", "/wipes/{id}/certificate.pdf", "", [S, A, A, A, S, S]),
    ("GET", "/static/print.js", "", [A, A, A, A, A, A]),
    ("GET", "/loans/{id}", "", [S, A, A, A, S, S]),
    ("POST", "/loans/{id}/extend", "due_on=2099-01-01&extend_reason=x", [S, A, A, F, S, S]),
    ("POST", "/loans/{id}/withdraw", "withdraw_reason=x", [S, A, A, F, S, S]),
    ("POST", "/loans/{id}/void", "void_reason=x", [S, A, A, F, S, S]),
    ("POST", "/loans/{id}/returns", "returned_by_name=x", [S, A, A, F, S, S]),
    ("GET", "/loans/{id}/returns/receipt", "", [S, A, A, A, S, S]),
    ("GET", "/consents/verify", "code=ABCD-EFGH-JKLM-NPQR", [S, A, A, A, S, S]),
    ("GET", "/patients", "q=山田", [S, A, A, A, S, S]),
    ("POST", "/patients", "number=M-{n}&name=試験 花子", [S, A, A, F, S, S]),
    ("GET", "/patients/{id}", "", [S, A, A, A, S, S]),
    // Auditors read the record and change nothing.
    ("GET", "/patients/{id}/edit", "", [S, A, A, F, S, S]),
    ("POST", "/patients/{id}/edit", "name=試験 花子&kana=しけん はなこ&birth_date=1950-04-01", [S, A, A, F, S, S]),
    ("GET", "/devices", "", [S, A, A, A, S, S]),
    ("GET", "/devices/{id}/return", "", [S, A, A, A, S, S]),
    ("POST", "/devices/{id}/return", "cleaned=yes", [S, A, A, F, S, S]),
    ("GET", "/devices/{id}/wipe", "", [S, A, A, A, S, S]),
    ("POST", "/devices/{id}/wipe", "method=clear&passed=yes", [S, A, A, F, S, S]),
    ("POST", "/wipes/{id}/verify", "", [S, A, A, F, S, S]),
    ("GET", "/devices/{id}/lost", "", [S, A, A, A, S, S]),
    ("POST", "/devices/{id}/lost", "kind=lost&description=x", [S, A, A, F, S, S]),
    ("POST", "/devices/{id}/found", "", [S, A, A, F, S, S]),
    ("POST", "/devices/{id}/write-off", "confirm=yes", [S, A, A, F, S, S]),
    ("POST", "/devices/{id}/maintenance", "", [S, A, A, F, S, S]),
    ("POST", "/devices/{id}/maintenance/return", "", [S, A, A, F, S, S]),
    ("GET", "/wipes/{id}/certificate", "", [S, A, A, A, S, S]),
    ("GET", "/labels", "", [S, A, A, A, S, S]),
    ("POST", "/labels/print", "layout=a4-24&device_id={device}", [S, A, A, A, S, S]),
    ("GET", "/static/labels/{layout}", "", [A, A, A, A, A, A]),
    ("GET", "/registry/institution", "", [S, A, A, A, S, S]),
    ("POST", "/registry/institution", "name=テスト在宅クリニック&day_phone=03-0000-1111&night_phone=03-0000-2222", [S, F, A, F, S, S]),
    ("GET", "/registry/vendors", "", [S, A, A, A, S, S]),
    ("POST", "/registry/vendors", "name=ベンダー{n}", [S, F, A, F, S, S]),
    ("GET", "/registry/models", "", [S, A, A, A, S, S]),
    ("POST", "/registry/models", "manufacturer=m&model_name=x{n}&kind=other&title_ja=t&body_ja=b", [S, F, A, F, S, S]),
    ("GET", "/registry/models/{id}", "", [S, A, A, A, S, S]),
    ("POST", "/registry/models/{id}/documents", "title_ja=t&body_ja=b", [S, F, A, F, S, S]),
    ("GET", "/api/v1/openapi.json", "", [S, A, A, A, S, S]),
    ("GET", "/dashboard", "view=overdue", [S, A, A, A, S, S]),
    ("GET", "/dashboard/outstanding.csv", "", [S, A, A, A, S, S]),
    ("GET", "/devices/{id}/custody", "", [S, A, A, A, S, S]),
    ("POST", "/devices/{id}/custody", "method=phone&confirmed=yes", [S, A, A, F, S, S]),
    ("GET", "/audit", "", [S, F, A, A, S, S]),
    ("POST", "/audit/verify", "", [S, F, A, A, S, S]),
    ("GET", "/management-report", "month=2026-11", [S, F, A, A, S, S]),
    ("GET", "/inspection", "from=2026-11-01&until=2026-11-20", [S, F, A, A, S, S]),
    ("GET", "/inspection.csv", "", [S, F, A, A, S, S]),
    ("GET", "/api/v1/reports/summary", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/reports/outstanding", "view=overdue", [S, A, A, A, S, S]),
    ("GET", "/api/v1/reports/outstanding.csv", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/reports/monthly", "", [S, F, A, A, S, S]),
    ("POST", "/api/v1/custody-checks", r#"{"device_id":"x","method":"phone","confirmed":true}"#, [S, A, A, F, S, S]),
    ("GET", "/api/v1/devices", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/devices/import", "asset_tag,model", [S, A, A, F, S, S]),
    ("GET", "/api/v1/devices/{id}", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/devices/{id}/label.svg", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/devices/{id}/rotate-label", "", [S, A, A, F, S, S]),
    ("POST", "/api/v1/devices/{id}/lost", r#"{"kind":"lost"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/devices/{id}/found", "", [S, A, A, F, S, S]),
    ("POST", "/api/v1/devices/{id}/write-off", "", [S, A, A, F, S, S]),
    ("POST", "/api/v1/devices/{id}/maintenance", "", [S, A, A, F, S, S]),
    ("POST", "/api/v1/devices/{id}/maintenance/return", "", [S, A, A, F, S, S]),
    ("GET", "/api/v1/patients", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/patients/{id}", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/loans", r#"{"patient_id":"x","device_ids":["x"],"due_on":"2099-01-01"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/returns", r#"{"device_id":"x"}"#, [S, A, A, F, S, S]),
    ("GET", "/api/v1/consents/{id}/receipt", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/consents/verify", "code=ABCD-EFGH-JKLM-NPQR", [S, A, A, A, S, S]),
    ("POST", "/api/v1/loans/{id}/withdraw", r#"{"reason":"x"}"#, [S, A, A, F, S, S]),
    ("GET", "/api/v1/loans/reconsent", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/loans/{id}", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/loans/{id}/copy.pdf", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/loans/{id}/returns/receipt.pdf", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/loans/{id}/ehr-export", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/patients/{id}/ehr-export", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/wipes/{id}/certificate.pdf", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/loans/{id}/extend", r#"{"due_on":"2099-01-01","reason":"x"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/loans/{id}/void", r#"{"reason":"x"}"#, [S, A, A, F, S, S]),
    ("GET", "/api/v1/institution", "", [S, A, A, A, S, S]),
    (
        "POST",
        "/api/v1/institution",
        r#"{"name":"テスト在宅クリニック","name_en":"","day_phone":"03-0000-1111","day_hours":"","day_hours_en":"","night_phone":"03-0000-2222","night_hours":"","night_hours_en":"","email":"","address":"","public_base_url":""}"#,
        [S, F, A, F, S, S],
    ),
    ("GET", "/api/v1/vendors", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/vendors", r#"{"name":"ベンダー"}"#, [S, F, A, F, S, S]),
    ("GET", "/api/v1/models", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/models", r#"{"manufacturer":"m","model_name":"x{n}","kind":"other","document":{"title_ja":"t","body_ja":"b"}}"#, [S, F, A, F, S, S]),
    ("POST", "/api/v1/models/{id}/documents", r#"{"title_ja":"t","body_ja":"b"}"#, [S, F, A, F, S, S]),
    ("POST", "/api/v1/devices", r#"{"asset_tag":"M-{n}","model_id":"x"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/patients", r#"{"number":"X-{n}","name":"試験 太郎"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/wipes", r#"{"device_id":"x","method":"clear","passed":true}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/wipes/{id}/verify", "", [S, A, A, F, S, S]),
    ("GET", "/api/v1/wipes", "pending=true", [S, A, A, A, S, S]),
    ("GET", "/api/v1/wipes/{id}", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/loans", "state=open&per_page=10", [S, A, A, A, S, S]),
    ("POST", "/api/v1/loans/{id}/returns", r#"{"devices":[{"device_id":"x"}],"returned_by_name":"x"}"#, [S, A, A, F, S, S]),
    ("GET", "/api/v1/devices/lookup", "code=T-0000", [S, A, A, A, S, S]),
    ("GET", "/api/v1/devices/{id}/history", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/devices/{id}/custody-checks", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/incidents", "status=open", [S, A, A, A, S, S]),
    ("GET", "/api/v1/incidents/{id}", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/models/{id}", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/models/{id}/documents", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/documents/{id}", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/problem-reports", "status=all", [S, A, A, A, S, S]),
    ("GET", "/api/v1/problem-reports/{id}", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/problem-reports/{id}/resolve", r#"{"resolution":"x"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/patients/{id}/edit", r#"{"name":"試験 花子"}"#, [S, A, A, F, S, S]),
    ("GET", "/api/v1/me", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/me/tokens", "", [S, A, A, A, S, S]),
    ("GET", "/api/v1/users", "", [S, F, A, A, S, S]),
    ("GET", "/api/v1/tokens", "", [S, F, A, A, S, S]),
    // The row's token is the admin's: only its owner (or an admin) may revoke it.
    ("POST", "/api/v1/tokens/{id}/revoke", "", [S, F, A, F, S, S]),
    ("GET", "/api/v1/audit", "limit=10", [S, F, A, A, S, S]),
    ("POST", "/api/v1/audit/verify", "", [S, F, A, A, S, S]),
    ("GET", "/api/v1/mail/failed", "", [S, F, A, A, S, S]),
    ("POST", "/api/v1/mail/{id}/retry", "", [S, F, A, F, S, S]),
    ("POST", "/api/v1/mail/{id}/dismiss", "", [S, F, A, F, S, S]),
    ("GET", "/api/v1/reports/inspection.csv", "", [S, F, A, A, S, S]),
    // Offline records that could not be written: one's own (nurses), everyone's (admins, auditors).
    ("GET", "/offline/conflicts", "", [S, A, A, A, S, S]),
    ("POST", "/offline/conflicts/{id}/resolve", "resolution=x", [S, A, A, F, S, S]),
    ("POST", "/admin/phones/{id}/approve", "", [S, F, A, F, S, S]),
    ("GET", "/admin/phones/{id}/revoke", "", [S, F, A, F, S, S]),
    ("POST", "/admin/phones/{id}/revoke", "confirm=yes", [S, F, A, F, S, S]),
    // The offline app and its script endpoints (JSON answers; the page itself needs JavaScript).
    ("GET", "/offline", "", [S, A, A, F, S, S]),
    ("POST", "/offline/phone", "label=x&algorithm=ES256&public_key=x", [S, A, A, F, S, S]),
    ("POST", "/offline/prepare", "enrolment_id=x", [S, A, A, F, S, S]),
    ("POST", "/offline/sync", "enrolment_id=x&payload=%7B%7D&signature=", [S, A, A, F, S, S]),
    ("GET", "/sw.js", "", [A, A, A, A, A, A]),
    ("GET", "/manifest.webmanifest", "", [A, A, A, A, A, A]),
    ("GET", "/static/offline.js", "", [A, A, A, A, A, A]),
    ("GET", "/api/v1/offline/phones", "", [S, A, A, A, S, S]),
    ("POST", "/api/v1/offline/phones", r#"{"label":"x","algorithm":"ES256","public_key":"x"}"#, [S, A, A, F, S, S]),
    ("POST", "/api/v1/offline/phones/{id}/approve", "", [S, F, A, F, S, S]),
    ("POST", "/api/v1/offline/phones/{id}/revoke", "", [S, F, A, F, S, S]),
    // Someone else's phones: staff managers only.
    ("GET", "/api/v1/users/{id}/phones", "", [S, F, A, F, S, S]),
    ("POST", "/api/v1/offline/records", r#"{"enrolment_id":"x","payload":"{}","signature":""}"#, [S, A, A, F, S, S]),
    // Everyone's conflicts (all=true): admins and auditors; one's own: anyone who lends.
    ("GET", "/api/v1/offline/conflicts", "all=true", [S, F, A, A, S, S]),
    ("POST", "/api/v1/offline/conflicts/{id}/resolve", r#"{"resolution":"x"}"#, [S, A, A, F, S, S]),
];

/// The public service: the same answer for everyone (it knows no staff).
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/static/public.css"),
    ("GET", "/static/favicon.svg"),
    ("GET", "/favicon.ico"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/d/{token}"),
    ("GET", "/api/v1/devices/{token}"),
    ("POST", "/d/{token}/report"),
    ("POST", "/api/v1/devices/{token}/reports"),
];

fn classify(path: &str, status: StatusCode, location: &str) -> Got {
    if status == StatusCode::FORBIDDEN {
        F
    } else if status == StatusCode::UNAUTHORIZED && path.starts_with("/api/")
        || location == "/login"
        // A consent sent after the idle lock is kept, and its sender asked to sign in again.
        || location == "/login?signed_out=locked"
    {
        S
    } else {
        assert!(!status.is_server_error(), "{path}: {status}");
        A
    }
}

async fn matrix(backend: Backend) {
    let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
    let b = seed_basic(&app.store, 1).await;
    // A user to act on, a token to revoke, and the disabled caller.
    let mut tx = app.store.begin().await.unwrap();
    let cli = lending::Actor::cli();
    let new = |login: &str| lending::service::users::NewUser {
        login: login.into(),
        name: login.into(),
        role: lending::Role::Nurse,
        site: String::new(),
        email: String::new(),
    };
    let (target, _) = lending::service::users::add_user(&mut tx, &cli, new("target")).await.unwrap();
    let (disabled, _) = lending::service::users::add_user(&mut tx, &cli, new("gone")).await.unwrap();
    tx.commit().await.unwrap();
    // Callers who finished their first sign-in (password changed, second factor set up).
    for login in ["n1", "a1", "au1", "gone"] {
        lending::testing::enroll(&app.store, login, &app.keys).await;
    }

    let listed: BTreeSet<(String, String)> =
        server::routes::routes().list().iter().map(|(m, p)| (m.to_string(), p.clone())).collect();
    let tabled: BTreeSet<(String, String)> =
        STAFF.iter().map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(listed, tabled, "every route of the staff service has a row in the table, and no row is stale");

    let mut cells = 0;
    for (n, (method, pattern, body, expected)) in STAFF.iter().enumerate() {
        // Fresh sessions and tokens per row: a row may sign its caller out or revoke something.
        let token_id = {
            let t = app.token("a1").await;
            let mut tx = app.store.read().await.unwrap();
            let all = lending::store::users::tokens(&mut tx, None).await.unwrap();
            let id = all.iter().find(|i| i.revoked_at.is_none()).unwrap().id.clone();
            drop(t);
            id
        };
        let id = if pattern.contains("/admin/users/") {
            target.id.clone()
        } else if pattern.contains("/tokens/") {
            token_id
        } else if pattern.contains("/registry/models/") {
            b.model_id.clone()
        } else if pattern.contains("/patients/") {
            b.patients[0].clone()
        } else {
            b.devices[0].clone()
        };
        let path = pattern.replace("{id}", &id).replace("{layout}", "a4-24.css");
        let body =
            body.replace("{n}", &n.to_string()).replace("{device}", &b.devices[0]).replace("{patient}", &b.patients[0]);
        for (col, caller) in CALLERS.iter().enumerate() {
            let (cookie, csrf, bearer) = match *caller {
                "anonymous" => (None, String::new(), None),
                "nurse" | "admin" | "auditor" => {
                    let login = ["n1", "a1", "au1"][col - 1];
                    let (c, f) = app.session(login, 0).await;
                    (Some(c), f, Some(app.token(login).await))
                }
                "disabled" => {
                    let (c, f) = app.session("gone", 0).await;
                    let t = app.token("gone").await;
                    let mut tx = app.store.begin().await.unwrap();
                    lending::store::users::set_disabled(&mut tx, &disabled.id, true).await.unwrap();
                    tx.commit().await.unwrap();
                    (Some(c), f, Some(t))
                }
                _ => {
                    // Idle past the 15-minute timeout, with a revoked API token.
                    let (c, f) = app.session("n1", 20).await;
                    let t = app.token("n1").await;
                    let mut tx = app.store.begin().await.unwrap();
                    for info in lending::store::users::tokens(&mut tx, None).await.unwrap() {
                        lending::store::users::revoke_token(&mut tx, &info.id).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                    (Some(c), f, Some(t))
                }
            };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let url = if method == Method::GET && !body.is_empty() { format!("{path}?{body}") } else { path.clone() };
            let mut req = app.client.request(method.clone(), app.url(&url));
            if path.starts_with("/api/") {
                if let Some(t) = &bearer {
                    req = req.bearer_auth(t);
                }
                if method == Method::POST {
                    req = req.header("content-type", "application/json").body(body.clone());
                }
            } else {
                if let Some(c) = &cookie {
                    req = req.header("cookie", format!("lending_session={c}"));
                }
                if method == Method::POST {
                    let form = if body.is_empty() { format!("csrf={csrf}") } else { format!("csrf={csrf}&{body}") };
                    req = req.header("content-type", "application/x-www-form-urlencoded").body(form);
                }
            }
            let r = req.send().await.unwrap();
            let location = crate::location(&r);
            let got = classify(&path, r.status(), &location);
            assert_eq!(got, expected[col], "{method} {pattern} as {caller}: {} {location}", r.status());
            cells += 1;
            if *caller == "disabled" {
                let mut tx = app.store.begin().await.unwrap();
                lending::store::users::set_disabled(&mut tx, &disabled.id, false).await.unwrap();
                tx.commit().await.unwrap();
            }
        }
    }
    assert_eq!(cells, STAFF.len() * CALLERS.len());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_route_against_every_caller_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_staff_route_against_every_caller_postgres() {
    matrix(Backend::Postgres).await;
}

#[tokio::test]
async fn every_public_route_answers_everyone_alike() {
    let listed: BTreeSet<(String, String)> =
        mobile_api::routes().list().iter().map(|(m, p)| (m.to_string(), p.clone())).collect();
    let tabled: BTreeSet<(String, String)> = PUBLIC.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(listed, tabled, "every route of the public service is in the table");

    let db = lending::testing::TestDb::new(Backend::Sqlite).await;
    let store = db.store(lending::testing::test_clock()).await;
    let b = seed_basic(&store, 1).await;
    let mut tx = store.read().await.unwrap();
    let token = lending::store::devices::get(&mut tx, &b.devices[0]).await.unwrap().unwrap().qr_token;
    drop(tx);
    let cfg = lending::Config::for_tests(&db.data_dir, &db.url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = mobile_api::AppState::new(store.clone(), cfg, std::time::Duration::ZERO);
    tokio::spawn(mobile_api::run(listener, state, std::future::pending()));
    let staff_token = lending::testing::own_token(&store, "a1").await;
    let client = reqwest::Client::new();
    for (method, pattern) in PUBLIC {
        let path = pattern.replace("{token}", &token);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = client.request(method.clone(), format!("{base}{path}")).send().await.unwrap().status();
        let with_staff_credentials = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(&staff_token)
            .header("cookie", "lending_session=whatever")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(anonymous, with_staff_credentials, "{path}: staff credentials change nothing on the public service");
        assert!(!anonymous.is_server_error(), "{path}: {anonymous}");
    }
}
