//! SPEC §5: the staff API covers every staff operation. Every page route of the router is either
//! paired with the API route that does the same (the same service call and role rule), or listed
//! as an exception with its reason. A new page route without either fails here.

use std::collections::BTreeSet;

/// (page method, page path, API method, API path under `/api/v1`)
const COUNTERPARTS: &[(&str, &str, &str, &str)] = &[
    ("GET", "/", "GET", "/reports/summary"),
    ("GET", "/account/tokens", "GET", "/me/tokens"),
    ("POST", "/account/tokens/{id}/revoke", "POST", "/tokens/{id}/revoke"),
    ("GET", "/admin/users", "GET", "/users"),
    ("GET", "/admin/tokens", "GET", "/tokens"),
    ("POST", "/admin/tokens/{id}/revoke", "POST", "/tokens/{id}/revoke"),
    ("GET", "/admin/mail", "GET", "/mail/failed"),
    ("POST", "/admin/mail/{id}/retry", "POST", "/mail/{id}/retry"),
    ("POST", "/admin/mail/{id}/dismiss", "POST", "/mail/{id}/dismiss"),
    ("GET", "/reports", "GET", "/problem-reports"),
    ("POST", "/reports/{id}/resolve", "POST", "/problem-reports/{id}/resolve"),
    ("GET", "/devices/lookup", "GET", "/devices/lookup"),
    ("POST", "/devices/import", "POST", "/devices/import"),
    // The explanation shown before signing is the current document version of each model in the kit.
    ("POST", "/loans/explain", "GET", "/models/{id}/documents"),
    ("POST", "/loans", "POST", "/loans"),
    ("GET", "/loans/{id}", "GET", "/loans/{id}"),
    ("POST", "/loans/{id}/extend", "POST", "/loans/{id}/extend"),
    ("POST", "/loans/{id}/withdraw", "POST", "/loans/{id}/withdraw"),
    ("POST", "/loans/{id}/void", "POST", "/loans/{id}/void"),
    ("POST", "/loans/{id}/returns", "POST", "/loans/{id}/returns"),
    ("GET", "/consents/verify", "GET", "/consents/verify"),
    ("GET", "/patients", "GET", "/patients"),
    ("POST", "/patients", "POST", "/patients"),
    ("GET", "/patients/{id}", "GET", "/patients/{id}"),
    ("POST", "/patients/{id}/edit", "POST", "/patients/{id}/edit"),
    ("GET", "/devices", "GET", "/devices"),
    ("POST", "/devices/{id}/return", "POST", "/returns"),
    // The wipe form shows the model's checklist (its wipe steps).
    ("GET", "/devices/{id}/wipe", "GET", "/models/{id}"),
    ("POST", "/devices/{id}/wipe", "POST", "/wipes"),
    ("POST", "/wipes/{id}/verify", "POST", "/wipes/{id}/verify"),
    ("POST", "/devices/{id}/lost", "POST", "/devices/{id}/lost"),
    ("POST", "/devices/{id}/found", "POST", "/devices/{id}/found"),
    ("POST", "/devices/{id}/write-off", "POST", "/devices/{id}/write-off"),
    ("POST", "/devices/{id}/maintenance", "POST", "/devices/{id}/maintenance"),
    ("POST", "/devices/{id}/maintenance/return", "POST", "/devices/{id}/maintenance/return"),
    // A printed sheet of labels is the single labels side by side.
    ("POST", "/labels/print", "GET", "/devices/{id}/label.svg"),
    ("GET", "/registry/institution", "GET", "/institution"),
    ("POST", "/registry/institution", "POST", "/institution"),
    ("GET", "/registry/vendors", "GET", "/vendors"),
    ("POST", "/registry/vendors", "POST", "/vendors"),
    ("GET", "/registry/models", "GET", "/models"),
    ("POST", "/registry/models", "POST", "/models"),
    ("GET", "/registry/models/{id}", "GET", "/models/{id}"),
    ("POST", "/registry/models/{id}/documents", "POST", "/models/{id}/documents"),
    ("GET", "/dashboard", "GET", "/reports/outstanding"),
    ("GET", "/dashboard/outstanding.csv", "GET", "/reports/outstanding.csv"),
    ("GET", "/devices/{id}/custody", "GET", "/devices/{id}/custody-checks"),
    ("POST", "/devices/{id}/custody", "POST", "/custody-checks"),
    ("GET", "/audit", "GET", "/audit"),
    ("POST", "/audit/verify", "POST", "/audit/verify"),
    ("GET", "/management-report", "GET", "/reports/monthly"),
    ("GET", "/inspection", "GET", "/reports/inspection.csv"),
    ("GET", "/inspection.csv", "GET", "/reports/inspection.csv"),
    // The printable pages and their archival PDFs (issue #19): the API serves the PDFs.
    ("GET", "/loans/{id}/copy", "GET", "/loans/{id}/copy.pdf"),
    ("GET", "/loans/{id}/returns/receipt", "GET", "/loans/{id}/returns/receipt.pdf"),
    ("GET", "/wipes/{id}/certificate", "GET", "/wipes/{id}/certificate.pdf"),
    ("GET", "/loans/{id}/copy.pdf", "GET", "/loans/{id}/copy.pdf"),
    ("GET", "/loans/{id}/returns/receipt.pdf", "GET", "/loans/{id}/returns/receipt.pdf"),
    ("GET", "/wipes/{id}/certificate.pdf", "GET", "/wipes/{id}/certificate.pdf"),
    ("GET", "/loans/{id}/ehr.zip", "GET", "/loans/{id}/ehr-export"),
    ("GET", "/patients/{id}/ehr.zip", "GET", "/patients/{id}/ehr-export"),
    ("GET", "/offline/conflicts", "GET", "/offline/conflicts"),
    ("POST", "/offline/conflicts/{id}/resolve", "POST", "/offline/conflicts/{id}/resolve"),
    ("POST", "/admin/phones/{id}/approve", "POST", "/offline/phones/{id}/approve"),
    ("POST", "/admin/phones/{id}/revoke", "POST", "/offline/phones/{id}/revoke"),
    ("POST", "/offline/phone", "POST", "/offline/phones"),
    ("POST", "/offline/sync", "POST", "/offline/records"),
];

const SIGN_IN: &str =
    "signing in and out is the browser session's; the API authenticates each request with a bearer token";
const CREDENTIALS: &str = "credentials and accounts change only with a full sign-in (password and second factor); a bearer token is a single-factor credential (docs/security.md 1.2.4)";
const CONFIRM: &str = "a confirmation page before the POST, which the API route does in one request";
const FORM: &str = "an input form: the API takes the same fields in the POST's JSON body";
const STATIC: &str = "a static file or the page language, not an operation";

/// (method, page path, why it has no API route)
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("GET", "/login", SIGN_IN),
    ("POST", "/login", SIGN_IN),
    ("GET", "/login/code", SIGN_IN),
    ("POST", "/login/code", SIGN_IN),
    ("POST", "/logout", SIGN_IN),
    ("GET", "/account/password", CREDENTIALS),
    ("POST", "/account/password", CREDENTIALS),
    ("GET", "/account/totp", CREDENTIALS),
    ("POST", "/account/totp", CREDENTIALS),
    ("POST", "/account/sign-out-everywhere", CREDENTIALS),
    ("POST", "/account/tokens", CREDENTIALS),
    ("GET", "/account/tokens/{id}/revoke", CONFIRM),
    ("POST", "/admin/users", CREDENTIALS),
    ("GET", "/admin/users/{id}/disable", CONFIRM),
    ("POST", "/admin/users/{id}/disable", CREDENTIALS),
    ("POST", "/admin/users/{id}/enable", CREDENTIALS),
    ("GET", "/admin/users/{id}/reset-second-factor", CONFIRM),
    ("POST", "/admin/users/{id}/reset-second-factor", CREDENTIALS),
    ("GET", "/admin/users/{id}/reset-password", CONFIRM),
    ("POST", "/admin/users/{id}/reset-password", CREDENTIALS),
    ("GET", "/admin/tokens/{id}/revoke", CONFIRM),
    ("GET", "/admin/phones/{id}/revoke", CONFIRM),
    ("GET", "/offline", "the offline app's page (its script keeps records on the phone); API clients keep their own records and post them to /offline/records"),
    (
        "POST",
        "/offline/prepare",
        "the phone's encrypted cache for its visits; API clients read /patients, /loans and /models/{id}/documents",
    ),
    ("GET", "/sw.js", STATIC),
    ("GET", "/manifest.webmanifest", STATIC),
    ("GET", "/static/offline.js", STATIC),
    ("GET", "/loans/new", FORM),
    (
        "GET",
        "/loans/drafts/{id}",
        "a consent form the browser kept when its session locked; an API client keeps its own request",
    ),
    ("GET", "/patients/{id}/edit", FORM),
    ("GET", "/devices/{id}/return", FORM),
    ("GET", "/devices/{id}/lost", FORM),
    ("GET", "/devices/import", FORM),
    ("GET", "/labels", FORM),
    ("GET", "/static/staff.css", STATIC),
    ("GET", "/static/signature.js", STATIC),
    ("GET", "/static/csv-file.js", STATIC),
    ("GET", "/static/favicon.svg", STATIC),
    ("GET", "/favicon.ico", STATIC),
    ("GET", "/static/print.js", STATIC),
    ("GET", "/static/scan.js", STATIC),
    ("GET", "/static/labels/{layout}", STATIC),
    ("GET", "/lang", STATIC),
];

#[test]
fn every_page_operation_has_an_api_route_or_a_reasoned_exception() {
    let pages: BTreeSet<(String, String)> =
        server::routes::pages::routes().list().iter().map(|(m, p)| (m.to_string(), p.clone())).collect();
    let api: BTreeSet<(String, String)> = server::routes::routes()
        .list()
        .iter()
        .filter_map(|(m, p)| p.strip_prefix("/api/v1").map(|p| (m.to_string(), p.to_owned())))
        .collect();
    let paired: BTreeSet<(String, String)> =
        COUNTERPARTS.iter().map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    let excepted: BTreeSet<(String, String)> =
        EXCEPTIONS.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(paired.len(), COUNTERPARTS.len(), "a page route is paired twice");
    assert_eq!(excepted.len(), EXCEPTIONS.len(), "a page route is excepted twice");
    let both: Vec<_> = paired.intersection(&excepted).collect();
    assert!(both.is_empty(), "paired and excepted at once: {both:?}");

    let uncovered: Vec<_> = pages.iter().filter(|r| !paired.contains(*r) && !excepted.contains(*r)).collect();
    assert!(uncovered.is_empty(), "page operations without an API route or a reasoned exception: {uncovered:?}");
    let stale: Vec<_> = paired.union(&excepted).filter(|r| !pages.contains(*r)).collect();
    assert!(stale.is_empty(), "rows naming page routes the router lacks: {stale:?}");
    for (pm, pp, am, ap) in COUNTERPARTS {
        assert!(
            api.contains(&((*am).to_owned(), (*ap).to_owned())),
            "{pm} {pp}: its counterpart {am} /api/v1{ap} is not routed"
        );
    }
    for (m, p, why) in EXCEPTIONS {
        assert!(why.len() > 20, "{m} {p}: the exception gives a reason");
        // An exception is for what the API has no route for.
        assert!(!api.contains(&((*m).to_owned(), (*p).to_owned())), "{m} {p} is excepted but the API routes it");
    }
}
