//! Session cookies and the extractors that turn them into a signed-in staff member.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use lending::service::auth::{self, SessionPolicy};
use lending::store::sessions::Session;
use lending::store::users::{self, User};
use lending::{Actor, Config, Credential, Error};
use serde::de::DeserializeOwned;

use super::{lang_of, nav, role_label, Chrome, PageError, UserChip};
use crate::auth::client_addr;
use crate::i18n::Lang;
use crate::AppState;
use lending::store::sessions::Stage;

/// `__Host-` needs TLS (Secure); in plain-HTTP development the name drops the prefix.
pub fn cookie_name(cfg: &Config) -> &'static str {
    if cfg.staff_https() {
        "__Host-lending_session"
    } else {
        "lending_session"
    }
}

pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn cookie(cfg: &Config, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if cfg.staff_https() { "; Secure" } else { "" };
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}", cookie_name(cfg)))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` for a new session (ends with the browser; the server times it out anyway).
pub fn set_session(cfg: &Config, token: &str) -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(SET_COOKIE, cookie(cfg, token, None))]
}

pub fn clear_session(cfg: &Config) -> [(axum::http::HeaderName, HeaderValue); 1] {
    [(SET_COOKIE, cookie(cfg, "", Some(0)))]
}

/// Any live session, finished or not (used by sign-out and the first-sign-in steps).
pub struct Pending {
    pub user: User,
    pub session: Session,
    pub actor: Actor,
    pub lang: Lang,
    /// The page asked for (marks the menu's current entry).
    pub path: String,
}

/// A full session: password and second factor done, password not due for its forced change.
pub struct Staff(pub Pending);

impl std::ops::Deref for Staff {
    type Target = Pending;
    fn deref(&self) -> &Pending {
        &self.0
    }
}

impl Pending {
    pub fn chrome(&self) -> Chrome {
        let full = self.session.stage == Stage::Full;
        Chrome {
            t: self.lang.t(),
            lang: self.lang,
            user: full.then(|| UserChip {
                name: self.user.name.clone(),
                role_label: role_label(self.user.role, self.lang),
                nav: nav(self.user.role, self.lang.t(), &self.path),
                lends: lending::policy::allows(self.actor.role, lending::Action::Operate),
            }),
            signed_in: true,
            csrf: self.session.csrf_token.clone(),
            flash: None,
        }
    }

    pub fn error(&self, e: Error) -> PageError {
        PageError::Domain(e, self.lang)
    }

    /// An error's message in the person's language (for a form shown again).
    pub fn error_text(&self, e: &Error) -> String {
        if self.lang == Lang::En {
            e.message_en()
        } else {
            e.message_ja()
        }
    }
}

impl Staff {
    /// 403 (in the page's language) unless the role may do `action` ([`lending::policy`]). The
    /// service called next checks again; this only keeps a form from being shown in vain.
    pub fn require(&self, action: lending::Action) -> Result<(), PageError> {
        lending::authorize(&self.actor, action).map_err(|e| self.error(e))
    }

    /// Whether the role may do `action` (to offer a link or button only to those who may).
    pub fn may(&self, action: lending::Action) -> bool {
        lending::policy::allows(self.actor.role, action)
    }
}

impl FromRequestParts<AppState> for Pending {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let token = read_cookie(&parts.headers, cookie_name(&state.cfg)).ok_or(PageError::SignIn)?;
        let mut tx = state.store.begin().await?;
        let found = auth::session_user(&mut tx, &token, SessionPolicy::from_config(&state.cfg)).await?;
        tx.commit().await?;
        let (session, user) = found.ok_or(PageError::SignIn)?;
        // Audit events name the session by a prefix of its stored hash (never the cookie value);
        // only a full session is a credential of its own.
        let credential = if session.stage == Stage::Full {
            Credential::Session(session.id_hash.chars().take(16).collect())
        } else {
            Credential::None
        };
        let actor =
            Actor::user(&user.id, &user.login, user.role, &client_addr(parts, state)).with_credential(credential);
        Ok(Self { user, session, actor, lang: lang_of(&parts.headers), path: parts.uri.path().to_owned() })
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let p = Pending::from_request_parts(parts, state).await?;
        if p.session.stage != Stage::Full {
            return Err(PageError::Redirect(next_page(state, &p.user).await?.into()));
        }
        let mut tx = state.store.read().await?;
        let creds = users::credentials(&mut tx, &p.user.id).await?.ok_or(PageError::SignIn)?;
        if creds.must_change_password {
            return Err(PageError::Redirect("/account/password".into()));
        }
        Ok(Self(p))
    }
}

/// Where a pending session goes next.
pub async fn next_page(state: &AppState, user: &User) -> Result<&'static str, PageError> {
    let mut tx = state.store.read().await?;
    let creds = users::credentials(&mut tx, &user.id).await?.ok_or(PageError::SignIn)?;
    Ok(match auth::next_step(&creds) {
        auth::Next::SecondFactor => "/login/code",
        auth::Next::ChangePassword => "/account/password",
        auth::Next::EnrollTotp => "/account/totp",
    })
}

/// A form posted by a signed-in person, checked against the session's form token (CSRF).
/// `S` is [`Staff`] or [`Pending`].
pub struct CsrfForm<S, T> {
    pub who: S,
    pub form: T,
}

pub trait HasSession {
    fn session(&self) -> &Session;
}

impl HasSession for Pending {
    fn session(&self) -> &Session {
        &self.session
    }
}

impl HasSession for Staff {
    fn session(&self) -> &Session {
        &self.0.session
    }
}

#[derive(serde::Deserialize)]
struct TokenField {
    #[serde(default)]
    csrf: String,
}

impl<S, T> FromRequest<AppState> for CsrfForm<S, T>
where
    S: FromRequestParts<AppState, Rejection = PageError> + HasSession + Send,
    T: DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let who = S::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, lending::web::MAX_BODY_BYTES).await.map_err(|_| PageError::Csrf)?;
        let token: TokenField = serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::Csrf)?;
        if !super::csrf::tokens_match(&token.csrf, &who.session().csrf_token) {
            return Err(PageError::Csrf);
        }
        if has_nul(&bytes) {
            return Err(PageError::Domain(nul_error(), lang_of(&parts.headers)));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            PageError::Domain(
                Error::invalid("form", "入力内容を読み取れません。", "The form could not be read."),
                lang_of(&parts.headers),
            )
        })?;
        Ok(Self { who, form })
    }
}

/// Whether a form body carries a NUL character (raw or `%00`): PostgreSQL text cannot hold one,
/// so it is refused here as bad input rather than failing in the database.
pub fn has_nul(body: &[u8]) -> bool {
    body.contains(&0) || body.windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

pub fn nul_error() -> Error {
    Error::invalid("form", "入力に使えない文字（NUL）が含まれています。", "The form contains a NUL character.")
}

pub type StaffForm<T> = CsrfForm<Staff, T>;
pub type PendingForm<T> = CsrfForm<Pending, T>;
