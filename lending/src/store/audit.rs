//! The `audit_events` table: appending under the head lock, reading, verifying.

use futures_util::TryStreamExt as _;

use super::{on, Store, Tx, TxInner};
use crate::actor::Actor;
use crate::audit::{Break, EventRow, NewEvent, Verifier};
use crate::error::Result;
use crate::timefmt::audit_time;

const INSERT: &str = "INSERT INTO audit_events \
    (seq, at, actor_id, actor_login, role, action, target_type, target_id, patient_id, details, source, prev_hash, hash) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
const COLUMNS: &str =
    "seq, at, actor_id, actor_login, role, action, target_type, target_id, patient_id, details, source, prev_hash, hash";

/// Reads the chain head; on PostgreSQL it locks the head row, which serialises appends so the
/// chain never forks (SQLite write transactions are already serialised by `BEGIN IMMEDIATE`).
async fn lock_head(tx: &mut Tx) -> Result<(i64, String)> {
    Ok(match &mut tx.inner {
        TxInner::Sqlite(t) => {
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&mut **t).await?
        }
        TxInner::Postgres(t) => {
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").fetch_one(&mut **t).await?
        }
    })
}

pub(crate) async fn append(tx: &mut Tx, events: Vec<(Actor, NewEvent)>) -> Result<()> {
    let (mut seq, mut prev) = lock_head(tx).await?;
    let at = audit_time(tx.now());
    for (actor, ev) in events {
        seq += 1;
        let mut row = EventRow {
            seq,
            at: at.clone(),
            actor_id: actor.user_id,
            actor_login: actor.login,
            role: actor.role,
            action: ev.action,
            target_type: ev.target_type,
            target_id: ev.target_id,
            patient_id: ev.patient_id,
            details: ev.details,
            source: actor.source,
            prev_hash: prev,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        insert_row(tx, &row).await?;
        prev = row.hash;
    }
    on!(tx, c => sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Writes one finished row as is (the chain append above, and the benchmark's bulk seeding).
pub async fn insert_row(tx: &mut Tx, row: &EventRow) -> Result<()> {
    on!(tx, c => sqlx::query(INSERT)
        .bind(row.seq)
        .bind(&row.at)
        .bind(&row.actor_id)
        .bind(&row.actor_login)
        .bind(&row.role)
        .bind(&row.action)
        .bind(&row.target_type)
        .bind(&row.target_id)
        .bind(&row.patient_id)
        .bind(&row.details)
        .bind(&row.source)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets the recorded head (the benchmark's bulk seeding writes rows without `append`).
pub async fn set_head(tx: &mut Tx, seq: i64, hash: &str) -> Result<()> {
    on!(tx, c => sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn head(tx: &mut Tx) -> Result<(i64, String)> {
    Ok(on!(tx, c => sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(c).await)?)
}

/// The newest events, newest first.
pub async fn recent(tx: &mut Tx, limit: i64) -> Result<Vec<EventRow>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq DESC LIMIT $1");
    Ok(on!(tx, c => sqlx::query_as::<_, EventRow>(&sql).bind(limit).fetch_all(c).await)?)
}

/// Events about one target, oldest first.
pub async fn for_target(tx: &mut Tx, target_type: &str, target_id: &str) -> Result<Vec<EventRow>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE target_type = $1 AND target_id = $2 ORDER BY seq");
    Ok(on!(tx, c => sqlx::query_as::<_, EventRow>(&sql).bind(target_type).bind(target_id).fetch_all(c).await)?)
}

/// How many events carry `action`.
pub async fn count_action(tx: &mut Tx, action: &str) -> Result<i64> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_one(c)
        .await)?)
}

/// Streams every event in `seq` order, in one snapshot, to `f` until it returns `false`;
/// a chain of millions needs no memory. Returns the recorded head.
pub async fn for_each(store: &Store, mut f: impl FnMut(&EventRow) -> bool + Send) -> Result<(i64, String)> {
    let mut tx = store.read().await?;
    let head = head(&mut tx).await?;
    let sql = format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq");
    on!(tx, c => {
        let mut rows = sqlx::query_as::<_, EventRow>(&sql).fetch(c);
        while let Some(row) = rows.try_next().await? {
            if !f(&row) {
                break;
            }
        }
    });
    Ok(head)
}

/// Walks the whole chain and checks its end against the head.
/// `Ok(Ok(n))`: n events, intact. `Ok(Err(b))`: the first bad event.
pub async fn verify(store: &Store) -> Result<Result<i64, Break>> {
    let mut v = Verifier::default();
    let mut broken = None;
    let (head_seq, head_hash) = for_each(store, |row| match v.push(row) {
        Ok(()) => true,
        Err(b) => {
            broken = Some(b);
            false
        }
    })
    .await?;
    Ok(match broken {
        Some(b) => Err(b),
        None => v.finish(head_seq, &head_hash),
    })
}
