//! What admins and auditors check: the dashboard of outstanding devices (with its CSV export),
//! custody checks, the audit log viewer with `audit verify`, and the monthly management report.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, Utc};
use lending::audit::EventRow;
use lending::service::custody::{self, NewCheck};
use lending::service::monthly::{self, Month, Report};
use lending::service::oversight::{self, AuditFilter};
use lending::store::dashboard::{Filter, Group, Row, Sort, View};
use lending::store::{audit, patients, users};
use lending::Action;
use lending::Role;

use super::Empty;
use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/dashboard", dashboard)
        .get("/dashboard/outstanding.csv", outstanding_csv)
        .get("/devices/{id}/custody", custody_page)
        .post("/devices/{id}/custody", record_custody)
        .get("/audit", audit_log)
        .post("/audit/verify", verify_chain)
        .get("/management-report", management_report)
}

type Pairs = Query<Vec<(String, String)>>;

pub(super) fn value(pairs: &[(String, String)], key: &str) -> String {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().to_owned()).unwrap_or_default()
}

pub(super) fn view_label(v: View, lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => v.label_ja(),
        Lang::En => v.label_en(),
    }
}

struct Tile {
    code: &'static str,
    label: &'static str,
    count: i64,
    active: bool,
    /// Something here needs action (everything but plain "on loan").
    alert: bool,
}

/// A list row as shown.
struct Line {
    device_id: String,
    asset_tag: String,
    model: String,
    status: &'static str,
    site: String,
    patient: String,
    nurse: String,
    due: String,
    overdue_days: i64,
    last_confirmed: String,
    firmware: String,
    on_loan: bool,
    /// The open loan, linked from the row.
    loan_id: String,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "staff/dashboard.html")]
struct DashboardPage {
    c: Chrome,
    tiles: Vec<Tile>,
    view_label: &'static str,
    loan_view: bool,
    wipe_waiting_long: i64,
    wipe_days: i64,
    counted_at: String,
    lines: Vec<Line>,
    total: i64,
    first: i64,
    last: i64,
    prev: Option<String>,
    next: Option<String>,
    export: String,
    view: &'static str,
    nurses: Vec<Choice>,
    sites: Vec<Choice>,
    sorts: Vec<Choice>,
    desc: bool,
    by_nurse: Vec<Group>,
    by_site: Vec<Group>,
    by_status: Vec<(&'static str, i64)>,
    can_write: bool,
}

fn line(r: Row, today: NaiveDate, lang: Lang) -> Line {
    let status = lending::DeviceStatus::parse(&r.status).map_or("", |s| lang.status(s));
    Line {
        on_loan: r.loan_id.is_some(),
        loan_id: r.loan_id.clone().unwrap_or_default(),
        overdue_days: r.due_on.map_or(0, |d| (today - d).num_days().max(0)),
        due: r.due_on.map(|d| lang.date(d)).unwrap_or_default(),
        patient: match (&r.patient_number, &r.patient_name) {
            (Some(n), Some(name)) => format!("{n} {name}"),
            _ => String::new(),
        },
        nurse: r.nurse_name.unwrap_or_default(),
        last_confirmed: r.last_confirmed.map(|t| lang.datetime(t)).unwrap_or_default(),
        firmware: if r.latest_firmware.is_empty() || r.latest_firmware == r.firmware_version {
            r.firmware_version
        } else {
            format!("{} → {}", r.firmware_version, r.latest_firmware)
        },
        device_id: r.device_id,
        asset_tag: r.asset_tag,
        model: r.model_name,
        status,
        site: r.site,
    }
}

async fn dashboard(State(state): State<AppState>, s: Staff, Query(pairs): Pairs) -> Result<Response, PageError> {
    let lang = s.lang;
    let f = Filter::from_form(&pairs).map_err(|e| s.error(e))?;
    let thresholds = state.cfg.thresholds;
    let d = oversight::dashboard(&state.store, &state.dashboard_counts, &s.actor, &f, thresholds).await?;
    let staff = users::list(&mut state.store.read().await?).await?;
    let today = state.store.clock().today_tokyo();

    let count = i64::try_from(d.rows.len()).unwrap_or(i64::MAX);
    let first = (f.page() - 1) * Filter::PER_PAGE;
    let tiles = d
        .summary
        .by_view
        .iter()
        .map(|(v, n)| Tile {
            code: v.as_str(),
            label: view_label(*v, s.lang),
            count: *n,
            active: *v == f.view,
            alert: *v != View::OnLoan && *n > 0,
        })
        .collect();
    let nurses = staff
        .iter()
        .filter(|u| u.role != Role::Auditor)
        .map(|u| Choice { value: u.id.clone(), label: u.name.clone(), selected: f.nurse.as_ref() == Some(&u.id) })
        .collect();
    let sites = d
        .summary
        .by_site
        .iter()
        .filter(|g| !g.key.is_empty())
        .map(|g| Choice { value: g.key.clone(), label: g.label.clone(), selected: f.site.as_ref() == Some(&g.key) })
        .collect();
    let sort_label = |sort: Sort| match (sort, s.lang) {
        (Sort::Due, Lang::Ja) => "返却予定日・経過日数",
        (Sort::AssetTag, Lang::Ja) => "資産番号",
        (Sort::LentAt, Lang::Ja) => "貸出日",
        (Sort::Changed, Lang::Ja) => "状態の変更日",
        (Sort::Due, Lang::En) => "Due date / time in state",
        (Sort::AssetTag, Lang::En) => "Asset tag",
        (Sort::LentAt, Lang::En) => "Lent on",
        (Sort::Changed, Lang::En) => "Status changed",
    };
    let sorts = Sort::ALL
        .into_iter()
        .map(|x| Choice { value: x.as_str().into(), label: sort_label(x).into(), selected: x == f.sort })
        .collect();
    let by_status = d
        .summary
        .by_status
        .iter()
        .filter_map(|(st, n)| lending::DeviceStatus::parse(st).map(|x| (x, *n)))
        .map(|(x, n)| (s.lang.status(x), n))
        .collect();
    let page = DashboardPage {
        c: s.chrome(),
        tiles,
        view_label: view_label(f.view, s.lang),
        loan_view: f.view.is_loan_view(),
        wipe_waiting_long: d.summary.wipe_waiting_long,
        wipe_days: thresholds.wipe_days,
        counted_at: lang.datetime(d.counted_at),
        lines: d.rows.into_iter().map(|r| line(r, today, s.lang)).collect(),
        total: d.total,
        first: first + i64::from(count > 0),
        last: first + count,
        prev: (f.page() > 1).then(|| f.query(f.page() - 1)),
        next: (first + count < d.total).then(|| f.query(f.page() + 1)),
        export: f.query(1),
        view: f.view.as_str(),
        nurses,
        sites,
        sorts,
        desc: f.desc,
        by_nurse: d.summary.by_nurse,
        by_site: d.summary.by_site,
        by_status,
        can_write: s.user.role != Role::Auditor,
    };
    Ok(render(&page))
}

async fn outstanding_csv(State(state): State<AppState>, s: Staff, Query(pairs): Pairs) -> Result<Response, PageError> {
    let f = Filter::from_form(&pairs).map_err(|e| s.error(e))?;
    let body = oversight::outstanding_csv(&state.store, &s.actor, &f, state.cfg.thresholds).await?;
    let today = state.store.clock().today_tokyo();
    Ok(csv_download(body, &format!("{}-{today}.csv", f.view.as_str())))
}

/// A CSV file the browser saves under `name`.
pub fn csv_download(body: Vec<u8>, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "staff/custody.html")]
struct CustodyPage {
    c: Chrome,
    id: String,
    asset_tag: String,
    due: String,
    /// (when, by, method, confirmed, notes)
    checks: Vec<(String, String, &'static str, bool, String)>,
    can_write: bool,
}

async fn custody_page(State(state): State<AppState>, s: Staff, Path(id): Path<String>) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.read().await?;
    let custody = custody::of_open_loan(&mut tx, &s.actor, &id).await.map_err(|e| s.error(e))?;
    let staff = users::list(&mut tx).await?;
    let method = |m: &str| match (m, s.lang) {
        ("phone", Lang::Ja) => "電話",
        ("visit", Lang::Ja) => "訪問",
        (_, Lang::Ja) => "その他",
        ("phone", Lang::En) => "phone",
        ("visit", Lang::En) => "visit",
        (_, Lang::En) => "other",
    };
    let checks = custody
        .checks
        .into_iter()
        .map(|c| {
            let by = staff.iter().find(|u| u.id == c.checked_by).map(|u| u.name.clone()).unwrap_or_default();
            (lang.datetime(c.checked_at), by, method(&c.method), c.confirmed, c.notes)
        })
        .collect();
    Ok(render(&CustodyPage {
        c: s.chrome(),
        id: custody.device_id,
        asset_tag: custody.asset_tag,
        due: lang.date(custody.due_on),
        checks,
        can_write: s.user.role != Role::Auditor,
    }))
}

async fn record_custody(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let req = NewCheck {
        device_id: id.clone(),
        method: value(&pairs, "method"),
        confirmed: value(&pairs, "confirmed") == "yes",
        notes: value(&pairs, "notes"),
    };
    let mut tx = state.store.begin().await?;
    custody::record(&mut tx, &s.actor, req).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to(&format!("/devices/{id}/custody")).into_response())
}

/// An audit event as the viewer shows it.
struct EventLine {
    seq: i64,
    at: String,
    who: String,
    /// What the action means, in the viewer's language; the code is shown beside it.
    action_label: String,
    action: String,
    target: String,
    patient: String,
    details: String,
    source: String,
}

#[derive(Template)]
#[template(path = "staff/audit.html")]
struct AuditPage {
    c: Chrome,
    events: Vec<EventLine>,
    users: Vec<Choice>,
    patient: String,
    device: String,
    action: String,
    from: String,
    until: String,
    patient_data_only: bool,
    include_lists: bool,
    older: Option<String>,
    head: (i64, String),
    verified: Option<Result<i64, String>>,
}

/// Events per page of the log viewer.
const AUDIT_PAGE: i64 = 100;

async fn audit_log(State(state): State<AppState>, s: Staff, Query(pairs): Pairs) -> Result<Response, PageError> {
    s.require(Action::Oversee)?;
    render_audit_log(&state, &s, &pairs, None).await
}

async fn render_audit_log(
    state: &AppState,
    s: &Staff,
    pairs: &[(String, String)],
    verified: Option<Result<i64, String>>,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let f = AuditFilter {
        user: value(pairs, "user"),
        patient: value(pairs, "patient"),
        device: value(pairs, "device"),
        action: value(pairs, "action"),
        from: value(pairs, "from"),
        until: value(pairs, "until"),
        patient_data_only: value(pairs, "patient_data_only") == "yes",
        include_lists: value(pairs, "include_lists") == "yes",
        before: value(pairs, "before").parse().ok(),
    };
    let mut tx = state.store.begin().await?;
    let rows = oversight::audit_page(&mut tx, &s.actor, &f, AUDIT_PAGE).await.map_err(|e| s.error(e))?;
    let head = audit::head(&mut tx).await?;
    let staff = users::list(&mut tx).await?;
    let mut numbers: Vec<(String, String)> = Vec::new();
    for id in rows.iter().map(|r| &r.patient_id).filter(|id| !id.is_empty()) {
        if !numbers.iter().any(|(k, _)| k == id) {
            let number = patients::get(&mut tx, id).await?.map(|p| p.number).unwrap_or_default();
            numbers.push((id.clone(), number));
        }
    }
    tx.commit().await?;
    let older = (i64::try_from(rows.len()) == Ok(AUDIT_PAGE)).then(|| {
        let last = rows.last().map_or(0, |r: &EventRow| r.seq).to_string();
        let mut keep: Vec<(&str, &str)> =
            pairs.iter().filter(|(k, _)| k != "before").map(|(k, v)| (k.as_str(), v.as_str())).collect();
        keep.push(("before", &last));
        serde_urlencoded::to_string(&keep).unwrap_or_default()
    });
    let events = rows
        .into_iter()
        .map(|r| EventLine {
            seq: r.seq,
            at: chrono::DateTime::parse_from_rfc3339(&r.at)
                .map_or_else(|_| r.at.clone(), |t| lang.datetime(t.with_timezone(&Utc))),
            who: {
                let role = role_label(&r.role, lang);
                // Only staff act under a login of their own (the command line's OS user is in the
                // details).
                if r.actor_login.is_empty() || lending::Role::parse(&r.role).is_none() {
                    role.to_owned()
                } else {
                    format!("{} ({role})", r.actor_login)
                }
            },
            target: if r.target_id.is_empty() {
                r.target_type.clone()
            } else {
                format!("{} {}", r.target_type, r.target_id)
            },
            patient: numbers.iter().find(|(k, _)| *k == r.patient_id).map(|(_, n)| n.clone()).unwrap_or_default(),
            details: r.details.chars().take(300).collect(),
            action_label: lending::audit::action_label(&r.action, s.lang == Lang::En).to_owned(),
            action: r.action,
            source: r.source,
        })
        .collect();
    let users = staff
        .into_iter()
        .map(|u| Choice { selected: u.id == f.user, value: u.id, label: format!("{}（{}）", u.name, u.login) })
        .collect();
    Ok(render(&AuditPage {
        c: s.chrome(),
        events,
        users,
        patient_data_only: f.patient_data_only,
        include_lists: f.include_lists,
        patient: f.patient,
        device: f.device,
        action: f.action,
        from: f.from,
        until: f.until,
        older,
        head,
        verified,
    }))
}

/// Runs `audit verify` over the whole chain and its signed checkpoints and shows the result
/// above the log.
async fn verify_chain(State(state): State<AppState>, form: StaffForm<Empty>) -> Result<Response, PageError> {
    let s = form.who;
    let key = state.receipts.public_key();
    let outcome = oversight::verify_chain(&state.store, &s.actor, &key).await.map_err(|e| s.error(e))?;
    render_audit_log(&state, &s, &[], Some(outcome.map_err(|b| b.describe()))).await
}

/// Who acted, in words: a staff role, or the system (the command line, the worker).
fn role_label(code: &str, lang: Lang) -> &'static str {
    match (lending::Role::parse(code), lang) {
        (Some(role), Lang::Ja) => role.label_ja(),
        (Some(role), Lang::En) => role.label_en(),
        (None, Lang::Ja) => "システム",
        (None, Lang::En) => "system",
    }
}

/// The monthly report's own words, per language.
struct ReportTexts {
    title: &'static str,
    addressee: &'static str,
    generated: &'static str,
    provisional: &'static str,
    loans: &'static str,
    loans_made: &'static str,
    devices_lent: &'static str,
    devices_returned: &'static str,
    outstanding: &'static str,
    overdue: &'static str,
    custody: &'static str,
    withdrawn: &'static str,
    incidents: &'static str,
    lost: &'static str,
    incidents_opened: &'static str,
    reports: &'static str,
    wiping: &'static str,
    wipes: &'static str,
    access: &'static str,
    sign_ins: &'static str,
    readers: &'static str,
    none: &'static str,
    login: &'static str,
    reads: &'static str,
    events: &'static str,
    chain: &'static str,
    head: &'static str,
    keep: &'static str,
    no_events: &'static str,
}

static REPORT_JA: ReportTexts = ReportTexts {
    title: "医療機器 貸出管理 月次報告",
    addressee: "企画管理者 殿",
    generated: "作成",
    provisional: "月の途中のため暫定値",
    loans: "貸出と返却",
    loans_made: "新規貸出（件）",
    devices_lent: "貸し出した機器（台）",
    devices_returned: "返却された機器（台）",
    outstanding: "月末時点で貸出中（台）",
    overdue: "月末時点で返却遅れ（台）",
    custody: "所在確認（回）",
    withdrawn: "同意の撤回（件）",
    incidents: "紛失・インシデント・患者さまからの連絡",
    lost: "紛失・盗難（件）",
    incidents_opened: "インシデント発生 / 解決（件）",
    reports: "QRからの連絡 受付 / 対応済み（件）",
    wiping: "データ消去",
    wipes: "消去の記録 / 第三者の確認（件）",
    access: "アクセスログの確認",
    sign_ins: "サインイン失敗 / ロック（件）",
    readers: "患者情報を閲覧した職員",
    none: "なし",
    login: "ログインID",
    reads: "閲覧（回）",
    events: "操作の件数",
    chain: "監査ログの改ざん防止",
    head: "月末時点のチェーンの先頭",
    keep: "この値を本報告とともに保管してください。後日次のコマンドが成功し、この番号の記録が同じハッシュを持つことで、月末以前の記録が変更されていないことを確認できます。",
    no_events: "この月末までの記録はありません。",
};

static REPORT_EN: ReportTexts = ReportTexts {
    title: "Medical device lending: monthly report",
    addressee: "To the information security manager",
    generated: "Generated",
    provisional: "Month not yet complete: provisional figures",
    loans: "Loans and returns",
    loans_made: "Loans made",
    devices_lent: "Devices lent",
    devices_returned: "Devices returned",
    outstanding: "Out at month end",
    overdue: "Overdue at month end",
    custody: "Custody checks",
    withdrawn: "Consents withdrawn",
    incidents: "Loss, incidents, reports from patients",
    lost: "Lost or stolen",
    incidents_opened: "Incidents opened / resolved",
    reports: "Reports from the QR page received / resolved",
    wiping: "Data wiping",
    wipes: "Wipes recorded / verified by a second person",
    access: "Access-log review",
    sign_ins: "Failed sign-ins / lockouts",
    readers: "Staff who read patient data",
    none: "None",
    login: "Login",
    reads: "Reads",
    events: "Events by action",
    chain: "Tamper evidence of the audit log",
    head: "Head of the chain at month end",
    keep: "Keep this value with the report. Later, when the command below succeeds and the event of this number has the same hash, no event up to the month end has been changed.",
    no_events: "There are no events up to this month end.",
};

#[derive(Template)]
#[template(path = "staff/management_report.html")]
struct ReportPage {
    c: Chrome,
    l: &'static ReportTexts,
    r: Report,
    month: String,
    prev: String,
    next: String,
    generated: String,
    institution: String,
    /// (what it means, action code, events) in the report's language.
    actions: Vec<(String, String, i64)>,
}

async fn management_report(
    State(state): State<AppState>,
    s: Staff,
    Query(pairs): Pairs,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let requested = value(&pairs, "month");
    let month = (!requested.is_empty()).then(|| Month::parse(&requested)).transpose().map_err(|e| s.error(e))?;
    let mut tx = state.store.begin().await?;
    let r = monthly::read(&mut tx, &s.actor, month).await.map_err(|e| s.error(e))?;
    let month = r.month;
    let institution = lending::store::registry::institution(&mut tx).await?.map(|i| i.name).unwrap_or_default();
    let generated = lang.datetime(tx.now());
    tx.commit().await?;
    let actions = r
        .events_by_action
        .iter()
        .map(|(a, n)| (lending::audit::action_label(a, lang == Lang::En).to_owned(), a.clone(), *n))
        .collect();
    Ok(render(&ReportPage {
        c: s.chrome(),
        actions,
        l: if lang == Lang::En { &REPORT_EN } else { &REPORT_JA },
        month: if lang == Lang::En { month.label_en() } else { month.label_ja() },
        prev: month.previous().code(),
        next: month.next().code(),
        generated,
        institution,
        r,
    }))
}
