//! Reading one device's past: its loans, wipes, incidents, custody checks and patient reports.

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::custody::{self, CustodyCheck};
use crate::store::devices::{self, Device, IncidentRecord};
use crate::store::loans::{self, LoanFilter};
use crate::store::wipes::{self, Wipe};
use crate::store::Tx;

use super::loans::{LoanSummary, LIST_MAX_PER_PAGE};

/// Everything that happened to a device, each list newest first (loans: the latest
/// [`LIST_MAX_PER_PAGE`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceHistory {
    pub device: Device,
    pub loans: Vec<LoanSummary>,
    pub wipes: Vec<Wipe>,
    pub incidents: Vec<IncidentRecord>,
    pub custody_checks: Vec<CustodyCheck>,
}

/// One device's history. Names no patient (loans by id), so it is not a read of patient data.
pub async fn history(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<DeviceHistory> {
    authorize(actor, Action::Read)?;
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    let filter = LoanFilter { device_id: Some(device.id.clone()), ..LoanFilter::default() };
    let (rows, _) = loans::list(tx, &filter, LIST_MAX_PER_PAGE, 0).await?;
    Ok(DeviceHistory {
        loans: super::loans::with_kits(tx, rows).await?,
        wipes: wipes::for_device(tx, &device.id).await?,
        incidents: devices::incidents(tx, None, Some(&device.id), super::incidents::LIST_MAX).await?,
        custody_checks: custody::of_device(tx, &device.id).await?,
        device,
    })
}
