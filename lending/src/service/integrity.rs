//! `server verify`: everything that proves the records were not changed behind the product's
//! back, in one pass: the audit chain and its signed checkpoints, every consent against the
//! institution's receipt signature, every wipe against the audit events that recorded who wiped
//! and who verified it, and the lifecycle invariants. Each kind names its first bad record.

use crate::audit::Break;
use crate::error::Result;
use crate::receipts::ReceiptKey;
use crate::store::loans::{self as loan_rows, InvariantViolations};
use crate::store::{audit, wipes, Store};

/// One kind of record: how many were checked and the first that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub checked: usize,
    pub first_bad: Option<String>,
}

#[derive(Debug)]
pub struct Findings {
    /// Events in the chain, or where it breaks.
    pub chain: std::result::Result<i64, Break>,
    /// Signed checkpoints and outside anchors that match, or the first that does not.
    pub checkpoints: std::result::Result<usize, Break>,
    pub consents: Checked,
    pub wipes: Checked,
    pub invariants: InvariantViolations,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.chain.is_ok()
            && self.checkpoints.is_ok()
            && self.consents.first_bad.is_none()
            && self.wipes.first_bad.is_none()
            && self.invariants.is_clean()
    }
}

pub async fn verify(store: &Store, key: &ReceiptKey, anchors: &[(i64, String)]) -> Result<Findings> {
    let chain = audit::verify(store).await?;
    let checkpoints = super::checkpoints::verify(store, &key.public_key(), anchors).await?;
    let mut tx = store.read().await?;
    let mut consents = Checked { checked: 0, first_bad: None };
    for id in loan_rows::consent_ids(&mut tx).await? {
        consents.checked += 1;
        if consents.first_bad.is_none() && !super::loans::check_receipt(&mut tx, key, &id).await?.valid {
            consents.first_bad = Some(id);
        }
    }
    // A wipe row must agree with the chain: recorded by whoever the row says, verified by whoever
    // the row says (a rewritten verifier in the table alone shows here).
    let mut checked_wipes = Checked { checked: 0, first_bad: None };
    for (id, performed_by, verified_by) in wipes::people(&mut tx).await? {
        checked_wipes.checked += 1;
        if checked_wipes.first_bad.is_some() {
            continue;
        }
        let events = audit::for_target(&mut tx, "wipe", &id).await?;
        let by = |action: &str, who: &str| events.iter().any(|e| e.action == action && e.actor_id == who);
        let verified_ok = verified_by.as_deref().is_none_or(|v| by("wipe.verify", v));
        if !by("wipe.record", &performed_by) || !verified_ok {
            checked_wipes.first_bad = Some(id);
        }
    }
    let invariants = loan_rows::invariant_violations(&mut tx).await?;
    Ok(Findings { chain, checkpoints, consents, wipes: checked_wipes, invariants })
}
