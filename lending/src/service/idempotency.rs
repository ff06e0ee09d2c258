//! Doing a state-changing request once: a nurse's double tap, a browser's resubmission or an API
//! client's retry after a lost answer carries the same key as the first request, and gets the
//! first request's result instead of a second record or a confusing conflict.
//!
//! The key is claimed in the same transaction as the work. A repeat that arrives while the first
//! is still running waits for it on PostgreSQL (the primary key) and behind the single writer on
//! SQLite, then sees the committed key.

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::ids::sha256_hex;
use crate::store::{idempotency, Tx};

/// How long a key is remembered.
pub const KEEP_DAYS: i64 = 30;

/// A client-chosen key: 16–100 characters of `A–Z a–z 0–9 - _`, e.g. a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// An absent or empty key is `None`; a malformed one is refused (422).
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
        let ok =
            (16..=100).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Some(Self(raw.to_owned())))
        } else {
            Err(Error::invalid(
                "idempotency_key",
                "画面を開き直してから、もう一度送信してください（送信キーの形式が正しくありません）。",
                "Idempotency-Key must be 16-100 characters of A-Z, a-z, 0-9, '-' and '_'.",
            ))
        }
    }

    /// A fresh key for a form about to be shown.
    pub fn fresh() -> String {
        crate::ids::random_token::<16>()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The operations that take a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CheckOut,
    Return,
    Wipe,
    VerifyWipe,
    ReturnKit,
    Extend,
    Void,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::CheckOut => "check_out",
            Self::Return => "return",
            Self::Wipe => "wipe",
            Self::VerifyWipe => "verify_wipe",
            Self::ReturnKit => "return_kit",
            Self::Extend => "extend",
            Self::Void => "void",
        }
    }
}

/// Does `work` once per key: a repeat of the same request with the same key gets the first
/// result, read back by `load` from the id `id_of` gave; nothing is written again.
pub(crate) async fn once<T>(
    tx: &mut Tx,
    actor: &Actor,
    key: Option<&IdempotencyKey>,
    (op, fingerprint): (Operation, &str),
    id_of: impl FnOnce(&T) -> String,
    load: impl AsyncFnOnce(&mut Tx, String) -> Result<T>,
    work: impl AsyncFnOnce(&mut Tx) -> Result<T>,
) -> Result<T> {
    match begin(tx, &actor.user_id, key, op.as_str(), fingerprint).await? {
        Begun::Done(id) => load(tx, id).await,
        Begun::Fresh => {
            let out = work(tx).await?;
            finish(tx, &actor.user_id, key, &id_of(&out)).await?;
            Ok(out)
        }
    }
}

/// What to do with a keyed request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Begun {
    /// First time: do the work, then [`finish`].
    Fresh,
    /// Done before: the first result's id.
    Done(String),
}

/// Claims `key` for `op` on the request described by `fingerprint` (what must be the same for a
/// repeat: patient and devices, device, wipe). Without a key every request is fresh.
async fn begin(tx: &mut Tx, user_id: &str, key: Option<&IdempotencyKey>, op: &str, fingerprint: &str) -> Result<Begun> {
    let Some(key) = key else { return Ok(Begun::Fresh) };
    let fingerprint = sha256_hex(fingerprint);
    if idempotency::claim(tx, user_id, key.as_str(), op, &fingerprint).await? {
        return Ok(Begun::Fresh);
    }
    let done = idempotency::get(tx, user_id, key.as_str()).await?.ok_or(Error::NotFound)?;
    if done.operation != op || done.fingerprint != fingerprint {
        return Err(Error::invalid(
            "idempotency_key",
            "この画面の内容はすでに送信済みです。画面を開き直して入力してください。",
            "This Idempotency-Key was used for a different request.",
        ));
    }
    Ok(Begun::Done(done.result_id))
}

/// Records the result of fresh keyed work (same transaction).
async fn finish(tx: &mut Tx, user_id: &str, key: Option<&IdempotencyKey>, result_id: &str) -> Result<()> {
    match key {
        Some(key) => idempotency::set_result(tx, user_id, key.as_str(), result_id).await,
        None => Ok(()),
    }
}

/// For a write whose answer is kept with its key (the API's other state-changing requests,
/// `operation` naming the route): `Some(first answer)` when this key already did this request, so
/// nothing is to be written; `None` when the key is claimed now (or there is none): do the work
/// and [`remember`] its answer in the same transaction. Keys are per user (`user_id`); the work
/// itself checks what that user may do.
pub async fn replay(
    tx: &mut Tx,
    user_id: &str,
    key: Option<&IdempotencyKey>,
    operation: &str,
    fingerprint: &str,
) -> Result<Option<String>> {
    Ok(match begin(tx, user_id, key, operation, fingerprint).await? {
        Begun::Done(answer) => Some(answer),
        Begun::Fresh => None,
    })
}

/// Keeps the answer of fresh keyed work (see [`replay`]), in its transaction.
pub async fn remember(tx: &mut Tx, user_id: &str, key: Option<&IdempotencyKey>, answer: &str) -> Result<()> {
    finish(tx, user_id, key, answer).await
}

/// Forgets keys older than [`KEEP_DAYS`] (the worker's round).
pub async fn prune(tx: &mut Tx) -> Result<u64> {
    let before = tx.now() - chrono::Duration::days(KEEP_DAYS);
    idempotency::prune(tx, before).await
}
