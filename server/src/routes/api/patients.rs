//! Patients: every read of patient data is an audit event (who looked, from where).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::service::patients::{self as patient_search, PatientEdit};
use lending::store::loans::PatientLoan;
use lending::store::patients::Patient;
use lending::Error;
use serde::Deserialize;

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::{write_tx, AppState};
use lending::web::json::{ApiJson, ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new().get("/patients", search).get("/patients/{id}", show).post("/patients/{id}/edit", edit)
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
    /// 1-based; each page holds up to [`PER_PAGE`] patients.
    #[serde(default)]
    page: Option<i64>,
}

/// Patients per page of the API's search.
const PER_PAGE: i64 = 200;

async fn search(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Vec<Patient>>> {
    let page = q.page.unwrap_or(1);
    Error::check_page(page)?;
    // A write transaction: the read itself is recorded, atomically with what was shown.
    let mut tx = state.store.begin().await?;
    let found = patient_search::search(&mut tx, &actor, &q.q, page, PER_PAGE).await?;
    tx.commit().await?;
    Ok(Json(found.patients))
}

/// A patient's record with every loan, open and closed, newest first.
#[derive(serde::Serialize)]
pub struct PatientWithLoans {
    #[serde(flatten)]
    pub patient: Patient,
    pub loans: Vec<PatientLoan>,
}

/// The patient's record and loans (an audited patient read, `patient.view`).
async fn show(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<PatientWithLoans>> {
    let r = write_tx!(state, |tx| patient_search::record(tx, &actor, &id));
    Ok(Json(PatientWithLoans { patient: r.patient, loans: r.loans }))
}

/// Corrects name, kana and date of birth (all three as they should be; an omitted one is empty).
/// The 院内ID cannot change. Audited with the names of the fields that changed.
async fn edit(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(e): ApiJson<PatientEdit>,
) -> ApiResult<Response> {
    let fingerprint = format!("{id} {e:?}");
    write_once(&state, &actor, key, ("patient.edit", &fingerprint), StatusCode::OK, async |tx| {
        patient_search::edit(tx, &actor, &id, &e).await
    })
    .await
}
