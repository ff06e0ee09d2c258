//! The monthly management report for the 企画管理者: what was lent, returned, overdue, lost and
//! wiped in a month (Asia/Tokyo), incidents and problem reports, the access-log review summary,
//! and the audit chain's head hash at month end, which a later `audit verify` can be held to.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{audit, on, Tx};
use crate::timefmt::{audit_time, tokyo_midnight};

/// A calendar month in Asia/Tokyo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// "2026-11".
    pub fn parse(s: &str) -> Result<Self> {
        let bad =
            || Error::invalid("month", "月は「2026-11」の形で指定してください。", "month must look like 2026-11.");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        let (year, month) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        NaiveDate::from_ymd_opt(year, month, 1).filter(|d| (2000..=2200).contains(&d.year())).ok_or_else(bad)?;
        Ok(Self { year, month })
    }

    /// The month before the one `today` is in: the last complete month.
    pub fn last_complete(today: NaiveDate) -> Self {
        Self::of(today).previous()
    }

    pub fn of(d: NaiveDate) -> Self {
        Self { year: d.year(), month: d.month() }
    }

    #[must_use]
    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self { year: self.year - 1, month: 12 }
        } else {
            Self { year: self.year, month: self.month - 1 }
        }
    }

    #[must_use]
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    /// Midnight of the first day in Tokyo, as UTC.
    pub fn start(self) -> DateTime<Utc> {
        tokyo_midnight(self.first_day())
    }

    pub fn code(self) -> String {
        format!("{}-{:02}", self.year, self.month)
    }

    pub fn label_ja(self) -> String {
        format!("{}年{}月", self.year, self.month)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub month: Month,
    pub loans_made: i64,
    pub devices_lent: i64,
    pub devices_returned: i64,
    /// Devices still out at month end whose due date had passed by then.
    pub overdue_at_end: i64,
    /// Devices still out at month end.
    pub outstanding_at_end: i64,
    pub lost_or_stolen: i64,
    pub wipes_recorded: i64,
    pub wipes_verified: i64,
    pub incidents_opened: i64,
    pub incidents_resolved: i64,
    pub problem_reports: i64,
    pub problem_reports_resolved: i64,
    pub custody_checks: i64,
    pub consents_withdrawn: i64,
    /// Audit events of the month, by action.
    pub events_by_action: Vec<(String, i64)>,
    /// Staff who read patient data, with how many reads.
    pub patient_readers: Vec<(String, i64)>,
    pub failed_sign_ins: i64,
    pub lockouts: i64,
    /// The chain head at month end: (seq, hash) of the month's last event (or an earlier one).
    pub head_at_end: Option<(i64, String)>,
    /// Whether the month has ended (the figures are final).
    pub complete: bool,
}

pub async fn build(tx: &mut Tx, month: Month) -> Result<Report> {
    let (start, end) = (month.start(), month.next().start());
    let end_day = month.next().first_day();
    // Every count binds the same two moments: $1 month start, $2 month end.
    let counts = [
        "SELECT COUNT(*) FROM loans WHERE lent_at >= $1 AND lent_at < $2",
        "SELECT COUNT(*) FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id WHERE l.lent_at >= $1 AND l.lent_at < $2",
        "SELECT COUNT(*) FROM returns WHERE returned_at >= $1 AND returned_at < $2",
        "SELECT COUNT(*) FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id \
         WHERE l.lent_at < $2 AND (ld.ended_at IS NULL OR ld.ended_at >= $2)",
        "SELECT COUNT(*) FROM incidents WHERE kind IN ('lost', 'stolen') AND opened_at >= $1 AND opened_at < $2",
        "SELECT COUNT(*) FROM wipes WHERE performed_at >= $1 AND performed_at < $2",
        "SELECT COUNT(*) FROM wipes WHERE verified_at >= $1 AND verified_at < $2",
        "SELECT COUNT(*) FROM incidents WHERE opened_at >= $1 AND opened_at < $2",
        "SELECT COUNT(*) FROM incidents WHERE resolved_at >= $1 AND resolved_at < $2",
        "SELECT COUNT(*) FROM problem_reports WHERE created_at >= $1 AND created_at < $2",
        "SELECT COUNT(*) FROM problem_reports WHERE resolved_at >= $1 AND resolved_at < $2",
        "SELECT COUNT(*) FROM custody_checks WHERE checked_at >= $1 AND checked_at < $2",
        "SELECT COUNT(*) FROM consent_withdrawals WHERE withdrawn_at >= $1 AND withdrawn_at < $2",
    ];
    let mut n = Vec::with_capacity(counts.len());
    for sql in counts {
        n.push(on!(tx, c => sqlx::query_scalar::<_, i64>(sql).bind(start).bind(end).fetch_one(c).await)?);
    }
    let overdue_at_end = on!(tx, c => sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id \
         WHERE l.lent_at < $1 AND (ld.ended_at IS NULL OR ld.ended_at >= $1) AND l.due_on < $2")
        .bind(end).bind(end_day)
        .fetch_one(c)
        .await)?;
    let (from, until) = (audit_time(start), audit_time(end));
    let events_by_action = audit::count_by_action(tx, &from, &until).await?;
    let of = |action: &str| events_by_action.iter().find(|(a, _)| a == action).map_or(0, |(_, n)| *n);
    let (failed_sign_ins, lockouts) = (of("auth.failed"), of("auth.locked"));
    let patient_readers = audit::patient_readers(tx, &from, &until).await?;
    let head_at_end = audit::head_at(tx, &until).await?;
    Ok(Report {
        month,
        loans_made: n[0],
        devices_lent: n[1],
        devices_returned: n[2],
        outstanding_at_end: n[3],
        overdue_at_end,
        lost_or_stolen: n[4],
        wipes_recorded: n[5],
        wipes_verified: n[6],
        incidents_opened: n[7],
        incidents_resolved: n[8],
        problem_reports: n[9],
        problem_reports_resolved: n[10],
        custody_checks: n[11],
        consents_withdrawn: n[12],
        events_by_action,
        patient_readers,
        failed_sign_ins,
        lockouts,
        head_at_end,
        complete: tx.now() >= end,
    })
}
