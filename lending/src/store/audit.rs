//! The `audit_events` table: appending under the head lock, reading, verifying.

use std::fmt::Write as _;

use futures_util::TryStreamExt as _;

use super::writer::Finish;
use super::{on, SqliteTx, Store, Tx, TxInner};
use crate::actor::Actor;
use crate::audit::{Break, EventRow, NewEvent, Verifier, GENESIS};
use crate::error::{Error, Result};
use crate::timefmt::audit_time;

const INSERT: &str = "INSERT INTO audit_events \
    (seq, at, actor_id, actor_login, role, action, target_type, target_id, patient_id, details, source, prev_hash, hash) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
/// Binds an event row's 13 columns in `COLUMNS` order (the same for either backend's query type).
macro_rules! bind_event {
    ($q:expr, $r:expr) => {
        $q.bind($r.seq)
            .bind(&$r.at)
            .bind(&$r.actor_id)
            .bind(&$r.actor_login)
            .bind(&$r.role)
            .bind(&$r.action)
            .bind(&$r.target_type)
            .bind(&$r.target_id)
            .bind(&$r.patient_id)
            .bind(&$r.details)
            .bind(&$r.source)
            .bind(&$r.prev_hash)
            .bind(&$r.hash)
    };
}

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

/// The chained rows for `events`, following the head `(seq, prev)`.
fn chain_rows(events: &[(Actor, NewEvent)], at: &str, (mut seq, mut prev): (i64, String)) -> Vec<EventRow> {
    let mut rows = Vec::with_capacity(events.len());
    for (actor, ev) in events {
        seq += 1;
        let mut row = EventRow {
            seq,
            at: at.to_owned(),
            actor_id: actor.user_id.clone(),
            actor_login: actor.login.clone(),
            role: actor.role.as_str().to_owned(),
            action: ev.action.clone(),
            target_type: ev.target_type.clone(),
            target_id: ev.target_id.clone(),
            patient_id: ev.patient_id.clone(),
            details: with_credential(ev.details.clone(), &actor.credential),
            source: actor.source.clone(),
            prev_hash: std::mem::take(&mut prev),
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        prev.clone_from(&row.hash);
        rows.push(row);
    }
    rows
}

fn remember_head(tx: &Tx, rows: &[EventRow]) {
    if let Some(last) = rows.last() {
        *tx.memo.audit_head.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((last.seq, last.hash.clone()));
    }
}

/// Appends `events` to the chain. The head this process remembers is tried first: the rows go
/// in only if the head still holds exactly that (seq, hash), checked by the database under
/// SQLite's write lock or PostgreSQL's row lock, so another writer (another process, another
/// connection) can never fork the chain; if it moved, the head is read and locked as before.
/// Usual cost: one statement on either backend. `finish`: a batched SQLite writer's release,
/// sent in the same round trip when the guess holds; returns whether it was.
pub(crate) async fn append(tx: &mut Tx, events: Vec<(Actor, NewEvent)>, finish: Option<Finish>) -> Result<bool> {
    let at = audit_time(tx.now());
    let guess = tx.memo.audit_head.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(head) = guess {
        let rows = chain_rows(&events, &at, head.clone());
        if let Some(finished) = append_if_head(tx, head, &rows, finish).await? {
            remember_head(tx, &rows);
            return Ok(finished);
        }
    }
    let head = lock_head(tx).await?;
    let rows = chain_rows(&events, &at, head);
    if let Some(last) = rows.last() {
        set_head(tx, last.seq, &last.hash).await?;
    }
    insert_rows(tx, &rows).await?;
    remember_head(tx, &rows);
    Ok(false)
}

/// SQLite's refusal of an event row without its hash: the head was not the guess.
fn head_moved(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.message().contains("NOT NULL constraint failed: audit_events.hash"))
}

/// Writes `rows` and moves the head from `head` to the last of them, if the head is still
/// `head`: `Some(whether finish ran too)`; `None` (and nothing written) otherwise.
async fn append_if_head(
    tx: &mut Tx,
    (seq, hash): (i64, String),
    rows: &[EventRow],
    finish: Option<Finish>,
) -> Result<Option<bool>> {
    let Some(last) = rows.last() else { return Ok(Some(false)) };
    match &mut tx.inner {
        TxInner::Postgres(_) | TxInner::Sqlite(_) if rows.len() > ONE_STATEMENT => {
            let moved = on!(tx, c => sqlx::query(
                "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4")
                .bind(last.seq)
                .bind(&last.hash)
                .bind(seq)
                .bind(&hash)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            if moved != 1 {
                return Ok(None);
            }
        }
        TxInner::Sqlite(t) => {
            // One round trip to SQLite's connection thread: the rows, the head, and a batched
            // writer's RELEASE. Each row's hash is NULL, which NOT NULL refuses, unless the head
            // is still the guess: then SQLite stops at this first statement, nothing written or
            // released. (A hash names one chain position.)
            let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) SELECT ");
            for k in 1..=12 {
                let _ = write!(sql, "column{k}, ");
            }
            sql.push_str(
                "CASE WHEN EXISTS (SELECT 1 FROM audit_head WHERE id = 1 AND seq = $3 AND hash = $4) \
                 THEN column13 END FROM (VALUES ",
            );
            push_row_placeholders(&mut sql, 4, rows.len());
            sql.push_str("); UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1");
            if let Some(finish) = finish {
                let _ = write!(sql, "; {}", finish.sql);
            }
            let mut q = sqlx::query(&sql).bind(last.seq).bind(&last.hash).bind(seq).bind(&hash);
            for r in rows {
                q = bind_event!(q, r);
            }
            let result = match t {
                SqliteTx::Write(w) if finish.is_some() => w.run_finishing(q, &last.hash, head_moved).await,
                _ => q.execute(&mut **t).await,
            };
            return match result {
                Ok(_) => Ok(Some(finish.is_some())),
                Err(e) if head_moved(&e) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        TxInner::Postgres(t) => {
            // One statement: the head moves (row lock held to commit) and the rows go in only
            // if it did. The rows come from a SELECT, so each value is typed by a cast.
            let mut sql = String::from(
                "WITH h AS (UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4 \
                 RETURNING id) INSERT INTO audit_events (",
            );
            sql.push_str(COLUMNS);
            sql.push_str(") ");
            for (i, _) in rows.iter().enumerate() {
                let b = 4 + i * 13;
                if i > 0 {
                    sql.push_str(" UNION ALL ");
                }
                let cols: Vec<String> = (1..=13)
                    .map(|k| if k == 1 { format!("${}::bigint", b + k) } else { format!("${}::text", b + k) })
                    .collect();
                let _ = write!(sql, "SELECT {} WHERE EXISTS (SELECT 1 FROM h)", cols.join(", "));
            }
            let mut q = sqlx::query(&sql).bind(last.seq).bind(&last.hash).bind(seq).bind(&hash);
            for r in rows {
                q = bind_event!(q, r);
            }
            let n = q.execute(&mut **t).await?.rows_affected();
            return Ok((n == rows.len() as u64).then_some(false));
        }
    }
    insert_rows(tx, rows).await?;
    Ok(Some(false))
}

/// Events written in one statement at most (a 10,000-row import writes many statements).
const ONE_STATEMENT: usize = 200;

/// Writes finished rows as they are, [`ONE_STATEMENT`] to a statement.
async fn insert_rows(tx: &mut Tx, rows: &[EventRow]) -> Result<()> {
    for chunk in rows.chunks(ONE_STATEMENT) {
        insert_chunk(tx, chunk).await?;
    }
    Ok(())
}

/// `($b+1, …, $b+13), …` for `rows` event rows, their values bound after the first `before`.
fn push_row_placeholders(sql: &mut String, before: usize, rows: usize) {
    for i in 0..rows {
        let b = before + i * 13;
        let p: Vec<String> = (1..=13).map(|k| format!("${}", b + k)).collect();
        let _ = write!(sql, "{}({})", if i == 0 { "" } else { ", " }, p.join(", "));
    }
}

async fn insert_chunk(tx: &mut Tx, rows: &[EventRow]) -> Result<()> {
    let mut sql = format!("INSERT INTO audit_events ({COLUMNS}) VALUES ");
    push_row_placeholders(&mut sql, 0, rows.len());
    on!(tx, c => {
        let mut q = sqlx::query(&sql);
        for r in rows {
            q = bind_event!(q, r);
        }
        q.execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// Adds the credential the actor used (`"credential": "session:…" | "token:…" | "cli:…"`) to
/// an event's details, so every event says which sign-in or token did it.
fn with_credential(details: String, credential: &crate::actor::Credential) -> String {
    let Some(label) = credential.label() else { return details };
    match serde_json::from_str::<serde_json::Value>(&details) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("credential".to_owned(), label.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => details,
    }
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

/// When the newest event with `action` happened (its `at` text), if any.
pub async fn last_at(tx: &mut Tx, action: &str) -> Result<Option<String>> {
    Ok(on!(tx, c => sqlx::query_scalar("SELECT at FROM audit_events WHERE action = $1 ORDER BY seq DESC LIMIT 1")
        .bind(action)
        .fetch_optional(c)
        .await)?)
}

/// How many events about `target_id` carry one of `actions` since `since` (e.g. sign-in
/// failures on one account in the last minutes, from every source).
pub async fn count_since(
    tx: &mut Tx,
    target_id: &str,
    actions: &[&str],
    since: chrono::DateTime<chrono::Utc>,
) -> Result<i64> {
    let placeholders: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT COUNT(*) FROM audit_events WHERE target_id = $1 AND at >= $2 AND action IN ({})",
        placeholders.join(", ")
    );
    let at = audit_time(since);
    Ok(on!(tx, c => {
        let mut q = sqlx::query_scalar(&sql).bind(target_id).bind(&at);
        for a in actions {
            q = q.bind(*a);
        }
        q.fetch_one(c).await
    })?)
}

/// A signed checkpoint of the chain head.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    pub key_id: String,
    pub signature: String,
}

/// Stores a checkpoint; `false` if one for that seq exists (another replica signed it first).
pub async fn insert_checkpoint(tx: &mut Tx, c: &Checkpoint) -> Result<bool> {
    let n = on!(tx, c2 => sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (seq) DO NOTHING")
        .bind(c.seq).bind(&c.hash).bind(&c.at).bind(&c.key_id).bind(&c.signature)
        .execute(c2)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Every checkpoint, oldest first (one an hour at most: a few thousand a year).
pub async fn checkpoints(tx: &mut Tx) -> Result<Vec<Checkpoint>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Checkpoint>(
        "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq")
        .fetch_all(c)
        .await)?)
}

pub async fn last_checkpoint(tx: &mut Tx) -> Result<Option<Checkpoint>> {
    Ok(on!(tx, c => sqlx::query_as::<_, Checkpoint>(
        "SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
        .fetch_optional(c)
        .await)?)
}

/// The stored hash of event `seq`, if it exists.
pub async fn hash_at(tx: &mut Tx, seq: i64) -> Result<Option<String>> {
    Ok(
        on!(tx, c => sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1").bind(seq).fetch_optional(c).await)?,
    )
}

/// Streams the events with `first <= seq <= last` in `seq` order, in one snapshot, to `f`
/// until it returns `false`; millions of events need no memory.
pub async fn for_each_in(
    store: &Store,
    first: i64,
    last: i64,
    mut f: impl FnMut(&EventRow) -> bool + Send,
) -> Result<()> {
    let mut tx = store.read().await?;
    let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE seq >= $1 AND seq <= $2 ORDER BY seq");
    on!(tx, c => {
        let mut rows = sqlx::query_as::<_, EventRow>(&sql).bind(first).bind(last).fetch(c);
        while let Some(row) = rows.try_next().await? {
            if !f(&row) {
                break;
            }
        }
    });
    Ok(())
}

/// Events one verify query returns, as one text (about 0.5 MB for 1,000 typical events).
const CHUNK: i64 = 1_000;

/// One text per chunk of events, in `seq` order: per event `seq` as decimal, a space, then each
/// field in hashing order (`at` … `prev_hash`, then `hash`) as its byte length in decimal, a
/// space and its bytes. The same SQL for both backends (SQLite ≥ 3.44 has `concat` and
/// `string_agg`). The database builds the text, so the client handles one row per chunk instead
/// of 13 values per event, and the fields are borrowed from it, not copied into `String`s.
fn chunk_sql() -> String {
    let fields = [
        "at",
        "actor_id",
        "actor_login",
        "role",
        "action",
        "target_type",
        "target_id",
        "patient_id",
        "details",
        "source",
        "prev_hash",
        "hash",
    ];
    // `concat` builds each event's text in one go (`||` would copy it once per operand).
    let mut expr = String::from("concat(seq, ' '");
    for f in fields {
        let _ = write!(expr, ", octet_length({f}), ' ', {f}");
    }
    expr.push(')');
    // Rows come from the subquery in `seq` order (the primary key's order) and both databases
    // aggregate them in that order; neither promises it, so any surprise is caught: the verifier
    // checks every seq, and a part that does not check out is verified again row by row.
    format!(
        "SELECT string_agg(e, '') FROM (SELECT {expr} AS e FROM audit_events \
         WHERE seq >= $1 AND seq <= $2 ORDER BY seq) AS chunk"
    )
}

/// Reads one length-prefixed field (`<len> <bytes>`) off the front of `rest`.
fn take_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (len, tail) = rest.split_once(' ')?;
    let len: usize = len.parse().ok()?;
    let field = tail.get(..len)?;
    *rest = &tail[len..];
    Some(field)
}

/// Checks one chunk's events. `Err(None)`: the text is not what [`chunk_sql`] writes.
fn verify_chunk(v: &mut Verifier, text: &str, seq_text: &mut String) -> Result<(), Option<Break>> {
    let mut rest = text;
    while !rest.is_empty() {
        let (seq, tail) = rest.split_once(' ').ok_or(None)?;
        let seq: i64 = seq.parse().map_err(|_| None)?;
        rest = tail;
        let mut fields: [&str; 12] = [""; 12];
        for f in &mut fields[1..] {
            *f = take_field(&mut rest).ok_or(None)?;
        }
        let hash = take_field(&mut rest).ok_or(None)?;
        // The seq is hashed as Rust writes it, whatever text the database gave.
        seq_text.clear();
        let _ = write!(seq_text, "{seq}");
        fields[0] = seq_text;
        v.push_fields(seq, &fields, hash).map_err(Some)?;
    }
    Ok(())
}

/// Checks the events `first..=last`, which must follow an event hashed `prev_hash`; returns the
/// hash of `last`, or the first bad event. [`CHUNK`] events a query; a part that does not check
/// out that way (tampering, or rows aggregated out of order) is checked again event by event, so
/// what is reported is exactly what the event-by-event walk finds.
async fn verify_range(store: Store, first: i64, last: i64, prev_hash: Option<String>) -> Result<Result<String, Break>> {
    match verify_range_chunked(&store, first, last, prev_hash.clone()).await? {
        Some(Ok(hash)) => Ok(Ok(hash)),
        Some(Err(_)) | None => verify_range_rows(store, first, last, prev_hash).await,
    }
}

/// The hash `first` must link to: `prev_hash`, the genesis, or the stored event before `first`.
async fn link_into(tx: &mut Tx, first: i64, prev_hash: Option<String>) -> Result<Result<String, Break>> {
    Ok(match prev_hash {
        Some(h) => Ok(h),
        None if first == 1 => Ok(GENESIS.to_owned()),
        None => {
            let sql = "SELECT hash FROM audit_events WHERE seq = $1";
            let h: Option<String> = on!(tx, c => sqlx::query_scalar(sql).bind(first - 1).fetch_optional(c).await)?;
            h.ok_or(Break::Missing { seq: first - 1 })
        }
    })
}

/// The fast walk alone over `first..=last` from the genesis or the stored event before `first`
/// (tests check it agrees with the event-by-event walk, which [`verify`] would fall back to).
#[doc(hidden)]
pub async fn verify_range_fast(store: &Store, first: i64, last: i64) -> Result<Option<Result<String, Break>>> {
    verify_range_chunked(store, first, last, None).await
}

/// The fast walk: one snapshot, [`CHUNK`] events a query as one text. `None`: a chunk's text
/// was not what [`chunk_sql`] writes.
async fn verify_range_chunked(
    store: &Store,
    first: i64,
    last: i64,
    prev_hash: Option<String>,
) -> Result<Option<Result<String, Break>>> {
    let mut tx = store.read().await?;
    let prev = match link_into(&mut tx, first, prev_hash).await? {
        Ok(h) => h,
        Err(b) => return Ok(Some(Err(b))),
    };
    let sql = chunk_sql();
    let mut v = Verifier::starting_at(first, &prev);
    let mut seq_text = String::new();
    let mut from = first;
    while from <= last {
        let to = from.saturating_add(CHUNK - 1).min(last);
        let text: Option<String> = on!(tx, c => sqlx::query_scalar(&sql).bind(from).bind(to).fetch_one(c).await)?;
        match verify_chunk(&mut v, text.as_deref().unwrap_or_default(), &mut seq_text) {
            Ok(()) => {}
            Err(Some(b)) => return Ok(Some(Err(b))),
            Err(None) => return Ok(None),
        }
        from = to + 1;
    }
    Ok(Some(v.end_at(last)))
}

/// The event-by-event walk (each row read as an [`EventRow`]): the reference the fast walk
/// falls back to.
async fn verify_range_rows(
    store: Store,
    first: i64,
    last: i64,
    prev_hash: Option<String>,
) -> Result<Result<String, Break>> {
    let mut tx = store.read().await?;
    let prev = match link_into(&mut tx, first, prev_hash).await? {
        Ok(h) => h,
        Err(b) => return Ok(Err(b)),
    };
    drop(tx);
    let mut v = Verifier::starting_at(first, &prev);
    let mut broken = None;
    for_each_in(&store, first, last, |row| match v.push(row) {
        Ok(()) => true,
        Err(b) => {
            broken = Some(b);
            false
        }
    })
    .await?;
    Ok(match broken {
        Some(b) => Err(b),
        None => v.end_at(last),
    })
}

/// Parts verified in parallel, each on its own connection (the chain is append-only, so parts
/// read at slightly different moments still see the same rows).
const PARTS: i64 = 4;

/// Walks the whole chain and checks its end against the recorded head.
/// `Ok(Ok(n))`: n events, intact. `Ok(Err(b))`: the first bad event.
pub async fn verify(store: &Store) -> Result<Result<i64, Break>> {
    let mut tx = store.read().await?;
    let head_seq = head(&mut tx).await?.0;
    drop(tx);
    verify_in_parts(store, (head_seq / PARTS).max(50_000)).await
}

/// [`verify`] with parts of `part` events (tests use small parts to exercise the boundaries).
pub async fn verify_in_parts(store: &Store, part: i64) -> Result<Result<i64, Break>> {
    // The head and the highest stored seq from one snapshot: rows past the head at that moment
    // were not written by `append` (which moves both at once).
    let mut tx = store.read().await?;
    let (head_seq, head_hash) = head(&mut tx).await?;
    let max_seq: Option<i64> =
        on!(tx, c => sqlx::query_scalar("SELECT MAX(seq) FROM audit_events").fetch_one(c).await)?;
    let below_one: i64 =
        on!(tx, c => sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE seq < 1").fetch_one(c).await)?;
    drop(tx);

    let part = part.max(1);
    let mut tasks = Vec::new();
    let mut first = 1;
    while first <= head_seq {
        let last = (first + part - 1).min(head_seq);
        tasks.push(tokio::spawn(verify_range(store.clone(), first, last, None)));
        first = last + 1;
    }
    let mut last_hash = GENESIS.to_owned();
    let mut first_break: Option<Break> = None;
    for t in tasks {
        match t.await.map_err(|e| Error::Other(e.into()))?? {
            Ok(h) => last_hash = h,
            Err(b) => {
                if first_break.as_ref().is_none_or(|f| b.seq() < f.seq()) {
                    first_break = Some(b);
                }
            }
        }
    }
    if let Some(b) = first_break {
        return Ok(Err(b));
    }
    if last_hash != head_hash {
        return Ok(Err(Break::HeadMismatch { head_seq }));
    }
    if let Some(b) = past_the_head(store, head_seq, head_hash, max_seq).await? {
        return Ok(Err(b));
    }
    if below_one > 0 {
        return Ok(Err(Break::BadLink { seq: 1 }));
    }
    Ok(Ok(head_seq))
}

/// Checks only the events after a trusted point `(seq, hash)` (the last signed checkpoint): the
/// event at `seq` still carries `hash`, every later event links on from it, and the chain ends
/// on the recorded head. The quick check between full verifications; `Ok(Ok(n))`: the `n`
/// events after `seq` are intact.
pub async fn verify_since(store: &Store, seq: i64, hash: &str) -> Result<Result<i64, Break>> {
    let mut tx = store.read().await?;
    let (head_seq, head_hash) = head(&mut tx).await?;
    let max_seq: Option<i64> =
        on!(tx, c => sqlx::query_scalar("SELECT MAX(seq) FROM audit_events").fetch_one(c).await)?;
    let at_seq = if seq == 0 { Some(GENESIS.to_owned()) } else { hash_at(&mut tx, seq).await? };
    drop(tx);
    if at_seq.as_deref() != Some(hash) || head_seq < seq {
        return Ok(Err(Break::CheckpointMismatch { seq }));
    }
    let last_hash = match verify_range(store.clone(), seq + 1, head_seq, Some(hash.to_owned())).await? {
        Ok(h) => h,
        Err(b) => return Ok(Err(b)),
    };
    if last_hash != head_hash {
        return Ok(Err(Break::HeadMismatch { head_seq }));
    }
    if let Some(b) = past_the_head(store, head_seq, head_hash, max_seq).await? {
        return Ok(Err(b));
    }
    Ok(Ok(head_seq - seq))
}

/// Events stored past the recorded head are a break: checked as a continuation of the chain,
/// so a forged event is named, and otherwise reported as the head not matching.
async fn past_the_head(store: &Store, head_seq: i64, head_hash: String, max_seq: Option<i64>) -> Result<Option<Break>> {
    let Some(max) = max_seq.filter(|&m| m > head_seq) else { return Ok(None) };
    Ok(Some(match verify_range(store.clone(), head_seq + 1, max, Some(head_hash)).await? {
        Err(b) => b,
        Ok(_) => Break::HeadMismatch { head_seq },
    }))
}

/// What the auditors' log viewer filters on; empty fields match everything.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Search {
    #[serde(default)]
    pub actor_id: String,
    #[serde(default)]
    pub patient_id: String,
    #[serde(default)]
    pub target_id: String,
    #[serde(default)]
    pub action: String,
    /// Inclusive lower bound, an [`audit_time`] text (UTC).
    #[serde(default)]
    pub from: String,
    /// Exclusive upper bound, an [`audit_time`] text (UTC).
    #[serde(default)]
    pub until: String,
    /// With `patient_id`: also the lists that showed the patient among others (a slower scan
    /// of their details).
    #[serde(default)]
    pub include_lists: bool,
    /// Only events that touch patient data (the access-log review).
    #[serde(default)]
    pub patient_data_only: bool,
    /// Keyset paging: events older than this `seq`.
    #[serde(default)]
    pub before: Option<i64>,
}

/// Reads that list several patients name them in `details.patient_ids`, not in `patient_id`.
pub const LIST_READS: [&str; 3] = ["patient.search", "dashboard.view", "report.outstanding"];

/// `'patient.search', 'dashboard.view', …` for an SQL `IN (…)`.
fn list_reads_sql() -> String {
    LIST_READS.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
}

/// One page of matching events, newest first. The WHERE clause holds only the filters in use,
/// so each filter can walk its `(column, seq)` index backwards and stop after `limit` rows.
pub async fn search(tx: &mut Tx, s: &Search, limit: i64) -> Result<Vec<EventRow>> {
    let mut conditions = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let mut push = |sql: &str, values: &[&str]| {
        let mut sql = sql.to_owned();
        for v in values {
            binds.push((*v).to_owned());
            sql = sql.replacen('?', &format!("${}", binds.len()), 1);
        }
        conditions.push(sql);
    };
    if !s.actor_id.is_empty() {
        push("actor_id = ?", &[&s.actor_id]);
    }
    if !s.patient_id.is_empty() {
        let like = format!("%\"{}\"%", s.patient_id.replace(['%', '_', '"'], ""));
        if s.include_lists {
            let lists = list_reads_sql();
            push(&format!("(patient_id = ? OR (action IN ({lists}) AND details LIKE ?))"), &[&s.patient_id, &like]);
        } else {
            push("patient_id = ?", &[&s.patient_id]);
        }
    }
    if !s.target_id.is_empty() {
        push("target_id = ?", &[&s.target_id]);
    }
    if !s.action.is_empty() {
        push("action = ?", &[&s.action]);
    }
    if !s.from.is_empty() {
        push("at >= ?", &[&s.from]);
    }
    if !s.until.is_empty() {
        push("at < ?", &[&s.until]);
    }
    if s.patient_data_only {
        push(&format!("(patient_id <> '' OR action IN ({}))", list_reads_sql()), &[]);
    }
    let before = s.before.unwrap_or(i64::MAX);
    let n = binds.len();
    conditions.push(format!("seq < ${}", n + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE {} ORDER BY seq DESC LIMIT ${}",
        conditions.join(" AND "),
        n + 2
    );
    Ok(on!(tx, c => {
        let mut q = sqlx::query_as::<_, EventRow>(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        q.bind(before).bind(limit).fetch_all(c).await
    })?)
}

/// The last event at or before `at` (an [`audit_time`] text): the chain head at that moment.
pub async fn head_at(tx: &mut Tx, at: &str) -> Result<Option<(i64, String)>> {
    Ok(
        on!(tx, c => sqlx::query_as("SELECT seq, hash FROM audit_events WHERE at < $1 ORDER BY at DESC, seq DESC LIMIT 1")
        .bind(at)
        .fetch_optional(c)
        .await)?,
    )
}

/// Events with `from <= at < until`, counted by action.
pub async fn count_by_action(tx: &mut Tx, from: &str, until: &str) -> Result<Vec<(String, i64)>> {
    Ok(on!(tx, c => sqlx::query_as(
        "SELECT action, COUNT(*) FROM audit_events WHERE at >= $1 AND at < $2 GROUP BY action ORDER BY action")
        .bind(from)
        .bind(until)
        .fetch_all(c)
        .await)?)
}

/// Staff who read patient data with `from <= at < until`: (login, reads), most first.
pub async fn patient_readers(tx: &mut Tx, from: &str, until: &str) -> Result<Vec<(String, i64)>> {
    let lists = list_reads_sql();
    let sql = format!(
        "SELECT actor_login, COUNT(*) AS n FROM audit_events WHERE at >= $1 AND at < $2 \
         AND (action IN ('patient.view', 'consent.view') OR action IN ({lists})) \
         GROUP BY actor_login ORDER BY n DESC, actor_login"
    );
    Ok(on!(tx, c => sqlx::query_as(&sql).bind(from).bind(until).fetch_all(c).await)?)
}
