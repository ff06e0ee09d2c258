//! What admins and auditors must see at a glance: devices out, overdue, not confirmed for a long
//! time, signed on an outdated explanation, waiting to be wiped, lost, in maintenance, on old
//! firmware or out of vendor support. Counts, per-nurse and per-site figures, and one filtered,
//! sorted, paged list that also feeds the CSV export.
//!
//! Loan views read from the open rows of `loan_devices` (a partial index holds only those), so
//! they stay fast however many loans are in the history.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::{on, Tx};
use crate::error::{Error, Result};

/// Which list the dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// Every device out on loan.
    #[default]
    OnLoan,
    Overdue,
    /// Out on loan and not confirmed with the patient (所在確認) for too long.
    Unconfirmed,
    /// Signed on an explanation document that has a newer version.
    OutdatedConsent,
    AwaitingWipe,
    Lost,
    Maintenance,
    FirmwareBehind,
    SupportEnded,
}

impl View {
    pub const ALL: [Self; 9] = [
        Self::OnLoan,
        Self::Overdue,
        Self::Unconfirmed,
        Self::OutdatedConsent,
        Self::AwaitingWipe,
        Self::Lost,
        Self::Maintenance,
        Self::FirmwareBehind,
        Self::SupportEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnLoan => "on_loan",
            Self::Overdue => "overdue",
            Self::Unconfirmed => "unconfirmed",
            Self::OutdatedConsent => "outdated_consent",
            Self::AwaitingWipe => "awaiting_wipe",
            Self::Lost => "lost",
            Self::Maintenance => "maintenance",
            Self::FirmwareBehind => "firmware_behind",
            Self::SupportEnded => "support_ended",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::OnLoan => "貸出中",
            Self::Overdue => "返却遅れ",
            Self::Unconfirmed => "所在確認が必要",
            Self::OutdatedConsent => "再同意が必要",
            Self::AwaitingWipe => "データ消去待ち",
            Self::Lost => "紛失・盗難",
            Self::Maintenance => "修理・点検中",
            Self::FirmwareBehind => "ファームウェアが古い",
            Self::SupportEnded => "サポート終了機種",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::OnLoan => "On loan",
            Self::Overdue => "Overdue",
            Self::Unconfirmed => "Custody check due",
            Self::OutdatedConsent => "Re-consent needed",
            Self::AwaitingWipe => "Awaiting wipe",
            Self::Lost => "Lost or stolen",
            Self::Maintenance => "In maintenance",
            Self::FirmwareBehind => "Firmware behind",
            Self::SupportEnded => "Vendor support ended",
        }
    }

    /// Views of devices on an open loan (they carry a patient and a nurse).
    pub fn is_loan_view(self) -> bool {
        matches!(self, Self::OnLoan | Self::Overdue | Self::Unconfirmed | Self::OutdatedConsent)
    }
}

/// How the list is ordered; every order ends with the asset tag so pages never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Loan views by due date, device views by how long the device has been in its state.
    #[default]
    Due,
    AssetTag,
    LentAt,
    Changed,
}

impl Sort {
    pub const ALL: [Self; 4] = [Self::Due, Self::AssetTag, Self::LentAt, Self::Changed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::AssetTag => "asset_tag",
            Self::LentAt => "lent_at",
            Self::Changed => "changed",
        }
    }

    fn column(self, view: View) -> &'static str {
        match self {
            Self::Due if view.is_loan_view() => "l.due_on",
            Self::Due | Self::Changed => "d.status_changed_at",
            Self::AssetTag => "d.asset_tag",
            Self::LentAt => "l.lent_at",
        }
    }
}

/// Days after which an outstanding device needs a custody check, and a returned one should have
/// been wiped (`LENDING_CUSTODY_CHECK_DAYS`, `LENDING_WIPE_WAIT_DAYS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub custody_days: i64,
    pub wipe_days: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { custody_days: 30, wipe_days: 7 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub view: View,
    /// The lending nurse's user id.
    pub nurse: Option<String>,
    pub site: Option<String>,
    pub sort: Sort,
    pub desc: bool,
    /// 1-based.
    pub page: i64,
}

impl Filter {
    pub const PER_PAGE: i64 = 50;

    pub fn page(&self) -> i64 {
        self.page.clamp(1, 100_000)
    }

    /// From a query string's pairs (`view`, `nurse`, `site`, `sort`, `desc`, `page`); empty
    /// values mean "any". An unknown value is refused with the field it came from.
    pub fn from_query(pairs: &[(String, String)]) -> crate::Result<Self> {
        let mut f = Self { page: 1, ..Self::default() };
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            match k.as_str() {
                "view" => {
                    f.view = View::ALL
                        .into_iter()
                        .find(|x| x.as_str() == v)
                        .ok_or_else(|| Error::invalid("view", "一覧の種類が正しくありません。", "unknown view."))?;
                }
                "sort" => {
                    f.sort = Sort::ALL
                        .into_iter()
                        .find(|x| x.as_str() == v)
                        .ok_or_else(|| Error::invalid("sort", "並べ替えの指定が正しくありません。", "unknown sort."))?;
                }
                "nurse" => f.nurse = Some(v.clone()),
                "site" => f.site = Some(v.clone()),
                "desc" => f.desc = v == "true" || v == "1" || v == "on",
                "page" => {
                    f.page = v.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                        Error::invalid("page", "ページ番号が正しくありません。", "page must be a positive number.")
                    })?;
                }
                _ => {}
            }
        }
        Ok(f)
    }

    /// The query string that shows this filter on `page` (for links).
    pub fn query(&self, page: i64) -> String {
        let mut pairs = vec![("view", self.view.as_str().to_owned()), ("sort", self.sort.as_str().to_owned())];
        if let Some(n) = &self.nurse {
            pairs.push(("nurse", n.clone()));
        }
        if let Some(s) = &self.site {
            pairs.push(("site", s.clone()));
        }
        if self.desc {
            pairs.push(("desc", "true".into()));
        }
        pairs.push(("page", page.to_string()));
        pairs.into_iter().map(|(k, v)| format!("{k}={}", url_encode(&v))).collect::<Vec<_>>().join("&")
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Row {
    pub device_id: String,
    pub asset_tag: String,
    pub model_name: String,
    pub status: String,
    pub status_changed_at: DateTime<Utc>,
    pub firmware_version: String,
    pub latest_firmware: String,
    pub support_ends: Option<NaiveDate>,
    pub site: String,
    pub loan_id: Option<String>,
    pub patient_id: Option<String>,
    pub patient_number: Option<String>,
    pub patient_name: Option<String>,
    pub nurse_id: Option<String>,
    pub nurse_name: Option<String>,
    pub lent_at: Option<DateTime<Utc>>,
    pub due_on: Option<NaiveDate>,
    /// The last custody check that found the device with its patient, during this loan.
    pub last_confirmed: Option<DateTime<Utc>>,
}

/// A loan's site (the lending nurse's), or for loans without one the device's.
const SITE: &str = "COALESCE(NULLIF(l.site, ''), d.site)";

fn select() -> String {
    format!(
        "SELECT d.id AS device_id, d.asset_tag, m.model_name, d.status, d.status_changed_at, \
    d.firmware_version, m.latest_firmware, m.support_ends, {SITE} AS site, \
    l.id AS loan_id, p.id AS patient_id, p.number AS patient_number, p.name AS patient_name, \
    u.id AS nurse_id, u.name AS nurse_name, l.lent_at, l.due_on, \
    (SELECT MAX(cc.checked_at) FROM custody_checks cc \
     WHERE cc.loan_id = l.id AND cc.device_id = d.id AND cc.confirmed = $5) AS last_confirmed"
    )
}

/// Open loans first: the partial index on open `loan_devices` rows drives the query.
const FROM_LOANS: &str = "FROM loan_devices ld \
    JOIN loans l ON l.id = ld.loan_id \
    JOIN devices d ON d.id = ld.device_id \
    JOIN device_models m ON m.id = d.model_id \
    JOIN patients p ON p.id = l.patient_id \
    JOIN users u ON u.id = l.lent_by \
    WHERE ld.ended_at IS NULL";

const FROM_DEVICES: &str = "FROM devices d \
    JOIN device_models m ON m.id = d.model_id \
    LEFT JOIN loan_devices ld ON ld.device_id = d.id AND ld.ended_at IS NULL \
    LEFT JOIN loans l ON l.id = ld.loan_id \
    LEFT JOIN patients p ON p.id = l.patient_id \
    LEFT JOIN users u ON u.id = l.lent_by \
    WHERE d.status <> 'retired'";

/// The FROM and WHERE of a view. Every query binds the same six values, used or not: $1 today
/// (Asia/Tokyo), $2 the custody-check cutoff, $3 the wipe cutoff, $4 nurse, $5 TRUE, $6 site.
fn from_where(view: View) -> String {
    let condition = match view {
        View::OnLoan => "",
        View::Overdue => " AND l.due_on < $1",
        View::Unconfirmed => {
            " AND COALESCE((SELECT MAX(cc.checked_at) FROM custody_checks cc \
             WHERE cc.loan_id = l.id AND cc.device_id = d.id AND cc.confirmed = $5), l.lent_at) < $2"
        }
        View::OutdatedConsent => {
            " AND EXISTS (SELECT 1 FROM consent_documents cd \
             JOIN explanation_documents ed ON ed.id = cd.document_id \
             JOIN device_models cm ON cm.id = ed.model_id \
             WHERE cd.consent_id = l.consent_id AND cm.current_document_id <> ed.id)"
        }
        View::AwaitingWipe => " AND d.status = 'awaiting_wipe'",
        View::Lost => " AND d.status = 'lost'",
        View::Maintenance => " AND d.status = 'maintenance'",
        View::FirmwareBehind => " AND m.latest_firmware <> '' AND d.firmware_version <> m.latest_firmware",
        View::SupportEnded => " AND m.support_ends IS NOT NULL AND m.support_ends < $1",
    };
    let from = if view.is_loan_view() { FROM_LOANS } else { FROM_DEVICES };
    format!("{from}{condition} AND ($4 IS NULL OR l.lent_by = $4) AND ($6 IS NULL OR {SITE} = $6)")
}

/// The moments the views compare against, from "now".
struct Cutoffs {
    today: NaiveDate,
    custody: DateTime<Utc>,
    wipe: DateTime<Utc>,
}

fn cutoffs(tx: &Tx, t: Thresholds) -> Cutoffs {
    let now = tx.now();
    Cutoffs {
        today: tx.clock().today_tokyo(),
        custody: now - Duration::days(t.custody_days),
        wipe: now - Duration::days(t.wipe_days),
    }
}

/// One page of a view, and how many rows the view has in all.
pub async fn list(tx: &mut Tx, f: &Filter, t: Thresholds) -> Result<(Vec<Row>, i64)> {
    let limit = Filter::PER_PAGE;
    let rows = rows(tx, f, t, Some((limit, (f.page() - 1) * limit))).await?;
    let total = count(tx, f.view, f, t).await?;
    Ok((rows, total))
}

/// Every row of a view (the CSV export), capped at `limit`.
pub async fn all(tx: &mut Tx, f: &Filter, t: Thresholds, limit: i64) -> Result<Vec<Row>> {
    rows(tx, f, t, Some((limit, 0))).await
}

async fn rows(tx: &mut Tx, f: &Filter, t: Thresholds, page: Option<(i64, i64)>) -> Result<Vec<Row>> {
    let c = cutoffs(tx, t);
    let direction = if f.desc { "DESC" } else { "ASC" };
    let (limit, offset) = page.unwrap_or((i64::MAX, 0));
    let sql = format!(
        "{} {} ORDER BY {} {direction}, d.asset_tag {direction} LIMIT $7 OFFSET $8",
        select(),
        from_where(f.view),
        f.sort.column(f.view)
    );
    Ok(on!(tx, conn => sqlx::query_as::<_, Row>(&sql)
        .bind(c.today).bind(c.custody).bind(c.wipe).bind(&f.nurse).bind(true).bind(&f.site)
        .bind(limit).bind(offset)
        .fetch_all(conn)
        .await)?)
}

async fn count(tx: &mut Tx, view: View, f: &Filter, t: Thresholds) -> Result<i64> {
    let c = cutoffs(tx, t);
    let sql = format!("SELECT COUNT(*) {}", from_where(view));
    Ok(on!(tx, conn => sqlx::query_scalar::<_, i64>(&sql)
        .bind(c.today).bind(c.custody).bind(c.wipe).bind(&f.nurse).bind(true).bind(&f.site)
        .fetch_one(conn)
        .await)?)
}

/// The figures at the top of the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Devices by lifecycle status (retired included), by status name.
    pub by_status: Vec<(String, i64)>,
    /// Rows in each view, in [`View::ALL`] order.
    pub by_view: Vec<(View, i64)>,
    /// Devices waiting for their wipe longer than the threshold.
    pub wipe_waiting_long: i64,
    pub by_nurse: Vec<Group>,
    pub by_site: Vec<Group>,
}

/// Devices out and overdue for one nurse or site.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct Group {
    pub key: String,
    pub label: String,
    pub on_loan: i64,
    pub overdue: i64,
}

pub async fn summary(tx: &mut Tx, t: Thresholds) -> Result<Summary> {
    let c = cutoffs(tx, t);
    let by_status: Vec<(String, i64)> = on!(tx, conn => sqlx::query_as("SELECT status, COUNT(*) FROM devices GROUP BY status ORDER BY status")
            .fetch_all(conn)
            .await)?;
    let any = Filter::default();
    let mut by_view = Vec::with_capacity(View::ALL.len());
    for view in View::ALL {
        let n = match view {
            // Straight from the status counts: no second scan.
            View::OnLoan | View::AwaitingWipe | View::Lost | View::Maintenance => {
                by_status.iter().find(|(s, _)| s == view.as_str()).map_or(0, |(_, n)| *n)
            }
            _ => count(tx, view, &any, t).await?,
        };
        by_view.push((view, n));
    }
    let wipe_waiting_long = on!(tx, conn => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM devices WHERE status = 'awaiting_wipe' AND status_changed_at < $1")
        .bind(c.wipe)
        .fetch_one(conn)
        .await)?;
    let group = |key: &str, label: &str| {
        format!(
            "SELECT {key} AS key, {label} AS label, COUNT(*) AS on_loan, \
             SUM(CASE WHEN l.due_on < $1 THEN 1 ELSE 0 END) AS overdue \
             FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id JOIN users u ON u.id = l.lent_by \
             JOIN devices d ON d.id = ld.device_id WHERE ld.ended_at IS NULL GROUP BY {key}, {label} ORDER BY overdue DESC, on_loan DESC, {label}"
        )
    };
    let by_nurse_sql = group("u.id", "u.name");
    let by_nurse = on!(tx, conn => sqlx::query_as::<_, Group>(&by_nurse_sql).bind(c.today).fetch_all(conn).await)?;
    let by_site_sql = group(SITE, SITE);
    let by_site = on!(tx, conn => sqlx::query_as::<_, Group>(&by_site_sql).bind(c.today).fetch_all(conn).await)?;
    Ok(Summary { by_status, by_view, wipe_waiting_long, by_nurse, by_site })
}
