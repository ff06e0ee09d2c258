//! Device import from CSV (`server import devices <csv>`, `POST /api/v1/devices/import`).
//! Every row is checked first; one bad row imports nothing, and the answer names each bad row
//! by its line number and reason. UTF-8 (with or without BOM) and Excel's Shift_JIS both work.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, FieldError, Result};
use crate::ids::{new_id, sha256_bytes, AssetTag, QrToken};
use crate::lifecycle::DeviceStatus;
use crate::policy::{authorize, Action};
use crate::store::devices::{self, Device};
use crate::store::{registry, Tx};

/// Rows one file may hold.
pub const MAX_ROWS: usize = 50_000;
/// Bad rows listed in one answer (the rest are counted).
const MAX_REPORTED: usize = 50;

/// Header names accepted for each column (English, then Japanese).
const COLUMNS: [(&str, &[&str]); 8] = [
    ("asset_tag", &["asset_tag", "資産番号"]),
    ("serial", &["serial", "シリアル番号"]),
    ("model", &["model", "機種"]),
    ("firmware_version", &["firmware_version", "ファームウェア"]),
    ("firmware_updated_on", &["firmware_updated_on", "ファームウェア更新日"]),
    ("site", &["site", "拠点"]),
    ("location", &["location", "保管場所"]),
    ("notes", &["notes", "備考"]),
];

/// The file as text: UTF-8 (BOM dropped) or, failing that, Shift_JIS as Excel writes it.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::SHIFT_JIS.decode(bytes).0.into_owned(),
    }
}

fn row_error(line: usize, ja: &str, en: &str) -> FieldError {
    FieldError {
        field: format!("line {line}"),
        message_ja: format!("{line}行目: {ja}"),
        message_en: format!("line {line}: {en}"),
    }
}

/// Imports every row of `bytes` or none. Returns how many devices were registered.
pub async fn import_devices(tx: &mut Tx, actor: &Actor, bytes: &[u8]) -> Result<usize> {
    authorize(actor, Action::Operate)?;
    let text = decode(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| {
            Error::invalid("file", &format!("1行目（見出し）を読めません: {e}"), "Cannot read the header line.")
        })?
        .clone();
    let index: HashMap<&str, usize> = COLUMNS
        .iter()
        .filter_map(|(key, names)| headers.iter().position(|h| names.contains(&h.trim())).map(|i| (*key, i)))
        .collect();
    for required in ["asset_tag", "model"] {
        if !index.contains_key(required) {
            return Err(Error::invalid(
                "file",
                &format!("見出しに「{required}」（資産番号・機種）の列がありません。"),
                &format!("The header has no {required} column."),
            ));
        }
    }
    let models = registry::models(tx).await?;
    let model_by_name: HashMap<String, String> = models
        .iter()
        .flat_map(|m| {
            [
                (m.model_name.clone(), m.id.clone()),
                (m.model_name_en.clone(), m.id.clone()),
                (m.id.clone(), m.id.clone()),
            ]
        })
        .filter(|(k, _)| !k.is_empty())
        .collect();
    let existing: HashSet<String> = devices::all_asset_tags(tx).await?.into_iter().collect();

    let now = tx.now();
    let mut seen = HashSet::new();
    let mut errors = Vec::new();
    let mut error_count = 0;
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        if n >= MAX_ROWS {
            return Err(Error::invalid(
                "file",
                &format!("{MAX_ROWS}行を超えるファイルは分けて取り込んでください。"),
                "Too many rows; split the file.",
            ));
        }
        let mut fail = |ja: &str, en: &str| {
            error_count += 1;
            if errors.len() < MAX_REPORTED {
                errors.push(row_error(line, ja, en));
            }
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                fail(&format!("読み取れません（{e}）"), &format!("unreadable ({e})"));
                continue;
            }
        };
        let get = |key: &str| index.get(key).and_then(|&i| record.get(i)).map_or("", str::trim).to_owned();
        let Ok(tag) = AssetTag::parse(&get("asset_tag")) else {
            fail("資産番号が空か、使えない文字があります（英数字と - _ . 、32文字以内）。", "bad asset tag");
            continue;
        };
        if existing.contains(tag.as_str()) || !seen.insert(tag.as_str().to_owned()) {
            fail(
                &format!("資産番号 {} はすでに登録されているか、ファイル内で重複しています。", tag.as_str()),
                "duplicate asset tag",
            );
            continue;
        }
        let Some(model_id) = model_by_name.get(&get("model")).cloned() else {
            fail(&format!("機種「{}」が登録されていません。", get("model")), "unknown model");
            continue;
        };
        let updated = get("firmware_updated_on");
        let firmware_updated_on = if updated.is_empty() {
            None
        } else if let Ok(d) = NaiveDate::parse_from_str(&updated.replace('/', "-"), "%Y-%m-%d") {
            Some(d)
        } else {
            fail(
                &format!("ファームウェア更新日「{updated}」は 2026-11-22 の形で入力してください。"),
                "bad date (use YYYY-MM-DD)",
            );
            continue;
        };
        let (serial, firmware, site, location, notes) =
            (get("serial"), get("firmware_version"), get("site"), get("location"), get("notes"));
        if serial.chars().count() > 64
            || firmware.chars().count() > 32
            || site.chars().count() > 100
            || location.chars().count() > 100
            || notes.chars().count() > 2000
        {
            fail(
                "長すぎる項目があります（シリアル64・ファームウェア32・拠点/保管場所100・備考2000文字まで）。",
                "a field is too long",
            );
            continue;
        }
        rows.push(Device {
            id: new_id(),
            asset_tag: tag.as_str().to_owned(),
            serial,
            model_id,
            firmware_version: firmware,
            firmware_updated_on,
            status: DeviceStatus::Available,
            status_changed_at: now,
            qr_token: QrToken::generate().as_str().to_owned(),
            site,
            location,
            notes,
        });
    }
    if error_count > 0 {
        if error_count > errors.len() {
            let more = error_count - errors.len();
            errors.push(FieldError {
                field: "file".into(),
                message_ja: format!("ほかに{more}行の誤りがあります。"),
                message_en: format!("{more} more bad rows."),
            });
        }
        return Err(Error::Validation(errors));
    }
    if rows.is_empty() {
        return Err(Error::invalid("file", "取り込む行がありません。", "No rows to import."));
    }
    for d in &rows {
        devices::insert(tx, d).await?;
        tx.audit(
            actor,
            NewEvent::new("device.register", "device", &d.id)
                .details(&json!({ "asset_tag": d.asset_tag, "via": "import" })),
        );
    }
    tx.audit(
        actor,
        NewEvent::new("device.import", "device", "")
            .details(&json!({ "rows": rows.len(), "sha256": sha256_bytes(bytes) })),
    );
    Ok(rows.len())
}
