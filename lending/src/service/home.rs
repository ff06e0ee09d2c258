//! The staff home page: what this person has to do today. A nurse sees her open loans (a read
//! of patient data, audited like the dashboard's lists), the custody checks due on them, the
//! wipes someone else recorded that she may verify, and the patients' problem reports; an
//! admin the same and the clinic's figures; an auditor the figures only.

use chrono::{Duration, NaiveDate};

use super::oversight::{audit_read, SummaryCache};
use super::reports::{self, ReportRow};
use crate::actor::Actor;
use crate::error::Result;
use crate::policy::{allows, authorize, Action};
use crate::store::dashboard::{self, Filter, Row, Sort, Summary, Thresholds, View};
use crate::store::wipes::{self, PendingWipe};
use crate::store::Store;

/// At most this many of one's own open loan devices are listed (the dashboard has them all).
pub const MY_LOANS_LIMIT: i64 = 200;
/// The newest open problem reports shown.
pub const REPORTS_SHOWN: usize = 5;

/// How near a loan's due date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    Overdue,
    /// Within the reminder's "due soon" days (today included).
    Soon,
    Later,
}

/// One device of an open loan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanDevice {
    pub device_id: String,
    pub asset_tag: String,
    pub model_name: String,
    /// Not confirmed with the patient (所在確認) for longer than the threshold.
    pub custody_due: bool,
}

/// One open loan (a kit) of the signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyLoan {
    pub loan_id: String,
    pub patient_number: String,
    pub patient_name: String,
    pub patient_kana: String,
    pub patient_birth_date: Option<NaiveDate>,
    pub due_on: Option<NaiveDate>,
    pub due: Due,
    pub devices: Vec<LoanDevice>,
}

/// What the home page shows; the parts a role does not get are empty or `None`.
#[derive(Debug, Default)]
pub struct Home {
    /// The person's open loans, soonest due first (`None`: the role lends nothing).
    pub loans: Option<Vec<MyLoan>>,
    /// Wipes recorded by someone else, waiting for this person's verification.
    pub wipes_to_verify: Vec<PendingWipe>,
    pub open_reports: i64,
    /// The newest open reports (at most [`REPORTS_SHOWN`]).
    pub reports: Vec<ReportRow>,
    /// The clinic's figures (admins and auditors).
    pub clinic: Option<Summary>,
}

pub async fn home(
    store: &Store,
    cache: &SummaryCache,
    actor: &Actor,
    t: Thresholds,
    due_soon_days: i64,
) -> Result<Home> {
    authorize(actor, Action::Read)?;
    let (lends, oversees) = (allows(actor.role, Action::Operate), allows(actor.role, Action::Oversee));
    let mut home = Home::default();
    let mut tx = store.read().await?;
    if lends {
        let f = Filter { view: View::OnLoan, nurse: Some(actor.user_id.clone()), sort: Sort::Due, ..Filter::default() };
        let rows = dashboard::all(&mut tx, &f, t, MY_LOANS_LIMIT).await?;
        let now = tx.now();
        let today = tx.clock().today_tokyo();
        home.loans = Some(group_loans(&rows, today, now - Duration::days(t.custody_days), due_soon_days));
        home.wipes_to_verify =
            wipes::pending(&mut tx).await?.into_iter().filter(|w| w.performed_by != actor.user_id).collect();
        let mut w = store.begin().await?;
        audit_read(&mut w, actor, "dashboard.view", &f, &rows);
        w.commit().await?;
    }
    home.open_reports = reports::open_count(&mut tx).await?;
    home.reports = reports::list(&mut tx, false).await?.into_iter().take(REPORTS_SHOWN).collect();
    drop(tx);
    if oversees {
        home.clinic = Some(cache.get(store, t).await?.0);
    }
    Ok(home)
}

/// The dashboard's device rows (ordered by due date) as loans, in the same order.
fn group_loans(
    rows: &[Row],
    today: NaiveDate,
    custody_cutoff: chrono::DateTime<chrono::Utc>,
    soon: i64,
) -> Vec<MyLoan> {
    let mut loans: Vec<MyLoan> = Vec::new();
    for r in rows {
        let Some(loan_id) = &r.loan_id else { continue };
        let device = LoanDevice {
            device_id: r.device_id.clone(),
            asset_tag: r.asset_tag.clone(),
            model_name: r.model_name.clone(),
            custody_due: r.last_confirmed.or(r.lent_at).is_some_and(|at| at < custody_cutoff),
        };
        if let Some(l) = loans.iter_mut().find(|l| &l.loan_id == loan_id) {
            l.devices.push(device);
            continue;
        }
        let due = match r.due_on {
            Some(d) if d < today => Due::Overdue,
            Some(d) if (d - today).num_days() <= soon => Due::Soon,
            _ => Due::Later,
        };
        loans.push(MyLoan {
            loan_id: loan_id.clone(),
            patient_number: r.patient_number.clone().unwrap_or_default(),
            patient_name: r.patient_name.clone().unwrap_or_default(),
            patient_kana: r.patient_kana.clone().unwrap_or_default(),
            patient_birth_date: r.patient_birth_date,
            due_on: r.due_on,
            due,
            devices: vec![device],
        });
    }
    loans
}
