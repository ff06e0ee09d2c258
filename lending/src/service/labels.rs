//! Labels: what each device's label shows, rotating a label's token (the old label then says
//! it is no longer valid), and printing batches (audited).

use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::QrToken;
use crate::labels::{label_url, LabelInfo, Layout};
use crate::policy::{authorize, Action};
use crate::store::{devices, registry, Tx};

/// The label of one device, pointing at `public_base_url`.
pub async fn label_info(tx: &mut Tx, device_id: &str, public_base_url: &str) -> Result<LabelInfo> {
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    let model = registry::model(tx, &device.model_id).await?.ok_or(Error::NotFound)?;
    let vendor = match &model.vendor_id {
        Some(v) => registry::vendor(tx, v).await?,
        None => None,
    };
    let inst = registry::institution(tx).await?.ok_or_else(|| {
        Error::conflict("医療機関の設定（連絡先）が未登録です。", "Institution settings (contacts) are not set up.")
    })?;
    Ok(LabelInfo {
        url: label_url(public_base_url, &device.qr_token),
        asset_tag: device.asset_tag,
        institution: inst.name,
        day_phone: inst.day_phone,
        night_phone: inst.night_phone,
        vendor_line: vendor
            .filter(|v| !v.support_phone.is_empty())
            .map(|v| format!("機器の故障 {}", v.support_phone))
            .unwrap_or_default(),
    })
}

/// Gives a device a new label token; the old one is kept as revoked, so scanning the old
/// label says it is no longer valid (and shows the clinic's phone).
pub async fn rotate_token(tx: &mut Tx, actor: &Actor, device_id: &str) -> Result<String> {
    authorize(actor, Action::Operate)?;
    let device = devices::get(tx, device_id).await?.ok_or(Error::NotFound)?;
    let new = QrToken::generate();
    devices::replace_qr_token(tx, &device, new.as_str()).await?;
    tx.audit(
        actor,
        NewEvent::new("device.rotate_label", "device", &device.id).details(&json!({ "asset_tag": device.asset_tag })),
    );
    Ok(new.as_str().to_owned())
}

/// The labels of a print batch, in the order given; records who printed what.
pub async fn print_batch(
    tx: &mut Tx,
    actor: &Actor,
    device_ids: &[String],
    layout: &Layout,
    public_base_url: &str,
) -> Result<Vec<LabelInfo>> {
    authorize(actor, Action::Read)?;
    if device_ids.is_empty() || device_ids.len() > 2000 {
        return Err(Error::invalid(
            "device_ids",
            "印刷する機器を1〜2000台選んでください。",
            "Choose 1 to 2000 devices.",
        ));
    }
    let mut labels = Vec::with_capacity(device_ids.len());
    for id in device_ids {
        labels.push(label_info(tx, id, public_base_url).await?);
    }
    tx.audit(
        actor,
        NewEvent::new("labels.print", "device", "").details(&json!({
            "layout": layout.key,
            "count": labels.len(),
            "asset_tags": labels.iter().map(|l| l.asset_tag.as_str()).collect::<Vec<_>>(),
        })),
    );
    Ok(labels)
}
