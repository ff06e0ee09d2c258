//! Archival PDFs and the EHR export, as downloads from the staff pages (the same as the API's:
//! `crate::archive` reads through `lending::service::archive`, which authorises and audits).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};

use crate::archive::{self, Document, Scope};
use crate::routes::Routes;
use crate::web::session::Staff;
use crate::web::PageError;
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/loans/{id}/copy.pdf", copy)
        .get("/loans/{id}/returns/receipt.pdf", receipt)
        .get("/wipes/{id}/certificate.pdf", certificate)
        .get("/loans/{id}/ehr.zip", loan_export)
        .get("/patients/{id}/ehr.zip", patient_export)
}

async fn pdf(state: &AppState, s: &Staff, doc: Document, id: &str) -> Result<Response, PageError> {
    Ok(archive::pdf(state, &s.actor, doc, id).await.map_err(|e| s.error(e))?.into_response())
}

async fn copy(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    pdf(&state, &s, Document::PatientCopy, &id).await
}

async fn receipt(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    pdf(&state, &s, Document::ReturnReceipt, &id).await
}

async fn certificate(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    pdf(&state, &s, Document::Certificate, &id).await
}

async fn export(state: &AppState, s: &Staff, scope: Scope, id: &str) -> Result<Response, PageError> {
    let (file, _) = archive::ehr(state, &s.actor, scope, id).await.map_err(|e| s.error(e))?;
    Ok(file.into_response())
}

async fn loan_export(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    export(&state, &s, Scope::Loan, &id).await
}

async fn patient_export(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    export(&state, &s, Scope::Patient, &id).await
}
