//! Staff users and API tokens.

use serde_json::json;

use super::required;
use crate::actor::{Actor, Role};
use crate::audit::NewEvent;
use crate::auth::passwords;
use crate::error::{Error, Result};
use crate::ids::{new_id, random_token, sha256_hex};
use crate::store::users::{self, User};
use crate::store::Tx;

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
    require_admin(actor)?;
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
        email: super::bounded("email", &u.email, 200, "メールアドレス")?,
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

/// Only admins (or the operator at the command line) manage users and tokens.
pub(crate) fn require_admin(actor: &Actor) -> Result<()> {
    if actor.role == "admin" || actor.role == "system" {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Creates an API token acting as `login`'s user. The token is returned once; only its
/// SHA-256 is stored (it is 256 random bits, so a fast hash is enough).
pub async fn create_token(tx: &mut Tx, actor: &Actor, login: &str, name: &str) -> Result<String> {
    require_admin(actor)?;
    let user = users::by_login(tx, login)
        .await?
        .ok_or_else(|| Error::invalid("login", "そのログインIDの職員はいません。", "No such user."))?;
    if user.disabled {
        return Err(Error::conflict("無効化された職員にはトークンを発行できません。", "The user is disabled."));
    }
    let name = super::required("name", name, 100, "トークンの用途")?;
    let token = format!("lnd_{}", random_token::<32>());
    let id = new_id();
    users::insert_token(tx, &id, &user.id, &name, &sha256_hex(&token)).await?;
    tx.audit(
        actor,
        NewEvent::new("token.create", "api_token", &id).details(&json!({ "user": user.login, "name": name })),
    );
    Ok(token)
}

/// The user an API token acts for, if the token is live and the user enabled.
pub async fn user_for_token(tx: &mut Tx, token: &str) -> Result<Option<User>> {
    if !token.starts_with("lnd_") || token.len() > 100 {
        return Ok(None);
    }
    users::user_by_token_hash(tx, &sha256_hex(token)).await
}

pub async fn revoke_token(tx: &mut Tx, actor: &Actor, token_id: &str) -> Result<()> {
    require_admin(actor)?;
    if !users::revoke_token(tx, token_id).await? {
        return Err(Error::NotFound);
    }
    tx.audit(actor, NewEvent::new("token.revoke", "api_token", token_id));
    Ok(())
}
