//! A consent in progress survives the idle lock (SPEC §9, R27). Reading two explanation documents
//! aloud to an elderly patient can take longer than the idle limit: when the signed consent page
//! is sent after the lock, its fields (the drawn signature too) are kept as a draft for the nurse
//! instead of being lost; she signs in again (password and second factor) and sends it from the
//! draft. A draft is hers alone and lives no longer than her session could have.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::policy::{authorize, Action};
use crate::store::drafts::{self, Draft};
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::Tx;

/// Keeps `form` for the user of a locked session; returns the draft's id.
pub async fn keep(
    tx: &mut Tx,
    user: &User,
    session: &Session,
    session_max: chrono::Duration,
    form: &[(String, String)],
    source: &str,
) -> Result<String> {
    let now = tx.now();
    let draft = Draft {
        id: new_id(),
        user_id: user.id.clone(),
        form: serde_json::to_string(form).map_err(|e| Error::Other(e.into()))?,
        saved_at: now,
        expires_at: session.created_at + session_max,
    };
    drafts::insert(tx, &draft).await?;
    let actor = Actor::user(&user.id, &user.login, user.role, source);
    tx.audit(
        &actor,
        NewEvent::new("consent.draft_kept", "draft", &draft.id).details(&json!({ "reason": "idle_lock" })),
    );
    Ok(draft.id)
}

/// The actor's unexpired drafts: (id, saved at).
pub async fn mine(tx: &mut Tx, actor: &Actor) -> Result<Vec<(String, DateTime<Utc>)>> {
    authorize(actor, Action::OwnAccount)?;
    let now = tx.now();
    Ok(drafts::of_user(tx, &actor.user_id, now).await?.into_iter().map(|d| (d.id, d.saved_at)).collect())
}

/// The fields of the actor's draft `id` (`NotFound` for anyone else's or an expired one).
pub async fn open(tx: &mut Tx, actor: &Actor, id: &str) -> Result<Vec<(String, String)>> {
    authorize(actor, Action::Operate)?;
    let now = tx.now();
    let draft =
        drafts::of_user(tx, &actor.user_id, now).await?.into_iter().find(|d| d.id == id).ok_or(Error::NotFound)?;
    serde_json::from_str(&draft.form).map_err(|e| Error::Other(e.into()))
}

/// Forgets the actor's drafts sent with idempotency key `key` (the loan is recorded).
pub async fn sent(tx: &mut Tx, actor: &Actor, key: &str) -> Result<()> {
    authorize(actor, Action::Operate)?;
    let now = tx.now();
    for d in drafts::of_user(tx, &actor.user_id, now).await? {
        let form: Vec<(String, String)> = serde_json::from_str(&d.form).unwrap_or_default();
        if form.iter().any(|(k, v)| k == "idempotency_key" && v == key) {
            drafts::delete(tx, &d.id).await?;
        }
    }
    Ok(())
}

/// Deletes expired drafts (the worker's round).
pub async fn prune(tx: &mut Tx) -> Result<u64> {
    let now = tx.now();
    drafts::prune(tx, now).await
}
