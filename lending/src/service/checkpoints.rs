//! Signed checkpoints anchor the audit chain outside the database. A bare hash chain can be
//! rewritten as a whole by whoever holds the database (every hash recomputed); once an hour the
//! chain head (seq, hash) is signed with the institution's Ed25519 key, stored, and mailed to
//! the admins. `audit verify` then checks every stored checkpoint against the chain and its
//! signature, and any checkpoint kept elsewhere (`--anchor SEQ:HASH` from such a mail).

use chrono::Duration;
use ed25519_dalek::VerifyingKey;

use crate::audit::{checkpoint_text, Break};
use crate::error::Result;
use crate::receipts::{verify_bytes, ReceiptKey};
use crate::service::reminders::staff_mail;
use crate::store::audit::{self, Checkpoint};
use crate::store::{outbox, users, Store, Tx};
use crate::timefmt::audit_time;

/// How often the head is signed (when it moved).
pub const EVERY_MINUTES: i64 = 60;

/// Signs the chain head if it moved and the last checkpoint is older than [`EVERY_MINUTES`];
/// queues the anchor mail to the admins. Returns the checkpoint made, if any.
pub async fn sign_head(tx: &mut Tx, key: &ReceiptKey) -> Result<Option<Checkpoint>> {
    let now = tx.now();
    let recent =
        audit::last_checkpoint(tx).await?.is_some_and(|c| c.at > audit_time(now - Duration::minutes(EVERY_MINUTES)));
    if recent {
        return Ok(None);
    }
    sign_now(tx, key).await
}

/// Signs the chain head now unless it is signed already (every backup does, so a restored
/// backup ends on a signed checkpoint); queues the anchor mail. Returns the checkpoint made.
pub async fn sign_now(tx: &mut Tx, key: &ReceiptKey) -> Result<Option<Checkpoint>> {
    let (seq, hash) = audit::head(tx).await?;
    let now = tx.now();
    let signed = audit::last_checkpoint(tx).await?.is_some_and(|c| c.seq >= seq);
    if seq == 0 || signed {
        return Ok(None);
    }
    let text = checkpoint_text(seq, &hash);
    let c =
        Checkpoint { seq, hash, at: audit_time(now), key_id: key.key_id(), signature: key.sign_bytes(text.as_bytes()) };
    if !audit::insert_checkpoint(tx, &c).await? {
        return Ok(None);
    }
    let subject = format!("【貸出機器】監査記録チェックポイント {seq}");
    let body = format!(
        "監査記録の署名付きチェックポイントです。このメールを削除せずに保管してください。\n\
         改ざんの確認: server audit verify --anchor {seq}:{}\n\n\
         Signed checkpoint of the audit chain; keep this mail. Check: server audit verify --anchor {seq}:{}\n\n\
         {text}— {} {}\n",
        c.hash, c.hash, c.key_id, c.signature
    );
    for to in users::admin_emails(tx).await? {
        outbox::enqueue(tx, &staff_mail(format!("checkpoint:{seq}:{to}"), &to, &subject, &body)).await?;
    }
    Ok(Some(c))
}

/// Checks every stored checkpoint (its signature, and that the chain still holds its hash at its
/// seq) and every anchor kept outside (seq, hash). `Ok(n)`: checkpoints and anchors that match.
pub async fn verify(
    store: &Store,
    key: &VerifyingKey,
    anchors: &[(i64, String)],
) -> Result<std::result::Result<usize, Break>> {
    let mut tx = store.read().await?;
    let stored = audit::checkpoints(&mut tx).await?;
    for c in &stored {
        if !verify_bytes(key, checkpoint_text(c.seq, &c.hash).as_bytes(), &c.signature) {
            return Ok(Err(Break::BadCheckpointSignature { seq: c.seq }));
        }
    }
    let expected = stored.iter().map(|c| (c.seq, c.hash.clone())).chain(anchors.iter().cloned());
    let mut n = 0;
    for (seq, hash) in expected {
        if audit::hash_at(&mut tx, seq).await?.as_deref() != Some(hash.as_str()) {
            return Ok(Err(Break::CheckpointMismatch { seq }));
        }
        n += 1;
    }
    Ok(Ok(n))
}

/// The quick check: the last stored checkpoint's signature, then only the events after it
/// ([`audit::verify_since`]); with no checkpoint yet, the whole chain. `Ok(n)`: events checked.
/// A full `audit verify` still checks everything before the checkpoint.
pub async fn verify_since_last(store: &Store, key: &VerifyingKey) -> Result<std::result::Result<i64, Break>> {
    let mut tx = store.read().await?;
    let last = audit::last_checkpoint(&mut tx).await?;
    drop(tx);
    let Some(c) = last else { return audit::verify(store).await };
    if !verify_bytes(key, checkpoint_text(c.seq, &c.hash).as_bytes(), &c.signature) {
        return Ok(Err(Break::BadCheckpointSignature { seq: c.seq }));
    }
    audit::verify_since(store, c.seq, &c.hash).await
}
