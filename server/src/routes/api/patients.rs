//! Patients: every read of patient data is an audit event (who looked, from where).

use axum::extract::{Path, Query, State};
use axum::Json;
use lending::audit::NewEvent;
use lending::store::patients::{self, Patient};
use lending::Error;
use serde::Deserialize;
use serde_json::json;

use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::ApiResult;

pub fn routes() -> Routes {
    Routes::new().get("/patients", search).get("/patients/{id}", show)
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Vec<Patient>>> {
    // A write transaction: the read itself is recorded, atomically with what was shown.
    let mut tx = state.store.begin().await?;
    let found = patients::search(&mut tx, &q.q, 200).await?;
    tx.audit(
        &actor,
        NewEvent::new("patient.search", "patient", "")
            .details(&json!({ "results": found.len(), "query_chars": q.q.chars().count() })),
    );
    tx.commit().await?;
    Ok(Json(found))
}

async fn show(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Patient>> {
    let mut tx = state.store.begin().await?;
    let patient = patients::get(&mut tx, &id).await?.ok_or(Error::NotFound)?;
    tx.audit(&actor, NewEvent::new("patient.view", "patient", &patient.id).patient(&patient.id));
    tx.commit().await?;
    Ok(Json(patient))
}
