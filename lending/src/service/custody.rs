//! Custody checks (所在確認): a nurse confirms by phone or visit that a device out on loan is still
//! with its patient. A check that does not find it is recorded too; the device stays on the
//! "custody check due" list until a check confirms it (or it is reported lost).

use serde::Deserialize;
use serde_json::json;

use super::bounded;
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::policy::{authorize, Action};
use crate::store::custody::{self, CustodyCheck};
use crate::store::{devices, loans, Tx};

#[derive(Debug, Clone, Deserialize)]
pub struct NewCheck {
    pub device_id: String,
    /// phone | visit | other
    pub method: String,
    pub confirmed: bool,
    #[serde(default)]
    pub notes: String,
}

pub async fn record(tx: &mut Tx, actor: &Actor, req: NewCheck) -> Result<CustodyCheck> {
    authorize(actor, Action::Operate)?;
    if !["phone", "visit", "other"].contains(&req.method.as_str()) {
        return Err(Error::invalid(
            "method",
            "確認方法（電話・訪問・その他）を選んでください。",
            "method must be phone, visit or other.",
        ));
    }
    let notes = bounded("notes", &req.notes, 1000, "メモ")?;
    let device = devices::get(tx, &req.device_id).await?.ok_or(Error::NotFound)?;
    let Some(loan) = loans::open_loan_of_device(tx, &device.id).await? else {
        return Err(Error::conflict(
            format!("{}は貸出中ではないため、所在確認は記録できません。", device.asset_tag),
            format!("{} is not on loan; a custody check needs an open loan.", device.asset_tag),
        ));
    };
    let check = CustodyCheck {
        id: new_id(),
        loan_id: loan.id.clone(),
        device_id: device.id.clone(),
        checked_at: tx.now(),
        checked_by: actor.user_id.clone(),
        method: req.method,
        confirmed: req.confirmed,
        notes,
    };
    custody::insert(tx, &check).await?;
    tx.audit(
        actor,
        NewEvent::new("custody.check", "device", &device.id).patient(&loan.patient_id).details(&json!({
            "asset_tag": device.asset_tag,
            "loan_id": loan.id,
            "method": check.method,
            "confirmed": check.confirmed,
        })),
    );
    Ok(check)
}

/// A device out on loan with the custody checks of that loan (the device's custody page).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoanCustody {
    pub device_id: String,
    pub asset_tag: String,
    pub loan_id: String,
    pub due_on: chrono::NaiveDate,
    /// Newest first.
    pub checks: Vec<CustodyCheck>,
}

/// The checks of a device's open loan; a device not on loan is a conflict naming it (409).
pub async fn of_open_loan(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<LoanCustody> {
    authorize(actor, Action::Read)?;
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    let Some(loan) = loans::open_loan_of_device(tx, &device.id).await? else {
        return Err(Error::conflict(
            format!("{}は貸出中ではありません。所在確認は貸出中の機器だけです。", device.asset_tag),
            format!("{} is not on loan; custody checks are for devices out on loan.", device.asset_tag),
        ));
    };
    let checks = custody::of_loan_device(tx, &loan.id, &device.id).await?;
    Ok(LoanCustody { device_id: device.id, asset_tag: device.asset_tag, loan_id: loan.id, due_on: loan.due_on, checks })
}
