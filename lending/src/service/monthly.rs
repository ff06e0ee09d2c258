//! The monthly management report for the 企画管理者: what was lent, returned, overdue, lost and
//! wiped in a month (Asia/Tokyo), incidents and problem reports, the access-log review summary,
//! and the audit chain's head hash at month end, which a later `audit verify` can be held to.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::monthly::Figures;
use crate::store::{audit, Tx};
use crate::timefmt::{audit_time, tokyo_midnight};

/// A calendar month in Asia/Tokyo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// "2026-11" exactly (`YYYY-MM`, as `<input type="month">` sends it), from 2000 to 2200.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "month",
                "月は「2026-11」の形（西暦4桁-月2桁、2000〜2200年）で指定してください。",
                "month must be YYYY-MM (e.g. 2026-11), years 2000 to 2200.",
            )
        };
        let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
        let (y, m) = s.split_once('-').filter(|(y, m)| digits(y, 4) && digits(m, 2)).ok_or_else(bad)?;
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

    /// `November 2026`.
    pub fn label_en(self) -> String {
        self.first_day().format("%B %Y").to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub month: Month,
    /// The month's counts (flattened: the JSON keeps one flat object).
    #[serde(flatten)]
    pub figures: Figures,
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

/// The report of `month` (default: the last complete one) for someone who may read it; audited
/// as `report.monthly` (it names who read patient data).
pub async fn read(tx: &mut Tx, actor: &Actor, month: Option<Month>) -> Result<Report> {
    authorize(actor, Action::Oversee)?;
    let month = month.unwrap_or_else(|| Month::last_complete(tx.clock().today_tokyo()));
    let report = build(tx, month).await?;
    tx.audit(actor, NewEvent::new("report.monthly", "report", &month.code()));
    Ok(report)
}

pub async fn build(tx: &mut Tx, month: Month) -> Result<Report> {
    let (start, end) = (month.start(), month.next().start());
    let end_day = month.next().first_day();
    let figures = crate::store::monthly::figures(tx, start, end, end_day).await?;
    let (from, until) = (audit_time(start), audit_time(end));
    let events_by_action = audit::count_by_action(tx, &from, &until).await?;
    let of = |action: &str| events_by_action.iter().find(|(a, _)| a == action).map_or(0, |(_, n)| *n);
    let (failed_sign_ins, lockouts) = (of("auth.failed"), of("auth.locked"));
    let patient_readers = audit::patient_readers(tx, &from, &until).await?;
    let head_at_end = audit::head_at(tx, &until).await?;
    Ok(Report {
        month,
        figures,
        events_by_action,
        patient_readers,
        failed_sign_ins,
        lockouts,
        head_at_end,
        complete: tx.now() >= end,
    })
}
