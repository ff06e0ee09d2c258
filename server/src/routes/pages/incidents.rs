//! Incidents from the devices page: a device on loan is reported lost or stolen (with what
//! happened), a lost device is found (→ awaiting wipe) or written off, a device waiting for its
//! wipe goes to the vendor for repair and comes back. The lifecycle rules and the audit events
//! are `lending::service::incidents`'; an illegal step shows the domain's reason.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::incidents;
use lending::store::devices;
use lending::{DeviceStatus, Error};

use super::Empty;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/devices/{id}/lost", lost_page)
        .post("/devices/{id}/lost", report_lost)
        .post("/devices/{id}/found", found)
        .post("/devices/{id}/write-off", write_off)
        .post("/devices/{id}/maintenance", to_maintenance)
        .post("/devices/{id}/maintenance/return", from_maintenance)
}

#[derive(Template)]
#[template(path = "staff/lost.html")]
struct LostPage {
    c: Chrome,
    id: String,
    asset_tag: String,
    status: &'static str,
    /// On loan: the report form. Lost: found, or write off (with a confirmation).
    can_report: bool,
    is_lost: bool,
}

async fn lost_page(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let d = devices::get(&mut tx, &id).await?.ok_or_else(|| s.error(Error::NotFound))?;
    // Auditors see the device's status, not the forms.
    let writer = lending::policy::allows(s.actor.role, lending::Action::Operate);
    Ok(render(&LostPage {
        c: s.chrome(),
        can_report: writer && d.status.can_become(DeviceStatus::Lost),
        is_lost: writer && d.status == DeviceStatus::Lost,
        status: s.lang.status(d.status),
        id: d.id,
        asset_tag: d.asset_tag,
    }))
}

#[derive(serde::Deserialize)]
struct LostForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    description: String,
}

async fn report_lost(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<LostForm>,
) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    let mut tx = state.store.begin().await?;
    incidents::report_lost(&mut tx, &s.actor, &id, &f.kind, &f.description).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to("/devices").into_response())
}

/// One of the button steps: run it in one transaction, then back to the list.
macro_rules! step {
    ($name:ident, $service:path) => {
        async fn $name(
            State(state): State<AppState>,
            Path(id): Path<String>,
            form: StaffForm<Empty>,
        ) -> Result<Response, PageError> {
            let s = form.who;
            let mut tx = state.store.begin().await?;
            $service(&mut tx, &s.actor, &id).await.map_err(|e| s.error(e))?;
            tx.commit().await?;
            Ok(Redirect::to("/devices").into_response())
        }
    };
}

step!(found, incidents::mark_found);

#[derive(serde::Deserialize)]
struct WriteOffForm {
    #[serde(default)]
    confirm: String,
}

/// Irreversible, so the form asks for an explicit tick first.
async fn write_off(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<WriteOffForm>,
) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    if !lending::policy::allows(s.actor.role, lending::Action::Operate) {
        return Err(s.error(Error::Forbidden));
    }
    if f.confirm != "yes" {
        return Err(s.error(Error::invalid(
            "confirm",
            "除却してよいか、確認の欄にチェックを入れてください。",
            "Tick the confirmation to write the device off.",
        )));
    }
    let mut tx = state.store.begin().await?;
    incidents::write_off(&mut tx, &s.actor, &id).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to("/devices").into_response())
}
step!(to_maintenance, incidents::send_to_maintenance);
step!(from_maintenance, incidents::back_from_maintenance);
