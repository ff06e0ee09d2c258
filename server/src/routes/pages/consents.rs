//! Verifying a patient's copy: staff type the verification code printed on it and see whether
//! the stored consent still matches the institution's signed receipt (as
//! `GET /api/v1/consents/verify` does). A read: every staff role may check.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use lending::service::loans;

use crate::routes::Routes;
use crate::web::session::Staff;
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/consents/verify", verify)
}

/// What the check found.
#[derive(PartialEq, Eq)]
enum Outcome {
    /// No code asked about yet.
    None,
    Valid,
    /// The record no longer matches its signed receipt.
    Invalid,
    /// No consent carries this code.
    Unknown,
}

#[derive(Template)]
#[template(path = "staff/verify.html")]
struct VerifyPage {
    c: Chrome,
    code: String,
    outcome: Outcome,
}

#[derive(serde::Deserialize, Default)]
struct CodeQuery {
    #[serde(default)]
    code: String,
}

async fn verify(State(state): State<AppState>, s: Staff, Query(q): Query<CodeQuery>) -> Result<Response, PageError> {
    let code: String = q.code.trim().chars().take(64).collect();
    let outcome = if code.is_empty() {
        Outcome::None
    } else {
        let mut tx = state.store.read().await?;
        match loans::consent_by_code(&mut tx, &code).await? {
            None => Outcome::Unknown,
            Some(id) => {
                if loans::check_receipt(&mut tx, &state.receipts, &id).await.map_err(|e| s.error(e))?.valid {
                    Outcome::Valid
                } else {
                    Outcome::Invalid
                }
            }
        }
    };
    Ok(render(&VerifyPage { c: s.chrome(), code, outcome }))
}
