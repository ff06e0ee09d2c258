//! Patients: the search every pick list uses, one patient's record with every loan, and the
//! edit of a record. Each page of results is a read of patient data, audited (`patient.search`)
//! with the patients it showed; so is each record shown (`patient.view`); an edit is audited
//! (`patient.edit`) with the names of the fields it changed, never their values.

use chrono::NaiveDate;
use serde_json::json;

use super::{bounded, required};
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::loans::{self, PatientLoan};
use crate::store::patients::{self, Patient, Search};
use crate::store::Tx;

/// Patients per page of a search.
pub const PER_PAGE: i64 = 50;

/// One page of a search, and how many patients it found in all.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub patients: Vec<Patient>,
    pub total: i64,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
}

impl Found {
    pub fn has_next(&self) -> bool {
        self.page * self.per_page < self.total
    }

    /// The first and last row's position shown (1-based; `(0, 0)` when none).
    pub fn range(&self) -> (i64, i64) {
        let first = (self.page - 1) * self.per_page;
        let shown = i64::try_from(self.patients.len()).unwrap_or(i64::MAX);
        if shown == 0 {
            (0, 0)
        } else {
            (first + 1, first + shown)
        }
    }
}

/// Page `page` (1-based) of the patients whose 院内ID, name or kana holds what was typed
/// (see [`Search::new`] for the folding), by 院内ID; audited.
pub async fn search(tx: &mut Tx, actor: &Actor, q: &str, page: i64, per_page: i64) -> Result<Found> {
    authorize(actor, Action::Read)?;
    let s = Search::new(q);
    let page = page.clamp(1, 100_000);
    let found = patients::search(tx, &s, per_page, (page - 1) * per_page).await?;
    let total = patients::count(tx, &s).await?;
    tx.audit(
        actor,
        NewEvent::new("patient.search", "patient", "").details(&json!({
            "results": found.len(),
            "page": page,
            "patient_ids": found.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        })),
    );
    Ok(Found { patients: found, total, page, per_page })
}

/// One patient's record, for someone about to act on it (the explanation page, the API); audited
/// as `patient.view`.
pub async fn view(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Patient> {
    authorize(actor, Action::Read)?;
    let patient = patients::get(tx, id).await?.ok_or(Error::NotFound)?;
    tx.audit(actor, NewEvent::new("patient.view", "patient", &patient.id).patient(&patient.id));
    Ok(patient)
}

/// A patient's record with every loan, open and closed, newest first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PatientRecord {
    pub patient: Patient,
    pub loans: Vec<PatientLoan>,
}

/// The patient's page: the record ([`view`]: authorised and audited as `patient.view`) and
/// every loan of the patient.
pub async fn record(tx: &mut Tx, actor: &Actor, id: &str) -> Result<PatientRecord> {
    let patient = view(tx, actor, id).await?;
    let loans = loans::of_patient(tx, &patient.id).await?;
    Ok(PatientRecord { patient, loans })
}

/// What staff may change on a record, as typed. The 院内ID is not among them: it names the
/// patient in the clinic's other systems and on every consent already signed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct PatientEdit {
    /// Defaults like the others: a form without it is refused by the check, with the values kept.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kana: String,
    /// `YYYY-MM-DD`, or empty when not recorded.
    #[serde(default)]
    pub birth_date: String,
}

/// Name, kana and date of birth as stored, from what was typed (registration and edit alike):
/// kana folded to full-width katakana (SPEC §9); every wrong field reported at once.
pub(super) fn details(
    name: &str,
    kana: &str,
    birth: &str,
    today: NaiveDate,
) -> Result<(String, String, Option<NaiveDate>)> {
    let (name, kana, birth) = (
        required("name", name, 100, "氏名"),
        bounded("kana", &crate::ids::fold_kana(kana), 100, "フリガナ"),
        birth_date(birth, today),
    );
    match (name, kana, birth) {
        (Ok(name), Ok(kana), Ok(birth)) => Ok((name, kana, birth)),
        (name, kana, birth) => Err([name.err(), kana.err(), birth.err()]
            .into_iter()
            .flatten()
            .fold(Error::Validation(Vec::new()), Error::merge)),
    }
}

/// A date of birth as typed (`YYYY-MM-DD`, full-width digits allowed): none, or a past date
/// after 1900.
fn birth_date(value: &str, today: NaiveDate) -> Result<Option<NaiveDate>> {
    let v = crate::ids::fold_code(value);
    if v.is_empty() {
        return Ok(None);
    }
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN);
    match NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
        Ok(d) if d >= earliest && d <= today => Ok(Some(d)),
        _ => Err(Error::invalid(
            "birth_date",
            "生年月日は1900年以降の今日までの日付（例 1950-04-01）で入力してください。",
            "Date of birth: a date from 1900 to today (e.g. 1950-04-01).",
        )),
    }
}

/// Corrects a patient's name, kana or date of birth (SPEC §9: corrections are audited). Audited
/// as `patient.edit` naming the fields that changed (no values: no PHI in the chain); a save
/// that changes nothing writes nothing, so a repeated submit is harmless.
pub async fn edit(tx: &mut Tx, actor: &Actor, id: &str, e: &PatientEdit) -> Result<Patient> {
    authorize(actor, Action::Operate)?;
    let old = patients::get(tx, id).await?.ok_or(Error::NotFound)?;
    let (name, kana, birth_date) = details(&e.name, &e.kana, &e.birth_date, tx.clock().today_tokyo())?;
    let new = Patient { name, kana, birth_date, ..old.clone() };
    let changed: Vec<&str> = [
        ("name", old.name != new.name),
        ("kana", old.kana != new.kana),
        ("birth_date", old.birth_date != new.birth_date),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect();
    if !changed.is_empty() {
        patients::update(tx, &new).await?;
        tx.audit(
            actor,
            NewEvent::new("patient.edit", "patient", &new.id).patient(&new.id).details(&json!({ "changed": changed })),
        );
    }
    Ok(new)
}
