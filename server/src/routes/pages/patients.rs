//! Patients: search as people type it (kana in any form, numbers with or without leading zeros),
//! page by page; each page shown is an audited read. Registration with an optional date of birth.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::patients::{self, Found, PER_PAGE};
use lending::service::registry::{self, NewPatient};
use lending::store::patients::Patient;
use lending::Role;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/patients", list).post("/patients", add)
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
