//! The staff home page: what this person has to do today (see `lending::service::home`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use lending::service::home::{self, Due, MyLoan};
use lending::service::reports;
use lending::store::dashboard::View;
use lending::Role;

use super::devices::PendingWipe;
use super::patients::PatientLine;
use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::Staff;
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/", show)
}

/// An open loan as the list shows it.
struct LoanLine {
    /// "number name", for the custody list.
    patient: String,
    /// Name, kana, number and date of birth together (`staff/parts/patient_who.html`).
    who: PatientLine,
    due: String,
    /// `overdue`, `soon` or "" (a class and a word next to the date).
    state: &'static str,
    devices: Vec<DeviceLine>,
}

struct DeviceLine {
    id: String,
    label: String,
    custody_due: bool,
}

struct ReportLine {
    id: String,
    asset_tag: String,
    category: &'static str,
    received: String,
}

/// A clinic figure linking to its dashboard list.
struct Figure {
    view: &'static str,
    label: &'static str,
    count: i64,
    alert: bool,
}

#[derive(Template)]
#[template(path = "staff/home.html")]
struct HomePage {
    c: Chrome,
    can_write: bool,
    loans: Option<Vec<LoanLine>>,
    /// (device id, asset tag, patient) of devices due a custody check.
    custody: Vec<(String, String, String)>,
    pending: Vec<PendingWipe>,
    open_reports: i64,
    reports: Vec<ReportLine>,
    figures: Vec<Figure>,
    /// Consents kept at the idle lock: (draft id, when kept).
    drafts: Vec<(String, String)>,
}

fn loan_line(l: MyLoan, lang: Lang) -> LoanLine {
    LoanLine {
        patient: format!("{} {}", l.patient_number, l.patient_name),
        who: PatientLine::shown(&l.patient_number, &l.patient_name, &l.patient_kana, l.patient_birth_date, lang),
        due: l.due_on.map(|d| lang.date(d)).unwrap_or_default(),
        state: match l.due {
            Due::Overdue => "overdue",
            Due::Soon => "soon",
            Due::Later => "",
        },
        devices: l
            .devices
            .into_iter()
            .map(|d| DeviceLine {
                label: format!("{}（{}）", d.asset_tag, d.model_name),
                id: d.device_id,
                custody_due: d.custody_due,
            })
            .collect(),
    }
}

async fn show(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let lang = s.lang;
    let en = s.lang == Lang::En;
    let h = home::home(
        &state.store,
        &state.dashboard_counts,
        &s.actor,
        state.cfg.thresholds,
        state.cfg.reminder_cadence.due_soon,
    )
    .await
    .map_err(|e| s.error(e))?;
    let loans: Option<Vec<LoanLine>> = h.loans.map(|ls| ls.into_iter().map(|l| loan_line(l, lang)).collect());
    let custody = loans
        .iter()
        .flatten()
        .flat_map(|l| {
            l.devices.iter().filter(|d| d.custody_due).map(|d| (d.id.clone(), d.label.clone(), l.patient.clone()))
        })
        .collect();
    let figures = h
        .clinic
        .map(|c| {
            c.by_view
                .into_iter()
                .map(|(v, count)| Figure {
                    view: v.as_str(),
                    label: super::oversight::view_label(v, s.lang),
                    count,
                    alert: v != View::OnLoan && count > 0,
                })
                .collect()
        })
        .unwrap_or_default();
    let reports = h
        .reports
        .into_iter()
        .map(|r| ReportLine {
            category: reports::category_label(&r.category, en),
            received: lang.datetime(r.created_at),
            id: r.id,
            asset_tag: r.asset_tag,
        })
        .collect();
    let mut tx = state.store.read().await?;
    let drafts = lending::service::drafts::mine(&mut tx, &s.actor)
        .await?
        .into_iter()
        .map(|(id, at)| (id, lang.datetime(at)))
        .collect();
    drop(tx);
    Ok(render(&HomePage {
        drafts,
        c: s.chrome(),
        can_write: s.user.role != Role::Auditor,
        loans,
        custody,
        pending: PendingWipe::list(h.wipes_to_verify, &s.user.id, s.lang),
        open_reports: h.open_reports,
        reports,
        figures,
    }))
}
