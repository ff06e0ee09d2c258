//! Admin pages: staff users (add, disable, reset second factor or password) and everyone's API
//! tokens (list and revoke; nobody creates a token for someone else). Auditors may look, not change.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::{auth, offline, users as user_service};
use lending::store::users;
use lending::Action;
use lending::Role;

use super::Empty;
use crate::i18n::Texts;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{change_then_go, render, role_label, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/users", users_page)
        .post("/admin/users", add_user)
        .get("/admin/users/{id}/disable", confirm_disable)
        .post("/admin/users/{id}/disable", disable)
        .post("/admin/users/{id}/enable", enable)
        .get("/admin/users/{id}/reset-second-factor", confirm_reset_second_factor)
        .post("/admin/users/{id}/reset-second-factor", reset_second_factor)
        .get("/admin/users/{id}/reset-password", confirm_reset_password)
        .post("/admin/users/{id}/reset-password", reset_password)
        .get("/admin/tokens", tokens_page)
        .get("/admin/tokens/{id}/revoke", confirm_revoke_token)
        .post("/admin/tokens/{id}/revoke", revoke_token)
        .post("/admin/phones/{id}/approve", approve_phone)
        .get("/admin/phones/{id}/revoke", confirm_revoke_phone)
        .post("/admin/phones/{id}/revoke", revoke_phone)
}

/// A phone enrolled (or asking to be) for offline work, on its user's row.
struct PhoneRow {
    id: String,
    label: String,
    state: &'static str,
    may_approve: bool,
    may_revoke: bool,
}

struct UserRow {
    id: String,
    login: String,
    name: String,
    role_label: &'static str,
    site: String,
    totp: bool,
    disabled: bool,
    /// The admin's own account: nobody may disable themselves, so no button for it.
    is_self: bool,
    /// Their phones for offline work (shown to staff managers).
    phones: Vec<PhoneRow>,
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
        let is_self = u.id == s.user.id;
        let mut phones = Vec::new();
        if s.may(Action::ManageStaff) {
            for e in offline::enrolments(&mut tx, &s.actor, &u.id).await.map_err(|e| s.error(e))? {
                let state = offline::EnrolmentState::of(&e);
                phones.push(PhoneRow {
                    state: if s.lang == crate::i18n::Lang::En { state.label_en() } else { state.label_ja() },
                    may_approve: state == offline::EnrolmentState::Requested,
                    may_revoke: state != offline::EnrolmentState::Revoked,
                    id: e.id,
                    label: e.label,
                });
            }
        }
        rows.push(UserRow {
            phones,
            role_label: role_label(u.role, s.lang),
            id: u.id,
            login: u.login,
            name: u.name,
            site: u.site,
            totp,
            disabled: u.disabled,
            is_self,
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

/// What an admin may do to a staff member that takes away access or cannot be undone: each
/// has a confirmation step (`GET` shows what will happen; the `POST` acts only when it comes
/// from that page, with `confirm=yes`).
#[derive(Debug, Clone, Copy)]
enum UserChange {
    Disable,
    ResetSecondFactor,
    ResetPassword,
}

impl UserChange {
    fn path(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::ResetSecondFactor => "reset-second-factor",
            Self::ResetPassword => "reset-password",
        }
    }

    /// (heading, what will happen, the button).
    fn texts(self, t: &'static Texts) -> (&'static str, &'static [&'static str], &'static str) {
        match self {
            Self::Disable => (t.confirm_disable_title, t.confirm_disable_points, t.disable),
            Self::ResetSecondFactor => {
                (t.confirm_reset_second_factor_title, t.confirm_reset_second_factor_points, t.reset_second_factor)
            }
            Self::ResetPassword => (t.confirm_reset_password_title, t.confirm_reset_password_points, t.reset_password),
        }
    }
}

/// A confirmation step: what is about to happen to whom, one button to go ahead, a way back.
#[derive(Template)]
#[template(path = "staff/confirm.html")]
pub(super) struct ConfirmPage {
    c: Chrome,
    title: &'static str,
    target: String,
    points: &'static [&'static str],
    action: String,
    button: &'static str,
    back: &'static str,
}

/// The `confirm=yes` the confirmation page sends (absent from any other post).
#[derive(serde::Deserialize)]
pub(super) struct Confirmed {
    #[serde(default)]
    confirm: String,
}

impl Confirmed {
    pub(super) fn yes(&self) -> bool {
        self.confirm == "yes"
    }
}

/// The confirmation page for a change to user `id`, or (confirmed) the change itself.
async fn user_change(
    state: &AppState,
    s: &Staff,
    id: &str,
    change: UserChange,
    confirmed: bool,
) -> Result<Response, PageError> {
    let mut tx = state.store.begin().await?;
    let user = user_service::staff_member(&mut tx, &s.actor, id).await.map_err(|e| s.error(e))?;
    if !confirmed {
        drop(tx);
        let (title, points, button) = change.texts(s.lang.t());
        let page = ConfirmPage {
            c: s.chrome(),
            title,
            target: format!("{}（{}）", user.name, user.login),
            points,
            action: format!("/admin/users/{id}/{}", change.path()),
            button,
            back: "/admin/users",
        };
        return Ok(render(&page));
    }
    let temporary = match change {
        UserChange::Disable => auth::set_disabled(&mut tx, &s.actor, id, true).await.map(|()| None),
        UserChange::ResetSecondFactor => auth::reset_second_factor(&mut tx, &s.actor, id).await.map(|()| None),
        UserChange::ResetPassword => auth::reset_password(&mut tx, &s.actor, id).await.map(Some),
    }
    .map_err(|e| s.error(e))?;
    tx.commit().await?;
    match temporary {
        Some(shown_once) => users_view(state, s, Some(shown_once)).await,
        None => Ok(Redirect::to("/admin/users").into_response()),
    }
}

async fn confirm_disable(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user_change(&state, &s, &id, UserChange::Disable, false).await
}

async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Confirmed>,
) -> Result<Response, PageError> {
    user_change(&state, &form.who, &id, UserChange::Disable, form.form.yes()).await
}

async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    let s = form.who;
    change_then_go(&state, &s, "/admin/users", async |tx| auth::set_disabled(tx, &s.actor, &id, false).await).await
}

async fn confirm_reset_second_factor(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user_change(&state, &s, &id, UserChange::ResetSecondFactor, false).await
}

async fn reset_second_factor(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Confirmed>,
) -> Result<Response, PageError> {
    user_change(&state, &form.who, &id, UserChange::ResetSecondFactor, form.form.yes()).await
}

async fn confirm_reset_password(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user_change(&state, &s, &id, UserChange::ResetPassword, false).await
}

async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Confirmed>,
) -> Result<Response, PageError> {
    user_change(&state, &form.who, &id, UserChange::ResetPassword, form.form.yes()).await
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

/// The confirmation step for revoking token `id`, or (confirmed) the revocation; then back to
/// `back` (the person's own list or everyone's).
pub(super) async fn revoke_token_step(
    state: &AppState,
    s: &Staff,
    id: &str,
    confirmed: bool,
    back: &'static str,
) -> Result<Response, PageError> {
    if confirmed {
        return change_then_go(state, s, back, async |tx| user_service::revoke_token(tx, &s.actor, id).await).await;
    }
    let mut tx = state.store.read().await?;
    let token = user_service::token_to_revoke(&mut tx, &s.actor, id).await.map_err(|e| s.error(e))?;
    drop(tx);
    let t = s.lang.t();
    let page = ConfirmPage {
        c: s.chrome(),
        title: t.confirm_revoke_title,
        target: format!("{}（{}）", token.name, token.login),
        points: t.confirm_revoke_points,
        action: format!("{back}/{id}/revoke"),
        button: t.revoke,
        back,
    };
    Ok(render(&page))
}

async fn confirm_revoke_token(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    revoke_token_step(&state, &s, &id, false, "/admin/tokens").await
}

async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Confirmed>,
) -> Result<Response, PageError> {
    revoke_token_step(&state, &form.who, &id, form.form.yes(), "/admin/tokens").await
}

async fn approve_phone(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Empty>,
) -> Result<Response, PageError> {
    let s = form.who;
    change_then_go(&state, &s, "/admin/users", async |tx| offline::approve_enrolment(tx, &s.actor, &id).await.map(drop))
        .await
}

/// Revoking a phone takes away its offline work: a confirmation step first.
async fn phone_revocation(state: &AppState, s: &Staff, id: &str, confirmed: bool) -> Result<Response, PageError> {
    s.require(Action::ManageStaff)?;
    let mut tx = state.store.begin().await?;
    if confirmed {
        offline::revoke_enrolment(&mut tx, &s.actor, id).await.map_err(|e| s.error(e))?;
        tx.commit().await?;
        return Ok(Redirect::to("/admin/users").into_response());
    }
    let phone =
        lending::store::offline::enrolment(&mut tx, id).await?.ok_or_else(|| s.error(lending::Error::NotFound))?;
    let owner = users::get(&mut tx, &phone.user_id).await?.map(|u| u.name).unwrap_or_default();
    drop(tx);
    let t = s.lang.t();
    let page = ConfirmPage {
        c: s.chrome(),
        title: t.confirm_revoke_phone_title,
        target: format!("{}（{owner}）", phone.label),
        points: t.confirm_revoke_phone_points,
        action: format!("/admin/phones/{id}/revoke"),
        button: t.revoke_phone,
        back: "/admin/users",
    };
    Ok(render(&page))
}

async fn confirm_revoke_phone(
    State(state): State<AppState>,
    s: Staff,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    phone_revocation(&state, &s, &id, false).await
}

async fn revoke_phone(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm<Confirmed>,
) -> Result<Response, PageError> {
    phone_revocation(&state, &form.who, &id, form.form.yes()).await
}
