//! Who is calling, the staff list, API tokens, undeliverable mail and the audit log: what the
//! account, admin and audit pages show, with the same service calls and role rules. Accounts are
//! changed (added, disabled, reset) and tokens created only on the pages, with a full sign-in
//! (password and second factor): a bearer token is a single-factor credential.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::audit::EventRow;
use lending::service::outbox;
use lending::service::oversight::{self, AuditFilter};
use lending::service::users::{self, Me, StaffMember};
use lending::store::users::TokenInfo;
use lending::Error;
use serde::{Deserialize, Serialize};

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::Routes;
use crate::{write_tx, AppState};
use lending::web::json::{ApiPath, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/me", me)
        .get("/me/tokens", my_tokens)
        .get("/users", staff)
        .get("/tokens", all_tokens)
        .post("/tokens/{id}/revoke", revoke_token)
        .get("/audit", audit_log)
        .post("/audit/verify", verify_chain)
        .get("/mail/failed", failed_mail)
        .post("/mail/{id}/retry", retry_mail)
        .post("/mail/{id}/dismiss", dismiss_mail)
}

async fn me(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<Me>> {
    let mut tx = state.store.read().await?;
    Ok(Json(users::me(&mut tx, &actor).await?))
}

/// The caller's own tokens (never the token itself: only its SHA-256 is stored).
async fn my_tokens(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(users::tokens(&mut tx, &actor, false).await?))
}

/// Everyone's tokens (admins and auditors).
async fn all_tokens(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(users::tokens(&mut tx, &actor, true).await?))
}

/// Every staff account with whether its second factor is set up (admins and auditors).
async fn staff(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<Vec<StaffMember>>> {
    let mut tx = state.store.read().await?;
    Ok(Json(users::list(&mut tx, &actor).await?))
}

/// Revokes a token: its owner may, and so may an admin (anyone else gets 403).
async fn revoke_token(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("token.revoke", &id), StatusCode::NO_CONTENT, async |tx| {
        users::revoke_token(tx, &actor, &id).await
    })
    .await
}

/// The log viewer's filters (`/audit`): one left out matches everything; one given must not be
/// empty.
#[derive(Deserialize)]
struct AuditQuery {
    /// A staff member's id.
    user: Option<String>,
    /// A patient's 院内ID.
    patient: Option<String>,
    /// A device's asset tag.
    device: Option<String>,
    action: Option<String>,
    /// `YYYY-MM-DD`, Japan time, included.
    from: Option<String>,
    /// `YYYY-MM-DD`, Japan time, included.
    until: Option<String>,
    #[serde(default)]
    patient_data_only: bool,
    #[serde(default)]
    include_lists: bool,
    /// Keyset: events older than this `seq` (the previous page's `next_before`).
    before: Option<i64>,
    /// 1 to 500; default 100.
    limit: Option<i64>,
}

/// One audit event as stored; `details` is the JSON the chain hashes, parsed.
#[derive(Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    pub actor_id: String,
    pub actor_login: String,
    pub role: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub patient_id: String,
    pub details: serde_json::Value,
    pub source: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<EventRow> for AuditEvent {
    fn from(r: EventRow) -> Self {
        let details = serde_json::from_str(&r.details).unwrap_or(serde_json::Value::String(r.details));
        Self {
            seq: r.seq,
            at: r.at,
            actor_id: r.actor_id,
            actor_login: r.actor_login,
            role: r.role,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            patient_id: r.patient_id,
            details,
            source: r.source,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// A page of the log, newest first.
#[derive(Serialize)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
    pub limit: i64,
}

/// Events per page unless `limit` says otherwise (the viewer's page size).
const AUDIT_DEFAULT: i64 = 100;

async fn audit_log(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let limit = q.limit.unwrap_or(AUDIT_DEFAULT);
    let mut refused: Option<Error> = None;
    let mut given = |v: Option<String>, field: &str, label_ja: &str| {
        let v = v?;
        if let Err(e) = Error::check_filter(&v, field, label_ja) {
            refused = Some(match refused.take() {
                Some(r) => r.merge(e),
                None => e,
            });
        }
        Some(v)
    };
    let f = AuditFilter {
        user: given(q.user, "user", "職員").unwrap_or_default(),
        patient: given(q.patient, "patient", "患者").unwrap_or_default(),
        device: given(q.device, "device", "機器").unwrap_or_default(),
        action: given(q.action, "action", "操作").unwrap_or_default(),
        from: given(q.from, "from", "開始日").unwrap_or_default(),
        until: given(q.until, "until", "終了日").unwrap_or_default(),
        patient_data_only: q.patient_data_only,
        include_lists: q.include_lists,
        before: q.before,
    };
    if let Some(e) = refused {
        return Err(e.into());
    }
    // Reading the log is itself logged: a write transaction.
    let rows = write_tx!(state, |tx| oversight::audit_page(tx, &actor, &f, limit));
    let full = i64::try_from(rows.len()).is_ok_and(|n| n == limit);
    let next_before = if full { rows.last().map(|r| r.seq) } else { None };
    Ok(Json(AuditPage { events: rows.into_iter().map(AuditEvent::from).collect(), next_before, limit }))
}

/// The outcome of `audit verify`.
#[derive(Serialize)]
pub struct ChainCheck {
    pub intact: bool,
    /// Events checked (when intact).
    pub events: Option<i64>,
    /// The first bad event (when not).
    pub first_bad: Option<i64>,
    pub problem: Option<String>,
}

/// Verifies the whole chain and its signed checkpoints (audited with the outcome).
async fn verify_chain(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<ChainCheck>> {
    let key = state.receipts.public_key();
    Ok(Json(match oversight::verify_chain(&state.store, &actor, &key).await? {
        Ok(n) => ChainCheck { intact: true, events: Some(n), first_bad: None, problem: None },
        Err(b) => ChainCheck { intact: false, events: None, first_bad: Some(b.seq()), problem: Some(b.describe()) },
    }))
}

/// A mail given up on.
#[derive(Serialize)]
pub struct FailedMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub attempts: i32,
    pub last_error: String,
    pub failed_at: chrono::DateTime<chrono::Utc>,
}

/// Undeliverable mail (at most 200 listed) and how many there are in all.
#[derive(Serialize)]
pub struct FailedMailList {
    pub mails: Vec<FailedMail>,
    pub total: i64,
}

async fn failed_mail(ApiUser(actor): ApiUser, State(state): State<AppState>) -> ApiResult<Json<FailedMailList>> {
    let mut tx = state.store.read().await?;
    let (rows, total) = outbox::failed(&mut tx, &actor).await?;
    let mails = rows
        .into_iter()
        .map(|m| FailedMail {
            id: m.id,
            recipient: m.recipient,
            subject: m.subject,
            attempts: m.attempts,
            last_error: m.last_error,
            failed_at: m.failed_at,
        })
        .collect();
    Ok(Json(FailedMailList { mails, total }))
}

async fn retry_mail(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("mail.retry", &id), StatusCode::NO_CONTENT, async |tx| {
        outbox::retry(tx, &actor, &id).await
    })
    .await
}

async fn dismiss_mail(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    write_once(&state, &actor, key, ("mail.dismiss", &id), StatusCode::NO_CONTENT, async |tx| {
        outbox::dismiss(tx, &actor, &id).await
    })
    .await
}
