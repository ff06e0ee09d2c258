//! Archival PDFs and the EHR export through the API: the same files as the staff pages'
//! (`crate::archive`), authorised and audited by `lending::service::archive`.

use axum::extract::State;

use crate::archive::{self, Document, File, Scope};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::AppState;
use lending::web::json::{ApiPath, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/loans/{id}/copy.pdf", copy)
        .get("/loans/{id}/returns/receipt.pdf", receipt)
        .get("/wipes/{id}/certificate.pdf", certificate)
        .get("/loans/{id}/ehr-export", loan_export)
        .get("/patients/{id}/ehr-export", patient_export)
}

async fn copy(ApiUser(actor): ApiUser, State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult<File> {
    Ok(archive::pdf(&state, &actor, Document::PatientCopy, &id).await?)
}

async fn receipt(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<File> {
    Ok(archive::pdf(&state, &actor, Document::ReturnReceipt, &id).await?)
}

async fn certificate(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<File> {
    Ok(archive::pdf(&state, &actor, Document::Certificate, &id).await?)
}

async fn loan_export(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<File> {
    Ok(archive::ehr(&state, &actor, Scope::Loan, &id).await?.0)
}

async fn patient_export(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<File> {
    Ok(archive::ehr(&state, &actor, Scope::Patient, &id).await?.0)
}
