//! Patients: the search every pick list uses. Each page of results is a read of patient data,
//! audited (`patient.search`) with the patients it showed.

use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::patients::{self, Patient, Search};
use crate::store::Tx;

/// Patients per page of a search.
pub const PER_PAGE: i64 = 50;

/// One page of a search, and how many patients it found in all.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub patients: Vec<Patient>,
    pub total: i64,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

impl Found {
    pub fn has_next(&self) -> bool {
        self.page * self.per_page < self.total
    }

    /// The first and last row's position shown (1-based; `(0, 0)` when none).
    pub fn range(&self) -> (i64, i64) {
        let first = (self.page - 1) * self.per_page;
        let shown = i64::try_from(self.patients.len()).unwrap_or(i64::MAX);
        if shown == 0 {
            (0, 0)
        } else {
            (first + 1, first + shown)
        }
    }
}

/// Page `page` (1-based) of the patients whose 院内ID, name or kana holds what was typed
/// (see [`Search::new`] for the folding), by 院内ID; audited.
pub async fn search(tx: &mut Tx, actor: &Actor, q: &str, page: i64, per_page: i64) -> Result<Found> {
    authorize(actor, Action::Read)?;
    let s = Search::new(q);
    let page = page.clamp(1, 100_000);
    let found = patients::search(tx, &s, per_page, (page - 1) * per_page).await?;
    let total = patients::count(tx, &s).await?;
    tx.audit(
        actor,
        NewEvent::new("patient.search", "patient", "").details(&json!({
            "results": found.len(),
            "page": page,
            "patient_ids": found.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        })),
    );
    Ok(Found { patients: found, total, page, per_page })
}

/// One patient's record, for someone about to act on it (the explanation page, the API); audited
/// as `patient.view`.
pub async fn view(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Patient> {
    authorize(actor, Action::Read)?;
    let patient = patients::get(tx, id).await?.ok_or(Error::NotFound)?;
    tx.audit(actor, NewEvent::new("patient.view", "patient", &patient.id).patient(&patient.id));
    Ok(patient)
}
