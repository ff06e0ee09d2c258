//! The admins' and auditors' view of what is outstanding: the dashboard and its exports. Lists
//! that show patients are reads of patient data, so each is audited with the patients it showed.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::json;

use ed25519_dalek::VerifyingKey;

use crate::actor::Actor;
use crate::audit::{Break, EventRow, NewEvent};
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::dashboard::{self, Filter, Row, Summary, Thresholds};
use crate::store::{audit, Store, Tx};
use crate::timefmt::{date_ja, datetime_ja};

/// At most this many rows go into one export.
pub const EXPORT_LIMIT: i64 = 100_000;

pub struct Dashboard {
    pub summary: Summary,
    /// When the summary's counts were taken (at most [`SUMMARY_MAX_AGE`] ago).
    pub counted_at: DateTime<Utc>,
    pub rows: Vec<Row>,
    pub total: i64,
}

/// How old the dashboard's counts may be.
pub const SUMMARY_MAX_AGE: chrono::Duration = chrono::Duration::seconds(5);

/// The dashboard's counts cost a pass over every open loan; everyone looking within
/// [`SUMMARY_MAX_AGE`] shares one count (the page says when it was taken). The lists are live.
#[derive(Default)]
pub struct SummaryCache(Mutex<Option<(DateTime<Utc>, Thresholds, Summary)>>);

impl SummaryCache {
    pub async fn get(&self, store: &Store, t: Thresholds) -> Result<(Summary, DateTime<Utc>)> {
        let now = store.clock().now();
        let fresh = |at: DateTime<Utc>| at <= now && now - at < SUMMARY_MAX_AGE;
        if let Some((at, th, s)) = self.0.lock().map_err(|_| poisoned())?.as_ref() {
            if *th == t && fresh(*at) {
                return Ok((s.clone(), *at));
            }
        }
        let summary = dashboard::summary(&mut store.read().await?, t).await?;
        *self.0.lock().map_err(|_| poisoned())? = Some((now, t, summary.clone()));
        Ok((summary, now))
    }
}

fn poisoned() -> crate::Error {
    crate::Error::Other(anyhow::anyhow!("dashboard cache poisoned"))
}

/// The dashboard: the counts (shared, see [`SummaryCache`]), one page of a view and its total
/// are read side by side in their own read transactions (no write lock is held while counting),
/// then the read is audited in a short write transaction of its own.
pub async fn dashboard(
    store: &Store,
    cache: &SummaryCache,
    actor: &Actor,
    f: &Filter,
    t: Thresholds,
) -> Result<Dashboard> {
    authorize(actor, Action::Read)?;
    let ((summary, counted_at), rows, total) = tokio::try_join!(
        cache.get(store, t),
        async { dashboard::page(&mut store.read().await?, f, t).await },
        async { dashboard::count(&mut store.read().await?, f, t).await },
    )?;
    let mut tx = store.begin().await?;
    audit_read(&mut tx, actor, "dashboard.view", f, &rows);
    tx.commit().await?;
    Ok(Dashboard { summary, counted_at, rows, total })
}

/// One page of a view for the API (the same rows as the dashboard), audited.
pub async fn outstanding(store: &Store, actor: &Actor, f: &Filter, t: Thresholds) -> Result<(Vec<Row>, i64)> {
    authorize(actor, Action::Read)?;
    let (rows, total) = dashboard::list(&mut store.read().await?, f, t).await?;
    let mut tx = store.begin().await?;
    audit_read(&mut tx, actor, "report.outstanding", f, &rows);
    tx.commit().await?;
    Ok((rows, total))
}

/// Every row of a view as CSV: UTF-8 with a BOM so Excel opens it in Japanese, one header row.
pub async fn outstanding_csv(store: &Store, actor: &Actor, f: &Filter, t: Thresholds) -> Result<Vec<u8>> {
    authorize(actor, Action::Read)?;
    let rows = dashboard::all(&mut store.read().await?, f, t, EXPORT_LIMIT).await?;
    let mut tx = store.begin().await?;
    audit_read(&mut tx, actor, "report.outstanding", f, &rows);
    tx.commit().await?;
    let today = store.clock().today_tokyo();
    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let header = [
        "資産番号",
        "機種",
        "状態",
        "拠点",
        "院内ID",
        "患者氏名",
        "貸出者",
        "貸出日時",
        "返却予定日",
        "遅延日数",
        "最終所在確認",
        "ファームウェア",
        "最新ファームウェア",
    ];
    let csv_error = |e: csv::Error| crate::Error::Other(e.into());
    out.write_record(header).map_err(csv_error)?;
    for r in &rows {
        let overdue = r.due_on.map(|d| (today - d).num_days()).filter(|d| *d > 0).map(|d| d.to_string());
        let status = crate::lifecycle::DeviceStatus::parse(&r.status).map_or(r.status.as_str(), |s| s.label_ja());
        let record = [
            r.asset_tag.as_str(),
            &r.model_name,
            status,
            &r.site,
            r.patient_number.as_deref().unwrap_or(""),
            r.patient_name.as_deref().unwrap_or(""),
            r.nurse_name.as_deref().unwrap_or(""),
            &r.lent_at.map(datetime_ja).unwrap_or_default(),
            &r.due_on.map(date_ja).unwrap_or_default(),
            overdue.as_deref().unwrap_or(""),
            &r.last_confirmed.map(datetime_ja).unwrap_or_default(),
            &r.firmware_version,
            &r.latest_firmware,
        ];
        out.write_record(record.map(spreadsheet_safe)).map_err(csv_error)?;
    }
    out.into_inner().map_err(|e| crate::Error::Other(anyhow::anyhow!("csv: {e}")))
}

/// A cell Excel would run as a formula (=, +, -, @, tab, CR, and their full-width forms, which
/// Japanese Excel also takes as formulas) gets a leading apostrophe.
pub fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// Audits a list's read of patient data: the patients it showed, by id.
pub(crate) fn audit_read(tx: &mut Tx, actor: &Actor, action: &str, f: &Filter, rows: &[Row]) {
    let mut patients: Vec<&str> = rows.iter().filter_map(|r| r.patient_id.as_deref()).collect();
    patients.sort_unstable();
    patients.dedup();
    tx.audit(
        actor,
        NewEvent::new(action, "report", f.view.as_str()).details(&json!({
            "rows": rows.len(),
            "nurse": f.nurse,
            "site": f.site,
            "patient_ids": patients,
        })),
    );
}

/// A page of the audit log for someone who may read it (newest first, at most `limit` events).
/// Reading the log is itself logged: auditors are accountable too.
pub async fn audit_log(tx: &mut Tx, actor: &Actor, search: &audit::Search, limit: i64) -> Result<Vec<EventRow>> {
    authorize(actor, Action::Oversee)?;
    let rows = audit::search(tx, search, limit).await?;
    tx.audit(
        actor,
        NewEvent::new("audit.search", "audit", "").details(&json!({
            "user": search.actor_id, "patient_id": search.patient_id, "device_id": search.target_id,
            "action": search.action, "from": search.from, "until": search.until, "rows": rows.len(),
        })),
    );
    Ok(rows)
}

/// The log viewer's filters as typed (the page's form and the API's query): a patient by 院内ID,
/// a device by asset tag, days as `YYYY-MM-DD` in Japan time (`until` included); empty matches
/// everything; `before` is the keyset (events older than this `seq`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub user: String,
    pub patient: String,
    pub device: String,
    pub action: String,
    pub from: String,
    pub until: String,
    pub patient_data_only: bool,
    pub include_lists: bool,
    pub before: Option<i64>,
}

/// Tokyo midnight of a `YYYY-MM-DD` day, as the audit chain's UTC time text.
fn day_start(day: chrono::NaiveDate) -> String {
    crate::timefmt::audit_time(crate::timefmt::tokyo_midnight(day))
}

fn parse_day(field: &str, date: &str) -> Result<chrono::NaiveDate> {
    // Exactly YYYY-MM-DD (chrono alone would take 2026-1-1).
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok().filter(|_| date.len() == 10).ok_or_else(|| {
        Error::invalid(field, "日付は 2026-11-22 の形で入力してください。", "dates look like 2026-11-22.")
    })
}

/// The most events one page of the log holds.
pub const AUDIT_PAGE_MAX: i64 = 500;

/// A page of the audit log with the viewer's filters (see [`AuditFilter`]), newest first, at most
/// `limit` (1 to [`AUDIT_PAGE_MAX`]) events; audited like [`audit_log`]. An unknown patient
/// number or asset tag, or a malformed day, is wrong input (422).
pub async fn audit_page(tx: &mut Tx, actor: &Actor, f: &AuditFilter, limit: i64) -> Result<Vec<EventRow>> {
    authorize(actor, Action::Oversee)?;
    if !(1..=AUDIT_PAGE_MAX).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            &format!("件数は 1 から {AUDIT_PAGE_MAX} までで指定してください。"),
            &format!("limit must be from 1 to {AUDIT_PAGE_MAX}."),
        ));
    }
    let mut search = audit::Search {
        actor_id: f.user.clone(),
        action: f.action.clone(),
        patient_data_only: f.patient_data_only,
        include_lists: f.include_lists,
        before: f.before,
        ..audit::Search::default()
    };
    if !f.from.is_empty() {
        search.from = day_start(parse_day("from", &f.from)?);
    }
    if !f.until.is_empty() {
        let day = parse_day("until", &f.until)?;
        search.until = day_start(day.succ_opt().unwrap_or(day));
    }
    let unknown =
        |what: &str, ja: &str| Error::invalid(what, &format!("{ja}が見つかりません。"), &format!("no such {what}."));
    if !f.patient.is_empty() {
        let p =
            crate::store::patients::by_number(tx, &f.patient).await?.ok_or_else(|| unknown("patient", "その院内ID"))?;
        search.patient_id = p.id;
    }
    if !f.device.is_empty() {
        let d = crate::store::devices::by_asset_tag(tx, &f.device)
            .await?
            .ok_or_else(|| unknown("device", "その資産番号"))?;
        search.target_id = d.id;
    }
    audit_log(tx, actor, &search, limit).await
}

/// Verifies the whole audit chain and its signed checkpoints for someone who may (audited with
/// the outcome): the number of events, or where the chain breaks.
pub async fn verify_chain(store: &Store, actor: &Actor, key: &VerifyingKey) -> Result<std::result::Result<i64, Break>> {
    authorize(actor, Action::Oversee)?;
    let outcome = match audit::verify(store).await? {
        // The chain, then its signed checkpoints (a chain rewritten as a whole fails only those).
        Ok(n) => super::checkpoints::verify(store, key, &[]).await?.map(|_| n),
        Err(b) => Err(b),
    };
    let details = match &outcome {
        Ok(n) => json!({ "intact": true, "events": n }),
        Err(b) => json!({ "intact": false, "first_bad": b.seq() }),
    };
    let mut tx = store.begin().await?;
    tx.audit(actor, NewEvent::new("audit.verify", "audit", "").details(&details));
    tx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("-1"), "'-1");
        assert_eq!(spreadsheet_safe("ECG-001"), "ECG-001");
    }
}
