//! Staff users and API tokens.

use chrono::Duration;
use serde_json::json;

use super::required;

use crate::actor::{Actor, Credential, Role};
use crate::audit::NewEvent;
use crate::auth::passwords;
use crate::error::{Error, Result};
use crate::ids::{new_id, random_token, sha256_hex};
use crate::policy::{authorize, Action};
use crate::store::users::{self, User};
use crate::store::{Store, Tx};

pub struct NewUser {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub site: String,
    pub email: String,
}

/// Adds a staff user with a temporary password (returned once), to be changed at first
/// sign-in together with the second factor's enrolment.
pub async fn add_user(tx: &mut Tx, actor: &Actor, u: NewUser) -> Result<(User, String)> {
    authorize(actor, Action::ManageStaff)?;
    let login = required("login", &u.login, 64, "ログインID")?;
    if !login.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(Error::invalid(
            "login",
            "ログインIDは英数字と . _ - で入力してください。",
            "Login: letters, digits, '.', '_' or '-'.",
        ));
    }
    let user = User {
        id: new_id(),
        login,
        name: required("name", &u.name, 100, "氏名")?,
        role: u.role,
        site: super::bounded("site", &u.site, 100, "所属")?,
        email: email_address(&u.email)?,
        disabled: false,
    };
    users::insert(tx, &user).await?;
    let temporary = passwords::temporary();
    users::set_password(tx, &user.id, &passwords::hash(&temporary)?, true).await?;
    tx.audit(
        actor,
        NewEvent::new("user.add", "user", &user.id).details(&json!({ "login": user.login, "role": user.role })),
    );
    Ok((user, temporary))
}

/// The staff member an admin is about to act on (disable, reset a credential): what the
/// confirmation step names.
pub async fn staff_member(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<User> {
    authorize(actor, Action::ManageStaff)?;
    users::get(tx, user_id).await?.ok_or(Error::NotFound)
}

/// An optional e-mail address, checked when it is entered (alerts and reminders go to it).
fn email_address(value: &str) -> Result<String> {
    let email = super::bounded("email", value, 200, "メールアドレス")?;
    if !email.is_empty() && email.parse::<lettre::Address>().is_err() {
        return Err(Error::invalid(
            "email",
            "メールアドレスの形式が正しくありません。",
            "The e-mail address is not valid.",
        ));
    }
    Ok(email)
}

/// Whom a new API token acts for.
#[derive(Debug, Clone, Copy)]
pub enum TokenFor<'a> {
    /// The signed-in person, for themselves (the only way on the staff pages).
    Myself,
    /// Any enabled user: the command line only, for setting up (recorded with the OS user).
    Login(&'a str),
}

/// Creates an API token. The token is returned once; only its SHA-256 is stored (it is 256
/// random bits, so a fast hash is enough). Nobody mints a token acting as someone else, except
/// the operator at the command line, and such a token never counts as its owner's own
/// credential (see [`Credential::is_own`]).
pub async fn create_token(tx: &mut Tx, actor: &Actor, owner: TokenFor<'_>, name: &str, days: i64) -> Result<String> {
    authorize(actor, Action::OwnAccount)?;
    let user = match (owner, &actor.credential) {
        (TokenFor::Myself, Credential::Session(_)) => users::get(tx, &actor.user_id).await?.ok_or(Error::NotFound)?,
        (TokenFor::Login(login), Credential::Cli(_)) => users::by_login(tx, login)
            .await?
            .ok_or_else(|| Error::invalid("login", "そのログインIDの職員はいません。", "No such user."))?,
        // A token for oneself needs one's own signed-in session; one for someone else only the
        // command line may mint.
        (TokenFor::Myself, Credential::None | Credential::Token { .. } | Credential::Cli(_))
        | (TokenFor::Login(_), Credential::None | Credential::Session(_) | Credential::Token { .. }) => {
            return Err(Error::Forbidden)
        }
    };
    if user.disabled {
        return Err(Error::conflict("無効化された職員にはトークンを発行できません。", "The user is disabled."));
    }
    let name = super::required("name", name, 100, "トークンの用途")?;
    let token = format!("lnd_{}", random_token::<32>());
    let id = new_id();
    let expires_at = tx.now() + Duration::days(days);
    let created_by = if matches!(owner, TokenFor::Myself) { user.id.as_str() } else { "" };
    let new = users::NewToken {
        id: &id,
        user_id: &user.id,
        name: &name,
        token_hash: &sha256_hex(&token),
        created_by,
        expires_at,
    };
    users::insert_token(tx, &new).await?;
    tx.audit(
        actor,
        NewEvent::new("token.create", "api_token", &id).details(&json!({
            "user": user.login, "name": name, "expires_at": expires_at.to_rfc3339(),
        })),
    );
    Ok(token)
}

/// Why an API token was refused (recorded in the audit, never the token itself).
pub type TokenRefusal = &'static str;

/// The actor behind an API token, if the token is live (not revoked, not expired) and its user
/// enabled; otherwise why not. Records when it was last used, at most once a minute per token.
pub async fn authenticate_token(store: &Store, token: &str, source: &str) -> Result<Result<Actor, TokenRefusal>> {
    if !token.starts_with("lnd_") || token.len() > 100 {
        return Ok(Err("malformed"));
    }
    let mut tx = store.read().await?;
    let Some(t) = users::token_by_hash(&mut tx, &sha256_hex(token)).await? else {
        return Ok(Err("unknown_or_revoked"));
    };
    let Some(user) = users::get(&mut tx, &t.user_id).await?.filter(|u| !u.disabled) else {
        return Ok(Err("user_disabled"));
    };
    drop(tx);
    let now = store.clock().now();
    if t.expires_at.is_some_and(|e| e <= now) {
        return Ok(Err("expired"));
    }
    if t.last_used_at.is_none_or(|at| now - at >= Duration::minutes(1)) {
        let mut tx = store.begin().await?;
        users::touch_token(&mut tx, &t.id, now).await?;
        tx.commit().await?;
    }
    let own = t.created_by == t.user_id;
    Ok(Ok(Actor::user(&user.id, &user.login, user.role, source).with_credential(Credential::Token { id: t.id, own })))
}

/// Leaves a trace of a refused API token in the audit (the caller throttles it per source, so
/// a guesser cannot flood the chain).
pub async fn record_token_refusal(store: &Store, source: &str, why: TokenRefusal) -> Result<()> {
    let mut tx = store.begin().await?;
    tx.audit(
        &Actor::anonymous(source),
        NewEvent::new("auth.token_failed", "api_token", "").details(&json!({ "reason": why })),
    );
    tx.commit().await
}

/// API tokens: everyone's for admins and auditors, otherwise the actor's own.
pub async fn tokens(tx: &mut Tx, actor: &Actor, everyone: bool) -> Result<Vec<users::TokenInfo>> {
    authorize(actor, if everyone { Action::Oversee } else { Action::Read })?;
    users::tokens(tx, (!everyone).then_some(actor.user_id.as_str())).await
}

/// A token the actor may revoke (its owner, or an admin; nobody else learns it exists): what
/// the confirmation step names before [`revoke_token`].
pub async fn token_to_revoke(tx: &mut Tx, actor: &Actor, token_id: &str) -> Result<users::TokenInfo> {
    authorize(actor, Action::OwnAccount)?;
    let token = users::token(tx, token_id).await?.ok_or(Error::NotFound)?;
    if token.user_id != actor.user_id {
        authorize(actor, Action::ManageStaff)?;
    }
    Ok(token)
}

/// Revokes a token: its owner may, and so may an admin.
pub async fn revoke_token(tx: &mut Tx, actor: &Actor, token_id: &str) -> Result<()> {
    let token = token_to_revoke(tx, actor, token_id).await?;
    if !users::revoke_token(tx, token_id).await? {
        return Err(Error::NotFound);
    }
    tx.audit(actor, NewEvent::new("token.revoke", "api_token", token_id).details(&json!({ "user": token.login })));
    Ok(())
}

/// A staff member as the staff list shows them: the account and whether their second factor is
/// set up (never a credential itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StaffMember {
    #[serde(flatten)]
    pub user: User,
    pub second_factor: bool,
}

/// Every staff account (the admins' and auditors' list).
pub async fn list(tx: &mut Tx, actor: &Actor) -> Result<Vec<StaffMember>> {
    authorize(actor, Action::Oversee)?;
    let mut out = Vec::new();
    for user in users::list(tx).await? {
        let second_factor = users::credentials(tx, &user.id).await?.is_some_and(|c| c.totp_enrolled_at.is_some());
        out.push(StaffMember { user, second_factor });
    }
    Ok(out)
}

/// Who is calling, with what, and what their role allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    /// `session`, `token` or `cli`.
    pub credential: &'static str,
    /// The credential is the person's own (a session, or a token they created themselves): what
    /// verifying someone else's wipe needs.
    pub own_credential: bool,
    /// The actions of `lending::policy` the role allows: `read`, `own_account`, `operate`,
    /// `edit_registry`, `manage_staff`, `oversee`.
    pub may: Vec<&'static str>,
}

/// The caller's own account.
pub async fn me(tx: &mut Tx, actor: &Actor) -> Result<Me> {
    authorize(actor, Action::OwnAccount)?;
    let user = users::get(tx, &actor.user_id).await?.ok_or(Error::NotFound)?;
    let credential = match &actor.credential {
        Credential::Session(_) => "session",
        Credential::Token { .. } => "token",
        Credential::Cli(_) => "cli",
        Credential::None => "none",
    };
    let may = Action::ALL
        .into_iter()
        .filter(|a| crate::policy::allows(actor.role, *a))
        .map(|a| match a {
            Action::Read => "read",
            Action::OwnAccount => "own_account",
            Action::Operate => "operate",
            Action::EditRegistry => "edit_registry",
            Action::ManageStaff => "manage_staff",
            Action::Oversee => "oversee",
        })
        .collect();
    Ok(Me { user, credential, own_credential: actor.credential.is_own(), may })
}
