//! Data wiping (データ消去, NIST SP 800-88): one person records, a different person verifies
//! with their own credential, and only then does the device become available again (or
//! retired, for destruction).

use serde_json::json;

use super::bounded;
use super::idempotency::{self, IdempotencyKey, Operation};
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::lifecycle::DeviceStatus;
use crate::policy::{authorize, Action};
use crate::store::registry::{self, DeviceModel};
use crate::store::wipes::{self, Wipe};
use crate::store::{devices, Tx};

#[derive(Debug, Clone, serde::Deserialize)]
pub struct WipeRequest {
    pub device_id: String,
    /// `clear`, `purge` or `destroy`.
    pub method: String,
    #[serde(default)]
    pub tool: String,
    #[serde(default)]
    pub tool_version: String,
    /// The model's checklist items done; a passing wipe needs all of them.
    #[serde(default)]
    pub checklist: Vec<String>,
    #[serde(default)]
    pub evidence_ref: String,
    pub passed: bool,
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub notes: String,
}

pub async fn record(tx: &mut Tx, actor: &Actor, req: WipeRequest) -> Result<Wipe> {
    authorize(actor, Action::Operate)?;
    if !["clear", "purge", "destroy"].contains(&req.method.as_str()) {
        return Err(Error::invalid(
            "method",
            "消去方法（clear / purge / destroy）を選んでください。",
            "method must be clear, purge or destroy.",
        ));
    }
    let device = devices::get(tx, &req.device_id).await?.ok_or(Error::NotFound)?;
    if !matches!(device.status, DeviceStatus::AwaitingWipe | DeviceStatus::Maintenance) {
        return Err(Error::conflict(
            format!("機器 {} は「{}」のため、データ消去を記録できません。", device.asset_tag, device.status.label_ja()),
            format!("Device {} is {}; a wipe cannot be recorded now.", device.asset_tag, device.status.label_en()),
        ));
    }
    if req.method == "destroy" && device.status != DeviceStatus::AwaitingWipe {
        return Err(Error::conflict(
            "修理・保守中の機器は破壊消去できません。先に修理から戻してください。",
            "A device in maintenance cannot be destroyed; bring it back from maintenance first.",
        ));
    }
    let model = registry::model(tx, &device.model_id).await?.ok_or(Error::NotFound)?;
    let steps = DeviceModel::list(&model.wipe_steps);
    let missing: Vec<&String> = steps.iter().filter(|s| !req.checklist.contains(s)).collect();
    if req.passed && req.method != "destroy" && !missing.is_empty() {
        return Err(Error::invalid(
            "checklist",
            &format!(
                "チェックリストの未完了の項目があります: {}",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("、")
            ),
            "Some checklist items are not done.",
        ));
    }
    let last_loan = crate::store::loans::last_returned_from(tx, &device.id).await?;
    let wipe = Wipe {
        id: new_id(),
        device_id: device.id.clone(),
        loan_id: last_loan,
        method: req.method,
        tool: bounded("tool", &req.tool, 100, "ツール")?,
        tool_version: bounded("tool_version", &req.tool_version, 50, "ツールのバージョン")?,
        checklist: serde_json::to_string(&req.checklist).map_err(|e| Error::Other(e.into()))?,
        performed_by: actor.user_id.clone(),
        performed_at: tx.now(),
        verified_by: None,
        verified_at: None,
        evidence_ref: bounded("evidence_ref", &req.evidence_ref, 100, "証跡番号")?,
        result: if req.passed { "passed" } else { "failed" }.to_owned(),
        destination: bounded("destination", &req.destination, 100, "消去後の行き先")?,
        notes: bounded("notes", &req.notes, 2000, "備考")?,
    };
    wipes::insert(tx, &wipe).await?;
    tx.audit(
        actor,
        NewEvent::new("wipe.record", "wipe", &wipe.id).details(&json!({
            "device_id": device.id, "asset_tag": device.asset_tag, "method": wipe.method, "result": wipe.result,
        })),
    );
    Ok(wipe)
}

/// A second person confirms the wipe. A passing wipe makes the device available again
/// (or retired, when it was destroyed).
pub async fn verify(tx: &mut Tx, actor: &Actor, wipe_id: &str) -> Result<Wipe> {
    authorize(actor, Action::Operate)?;
    let wipe = wipes::get(tx, wipe_id).await?.ok_or(Error::NotFound)?;
    if wipe.verified_by.is_some() {
        return Err(Error::conflict("この消去記録はすでに確認済みです。", "This wipe is already verified."));
    }
    if wipe.performed_by == actor.user_id {
        return Err(Error::conflict(
            "消去を行った本人は確認できません。別の職員が確認してください。",
            "The person who wiped the device cannot verify it; another staff member must.",
        ));
    }
    // Four eyes means two people proving themselves: the verifier's own sign-in or a token they
    // created, never one someone else minted in their name.
    if !actor.credential.is_own() {
        return Err(Error::conflict(
            "確認は本人のサインイン、または本人が発行したAPIトークンで行ってください。",
            "Verify with your own sign-in or an API token you created yourself.",
        ));
    }
    let device = devices::get(tx, &wipe.device_id).await?.ok_or(Error::NotFound)?;
    if !matches!(device.status, DeviceStatus::AwaitingWipe | DeviceStatus::Maintenance) {
        return Err(Error::conflict(
            format!("機器 {} は「{}」のため確認できません。", device.asset_tag, device.status.label_ja()),
            format!("Device {} is {}; the wipe cannot be verified now.", device.asset_tag, device.status.label_en()),
        ));
    }
    if wipe.performed_at < device.status_changed_at {
        return Err(Error::conflict(
            "この消去記録は、機器の状態が変わる前のものです。改めて消去を記録してください。",
            "This wipe predates the device's current status; record a new wipe.",
        ));
    }
    if !wipes::mark_verified(tx, &wipe.id, &actor.user_id).await? {
        return Err(Error::conflict("この消去記録はすでに確認済みです。", "This wipe is already verified."));
    }
    if wipe.result == "passed" {
        let to = if wipe.method == "destroy" { DeviceStatus::Retired } else { DeviceStatus::Available };
        devices::set_status(tx, &device.id, device.status, to).await?;
    }
    tx.audit(
        actor,
        NewEvent::new("wipe.verify", "wipe", &wipe.id).details(&json!({
            "device_id": device.id, "asset_tag": device.asset_tag, "result": wipe.result,
        })),
    );
    wipes::get(tx, wipe_id).await?.ok_or(Error::NotFound)
}

/// [`record`] once per idempotency key: the same device's wipe submitted again with the key gets
/// the first record back.
pub async fn record_once(tx: &mut Tx, actor: &Actor, req: WipeRequest, key: Option<&IdempotencyKey>) -> Result<Wipe> {
    authorize(actor, Action::Operate)?;
    let fingerprint = req.device_id.clone();
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::Wipe, &fingerprint),
        |w: &Wipe| w.id.clone(),
        async |tx, id: String| wipes::get(tx, &id).await?.ok_or(Error::NotFound),
        async |tx| record(tx, actor, req).await,
    )
    .await
}

/// Whether `actor` may verify wipes at all (pages ask before asking what was checked).
pub fn may_verify(actor: &Actor) -> Result<()> {
    authorize(actor, Action::Operate)
}

/// [`verify`] once per idempotency key: a repeated confirmation gets the verified wipe back
/// instead of "already verified".
pub async fn verify_once(tx: &mut Tx, actor: &Actor, wipe_id: &str, key: Option<&IdempotencyKey>) -> Result<Wipe> {
    authorize(actor, Action::Operate)?;
    idempotency::once(
        tx,
        actor,
        key,
        (Operation::VerifyWipe, wipe_id),
        |w: &Wipe| w.id.clone(),
        async |tx, id: String| wipes::get(tx, &id).await?.ok_or(Error::NotFound),
        async |tx| verify(tx, actor, wipe_id).await,
    )
    .await
}

/// The most wipes one list returns.
pub const LIST_MAX: i64 = 500;

/// Wipe records, newest first (at most [`LIST_MAX`]): one device's when given, only those
/// waiting for their second person when `pending`.
pub async fn list(tx: &mut Tx, actor: &Actor, device_id: Option<&str>, pending: bool) -> Result<Vec<Wipe>> {
    authorize(actor, Action::Read)?;
    wipes::list(tx, device_id, pending, LIST_MAX).await
}

/// One wipe record (what its certificate shows).
pub async fn get(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Wipe> {
    authorize(actor, Action::Read)?;
    wipes::get(tx, id).await?.ok_or(Error::NotFound)
}
