//! Patients: every read of patient data is an audit event (who looked, from where).

use axum::extract::State;
use axum::Json;
use lending::service::patients as patient_search;
use lending::store::patients::Patient;
use serde::Deserialize;

use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new().get("/patients", search).get("/patients/{id}", show)
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
    // A write transaction: the read itself is recorded, atomically with what was shown.
    let mut tx = state.store.begin().await?;
    let found = patient_search::search(&mut tx, &actor, &q.q, q.page.unwrap_or(1), PER_PAGE).await?;
    tx.commit().await?;
    Ok(Json(found.patients))
}

async fn show(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Patient>> {
    let mut tx = state.store.begin().await?;
    let patient = lending::service::patients::view(&mut tx, &actor, &id).await?;
    tx.commit().await?;
    Ok(Json(patient))
}
