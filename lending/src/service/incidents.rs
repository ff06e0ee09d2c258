//! Loss, theft and damage; found devices; write-offs; maintenance.

use serde_json::json;

use super::bounded;
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::lifecycle::DeviceStatus;
use crate::policy::{authorize, Action};
use crate::store::devices::{self, Incident};
use crate::store::{loans, Tx};

/// A device out on loan is lost or stolen: it leaves the loan and an incident is opened.
pub async fn report_lost(
    tx: &mut Tx,
    actor: &Actor,
    device_id: &str,
    kind: &str,
    description: &str,
) -> Result<Incident> {
    authorize(actor, Action::Operate)?;
    if !["lost", "stolen"].contains(&kind) {
        return Err(Error::invalid("kind", "紛失か盗難かを選んでください。", "kind must be lost or stolen."));
    }
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    device.status.check(DeviceStatus::Lost)?;
    let loan = loans::open_loan_of_device(tx, device_id).await?;
    if let Some(l) = &loan {
        loans::end_device(tx, &l.id, device_id, "lost").await?;
    }
    devices::set_status(tx, device_id, device.status, DeviceStatus::Lost).await?;
    let incident = Incident {
        id: new_id(),
        device_id: device_id.to_owned(),
        loan_id: loan.as_ref().map(|l| l.id.clone()),
        kind: kind.to_owned(),
        status: "open".into(),
        description: bounded("description", description, 2000, "状況")?,
        opened_by: Some(actor.user_id.clone()).filter(|s| !s.is_empty()),
        opened_at: tx.now(),
    };
    devices::insert_incident(tx, &incident).await?;
    let mut ev = NewEvent::new("device.lost", "device", device_id)
        .details(&json!({ "asset_tag": device.asset_tag, "kind": kind, "incident_id": incident.id }));
    if let Some(l) = &loan {
        ev = ev.patient(&l.patient_id);
    }
    tx.audit(actor, ev);
    Ok(incident)
}

/// A lost device turned up: it must be wiped before anyone uses it again.
pub async fn mark_found(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<()> {
    move_device(tx, actor, device_id, DeviceStatus::Lost, DeviceStatus::AwaitingWipe, "device.found").await?;
    devices::resolve_incidents(tx, device_id, &actor.user_id, "発見 / found").await
}

/// A lost device is written off.
pub async fn write_off(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<()> {
    move_device(tx, actor, device_id, DeviceStatus::Lost, DeviceStatus::Retired, "device.write_off").await?;
    devices::resolve_incidents(tx, device_id, &actor.user_id, "除却 / written off").await
}

/// Sent to the vendor for repair (after its data wipe was recorded or is pending).
pub async fn send_to_maintenance(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<()> {
    move_device(tx, actor, device_id, DeviceStatus::AwaitingWipe, DeviceStatus::Maintenance, "device.maintenance_out")
        .await
}

/// Back from the vendor: wiped again before reuse.
pub async fn back_from_maintenance(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<()> {
    move_device(tx, actor, device_id, DeviceStatus::Maintenance, DeviceStatus::AwaitingWipe, "device.maintenance_back")
        .await
}

/// Moves a device that must currently be `from` to `to`, with its audit event.
async fn move_device(
    tx: &mut Tx,
    actor: &Actor,
    device_id: &str,
    from: DeviceStatus,
    to: DeviceStatus,
    action: &str,
) -> Result<()> {
    authorize(actor, Action::Operate)?;
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    if device.status != from {
        return Err(Error::IllegalTransition { from: device.status, to });
    }
    devices::set_status(tx, device_id, from, to).await?;
    tx.audit(
        actor,
        NewEvent::new(action, "device", device_id)
            .details(&json!({ "asset_tag": device.asset_tag, "from": device.status, "to": to })),
    );
    Ok(())
}

/// The most incidents one list returns.
pub const LIST_MAX: i64 = 500;

/// Incidents, newest first (at most [`LIST_MAX`]): only `open` or `resolved` ones, and only one
/// device's, when asked.
pub async fn list(
    tx: &mut Tx,
    actor: &Actor,
    status: Option<&str>,
    device_id: Option<&str>,
) -> Result<Vec<devices::IncidentRecord>> {
    authorize(actor, Action::Read)?;
    if status.is_some_and(|s| !["open", "resolved"].contains(&s)) {
        return Err(Error::invalid(
            "status",
            "状態は open（未解決）か resolved（解決済み）で指定してください。",
            "status must be open or resolved.",
        ));
    }
    devices::incidents(tx, status, device_id, LIST_MAX).await
}

/// One incident.
pub async fn get(tx: &mut Tx, actor: &Actor, id: &str) -> Result<devices::IncidentRecord> {
    authorize(actor, Action::Read)?;
    devices::incident(tx, id).await?.ok_or(Error::NotFound)
}
