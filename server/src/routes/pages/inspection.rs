//! 点検用の記録 (`/inspection`) and its CSV (`/inspection.csv`): the evidence for the MHLW
//! cybersecurity checklist, printable on A4 with 作成・確認・承認 seal boxes. The service
//! (`lending::service::inspection`) authorises, reads and audits; this only lays it out.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use lending::service::inspection::{self, Event, Evidence, Item};

use super::oversight::{csv_download, value};
use crate::i18n::{Lang, Texts};
use crate::routes::Routes;
use crate::web::session::Staff;
use crate::web::{render, role_label, Chrome};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/inspection", page).get("/inspection.csv", csv)
}

type Pairs = Query<Vec<(String, String)>>;

struct AccountLine {
    login: String,
    name: String,
    role: &'static str,
    second_factor: String,
    /// Not enrolled: shown as a finding.
    no_second_factor: bool,
    last_sign_in: String,
    state: String,
    /// Disabled or unused: a finding for the unneeded-accounts item.
    flagged: bool,
    items: String,
}

struct TokenLine {
    owner: String,
    name: String,
    issued: String,
    age_days: i64,
    last_used: String,
    expires: String,
    state: String,
    items: String,
}

struct EventLine {
    at: String,
    login: String,
    source: String,
    reason: String,
}

struct BackupLine {
    at: String,
    format: String,
    sha256: String,
    audit_head_seq: i64,
    encrypted: bool,
}

struct RestoreLine {
    at: String,
    file: String,
    sha256: String,
    audit_head_seq: i64,
    reason: String,
}

#[derive(Template)]
#[template(path = "staff/inspection.html")]
struct InspectionPage {
    c: Chrome,
    institution: String,
    generated: String,
    from: String,
    until: String,
    period: String,
    accounts: Vec<AccountLine>,
    admins: String,
    password_rule: String,
    tokens: Vec<TokenLine>,
    readers: Vec<(String, i64)>,
    failed_sign_ins: i64,
    lockouts: i64,
    refused_tokens: i64,
    failures: Vec<EventLine>,
    lockout_events: Vec<EventLine>,
    backups_total: i64,
    backups: Vec<BackupLine>,
    restore_ok: Option<RestoreLine>,
    restore_failed: Option<RestoreLine>,
    /// The newest signed checkpoint.
    checkpoint: Option<CheckpointLine>,
    head_seq: i64,
    head_hash: String,
    /// The checklist item of each section, in the page's language.
    item_accounts: String,
    item_admins: &'static str,
    item_password: String,
    item_tokens: String,
    item_access: &'static str,
    item_backup: &'static str,
}

struct CheckpointLine {
    seq: i64,
    hash: String,
    at: String,
    key_id: String,
}

fn label(item: Item, lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => item.label_ja(),
        Lang::En => item.label_en(),
    }
}

fn labels(items: &[Item], lang: Lang) -> String {
    items.iter().map(|i| label(*i, lang)).collect::<Vec<_>>().join(" ／ ")
}

fn when(t: Option<DateTime<Utc>>, none: &str, lang: Lang) -> String {
    t.map_or_else(|| none.to_owned(), |t| lang.datetime(t))
}

fn events(list: Vec<Event>, lang: Lang) -> Vec<EventLine> {
    list.into_iter()
        .map(|e| EventLine { at: lang.datetime(e.at), login: e.login, source: e.source, reason: e.reason })
        .collect()
}

fn restore_line(r: inspection::RestoreTest, lang: Lang) -> RestoreLine {
    RestoreLine {
        at: lang.datetime(r.at),
        file: r.file,
        sha256: r.sha256,
        audit_head_seq: r.audit_head_seq,
        reason: r.reason,
    }
}

fn view(e: Evidence, c: Chrome, institution: String, lang: Lang) -> InspectionPage {
    let t: &Texts = lang.t();
    let unused = format!("{}{}", e.unused_days, t.insp_unused);
    let accounts = e
        .accounts
        .into_iter()
        .map(|a| {
            let mut state = vec![if a.disabled {
                format!(
                    "{}{}",
                    t.insp_disabled,
                    a.disabled_since.map(|d| format!(" {}", lang.datetime(d))).unwrap_or_default()
                )
            } else {
                t.insp_enabled.to_owned()
            }];
            if a.unused {
                state.push(unused.clone());
            }
            if a.first_sign_in_pending {
                state.push(t.insp_first_pending.to_owned());
            }
            AccountLine {
                role: role_label(a.role, lang),
                no_second_factor: a.second_factor_since.is_none(),
                second_factor: when(a.second_factor_since, t.insp_not_enrolled, lang),
                last_sign_in: when(a.last_sign_in, t.insp_never, lang),
                state: state.join("、"),
                flagged: a.disabled || a.unused,
                items: labels(&a.items, lang),
                login: a.login,
                name: a.name,
            }
        })
        .collect();
    let tokens = e
        .tokens
        .into_iter()
        .map(|k| {
            let mut state = vec![match (k.revoked_at, k.expired) {
                (Some(r), _) => format!("{} {}", t.insp_revoked, lang.datetime(r)),
                (None, true) => t.insp_expired.to_owned(),
                (None, false) => t.insp_enabled.to_owned(),
            }];
            if k.made_at_cli {
                state.push(t.insp_cli.to_owned());
            }
            TokenLine {
                issued: lang.datetime(k.created_at),
                age_days: k.age_days,
                last_used: when(k.last_used_at, t.insp_never, lang),
                expires: when(k.expires_at, t.insp_none, lang),
                state: state.join("、"),
                items: labels(&[Item::AccessRights, Item::UnneededAccounts], lang),
                owner: k.owner,
                name: k.name,
            }
        })
        .collect();
    let backups = e
        .backups
        .recent
        .into_iter()
        .map(|b| BackupLine {
            at: lang.datetime(b.at),
            format: b.format,
            sha256: b.sha256,
            audit_head_seq: b.audit_head_seq,
            encrypted: b.encrypted,
        })
        .collect();
    InspectionPage {
        c,
        institution,
        generated: lang.datetime(e.generated_at),
        from: e.period.from.to_string(),
        until: e.period.until.to_string(),
        period: format!(
            "{}{}{}",
            lang.date(e.period.from),
            if lang == Lang::Ja { "〜" } else { " – " },
            lang.date(e.period.until)
        ),
        accounts,
        admins: if e.admins.is_empty() { t.insp_none.to_owned() } else { e.admins.join("、") },
        password_rule: match lang {
            Lang::Ja => e.password_rule.describe_ja(),
            Lang::En => e.password_rule.describe_en(),
        },
        tokens,
        readers: e.access.patient_readers,
        failed_sign_ins: e.access.failed_sign_ins,
        lockouts: e.access.lockouts,
        refused_tokens: e.access.refused_tokens,
        failures: events(e.access.failures, lang),
        lockout_events: events(e.access.lockout_events, lang),
        backups_total: e.backups.total,
        backups,
        restore_ok: e.backups.last_verified_restore.map(|r| restore_line(r, lang)),
        restore_failed: e.backups.failed_since.map(|r| restore_line(r, lang)),
        checkpoint: e.anchor.checkpoint.map(|c| CheckpointLine {
            at: chrono::DateTime::parse_from_rfc3339(&c.at)
                .map_or_else(|_| c.at.clone(), |x| lang.datetime(x.with_timezone(&Utc))),
            seq: c.seq,
            hash: c.hash,
            key_id: c.key_id,
        }),
        head_seq: e.anchor.head_seq,
        head_hash: e.anchor.head_hash,
        item_accounts: labels(&[Item::AccessRights, Item::TwoFactor, Item::UnneededAccounts], lang),
        item_admins: label(Item::AdminRights, lang),
        item_password: labels(&[Item::Password, Item::TwoFactor], lang),
        item_tokens: labels(&[Item::AccessRights, Item::UnneededAccounts], lang),
        item_access: label(Item::AccessLog, lang),
        item_backup: label(Item::Backup, lang),
    }
}

async fn page(State(state): State<AppState>, s: Staff, Query(pairs): Pairs) -> Result<Response, crate::web::PageError> {
    let (from, until) = (value(&pairs, "from"), value(&pairs, "until"));
    let mut tx = state.store.begin().await?;
    let e = inspection::read(&mut tx, &s.actor, &from, &until, state.cfg.unused_account_days)
        .await
        .map_err(|e| s.error(e))?;
    let institution = lending::store::registry::institution(&mut tx).await?.map(|i| i.name).unwrap_or_default();
    tx.commit().await?;
    Ok(render(&view(e, s.chrome(), institution, s.lang)))
}

async fn csv(State(state): State<AppState>, s: Staff, Query(pairs): Pairs) -> Result<Response, crate::web::PageError> {
    let (from, until) = (value(&pairs, "from"), value(&pairs, "until"));
    let mut tx = state.store.begin().await?;
    let body = inspection::csv(&mut tx, &s.actor, &from, &until, state.cfg.unused_account_days)
        .await
        .map_err(|e| s.error(e))?;
    tx.commit().await?;
    let today = state.store.clock().today_tokyo();
    Ok(csv_download(body, &format!("inspection-{today}.csv")))
}
