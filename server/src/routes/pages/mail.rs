//! 送信できなかったメール: mails the worker gave up on, with the mail server's answer. Admins
//! send one again or set it aside; auditors look.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use lending::service::outbox;
use lending::store::outbox::FailedMail;
use lending::Action;

use super::Empty;
use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{change_then_go, render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/mail", failed_page)
        .post("/admin/mail/{id}/retry", retry)
        .post("/admin/mail/{id}/dismiss", dismiss)
}

struct FailedRow {
    id: String,
    recipient: String,
    subject: String,
    attempts: i32,
    reason: String,
    failed: String,
}

impl FailedRow {
    fn new(m: FailedMail, lang: Lang) -> Self {
        Self {
            id: m.id,
            recipient: m.recipient,
            subject: m.subject,
            attempts: m.attempts,
            reason: m.last_error,
            failed: lang.datetime(m.failed_at),
        }
    }
}

#[derive(Template)]
#[template(path = "staff/mail.html")]
struct FailedMailPage {
    c: Chrome,
    mails: Vec<FailedRow>,
    total: i64,
    can_write: bool,
}

async fn failed_page(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let (mails, total) = outbox::failed(&mut tx, &s.actor).await.map_err(|e| s.error(e))?;
    let page = FailedMailPage {
        c: s.chrome(),
        mails: mails.into_iter().map(|m| FailedRow::new(m, s.lang)).collect(),
        total,
        can_write: s.may(Action::ManageStaff),
    };
    Ok(render(&page).into_response())
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    let s = form.who;
    change_then_go(&state, &s, "/admin/mail", async |tx| outbox::retry(tx, &s.actor, &id).await).await
}

async fn dismiss(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    let s = form.who;
    change_then_go(&state, &s, "/admin/mail", async |tx| outbox::dismiss(tx, &s.actor, &id).await).await
}
