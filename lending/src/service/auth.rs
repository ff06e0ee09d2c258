//! Staff sign-in: password, then the TOTP second factor (or a recovery code); forced password
//! change and TOTP enrolment at first sign-in; growing delays per (account, source) that survive
//! restarts; server-side sessions with idle and absolute timeouts. Every decision goes to the
//! audit chain.

use chrono::Duration;
use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::auth::{passwords, totp};
use crate::error::{Error, Result};
use crate::ids::{random_token, sha256_hex};
use crate::policy::{authorize, Action};
use crate::secrets::SecretBox;
use crate::service::reminders::staff_mail;
use crate::store::sessions::{self, Session, Stage};
use crate::store::users::{self, Credentials, User};
use crate::store::{audit, outbox, registry, throttle, Store, Tx};

/// Failures (password, code or current password) from one source before that source's attempts
/// on the account are held back.
pub const LOCK_AFTER: i32 = 5;
/// The first hold; each further failure doubles it, up to a day.
pub const LOCK_MINUTES: i64 = 15;
/// Failures on one account from all sources within [`BURST_MINUTES`] that alert the admins.
pub const BURST_FAILURES: i64 = 10;
pub const BURST_MINUTES: i64 = 15;
/// Failures from a source that has been quiet this long (and is not held back) are forgotten.
pub const FORGET_AFTER_HOURS: i64 = 24;
/// The audit actions of failed attempts.
const FAILURES: [&str; 3] = ["auth.failed", "auth.totp_failed", "auth.totp_replay"];
/// Passwords that may not be reused.
pub const HISTORY: i64 = 5;
pub const RECOVERY_CODES: usize = 10;

/// Session lifetimes (SPEC §6, guideline: lock unattended terminals).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub max_age: Duration,
}

impl SessionPolicy {
    pub fn from_config(cfg: &crate::Config) -> Self {
        Self { idle: Duration::minutes(cfg.session_idle_minutes), max_age: Duration::hours(cfg.session_max_hours) }
    }
}

/// A new session: the cookie value (shown to the browser only) and its form token.
#[derive(Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession(***)")
    }
}

/// What a signed-in-by-password session must do before it is a full session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    SecondFactor,
    ChangePassword,
    EnrollTotp,
}

#[derive(Debug)]
pub enum SignIn {
    /// Wrong login, wrong password, disabled or locked: one answer for all, so nobody learns
    /// which logins exist.
    Refused,
    Started {
        session: NewSession,
        user: User,
        next: Next,
    },
}

pub fn next_step(c: &Credentials) -> Next {
    if c.totp_enrolled_at.is_some() {
        Next::SecondFactor
    } else if c.must_change_password || c.password_hash.is_none() {
        Next::ChangePassword
    } else {
        Next::EnrollTotp
    }
}

async fn create_session(tx: &mut Tx, user_id: &str, stage: Stage, source: &str) -> Result<NewSession> {
    let token = random_token::<32>();
    let csrf = random_token::<32>();
    let now = tx.now();
    sessions::insert(
        tx,
        &Session {
            id_hash: sha256_hex(&token),
            user_id: user_id.to_owned(),
            stage,
            csrf_token: csrf.clone(),
            created_at: now,
            last_seen_at: now,
        },
        source,
    )
    .await?;
    Ok(NewSession { token, csrf })
}

/// The key sign-in failures are counted under: the client address, IPv6 by its /64 (one host
/// usually holds a whole /64).
pub fn source_key(source: &str) -> String {
    source.parse().map_or_else(|_| source.to_owned(), |ip| crate::web::rate_key(ip).to_string())
}

/// Counts an attempt on `user` from the actor's source *before* it is checked, in the same step
/// as the hold check (the row is locked): parallel guesses all count, and none past the limit is
/// checked. From the limit on, each attempt holds the next ones back until it is judged (a
/// failure keeps the hold, a success lifts it). `false`: held back, not to be checked.
async fn begin_attempt(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<bool> {
    let key = source_key(&actor.source);
    let mut a = throttle::lock(tx, user_id, &key).await?;
    let now = tx.now();
    a.failures += 1;
    let held = a.locked_until.is_some_and(|t| t > now);
    if !held && a.failures >= LOCK_AFTER {
        let doublings = u32::try_from(a.failures - LOCK_AFTER).unwrap_or(u32::MAX).min(7);
        a.locked_until = Some(now + Duration::minutes((LOCK_MINUTES << doublings).min(24 * 60)));
    }
    throttle::set(tx, user_id, &key, a).await?;
    if held {
        tx.audit(actor, NewEvent::new("auth.failed", "user", user_id).details(&json!({ "reason": "locked" })));
        alert_burst(tx, user_id).await?;
    }
    Ok(!held)
}

/// Forgets the failures of sources quiet for [`FORGET_AFTER_HOURS`] (the table would otherwise
/// grow with every address that ever guessed). The staff service's worker runs it.
pub async fn forget_stale_failures(tx: &mut Tx) -> Result<u64> {
    let before = tx.now() - Duration::hours(FORGET_AFTER_HOURS);
    throttle::forget_stale(tx, before).await
}

/// A checked attempt was right: it no longer counts, and lifts the hold it set.
async fn attempt_succeeded(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<()> {
    let key = source_key(&actor.source);
    let a = throttle::lock(tx, user_id, &key).await?;
    throttle::set(tx, user_id, &key, throttle::Attempts { failures: (a.failures - 1).max(0), locked_until: None }).await
}

/// A checked attempt was wrong (it was counted already): audited, and whether the source is now
/// held back.
async fn attempt_failed(tx: &mut Tx, actor: &Actor, user_id: &str, what: &str) -> Result<bool> {
    let a = throttle::lock(tx, user_id, &source_key(&actor.source)).await?;
    tx.audit(actor, NewEvent::new(what, "user", user_id).details(&json!({ "failures": a.failures })));
    let held = a.locked_until.is_some_and(|t| t > tx.now());
    if held {
        let until = a.locked_until.map(|t| t.to_rfc3339());
        tx.audit(actor, NewEvent::new("auth.locked", "user", user_id).details(&json!({ "until": until })));
    }
    alert_burst(tx, user_id).await?;
    Ok(held)
}

/// Mails the admins once per window when one account sees a burst of failures from anywhere
/// (login only, no patient data; the audit log has the sources).
async fn alert_burst(tx: &mut Tx, user_id: &str) -> Result<()> {
    let now = tx.now();
    let since = now - Duration::minutes(BURST_MINUTES);
    let failures = 1 + audit::count_since(tx, user_id, &FAILURES, since).await?; // +1: this one, not yet in the chain
    if failures < BURST_FAILURES {
        return Ok(());
    }
    let Some(user) = users::get(tx, user_id).await? else { return Ok(()) };
    let window = now.timestamp() / (BURST_MINUTES * 60);
    let subject = format!("【貸出機器】サインイン失敗が続いています（{}）", user.login);
    let body = format!(
        "職員「{}」のアカウントで、{BURST_MINUTES}分間に{failures}回のサインイン失敗がありました。\n\
         本人に心当たりを確認し、監査ログで送信元を確認してください。\n\n\
         Sign-in failures on staff account \"{}\": {failures} in {BURST_MINUTES} minutes. Check with the \
         person and see the audit log for the sources.\n",
        user.login, user.login
    );
    for to in users::admin_emails(tx).await? {
        let mail = staff_mail(format!("auth-burst:{user_id}:{window}:{to}"), &to, &subject, &body);
        if outbox::enqueue(tx, &mail).await? {
            tx.audit(
                &Actor::anonymous("worker"),
                NewEvent::new("auth.burst_alert", "user", user_id).details(&json!({ "to": to })),
            );
        }
    }
    Ok(())
}

/// Step one: login and password. The attempt is counted first (its own short transaction);
/// the Argon2 check then runs on a blocking thread outside any transaction (a flood of sign-ins
/// must not hold the database's write lock); the outcome is written in one transaction after.
pub async fn sign_in_password(store: &Store, login: &str, password: &str, source: &str) -> Result<SignIn> {
    let login = login.trim();
    let mut tx = store.begin().await?;
    let user = if login.is_empty() || login.len() > 64 { None } else { users::by_login(&mut tx, login).await? };
    let creds = match &user {
        Some(u) => users::credentials(&mut tx, &u.id).await?,
        None => None,
    };
    let usable = match (&user, &creds) {
        (Some(u), Some(_)) if !u.disabled => {
            begin_attempt(&mut tx, &Actor::user(&u.id, &u.login, u.role, source), &u.id).await?
        }
        _ => false,
    };
    tx.commit().await?;
    let stored_hash = if usable { creds.as_ref().and_then(|c| c.password_hash.clone()) } else { None };
    let typed = password.to_owned();
    // Unknown, disabled and held-back logins spend the same time as real checks.
    let password_ok = tokio::task::spawn_blocking(move || {
        if let Some(h) = stored_hash {
            passwords::verify(&typed, &h)
        } else {
            passwords::verify_dummy(&typed);
            false
        }
    })
    .await
    .map_err(|e| Error::Other(e.into()))?;

    let mut tx = store.begin().await?;
    let outcome = match (user, creds) {
        (None, _) | (_, None) => {
            tx.audit(
                &Actor::anonymous(source),
                NewEvent::new("auth.failed", "user", "").details(&json!({ "reason": "unknown_login" })),
            );
            SignIn::Refused
        }
        (Some(user), Some(creds)) => {
            let actor = Actor::user(&user.id, &user.login, user.role, source);
            if user.disabled {
                tx.audit(
                    &actor,
                    NewEvent::new("auth.failed", "user", &user.id).details(&json!({ "reason": "disabled" })),
                );
                SignIn::Refused
            } else if !usable {
                SignIn::Refused // held back: audited when counted
            } else if !password_ok {
                attempt_failed(&mut tx, &actor, &user.id, "auth.failed").await?;
                SignIn::Refused
            } else {
                // The attempt stops counting, but earlier failures stay until the second factor
                // is done, so a known password does not buy unlimited code guesses.
                attempt_succeeded(&mut tx, &actor, &user.id).await?;
                let session = create_session(&mut tx, &user.id, Stage::Password, source).await?;
                tx.audit(&actor, NewEvent::new("auth.password_ok", "user", &user.id));
                SignIn::Started { next: next_step(&creds), session, user }
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The outcome of a second-factor or enrolment step.
#[derive(Debug)]
pub enum Factor {
    /// Signed in: a new session id replaces the pending one.
    SignedIn(NewSession),
    Wrong,
    /// The code was already used (logged; the owner should be told).
    Replayed,
    /// Too many failures: the account is locked and the pending session ended.
    Locked,
}

fn recovery_hash(user_id: &str, code: &str) -> String {
    let normalized: String = code.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
    sha256_hex(&format!("recovery:{user_id}:{normalized}"))
}

async fn promote(tx: &mut Tx, actor: &Actor, old_hash: &str, how: &str) -> Result<NewSession> {
    sessions::delete(tx, old_hash).await?;
    let session = create_session(tx, &actor.user_id, Stage::Full, &actor.source).await?;
    tx.audit(actor, NewEvent::new("auth.sign_in", "user", &actor.user_id).details(&json!({ "factor": how })));
    Ok(session)
}

/// Step two: a TOTP code (or a recovery code) for a pending session.
pub async fn second_factor(
    tx: &mut Tx,
    session: &Session,
    user: &User,
    code: &str,
    keys: &SecretBox,
    source: &str,
) -> Result<Factor> {
    let actor = Actor::user(&user.id, &user.login, user.role, source);
    let creds = users::credentials(tx, &user.id).await?.ok_or(Error::NotFound)?;
    if session.stage != Stage::Password || creds.totp_enrolled_at.is_none() {
        return Err(Error::Unauthorized);
    }
    if !begin_attempt(tx, &actor, &user.id).await? {
        sessions::delete(tx, &session.id_hash).await?;
        return Ok(Factor::Locked);
    }
    let code = code.trim();
    let failure = if code.chars().filter(char::is_ascii_alphanumeric).count() == 20 {
        if users::use_recovery_code(tx, &user.id, &recovery_hash(&user.id, code)).await? {
            throttle::clear(tx, &user.id, Some(&source_key(source))).await?;
            return Ok(Factor::SignedIn(promote(tx, &actor, &session.id_hash, "recovery_code").await?));
        }
        "auth.totp_failed"
    } else {
        let sealed = creds.totp_secret_enc.as_deref().ok_or(Error::Unauthorized)?;
        let secret = keys.open(sealed, &format!("totp:{}", user.id))?;
        let now = u64::try_from(tx.now().timestamp()).unwrap_or(0);
        match totp::check(&secret, code, now, creds.totp_last_step) {
            totp::Check::Ok { step } if users::advance_totp_step(tx, &user.id, step).await? => {
                throttle::clear(tx, &user.id, Some(&source_key(source))).await?;
                return Ok(Factor::SignedIn(promote(tx, &actor, &session.id_hash, "totp").await?));
            }
            totp::Check::Ok { .. } | totp::Check::Replay => "auth.totp_replay",
            totp::Check::Wrong => "auth.totp_failed",
        }
    };
    if attempt_failed(tx, &actor, &user.id, failure).await? {
        sessions::delete(tx, &session.id_hash).await?;
        Ok(Factor::Locked)
    } else if failure == "auth.totp_replay" {
        Ok(Factor::Replayed)
    } else {
        Ok(Factor::Wrong)
    }
}

/// Words a password must not be built from: the user's login and name, the clinic's name.
async fn context_words(tx: &mut Tx, user: &User) -> Result<Vec<String>> {
    let mut words = vec![user.login.clone(), user.name.clone()];
    if let Some(i) = registry::institution(tx).await? {
        words.push(i.name);
        words.push(i.name_en);
    }
    Ok(words)
}

/// How a password change went when it did not fail on the new password itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChange {
    Changed,
    /// The current password was wrong: counted like a failed sign-in (the caller commits).
    WrongCurrent,
    /// Too many failures from this source: not checked.
    HeldBack,
}

impl PasswordChange {
    /// Why the change was refused, for the form; `None` when it was made.
    pub fn refusal(self) -> Option<Error> {
        match self {
            Self::Changed => None,
            Self::WrongCurrent => Some(Error::invalid(
                "current_password",
                "現在のパスワードが正しくありません。",
                "The current password is wrong.",
            )),
            Self::HeldBack => Some(Error::invalid(
                "current_password",
                "失敗が続いたため、しばらくしてから、やり直してください。",
                "Too many failures: try again later.",
            )),
        }
    }
}

/// Sets a new password and ends the user's other sessions (`session` stays). `current` is
/// required for a voluntary change, not for the forced one right after signing in with a
/// temporary password; a wrong one counts as a failed sign-in from the actor's source.
pub async fn change_password(
    tx: &mut Tx,
    actor: &Actor,
    user: &User,
    session: &Session,
    current: Option<&str>,
    new: &str,
) -> Result<PasswordChange> {
    authorize(actor, Action::OwnAccount)?;
    let creds = users::credentials(tx, &user.id).await?.ok_or(Error::NotFound)?;
    if let Some(current) = current {
        if !begin_attempt(tx, actor, &user.id).await? {
            return Ok(PasswordChange::HeldBack);
        }
        if !creds.password_hash.as_deref().is_some_and(|h| passwords::verify(current, h)) {
            attempt_failed(tx, actor, &user.id, "auth.failed").await?;
            return Ok(PasswordChange::WrongCurrent);
        }
        attempt_succeeded(tx, actor, &user.id).await?;
    }
    let words = context_words(tx, user).await?;
    passwords::check_strength(new, &words.iter().map(String::as_str).collect::<Vec<_>>())?;
    for old in users::recent_password_hashes(tx, &user.id, HISTORY).await? {
        if passwords::verify(new, &old) {
            return Err(Error::invalid(
                "password",
                "最近使ったパスワードは使えません。",
                "This password was used recently; choose another.",
            ));
        }
    }
    users::set_password(tx, &user.id, &passwords::hash(new)?, false).await?;
    let ended = sessions::delete_others(tx, &user.id, &session.id_hash).await?;
    tx.audit(
        actor,
        NewEvent::new("auth.password_changed", "user", &user.id).details(&json!({ "sessions_ended": ended })),
    );
    Ok(PasswordChange::Changed)
}

/// Starts TOTP enrolment: a fresh seed, sealed and stored unconfirmed. Returns the seed.
pub async fn begin_enrollment(tx: &mut Tx, user: &User, keys: &SecretBox) -> Result<Vec<u8>> {
    let creds = users::credentials(tx, &user.id).await?.ok_or(Error::NotFound)?;
    if creds.totp_enrolled_at.is_some() {
        return Err(Error::conflict("二要素認証はすでに設定済みです。", "The second factor is already set up."));
    }
    let secret = totp::new_secret();
    let sealed = keys.seal(&secret, &format!("totp:{}", user.id))?;
    users::set_totp(tx, &user.id, Some(&sealed), None).await?;
    Ok(secret)
}

/// The unconfirmed seed being enrolled (to show it again after a wrong code).
pub async fn pending_secret(tx: &mut Tx, user: &User, keys: &SecretBox) -> Result<Option<Vec<u8>>> {
    let creds = users::credentials(tx, &user.id).await?.ok_or(Error::NotFound)?;
    match (&creds.totp_secret_enc, creds.totp_enrolled_at) {
        (Some(sealed), None) => Ok(Some(keys.open(sealed, &format!("totp:{}", user.id))?)),
        _ => Ok(None),
    }
}

/// Confirms enrolment with a first code: the session becomes a full one and the recovery codes
/// are returned (shown once; stored hashed).
pub async fn confirm_enrollment(
    tx: &mut Tx,
    session: &Session,
    user: &User,
    code: &str,
    keys: &SecretBox,
    source: &str,
) -> Result<Option<(NewSession, Vec<String>)>> {
    let actor = Actor::user(&user.id, &user.login, user.role, source);
    let creds = users::credentials(tx, &user.id).await?.ok_or(Error::NotFound)?;
    if creds.must_change_password || creds.totp_enrolled_at.is_some() {
        return Err(Error::Unauthorized);
    }
    let Some(secret) = pending_secret(tx, user, keys).await? else { return Err(Error::Unauthorized) };
    if !begin_attempt(tx, &actor, &user.id).await? {
        return Ok(None);
    }
    let now = u64::try_from(tx.now().timestamp()).unwrap_or(0);
    let totp::Check::Ok { step } = totp::check(&secret, code, now, None) else {
        attempt_failed(tx, &actor, &user.id, "auth.totp_failed").await?;
        return Ok(None);
    };
    throttle::clear(tx, &user.id, Some(&source_key(source))).await?;
    let sealed = creds.totp_secret_enc.clone().unwrap_or_default();
    users::set_totp(tx, &user.id, Some(&sealed), Some(tx.now())).await?;
    users::advance_totp_step(tx, &user.id, step).await?;
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| passwords::temporary()).collect();
    users::replace_recovery_codes(tx, &user.id, &codes.iter().map(|c| recovery_hash(&user.id, c)).collect::<Vec<_>>())
        .await?;
    tx.audit(&actor, NewEvent::new("auth.totp_enrolled", "user", &user.id));
    let new = promote(tx, &actor, &session.id_hash, "totp_enrolment").await?;
    Ok(Some((new, codes)))
}

/// A session from its cookie value, if it is alive: not idle too long, not too old, its user
/// enabled. Dead sessions are deleted (the caller commits).
pub async fn session_user(tx: &mut Tx, token: &str, policy: SessionPolicy) -> Result<Option<(Session, User)>> {
    if token.len() != 43 {
        return Ok(None);
    }
    let Some(session) = sessions::get(tx, &sha256_hex(token)).await? else { return Ok(None) };
    let now = tx.now();
    let user = users::get(tx, &session.user_id).await?;
    let alive = now - session.last_seen_at <= policy.idle && now - session.created_at <= policy.max_age;
    match user {
        Some(user) if alive && !user.disabled => {
            // Write at most once a minute: most requests stay read-only.
            if now - session.last_seen_at > Duration::seconds(60) {
                sessions::touch(tx, &session.id_hash, now).await?;
            }
            Ok(Some((session, user)))
        }
        _ => {
            sessions::delete(tx, &session.id_hash).await?;
            Ok(None)
        }
    }
}

/// A full session that the idle limit has locked but that is within its absolute limit, of an
/// enabled user: what was being sent from it can be kept for that user (see `service::drafts`).
/// Reads only; the caller decides.
pub async fn locked_session(tx: &mut Tx, token: &str, policy: SessionPolicy) -> Result<Option<(Session, User)>> {
    if token.len() != 43 {
        return Ok(None);
    }
    let Some(session) = sessions::get(tx, &sha256_hex(token)).await? else { return Ok(None) };
    let now = tx.now();
    let locked = session.stage == Stage::Full
        && now - session.last_seen_at > policy.idle
        && now - session.created_at <= policy.max_age;
    if !locked {
        return Ok(None);
    }
    Ok(users::get(tx, &session.user_id).await?.filter(|u| !u.disabled).map(|u| (session, u)))
}

pub async fn sign_out(tx: &mut Tx, actor: &Actor, session: &Session) -> Result<()> {
    authorize(actor, Action::OwnAccount)?;
    sessions::delete(tx, &session.id_hash).await?;
    tx.audit(actor, NewEvent::new("auth.sign_out", "user", &session.user_id));
    Ok(())
}

pub async fn sign_out_everywhere(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<()> {
    authorize(actor, if user_id == actor.user_id { Action::OwnAccount } else { Action::ManageStaff })?;
    let n = sessions::delete_for_user(tx, user_id).await?;
    tx.audit(actor, NewEvent::new("auth.sign_out_all", "user", user_id).details(&json!({ "sessions": n })));
    Ok(())
}

/// Ends every session of a user and revokes their API tokens (disabled, or a credential reset by
/// an admin: whatever the old credentials opened must not stay open). Returns the tokens revoked.
async fn end_access(tx: &mut Tx, user_id: &str) -> Result<u64> {
    sessions::delete_for_user(tx, user_id).await?;
    users::revoke_tokens_of(tx, user_id).await
}

/// Enables or disables a user; disabling ends their sessions and revokes their tokens at once.
pub async fn set_disabled(tx: &mut Tx, actor: &Actor, user_id: &str, disabled: bool) -> Result<()> {
    authorize(actor, Action::ManageStaff)?;
    if actor.user_id == user_id && disabled {
        return Err(Error::conflict("自分自身は無効にできません。", "You cannot disable yourself."));
    }
    users::get(tx, user_id).await?.ok_or(Error::NotFound)?;
    users::set_disabled(tx, user_id, disabled).await?;
    if disabled {
        let tokens = end_access(tx, user_id).await?;
        tx.audit(actor, NewEvent::new("user.disable", "user", user_id).details(&json!({ "tokens_revoked": tokens })));
    } else {
        tx.audit(actor, NewEvent::new("user.enable", "user", user_id));
    }
    Ok(())
}

/// Clears a user's second factor (lost phone): they enrol again at next sign-in; their sessions
/// end and their API tokens are revoked.
pub async fn reset_second_factor(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<()> {
    authorize(actor, Action::ManageStaff)?;
    users::get(tx, user_id).await?.ok_or(Error::NotFound)?;
    users::set_totp(tx, user_id, None, None).await?;
    users::replace_recovery_codes(tx, user_id, &[]).await?;
    let tokens = end_access(tx, user_id).await?;
    tx.audit(
        actor,
        NewEvent::new("user.reset_second_factor", "user", user_id).details(&json!({ "tokens_revoked": tokens })),
    );
    Ok(())
}

/// Sets a temporary password (returned once) that must be changed at next sign-in; unlocks,
/// ends the user's sessions and revokes their API tokens.
pub async fn reset_password(tx: &mut Tx, actor: &Actor, user_id: &str) -> Result<String> {
    authorize(actor, Action::ManageStaff)?;
    users::get(tx, user_id).await?.ok_or(Error::NotFound)?;
    let temp = passwords::temporary();
    users::set_password(tx, user_id, &passwords::hash(&temp)?, true).await?;
    throttle::clear(tx, user_id, None).await?;
    let tokens = end_access(tx, user_id).await?;
    tx.audit(
        actor,
        NewEvent::new("user.reset_password", "user", user_id).details(&json!({ "tokens_revoked": tokens })),
    );
    Ok(temp)
}
