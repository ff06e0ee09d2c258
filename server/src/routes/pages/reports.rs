//! Problem reports from patients (via the QR page): list and resolve.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::reports;
use lending::Role;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/reports", list).post("/reports/{id}/resolve", resolve)
}

struct ReportView {
    id: String,
    asset_tag: String,
    category: &'static str,
    body: String,
    callback_phone: String,
    received: String,
    resolved: bool,
    resolution: String,
}

#[derive(Template)]
#[template(path = "staff/reports.html")]
struct ReportsPage {
    c: Chrome,
    reports: Vec<ReportView>,
    can_write: bool,
}

async fn list(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.read().await?;
    let reports = reports::list_for(&mut tx, &s.actor, false)
        .await
        .map_err(|e| s.error(e))?
        .into_iter()
        .map(|r| ReportView {
            category: reports::category_label(&r.category, s.lang == Lang::En),
            received: lang.datetime(r.created_at),
            resolved: r.status == "resolved",
            id: r.id,
            asset_tag: r.asset_tag,
            body: r.body,
            callback_phone: r.callback_phone,
            resolution: r.resolution,
        })
        .collect();
    Ok(render(&ReportsPage { c: s.chrome(), reports, can_write: s.user.role != Role::Auditor }))
}

#[derive(serde::Deserialize)]
struct ResolveForm {
    resolution: String,
}

async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<ResolveForm>,
) -> Result<Response, PageError> {
    let s = form.who;
    let mut tx = state.store.begin().await?;
    reports::resolve(&mut tx, &s.actor, &id, &form.form.resolution).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to("/reports").into_response())
}
