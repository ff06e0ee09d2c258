//! The monthly report's figures: counts of what happened in a month (Asia/Tokyo).

use chrono::{DateTime, NaiveDate, Utc};

use super::{on, Tx};
use crate::error::Result;

/// What happened between two moments, and what was outstanding at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    pub loans_made: i64,
    pub devices_lent: i64,
    pub devices_returned: i64,
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
    pub overdue_at_end: i64,
}

/// Counts every figure of `[start, end)`; `end_day` is the first day after the month (a loan due
/// before it and still out at `end` was overdue at month end).
pub async fn figures(tx: &mut Tx, start: DateTime<Utc>, end: DateTime<Utc>, end_day: NaiveDate) -> Result<Figures> {
    Ok(Figures {
        loans_made: count(tx, "SELECT COUNT(*) FROM loans WHERE lent_at >= $1 AND lent_at < $2", start, end).await?,
        devices_lent: count(tx, "SELECT COUNT(*) FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id WHERE l.lent_at >= $1 AND l.lent_at < $2", start, end).await?,
        devices_returned: count(tx, "SELECT COUNT(*) FROM returns WHERE returned_at >= $1 AND returned_at < $2", start, end).await?,
        outstanding_at_end: count(tx, "SELECT COUNT(*) FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id \
         WHERE l.lent_at < $2 AND (ld.ended_at IS NULL OR ld.ended_at >= $2)", start, end).await?,
        lost_or_stolen: count(tx, "SELECT COUNT(*) FROM incidents WHERE kind IN ('lost', 'stolen') AND opened_at >= $1 AND opened_at < $2", start, end).await?,
        wipes_recorded: count(tx, "SELECT COUNT(*) FROM wipes WHERE performed_at >= $1 AND performed_at < $2", start, end).await?,
        wipes_verified: count(tx, "SELECT COUNT(*) FROM wipes WHERE verified_at >= $1 AND verified_at < $2", start, end).await?,
        incidents_opened: count(tx, "SELECT COUNT(*) FROM incidents WHERE opened_at >= $1 AND opened_at < $2", start, end).await?,
        incidents_resolved: count(tx, "SELECT COUNT(*) FROM incidents WHERE resolved_at >= $1 AND resolved_at < $2", start, end).await?,
        problem_reports: count(tx, "SELECT COUNT(*) FROM problem_reports WHERE created_at >= $1 AND created_at < $2", start, end).await?,
        problem_reports_resolved: count(tx, "SELECT COUNT(*) FROM problem_reports WHERE resolved_at >= $1 AND resolved_at < $2", start, end).await?,
        custody_checks: count(tx, "SELECT COUNT(*) FROM custody_checks WHERE checked_at >= $1 AND checked_at < $2", start, end).await?,
        consents_withdrawn: count(tx, "SELECT COUNT(*) FROM consent_withdrawals WHERE withdrawn_at >= $1 AND withdrawn_at < $2", start, end).await?,
        overdue_at_end: on!(tx, c => sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM loan_devices ld JOIN loans l ON l.id = ld.loan_id \
             WHERE l.lent_at < $1 AND (ld.ended_at IS NULL OR ld.ended_at >= $1) AND l.due_on < $2")
            .bind(end).bind(end_day)
            .fetch_one(c)
            .await)?,
    })
}

/// One count that binds the same two moments: `$1` the start, `$2` the end.
async fn count(tx: &mut Tx, sql: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar::<_, i64>(sql).bind(start).bind(end).fetch_one(c).await)?)
}
