//! Archival documents made by the server (not the browser): PDF/A-2b sheets for the patient copy,
//! the return receipt and the certificate of sanitization, and the EHR export (those PDFs named by
//! 院内ID, date and kind, with an HL7 FHIR R4 Bundle) as a ZIP.

pub mod documents;
pub mod ehr;
pub mod fhir;
pub mod pdf;

use std::sync::Arc;

use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use lending::service::archive::{self, Shown};
use lending::{Actor, Error};

use crate::AppState;

/// Which document of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// The patient copy of a loan's consent (id: the loan).
    PatientCopy,
    /// The return receipt of a loan (id: the loan).
    ReturnReceipt,
    /// The certificate of sanitization (id: the wipe).
    Certificate,
}

/// Whose records go to the EHR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Loan,
    Patient,
}

/// A file to download.
pub struct File {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl IntoResponse for File {
    fn into_response(self) -> Response {
        // RFC 6266: an ASCII fallback name and the UTF-8 one.
        let disposition = format!("attachment; filename=\"{0}\"; filename*=UTF-8''{0}", self.name);
        ([(CONTENT_TYPE, self.content_type.to_owned()), (CONTENT_DISPOSITION, disposition)], self.bytes).into_response()
    }
}

fn font(state: &AppState) -> Result<Arc<pdf::SheetFont>, Error> {
    state
        .pdf_font
        .get(&state.cfg.pdf_font)
        .map_err(|e| Error::Other(anyhow::anyhow!("the PDF font (LENDING_PDF_FONT) cannot be used: {e}")))
}

/// Reads the record (authorised and audited by the service), commits, then lays out the PDF
/// away from the async workers (subsetting the font takes a few tens of milliseconds).
pub async fn pdf(state: &AppState, actor: &Actor, doc: Document, id: &str) -> Result<File, Error> {
    let font = font(state)?;
    let mut tx = state.store.begin().await?;
    let (name, job): (String, Layout) = match doc {
        Document::PatientCopy => {
            let c = archive::patient_copy(&mut tx, actor, id, Shown::AsPdf).await?;
            let name = format!("consent-copy_{}.pdf", short(&c.loan.id));
            (name, Box::new(move || documents::patient_copy(font, &c)))
        }
        Document::ReturnReceipt => {
            let r = archive::return_receipt(&mut tx, actor, id, Shown::AsPdf).await?;
            let name = format!("return-receipt_{}.pdf", short(&r.loan.id));
            (name, Box::new(move || documents::return_receipt(font, &r)))
        }
        Document::Certificate => {
            let c = archive::certificate(&mut tx, actor, id).await?;
            let name = format!("sanitization-certificate_{}.pdf", short(&c.wipe.id));
            (name, Box::new(move || documents::certificate(font, &c)))
        }
    };
    tx.commit().await?;
    let bytes = blocking(job).await?;
    Ok(File { name, content_type: "application/pdf", bytes })
}

/// The EHR export of a loan or of a patient (ZIP of PDFs and the FHIR Bundle).
pub async fn ehr(state: &AppState, actor: &Actor, scope: Scope, id: &str) -> Result<(File, serde_json::Value), Error> {
    let font = font(state)?;
    let mut tx = state.store.begin().await?;
    let records = match scope {
        Scope::Loan => archive::ehr_for_loan(&mut tx, actor, id).await?,
        Scope::Patient => archive::ehr_for_patient(&mut tx, actor, id).await?,
    };
    tx.commit().await?;
    let base = state.cfg.staff_base_url.clone();
    let export = tokio::task::spawn_blocking(move || ehr::export(&font, &base, &records))
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("EHR export task: {e}")))?
        .map_err(|e| Error::Other(anyhow::anyhow!("EHR export: {e}")))?;
    Ok((File { name: export.name, content_type: "application/zip", bytes: export.zip }, export.bundle))
}

/// Laying out a document, done on a blocking thread.
type Layout = Box<dyn FnOnce() -> Result<Vec<u8>, String> + Send>;

async fn blocking(job: Layout) -> Result<Vec<u8>, Error> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("PDF task: {e}")))?
        .map_err(|e| Error::Other(anyhow::anyhow!("PDF: {e}")))
}

fn short(id: &str) -> String {
    id.chars().filter(char::is_ascii_alphanumeric).take(8).collect()
}
