//! Patients: search (every list shown is an audited read, by patient id) and registration.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use lending::audit::NewEvent;
use lending::service::registry::{self, NewPatient};
use lending::store::patients::{self, Patient};
use lending::Role;

use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/patients", list).post("/patients", add)
}

#[derive(Template)]
#[template(path = "staff/patients.html")]
struct PatientsPage {
    c: Chrome,
    q: String,
    patients: Vec<Patient>,
    can_write: bool,
}

#[derive(serde::Deserialize, Default)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn list(State(state): State<AppState>, s: Staff, Query(search): Query<Search>) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let found = patients::search(&mut tx, &search.q, 200).await?;
    tx.audit(
        &s.actor,
        NewEvent::new("patient.search", "patient", "").details(&serde_json::json!({
            "results": found.len(),
            "patient_ids": found.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        })),
    );
    tx.commit().await?;
    Ok(render(&PatientsPage { c: s.chrome(), q: search.q, patients: found, can_write: s.user.role != Role::Auditor }))
}

async fn add(State(state): State<AppState>, form: StaffForm<NewPatient>) -> Result<Response, PageError> {
    let s = form.who;
    let mut tx = state.store.begin().await?;
    let p = registry::create_patient(&mut tx, &s.actor, form.form).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/patients?q={}", p.number)).into_response())
}
