//! Admin pages: staff users (add, disable, reset second factor or password) and everyone's API
//! tokens (list and revoke; nobody creates a token for someone else). Auditors may look, not change.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::{auth, users as user_service};
use lending::store::users;
use lending::Action;
use lending::Role;

use super::Empty;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{change_then_go, render, role_label, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/users", users_page)
        .post("/admin/users", add_user)
        .post("/admin/users/{id}/disable", disable)
        .post("/admin/users/{id}/enable", enable)
        .post("/admin/users/{id}/reset-second-factor", reset_second_factor)
        .post("/admin/users/{id}/reset-password", reset_password)
        .get("/admin/tokens", tokens_page)
        .post("/admin/tokens/{id}/revoke", revoke_token)
}

struct UserRow {
    id: String,
    login: String,
    name: String,
    role_label: &'static str,
    site: String,
    totp: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "staff/users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    can_write: bool,
    shown_once: Option<String>,
}

async fn users_view(state: &AppState, s: &Staff, shown_once: Option<String>) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let mut rows = Vec::new();
    for u in users::list(&mut tx).await? {
        let totp = users::credentials(&mut tx, &u.id).await?.is_some_and(|c| c.totp_enrolled_at.is_some());
        rows.push(UserRow {
            role_label: role_label(u.role, s.lang),
            id: u.id,
            login: u.login,
            name: u.name,
            site: u.site,
            totp,
            disabled: u.disabled,
        });
    }
    let roles =
        [Role::Nurse, Role::Admin, Role::Auditor].into_iter().map(|r| (r.as_str(), role_label(r, s.lang))).collect();
    let status = if shown_once.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    let page = UsersPage { c: s.chrome(), users: rows, roles, can_write: s.may(Action::ManageStaff), shown_once };
    Ok((status, render(&page)).into_response())
}

async fn users_page(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    s.require(Action::Oversee)?;
    users_view(&state, &s, None).await
}

#[derive(serde::Deserialize)]
struct NewUserForm {
    login: String,
    name: String,
    role: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    email: String,
}

async fn add_user(State(state): State<AppState>, form: StaffForm<NewUserForm>) -> Result<Response, PageError> {
    let (s, f) = (form.who, form.form);
    s.require(Action::ManageStaff)?;
    let role = Role::parse(&f.role)
        .ok_or_else(|| s.error(lending::Error::invalid("role", "役割を選んでください。", "Choose a role.")))?;
    let mut tx = state.store.begin().await?;
    let new = user_service::NewUser { login: f.login, name: f.name, role, site: f.site, email: f.email };
    let (_, temporary) = user_service::add_user(&mut tx, &s.actor, new).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    users_view(&state, &s, Some(temporary)).await
}

/// What an admin does to a staff account from the users page. An enum, matched without a
/// default arm: a new action cannot fall into one that weakens an account.
#[derive(Debug, Clone, Copy)]
enum UserAction {
    Disable,
    Enable,
    ResetSecondFactor,
}

/// Runs one admin action on a user and returns to the list.
async fn user_action(state: &AppState, s: &Staff, id: &str, action: UserAction) -> Result<Response, PageError> {
    s.require(Action::ManageStaff)?;
    let mut tx = state.store.begin().await?;
    let done = match action {
        UserAction::Disable => auth::set_disabled(&mut tx, &s.actor, id, true).await,
        UserAction::Enable => auth::set_disabled(&mut tx, &s.actor, id, false).await,
        UserAction::ResetSecondFactor => auth::reset_second_factor(&mut tx, &s.actor, id).await,
    };
    done.map_err(|e| s.error(e))?;
    tx.commit().await?;
    Ok(Redirect::to("/admin/users").into_response())
}

async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    user_action(&state, &form.who, &id, UserAction::Disable).await
}

async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    user_action(&state, &form.who, &id, UserAction::Enable).await
}

async fn reset_second_factor(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    user_action(&state, &form.who, &id, UserAction::ResetSecondFactor).await
}

async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    let s = form.who;
    s.require(Action::ManageStaff)?;
    let mut tx = state.store.begin().await?;
    let temporary = auth::reset_password(&mut tx, &s.actor, &id).await.map_err(|e| s.error(e))?;
    tx.commit().await?;
    users_view(&state, &s, Some(temporary)).await
}

struct TokenRow {
    id: String,
    login: String,
    name: String,
    created: String,
    expires: String,
    last_used: String,
    /// Not created by its owner (the command line, or an admin before issue #16).
    not_own: bool,
    revoked: bool,
    expired: bool,
}

#[derive(Template)]
#[template(path = "staff/tokens.html")]
pub(super) struct TokensPage {
    c: Chrome,
    tokens: Vec<TokenRow>,
    /// The person's own tokens (with the form to create one), or everyone's (admin view).
    own: bool,
    can_revoke: bool,
    shown_once: Option<String>,
}

/// The token list: the person's own (`own`), or everyone's for admins and auditors.
pub(super) async fn tokens_view(
    state: &AppState,
    s: &Staff,
    own: bool,
    shown_once: Option<String>,
) -> Result<Response, PageError> {
    let lang = s.lang;
    let mut tx = state.store.read().await?;
    let now = state.store.clock().now();
    let tokens = user_service::tokens(&mut tx, &s.actor, !own)
        .await
        .map_err(|e| s.error(e))?
        .into_iter()
        .map(|t| TokenRow {
            not_own: t.created_by != t.user_id,
            expired: t.expires_at.is_some_and(|e| e <= now),
            id: t.id,
            login: t.login,
            name: t.name,
            created: lang.datetime(t.created_at),
            expires: t.expires_at.map(|t| lang.datetime(t)).unwrap_or_default(),
            last_used: t.last_used_at.map(|t| lang.datetime(t)).unwrap_or_default(),
            revoked: t.revoked_at.is_some(),
        })
        .collect();
    let status = if shown_once.is_some() { StatusCode::CREATED } else { StatusCode::OK };
    let can_revoke = own || s.may(Action::ManageStaff);
    let page = TokensPage { c: s.chrome(), tokens, own, can_revoke, shown_once };
    Ok((status, render(&page)).into_response())
}

async fn tokens_page(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    tokens_view(&state, &s, false, None).await
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    let s = form.who;
    change_then_go(&state, &s, "/admin/tokens", async |tx| user_service::revoke_token(tx, &s.actor, &id).await).await
}
