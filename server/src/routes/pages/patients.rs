//! Patients: search as people type it (kana in any form, numbers with or without leading zeros),
//! page by page; each page shown is an audited read. Registration with an optional date of birth.
//! One patient's page (an audited read) with every loan and its copy; the record's edit
//! (audited), which comes back with what was typed and the reasons when refused.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::patients::{self, Found, PatientEdit, PER_PAGE};
use lending::service::registry::{self, NewPatient};
use lending::store::loans::PatientLoan;
use lending::store::patients::Patient;
use lending::{Action, Error, Role};

use super::loan_record::kit_part;
use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, FormErrors, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/patients", list)
        .post("/patients", add)
        .get("/patients/{id}", show)
        .get("/patients/{id}/edit", edit_form)
        .post("/patients/{id}/edit", save)
}

/// A patient as every list shows them: number, name, kana and date of birth together (SPEC §9).
pub(super) struct PatientLine {
    pub(super) id: String,
    pub(super) number: String,
    pub(super) name: String,
    pub(super) kana: String,
    /// 「1950年4月1日」, or "".
    pub(super) birth: String,
    /// Chosen on a form shown again.
    pub(super) checked: bool,
}

impl PatientLine {
    /// A patient shown without a choice (a loan's patient).
    pub(super) fn shown(
        number: &str,
        name: &str,
        kana: &str,
        birth_date: Option<chrono::NaiveDate>,
        lang: Lang,
    ) -> Self {
        Self {
            id: String::new(),
            number: number.to_owned(),
            name: name.to_owned(),
            kana: kana.to_owned(),
            birth: birth_date.map(|d| lang.date(d)).unwrap_or_default(),
            checked: false,
        }
    }

    pub(super) fn new(p: Patient, chosen: &str, lang: Lang) -> Self {
        Self {
            checked: p.id == chosen,
            birth: p.birth_date.map(|d| lang.date(d)).unwrap_or_default(),
            id: p.id,
            number: p.number,
            name: p.name,
            kana: p.kana,
        }
    }
}

/// Which part of a search's results a page shows, with links to the pages before and after
/// (`staff/parts/pager.html`).
pub(super) struct Pager {
    pub(super) total: i64,
    pub(super) first: i64,
    pub(super) last: i64,
    pub(super) prev: Option<String>,
    pub(super) next: Option<String>,
}

impl Pager {
    /// For `found` on the page at `path` searching `q`.
    pub(super) fn new(found: &Found, path: &str, q: &str) -> Self {
        let link = |page: i64| format!("{path}?q={}&page={page}", urlencode(q));
        let (first, last) = found.range();
        Self {
            total: found.total,
            first,
            last,
            prev: (found.page > 1).then(|| link(found.page - 1)),
            next: found.has_next().then(|| link(found.page + 1)),
        }
    }
}

fn urlencode(v: &str) -> String {
    serde_urlencoded::to_string([("", v)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}

#[derive(Template)]
#[template(path = "staff/patients.html")]
struct PatientsPage {
    c: Chrome,
    q: String,
    patients: Vec<PatientLine>,
    pager: Pager,
    can_write: bool,
}

#[derive(serde::Deserialize, Default)]
pub(super) struct Search {
    #[serde(default)]
    pub(super) q: String,
    #[serde(default)]
    pub(super) page: Option<i64>,
}

async fn list(State(state): State<AppState>, s: Staff, Query(search): Query<Search>) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let found = patients::search(&mut tx, &s.actor, &search.q, search.page.unwrap_or(1), PER_PAGE).await?;
    tx.commit().await?;
    let pager = Pager::new(&found, "/patients", &search.q);
    Ok(render(&PatientsPage {
        c: s.chrome(),
        pager,
        patients: found.patients.into_iter().map(|p| PatientLine::new(p, "", s.lang)).collect(),
        q: search.q,
        can_write: s.user.role != Role::Auditor,
    }))
}

async fn add(State(state): State<AppState>, form: StaffForm<NewPatient>) -> Result<Response, PageError> {
    let s = form.who;
    let mut tx = state.store.begin().await?;
    let p = registry::create_patient(&mut tx, &s.actor, form.form).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/patients?q={}", urlencode(&p.number))).into_response())
}

/// One loan of the patient as a card (a card on every width: nothing scrolls sideways on a phone).
struct LoanCard {
    id: String,
    lent_on: String,
    due_on: String,
    /// The day the kit was closed ("" while out, and for a voided check-out).
    returned_on: String,
    state: &'static str,
    overdue: bool,
    lent_by: String,
    devices: Vec<KitLine>,
}

/// One device of a loan card.
struct KitLine {
    asset_tag: String,
    /// Still out, or returned/lost/voided and on which day.
    part: String,
}

impl LoanCard {
    fn new(lang: Lang, l: PatientLoan, today: chrono::NaiveDate) -> Self {
        let t = lang.t();
        let open = l.closed_at.is_none() && l.voided_at.is_none();
        Self {
            state: if l.voided_at.is_some() {
                t.loan_voided
            } else if open {
                t.loan_open
            } else {
                t.loan_closed
            },
            overdue: open && l.due_on < today,
            returned_on: if l.voided_at.is_some() {
                String::new()
            } else {
                l.closed_at.map(|t| lang.day(t)).unwrap_or_default()
            },
            lent_on: lang.day(l.lent_at),
            due_on: lang.date(l.due_on),
            lent_by: l.lent_by_name,
            devices: l
                .devices
                .into_iter()
                .map(|d| KitLine {
                    part: kit_part(t, d.end_reason.as_deref(), d.ended_at, |at| lang.day(at)),
                    asset_tag: d.asset_tag,
                })
                .collect(),
            id: l.id,
        }
    }
}

#[derive(Template)]
#[template(path = "staff/patient.html")]
struct PatientPage {
    c: Chrome,
    id: String,
    who: PatientLine,
    loans: Vec<LoanCard>,
    /// Only those who may edit see the link (auditors do not).
    can_edit: bool,
    /// After a saved edit.
    done: Option<&'static str>,
}

#[derive(serde::Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: String,
}

/// The patient's page: name, kana, number and date of birth, and every loan with its copy.
async fn show(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let r = patients::record(&mut tx, &s.actor, &id).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    let t = s.lang.t();
    let today = state.store.clock().today_tokyo();
    Ok(render(&PatientPage {
        c: s.chrome(),
        can_edit: s.may(Action::Operate),
        done: (done.done == "edit").then_some(t.patient_saved),
        loans: r.loans.into_iter().map(|l| LoanCard::new(s.lang, l, today)).collect(),
        id: r.patient.id.clone(),
        who: PatientLine::new(r.patient, "", s.lang),
    }))
}

#[derive(Template)]
#[template(path = "staff/patient_edit.html")]
struct EditPage {
    c: Chrome,
    id: String,
    number: String,
    /// What the form shows: the record, or what was typed when it came back.
    form: PatientEdit,
    /// The latest date of birth the browser offers.
    today: String,
    errors: FormErrors,
}

impl EditPage {
    /// Whether the date of birth can sit in a date picker: one it cannot hold (typed without the
    /// picker) is shown as text, so what was typed stays in view beside its message.
    fn birth_in_picker(&self) -> bool {
        self.form.birth_date.is_empty() || chrono::NaiveDate::parse_from_str(&self.form.birth_date, "%Y-%m-%d").is_ok()
    }
}

async fn edit_form(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    s.require(Action::Operate)?;
    edit_page(&state, &s, &id, None, None).await
}

/// The edit form: the record as stored, or (after a refusal) what was typed with the reasons.
async fn edit_page(
    state: &AppState,
    s: &Staff,
    id: &str,
    typed: Option<PatientEdit>,
    error: Option<Error>,
) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let p = patients::view(&mut tx, &s.actor, id).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    let form = typed.unwrap_or_else(|| PatientEdit {
        name: p.name,
        kana: p.kana,
        birth_date: p.birth_date.map(|d| d.to_string()).unwrap_or_default(),
    });
    let page = EditPage {
        c: s.chrome(),
        id: p.id,
        number: p.number,
        form,
        today: state.store.clock().today_tokyo().to_string(),
        errors: error.as_ref().map(|e| FormErrors::from_error(e, s.lang)).unwrap_or_default(),
    };
    Ok((FormErrors::status(error.as_ref()), render(&page)).into_response())
}

async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<PatientEdit>,
) -> Result<Response, PageError> {
    let (s, typed) = (form.who, form.form);
    let outcome = async {
        let mut tx = state.store.begin().await?;
        let p = patients::edit(&mut tx, &s.actor, &id, &typed).await?;
        tx.commit().await?;
        Ok::<_, Error>(p)
    }
    .await;
    match outcome {
        Ok(p) => Ok(Redirect::to(&format!("/patients/{}?done=edit", p.id)).into_response()),
        Err(e @ Error::Validation(_)) => edit_page(&state, &s, &id, Some(typed), Some(e)).await,
        Err(e) => Err(s.error(e)),
    }
}
