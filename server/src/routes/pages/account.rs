//! The signed-in person's own account: forced first-sign-in steps (password change, TOTP
//! enrolment with recovery codes), voluntary password change, sign out everywhere, and one's own
//! API tokens (created only here, by their owner, with a full session).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::auth;
use lending::service::users::{self as user_service, TokenFor};
use lending::store::users;
use lending::Error;

use super::admin::{revoke_token_step, tokens_view, Confirmed};
use super::{CodeForm, Empty};
use crate::routes::Routes;
use crate::web::session::{clear_session, next_page, set_session, Pending, PendingForm, Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;
use lending::store::sessions::Stage;

pub fn routes() -> Routes {
    Routes::new()
        .get("/account/password", password_page)
        .post("/account/password", change_password)
        .get("/account/totp", totp_page)
        .post("/account/totp", confirm_totp)
        .post("/account/sign-out-everywhere", sign_out_everywhere)
        .get("/account/tokens", tokens_page)
        .post("/account/tokens", create_token)
        .get("/account/tokens/{id}/revoke", confirm_revoke_token)
        .post("/account/tokens/{id}/revoke", revoke_token)
}

#[derive(Template)]
#[template(path = "staff/password.html")]
struct PasswordPage {
    c: Chrome,
    forced: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "staff/totp_setup.html")]
struct TotpPage {
    c: Chrome,
    qr_svg: String,
    /// The `otpauth://` link: tapped on the phone that has the authenticator, it opens it.
    uri: String,
    /// The key in groups of four (ABCD EFGH …), easier to type by hand.
    secret: String,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "staff/recovery_codes.html")]
struct RecoveryPage {
    c: Chrome,
    codes: Vec<String>,
}

/// Who may change a password here: a full session, or a pending one whose next step it is (a
/// pending session that still owes its second factor may not).
async fn password_access(state: &AppState, p: &Pending) -> Result<bool, PageError> {
    let mut tx = state.store.read().await?;
    let creds = users::credentials(&mut tx, &p.user.id).await?.ok_or(PageError::SignIn)?;
    drop(tx);
    if p.session.stage == Stage::Full {
        return Ok(creds.must_change_password);
    }
    if next_page(state, &p.user).await? == "/account/password" {
        Ok(true)
    } else {
        Err(PageError::Redirect(next_page(state, &p.user).await?.into()))
    }
}

async fn password_page(State(state): State<AppState>, p: Pending) -> Result<Response, PageError> {
    let forced = password_access(&state, &p).await?;
    Ok(render(&PasswordPage { c: p.chrome(), forced, error: None }))
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    password: String,
    password_again: String,
}

async fn change_password(
    State(state): State<AppState>,
    form: PendingForm<PasswordForm>,
) -> Result<Response, PageError> {
    let (p, f) = (form.who, form.form);
    let forced = password_access(&state, &p).await?;
    let t = p.lang.t();
    let again = |error: String| {
        (StatusCode::UNPROCESSABLE_ENTITY, render(&PasswordPage { c: p.chrome(), forced, error: Some(error) }))
            .into_response()
    };
    if p.actor.source.parse().is_ok_and(|ip| !state.sign_in_throttle.allow(ip)) {
        let page = PasswordPage { c: p.chrome(), forced, error: Some(t.too_many_sign_ins.to_owned()) };
        return Ok((StatusCode::TOO_MANY_REQUESTS, render(&page)).into_response());
    }
    if f.password != f.password_again {
        return Ok(again(t.passwords_differ.to_owned()));
    }
    let mut tx = state.store.begin().await?;
    let current = (!forced).then_some(f.current.as_str());
    match auth::change_password(&mut tx, &p.actor, &p.user, &p.session, current, &f.password).await {
        Ok(outcome) => {
            // A wrong current password is counted and audited like a failed sign-in: commit it.
            tx.commit().await?;
            if let Some(e) = outcome.refusal() {
                return Ok(again(p.error_text(&e)));
            }
        }
        Err(e @ Error::Validation(_)) => return Ok(again(p.error_text(&e))),
        Err(e) => return Err(p.error(e)),
    }
    let to = if p.session.stage == Stage::Full { "/" } else { next_page(&state, &p.user).await? };
    Ok(Redirect::to(to).into_response())
}

/// Enrolment is only for a pending session whose next step it is.
async fn require_enrolment_step(state: &AppState, p: &Pending) -> Result<(), PageError> {
    let next = next_page(state, &p.user).await?;
    if p.session.stage == Stage::Password && next == "/account/totp" {
        Ok(())
    } else {
        Err(PageError::Redirect(if p.session.stage == Stage::Full { "/".into() } else { next.into() }))
    }
}

async fn totp_page_for(state: &AppState, p: &Pending, error: Option<&'static str>) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let secret = match auth::pending_secret(&mut tx, &p.user, &state.keys).await.map_err(|e| p.error(e))? {
        Some(s) => s,
        None => auth::begin_enrollment(&mut tx, &p.user, &state.keys).await.map_err(|e| p.error(e))?,
    };
    tx.commit().await?;
    let mut inst = state.store.read().await?;
    let issuer =
        lending::store::registry::institution(&mut inst).await?.map_or_else(|| "Lending".to_owned(), |i| i.name);
    let uri = lending::auth::totp::otpauth_uri(&secret, &p.user.login, &issuer);
    let page = TotpPage {
        c: p.chrome(),
        qr_svg: lending::qr::svg(&uri, 224).map_err(|e| p.error(e))?,
        uri,
        secret: in_fours(&lending::auth::totp::base32(&secret)),
        error,
    };
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    Ok((status, render(&page)).into_response())
}

/// `ABCDEFGHIJ` → `ABCD EFGH IJ`.
fn in_fours(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

async fn totp_page(State(state): State<AppState>, p: Pending) -> Result<Response, PageError> {
    require_enrolment_step(&state, &p).await?;
    totp_page_for(&state, &p, None).await
}

async fn confirm_totp(State(state): State<AppState>, form: PendingForm<CodeForm>) -> Result<Response, PageError> {
    let p = form.who;
    require_enrolment_step(&state, &p).await?;
    let mut tx = state.store.begin().await?;
    let done = auth::confirm_enrollment(&mut tx, &p.session, &p.user, &form.form.code, &state.keys, &p.actor.source)
        .await
        .map_err(|e| p.error(e))?;
    tx.commit().await?;
    let Some((new, codes)) = done else {
        return totp_page_for(&state, &p, Some(p.lang.t().code_wrong)).await;
    };
    let mut c = p.chrome();
    c.csrf.clone_from(&new.csrf);
    Ok((set_session(&state.cfg, &new.token), render(&RecoveryPage { c, codes })).into_response())
}

async fn sign_out_everywhere(State(state): State<AppState>, form: StaffForm<Empty>) -> Result<Response, PageError> {
    let s = form.who;
    let mut tx = state.store.begin().await?;
    auth::sign_out_everywhere(&mut tx, &s.actor, &s.user.id).await?;
    tx.commit().await?;
    Ok((clear_session(&state.cfg), Redirect::to("/login?signed_out=all")).into_response())
}

async fn tokens_page(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    tokens_view(&state, &s, true, None).await
}

#[derive(serde::Deserialize)]
struct NewTokenForm {
    name: String,
}

async fn create_token(State(state): State<AppState>, form: StaffForm<NewTokenForm>) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    let mut tx = state.store.begin().await?;
    let token = user_service::create_token(&mut tx, &s.actor, TokenFor::Myself, &f.name, state.cfg.token_days)
        .await
        .map_err(|e| s.error(e))?;
    tx.commit().await?;
    tokens_view(&state, &s, true, Some(token)).await
}

async fn confirm_revoke_token(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    revoke_token_step(&state, &s, &id, false, "/account/tokens").await
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Confirmed>,
) -> Result<Response, PageError> {
    revoke_token_step(&state, &form.who, &id, form.form.yes(), "/account/tokens").await
}
