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
            // Many devices can be behind: walking the asset-tag index stops after a page
            // instead of sorting them all.
            Self::Due if view == View::FirmwareBehind => "d.asset_tag",
            // Open loans are few: sort them, rather than let PostgreSQL walk every device's
            // asset tag looking for ones on loan (62 ms against 20).
            Self::AssetTag if view.is_loan_view() => "(d.asset_tag || '')",
            Self::AssetTag => "d.asset_tag",
            Self::LentAt if view.is_loan_view() => "l.lent_at",
            // Device-only views have no loan to sort by lent_at: newest change first instead.
            Self::Due | Self::Changed | Self::LentAt => "d.status_changed_at",
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
        self.page.clamp(1, crate::error::MAX_PAGE)
    }

    /// From a query string's pairs (`view`, `nurse`, `site`, `sort`, `desc`, `page`), as the
    /// API takes them: a filter left out means "any"; an empty or unknown value is refused with
    /// the field it came from, and `desc` is `true` or `false`.
    pub fn from_query(pairs: &[(String, String)]) -> crate::Result<Self> {
        let mut f = Self { page: 1, ..Self::default() };
        let mut refused: Option<Error> = None;
        for (k, v) in pairs {
            let parsed = match k.as_str() {
                "view" => one_of(View::ALL, View::as_str, v, "view", "一覧の種類").map(|x| f.view = x),
                "sort" => one_of(Sort::ALL, Sort::as_str, v, "sort", "並べ替えの指定").map(|x| f.sort = x),
                "nurse" => not_empty(v, "nurse", "担当者").map(|x| f.nurse = Some(x)),
                "site" => not_empty(v, "site", "拠点").map(|x| f.site = Some(x)),
                "desc" => one_of([false, true], |b| if b { "true" } else { "false" }, v, "desc", "降順の指定")
                    .map(|x| f.desc = x),
                "page" => match v.parse() {
                    Ok(p) => Error::check_page(p).map(|()| f.page = p),
                    Err(_) => Error::check_page(0),
                },
                _ => Ok(()),
            };
            if let Err(e) = parsed {
                refused = Some(match refused {
                    Some(r) => r.merge(e),
                    None => e,
                });
            }
        }
        refused.map_or(Ok(f), Err)
    }

    /// From the dashboard form, whose "any" choices send an empty value.
    pub fn from_form(pairs: &[(String, String)]) -> crate::Result<Self> {
        let chosen: Vec<(String, String)> = pairs.iter().filter(|(_, v)| !v.is_empty()).cloned().collect();
        Self::from_query(&chosen)
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

/// The one of `all` whose name is `value`.
fn one_of<T: Copy, const N: usize>(
    all: [T; N],
    name: fn(T) -> &'static str,
    value: &str,
    field: &str,
    label_ja: &str,
) -> crate::Result<T> {
    all.into_iter().find(|x| name(*x) == value).ok_or_else(|| {
        let names = all.map(name).join(", ");
        Error::invalid(
            field,
            &format!("{label_ja}が正しくありません（{names} のいずれか）。"),
            &format!("{field} must be one of {names}."),
        )
    })
}

/// A filter value that, when given, is not empty.
fn not_empty(value: &str, field: &str, label_ja: &str) -> crate::Result<String> {
    Error::check_filter(value, field, label_ja)?;
    Ok(value.to_owned())
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
    pub patient_kana: Option<String>,
    pub patient_birth_date: Option<NaiveDate>,
    pub nurse_id: Option<String>,
    pub nurse_name: Option<String>,
    pub lent_at: Option<DateTime<Utc>>,
    pub due_on: Option<NaiveDate>,
    /// The last custody check that found the device with its patient, during this loan.
    pub last_confirmed: Option<DateTime<Utc>>,
}

/// The open loans' rows: the partial indexes on open `loan_devices` rows and open loans drive
/// every loan view (`l.closed_at IS NULL` always holds for an open row; saying so keeps
/// PostgreSQL from hashing the whole loan history). Counting needs no device columns (a loan's
/// site is the lending nurse's, set at check-out).
fn from_loans(with_devices: bool) -> &'static str {
    if with_devices {
        "FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id JOIN devices d ON d.id = ld.device_id \
         WHERE ld.ended_at IS NULL AND l.closed_at IS NULL"
    } else {
        "FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id WHERE ld.ended_at IS NULL AND l.closed_at IS NULL"
    }
}

/// Device views read devices alone (their site is the device's).
const FROM_DEVICES: &str = "FROM devices d JOIN device_models m ON m.id = d.model_id WHERE d.status <> 'retired'";

/// The last custody check that found the device with its patient during this loan.
const LAST_CONFIRMED: &str = "(SELECT MAX(cc.checked_at) FROM custody_checks cc \
    WHERE cc.loan_id = l.id AND cc.device_id = ld.device_id AND cc.confirmed = $5)";

/// Signed on an explanation document that is no longer its model's current one (the current
/// ones are few: a small set looked up once per query).
const OUTDATED: &str = "EXISTS (SELECT 1 FROM consent_documents cd WHERE cd.consent_id = l.consent_id \
    AND cd.document_id NOT IN (SELECT current_document_id FROM device_models WHERE current_document_id IS NOT NULL))";

/// The FROM and WHERE of a view. Every query binds the same six values, used or not: $1 today
/// (Asia/Tokyo), $2 the custody-check cutoff, $3 the wipe cutoff, $4 nurse, $5 TRUE, $6 site.
fn from_where(view: View, f: &Filter, with_devices: bool) -> String {
    let condition = match view {
        View::OnLoan => String::new(),
        View::Overdue => " AND l.due_on < $1".into(),
        View::Unconfirmed => format!(" AND COALESCE({LAST_CONFIRMED}, l.lent_at) < $2"),
        View::OutdatedConsent => format!(" AND {OUTDATED}"),
        View::AwaitingWipe => " AND d.status = 'awaiting_wipe'".into(),
        View::Lost => " AND d.status = 'lost'".into(),
        View::Maintenance => " AND d.status = 'maintenance'".into(),
        View::FirmwareBehind => " AND m.latest_firmware <> '' AND d.firmware_version <> m.latest_firmware".into(),
        View::SupportEnded => " AND m.support_ends IS NOT NULL AND m.support_ends < $1".into(),
    };
    // Only the filters in use, so a view without them can be answered from an index alone.
    let (from, site) =
        if view.is_loan_view() { (from_loans(with_devices), "l.site") } else { (FROM_DEVICES, "d.site") };
    let nurse = if f.nurse.is_some() && view.is_loan_view() { " AND l.lent_by = $4" } else { "" };
    let site = if f.site.is_some() { format!(" AND {site} = $6") } else { String::new() };
    format!("{from}{condition}{nurse}{site}")
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
    let rows = page(tx, f, t).await?;
    let total = count(tx, f, t).await?;
    Ok((rows, total))
}

/// One page of a view (its total comes from elsewhere, e.g. the summary).
pub async fn page(tx: &mut Tx, f: &Filter, t: Thresholds) -> Result<Vec<Row>> {
    let limit = Filter::PER_PAGE;
    rows(tx, f, t, limit, (f.page() - 1) * limit).await
}

/// Every row of a view (the CSV export), capped at `limit`.
pub async fn all(tx: &mut Tx, f: &Filter, t: Thresholds, limit: i64) -> Result<Vec<Row>> {
    rows(tx, f, t, limit, 0).await
}

/// Two steps: the view's keys are filtered, ordered and cut to the page on the fewest columns;
/// only the page's rows are then joined with patients, staff and custody checks.
async fn rows(tx: &mut Tx, f: &Filter, t: Thresholds, limit: i64, offset: i64) -> Result<Vec<Row>> {
    let c = cutoffs(tx, t);
    let direction = if f.desc { "DESC" } else { "ASC" };
    let loan_key = if f.view.is_loan_view() { "ld.loan_id" } else { "NULL" };
    let sql = format!(
        "SELECT d.id AS device_id, d.asset_tag, m.model_name, d.status, d.status_changed_at, \
         d.firmware_version, m.latest_firmware, m.support_ends, COALESCE(l.site, d.site) AS site, \
         l.id AS loan_id, p.id AS patient_id, p.number AS patient_number, p.name AS patient_name, \
         p.kana AS patient_kana, p.birth_date AS patient_birth_date, \
         u.id AS nurse_id, u.name AS nurse_name, l.lent_at, l.due_on, {LAST_CONFIRMED} AS last_confirmed \
         FROM (SELECT d.id AS device_id, {loan_key} AS loan_id, {sort} AS sort_key, d.asset_tag AS tie \
               {from_where} ORDER BY {sort} {direction}, d.asset_tag {direction} LIMIT $7 OFFSET $8) page \
         JOIN devices d ON d.id = page.device_id \
         JOIN device_models m ON m.id = d.model_id \
         LEFT JOIN loan_devices ld ON ld.device_id = d.id AND ld.ended_at IS NULL \
         LEFT JOIN loans l ON l.id = ld.loan_id \
         LEFT JOIN patients p ON p.id = l.patient_id \
         LEFT JOIN users u ON u.id = l.lent_by \
         ORDER BY page.sort_key {direction}, page.tie {direction}",
        sort = f.sort.column(f.view),
        from_where = from_where(f.view, f, true),
    );
    Ok(on!(tx, conn => sqlx::query_as::<_, Row>(&sql)
        .bind(c.today).bind(c.custody).bind(c.wipe).bind(&f.nurse).bind(true).bind(&f.site)
        .bind(limit).bind(offset)
        .fetch_all(conn)
        .await)?)
}

/// How many rows a view has. Device views without a site filter are summed from the kept
/// `device_counts` (a few dozen rows) instead of counting every device.
pub async fn count(tx: &mut Tx, f: &Filter, t: Thresholds) -> Result<i64> {
    let c = cutoffs(tx, t);
    let sql = if f.view.is_loan_view() || f.site.is_some() {
        format!("SELECT COUNT(*) {}", from_where(f.view, f, false))
    } else {
        // The same conditions: `device_counts` has the device columns they read.
        let devices = from_where(f.view, f, false).replacen(FROM_DEVICES, "", 1);
        format!(
            "SELECT CAST(COALESCE(SUM(d.n), 0) AS BIGINT) FROM device_counts d \
             JOIN device_models m ON m.id = d.model_id WHERE d.status <> 'retired'{devices}"
        )
    };
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub key: String,
    pub label: String,
    pub on_loan: i64,
    pub overdue: i64,
}

/// Open loans' devices, counted by nurse and site in one pass.
#[derive(sqlx::FromRow)]
struct LoanCounts {
    nurse_id: String,
    nurse_name: String,
    site: String,
    on_loan: i64,
    overdue: i64,
    unconfirmed: i64,
    outdated: i64,
}

/// Devices counted by model, firmware and status (the `device_counts` table, kept by triggers).
#[derive(sqlx::FromRow)]
struct DeviceCounts {
    status: String,
    behind: bool,
    support_ended: bool,
    n: i64,
}

/// The device counts come from `device_counts`; the loan counts from one pass over open loans.
pub async fn summary(tx: &mut Tx, t: Thresholds) -> Result<Summary> {
    let c = cutoffs(tx, t);
    let devices: Vec<DeviceCounts> = on!(tx, conn => sqlx::query_as(
        "SELECT g.status, \
         (m.latest_firmware <> '' AND g.firmware_version <> m.latest_firmware) AS behind, \
         (m.support_ends IS NOT NULL AND m.support_ends < $1) AS support_ended, g.n \
         FROM device_counts g JOIN device_models m ON m.id = g.model_id WHERE g.n > 0")
        .bind(c.today)
        .fetch_all(conn)
        .await)?;
    let sql = format!(
        "SELECT l.lent_by AS nurse_id, u.name AS nurse_name, l.site, COUNT(*) AS on_loan, \
         SUM(CASE WHEN l.due_on < $1 THEN 1 ELSE 0 END) AS overdue, \
         SUM(CASE WHEN COALESCE({LAST_CONFIRMED}, l.lent_at) < $2 THEN 1 ELSE 0 END) AS unconfirmed, \
         SUM(CASE WHEN {OUTDATED} THEN 1 ELSE 0 END) AS outdated \
         FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id JOIN users u ON u.id = l.lent_by \
         WHERE ld.ended_at IS NULL AND l.closed_at IS NULL GROUP BY l.lent_by, u.name, l.site"
    );
    let none: Option<String> = None;
    let loans: Vec<LoanCounts> = on!(tx, conn => sqlx::query_as(&sql)
        .bind(c.today).bind(c.custody).bind(c.wipe).bind(&none).bind(true).bind(&none)
        .fetch_all(conn)
        .await)?;
    let wipe_waiting_long = on!(tx, conn => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM devices WHERE status = 'awaiting_wipe' AND status_changed_at < $1")
        .bind(c.wipe)
        .fetch_one(conn)
        .await)?;

    let mut by_status: Vec<(String, i64)> = Vec::new();
    for d in &devices {
        match by_status.iter_mut().find(|(s, _)| *s == d.status) {
            Some((_, n)) => *n += d.n,
            None => by_status.push((d.status.clone(), d.n)),
        }
    }
    by_status.sort();
    let live = |f: fn(&DeviceCounts) -> bool| -> i64 {
        devices.iter().filter(|d| d.status != "retired" && f(d)).map(|d| d.n).sum()
    };
    let status = |s: &str| by_status.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n);
    let sum = |f: fn(&LoanCounts) -> i64| -> i64 { loans.iter().map(f).sum() };
    let by_view = View::ALL
        .into_iter()
        .map(|v| {
            let n = match v {
                View::OnLoan => sum(|l| l.on_loan),
                View::Overdue => sum(|l| l.overdue),
                View::Unconfirmed => sum(|l| l.unconfirmed),
                View::OutdatedConsent => sum(|l| l.outdated),
                View::AwaitingWipe | View::Lost | View::Maintenance => status(v.as_str()),
                View::FirmwareBehind => live(|d| d.behind),
                View::SupportEnded => live(|d| d.support_ended),
            };
            (v, n)
        })
        .collect();
    let group = |key: fn(&LoanCounts) -> (&str, &str)| {
        let mut groups: Vec<Group> = Vec::new();
        for l in &loans {
            let (k, label) = key(l);
            match groups.iter_mut().find(|g| g.key == k) {
                Some(g) => {
                    g.on_loan += l.on_loan;
                    g.overdue += l.overdue;
                }
                None => {
                    groups.push(Group { key: k.into(), label: label.into(), on_loan: l.on_loan, overdue: l.overdue });
                }
            }
        }
        groups.sort_by(|a, b| b.overdue.cmp(&a.overdue).then(b.on_loan.cmp(&a.on_loan)).then(a.label.cmp(&b.label)));
        groups
    };
    let by_nurse = group(|l| (&l.nurse_id, &l.nurse_name));
    let by_site = group(|l| (&l.site, &l.site));
    Ok(Summary { by_status, by_view, wipe_waiting_long, by_nurse, by_site })
}
