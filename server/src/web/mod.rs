//! The staff web pages' plumbing: the page frame, language, errors, sessions and CSRF.

pub mod csrf;
pub mod session;
pub mod throttle;

use askama::Template;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use lending::{Error, Role};

use crate::i18n::{Lang, Texts};

/// What was wrong with a submitted form, shown on the same page above the form and beside each
/// field, in the page's language, with everything the user entered kept.
#[derive(Debug, Default)]
pub struct FormErrors {
    /// Every message, for the summary at the top.
    pub summary: Vec<String>,
    /// (field name, message) for the messages beside the fields.
    fields: Vec<(String, String)>,
}

impl FormErrors {
    pub fn none() -> Self {
        Self::default()
    }

    /// From a domain error: each invalid field beside its field, a conflict in the summary only.
    pub fn from_error(e: &Error, lang: Lang) -> Self {
        let pick = |ja: &str, en: &str| if lang == Lang::Ja { ja.to_owned() } else { en.to_owned() };
        match e {
            Error::Validation(fields) => {
                let fields: Vec<(String, String)> =
                    fields.iter().map(|f| (f.field.clone(), pick(&f.message_ja, &f.message_en))).collect();
                Self { summary: fields.iter().map(|(_, m)| m.clone()).collect(), fields }
            }
            other => Self { summary: vec![pick(&other.message_ja(), &other.message_en())], fields: Vec::new() },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }

    /// The message for `field`, if it has one.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    /// The status a page with these errors answers: 200 when none, else 422 for wrong input and
    /// 409 for a lifecycle conflict.
    pub fn status(e: Option<&Error>) -> StatusCode {
        match e {
            None => StatusCode::OK,
            Some(Error::Validation(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            Some(Error::Forbidden) => StatusCode::FORBIDDEN,
            Some(Error::NotFound) => StatusCode::NOT_FOUND,
            Some(_) => StatusCode::CONFLICT,
        }
    }
}

/// A submitted form's fields, kept to fill the form again when it comes back with a message.
#[derive(Debug, Default)]
pub struct Kept(Vec<(String, String)>);

impl Kept {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// A form shown for the first time (its defaults apply).
    pub fn is_fresh(&self) -> bool {
        self.0.is_empty()
    }

    /// The first value of `field` ("" if none).
    pub fn value(&self, field: &str) -> &str {
        self.0.iter().find(|(k, _)| k == field).map_or("", |(_, v)| v.as_str())
    }

    /// Whether `field` was sent with `value` (a ticked checkbox, a chosen radio button).
    pub fn has(&self, field: &str, value: &str) -> bool {
        self.0.iter().any(|(k, v)| k == field && v == value)
    }
}

/// Runs one change through its service in a transaction, then goes to `to`; a refusal is shown
/// in the user's language. For the pages' small action buttons (revoke, send again, …).
pub async fn change_then_go(
    state: &crate::AppState,
    s: &session::Staff,
    to: &str,
    change: impl AsyncFnOnce(&mut lending::store::Tx) -> lending::Result<()>,
) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    change(&mut tx).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(to).into_response())
}

/// The signed-in person as the page frame shows them.
pub struct UserChip {
    pub name: String,
    pub role_label: &'static str,
    /// The menu: only the pages this role may open.
    pub nav: Vec<NavLink>,
    /// Whether this person lends (the offline app, its outbox badge and its script).
    pub lends: bool,
}

/// One entry of the staff menu.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    /// The page being shown (`aria-current="page"`).
    pub current: bool,
}

/// The menu for `role` on the page at `path`: a link the role would get 403 from is left out.
/// The longest matching entry is the current one (`/devices/…/return` marks 機器).
pub fn nav(role: Role, t: &Texts, path: &str) -> Vec<NavLink> {
    // Nurses and admins lend; admins and auditors read the staff, mail and audit pages.
    let (writes, oversees) = match role {
        Role::Nurse => (true, false),
        Role::Admin => (true, true),
        Role::Auditor => (false, true),
    };
    let all: [(&'static str, &'static str, bool); 19] = [
        ("/", t.home, true),
        ("/loans/new", t.lend, writes),
        ("/dashboard", t.dashboard, true),
        ("/devices", t.devices, true),
        ("/patients", t.patients, true),
        ("/reports", t.reports, true),
        ("/labels", t.labels, true),
        ("/consents/verify", t.verify_consent, true),
        ("/registry/models", t.models, true),
        ("/registry/vendors", t.vendors, true),
        ("/registry/institution", t.institution, true),
        ("/admin/users", t.users, oversees),
        ("/admin/tokens", t.tokens, oversees),
        ("/admin/mail", t.failed_mail, oversees),
        ("/audit", t.audit_log, oversees),
        ("/management-report", t.management_report, oversees),
        ("/inspection", t.inspection, oversees),
        ("/offline/conflicts", t.offline_conflicts, true),
        ("/account/tokens", t.my_tokens, true),
    ];
    let matches = |href: &str| path == href || (href != "/" && path.starts_with(&format!("{href}/")));
    let current = all.iter().filter(|(href, _, _)| matches(href)).map(|(href, _, _)| href.len()).max();
    all.into_iter()
        .filter(|(_, _, allowed)| *allowed)
        .map(|(href, label, _)| NavLink { href, label, current: matches(href) && Some(href.len()) == current })
        .collect()
}

/// What every staff page's frame needs (`base.html`).
pub struct Chrome {
    pub t: &'static Texts,
    pub lang: Lang,
    pub user: Option<UserChip>,
    /// Whether a session exists (full or pending): shows the sign-out button.
    pub signed_in: bool,
    pub csrf: String,
    pub flash: Option<String>,
}

impl Chrome {
    pub fn anonymous(lang: Lang) -> Self {
        Self { t: lang.t(), lang, user: None, signed_in: false, csrf: String::new(), flash: None }
    }
}

pub fn role_label(role: Role, lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => role.label_ja(),
        Lang::En => role.as_str(),
    }
}

/// The language of a request without a session (cookie `lang`, then Accept-Language).
pub fn lang_of(headers: &HeaderMap) -> Lang {
    let cookie = session::read_cookie(headers, "lang");
    Lang::detect(cookie.as_deref(), headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

/// Renders a page; a template error is a 500 with nothing leaked.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "staff/error.html")]
struct ErrorPage {
    c: Chrome,
    message_ja: String,
    message_en: String,
}

/// Why a staff page was not shown.
#[derive(Debug)]
pub enum PageError {
    /// No live session: go and sign in.
    SignIn,
    /// The session must finish a step first (second factor, password change, enrolment).
    Redirect(String),
    /// A cross-site or token-less form post.
    Csrf,
    /// A domain error, shown with its Japanese and English message.
    Domain(Error, Lang),
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self::Domain(e, Lang::Ja)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        Self::Domain(e.into(), Lang::Ja)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, e, lang) = match self {
            Self::SignIn => return Redirect::to("/login").into_response(),
            Self::Redirect(to) => return Redirect::to(&to).into_response(),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                Error::conflict(
                    "別のサイトからの送信、または古い画面からの送信のため受け付けませんでした。画面を開き直してください。",
                    "Refused: the form came from another site or an outdated page. Reload and try again.",
                ),
                Lang::Ja,
            ),
            Self::Domain(e, lang) => (lending::web::json::status_of(&e), e, lang),
        };
        if e.is_internal() {
            tracing::error!(error = %e, "page failed");
        }
        let page = ErrorPage { c: Chrome::anonymous(lang), message_ja: e.message_ja(), message_en: e.message_en() };
        (status, render(&page)).into_response()
    }
}
