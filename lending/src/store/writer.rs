//! SQLite's one writer, with group commit.
//!
//! SQLite lets one transaction write at a time, and with `synchronous=FULL` each commit waits
//! for the disk. When several writers are queued in this process (many nurses lending at
//! once), the writer commits them together: each logical transaction runs in a savepoint of
//! one open database transaction, and when it commits while another writer is waiting, it
//! releases its savepoint and leaves the database transaction open for the next one; the last
//! writer of the batch (none queued after it, or the batch full) commits it once for all.
//! Every caller's `commit` returns only after that durable commit, with its outcome, so an
//! acknowledged write is on disk exactly as before. A writer that fails or is dropped rolls
//! back to its savepoint: the others' work in the batch is untouched.
//!
//! A batched writer's audit rows, its `RELEASE` and the next writer's `SAVEPOINT` go to SQLite
//! as one query ([`Write::run_finishing`]): one round trip fewer of a batched writer's four.
//!
//! A writer alone (the usual case) makes no savepoint: `BEGIN IMMEDIATE`, its statements,
//! `COMMIT`, as without batching. Deferred foreign keys (a loan and its consent) are checked at
//! the shared `COMMIT`: a writer that broke one would fail its whole batch (every caller told
//! so), never commit it; the domain writes both rows in the same writer.
//!
//! Cancellation (a request whose client went away) can stop a writer at any `await`. The open
//! database transaction therefore always stays in [`Batch`], which records whose work is in
//! progress ([`Running`]); whoever takes the turn next, or a clean-up task, undoes an abandoned
//! writer's work, and a batch is never left open with nobody to commit it. When its outcome
//! cannot be known, the callers waiting on it are told it failed, never that it succeeded.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteArguments, SqliteQueryResult};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

use crate::error::{Error, Result};

/// Logical transactions committed together at most (bounds the first one's wait).
const MAX_BATCH: usize = 32;

/// How long a writer waits for the others in this process, as SQLite's busy timeout would.
const WAIT: Duration = Duration::from_secs(30);

/// The queue of this process's SQLite writers.
#[derive(Debug, Default)]
pub(crate) struct Writers {
    state: Arc<Mutex<Batch>>,
    /// Writers waiting for [`Self::state`]: a committing writer leaves the batch open for them.
    queued: AtomicUsize,
    /// Database commits of write transactions, and the logical transactions they committed.
    commits: AtomicU64,
    committed: AtomicU64,
}

/// How many database commits SQLite's writer made, for how many write transactions
/// ([`crate::Store::group_commits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommits {
    pub commits: u64,
    pub transactions: u64,
    /// Writers waiting for their turn now.
    pub queued: usize,
}

type Answer = oneshot::Sender<std::result::Result<(), String>>;

/// The database transaction a batch runs in, kept here between and during its writers.
#[derive(Debug, Default)]
struct Batch {
    open: Option<Transaction<'static, Sqlite>>,
    /// The writer whose work is in progress in `open`, if it has not finished.
    running: Running,
    /// Callers whose committed work is in `open`, answered when it commits.
    waiting: Vec<Answer>,
    /// [`Running::Finishing`]: the chain head's hash once the writer's last query has run.
    finishing_head: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Running {
    #[default]
    Nobody,
    /// The first writer of `open`: nobody else's work is in it.
    Alone,
    /// A later writer whose `SAVEPOINT batched` was sent but not seen to succeed.
    Starting,
    /// A later writer, in the savepoint `batched`.
    Savepoint,
    /// A writer whose `RELEASE batched` (or, handing on, the next writer's `SAVEPOINT batched`)
    /// was sent but not seen to succeed.
    Releasing,
    /// A writer whose audit rows and its `RELEASE batched` (a later writer) or the next writer's
    /// `SAVEPOINT batched` (handing on) were sent as one query, not seen to succeed.
    Finishing,
    /// Handed on: the savepoint `batched` is open, empty, for the next writer.
    Ready,
}

/// One logical write transaction: the writer's turn (see the module's comment).
#[derive(Debug)]
pub(crate) struct Write {
    /// `None` once handed on (committed or passed to the next writer).
    batch: Option<OwnedMutexGuard<Batch>>,
    writers: Arc<Writers>,
}

/// How a writer's commit ends its part of a batch, decided when it commits: [`Write::finish`],
/// then [`Write::run_finishing`] with the writer's last statements (its audit rows).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finish {
    pub(crate) sql: &'static str,
    hand_on: bool,
}

/// A writer waiting for its turn; counted in [`Writers::queued`] until it has it or gives up.
struct Queued<'a> {
    writers: &'a Arc<Writers>,
    waiting: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.writers.queued.fetch_sub(1, Ordering::SeqCst);
        if self.waiting {
            // Cancelled while queued: a writer may have left the batch open for this one.
            finish_later(self.writers);
        }
    }
}

impl Writers {
    pub(crate) fn group_commits(&self) -> GroupCommits {
        GroupCommits {
            commits: self.commits.load(Ordering::Relaxed),
            transactions: self.committed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::SeqCst),
        }
    }

    /// Waits for this process's turn to write, then joins the open batch or begins one.
    pub(crate) async fn begin(self: &Arc<Self>, pool: &SqlitePool) -> Result<Write> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut queued = Queued { writers: self, waiting: true };
        let turn = tokio::time::timeout(WAIT, self.state.clone().lock_owned()).await;
        // Given up after the wait: a writer may have left the batch open for this one.
        queued.waiting = turn.is_err();
        drop(queued);
        let batch =
            turn.map_err(|_| Error::Other(anyhow::anyhow!("database is locked (waited 30 s for the writer)")))?;
        // From here a cancelled or failed start is cleaned up by `Write`'s drop.
        let mut w = Write { batch: Some(batch), writers: self.clone() };
        let batch = w.batch_mut();
        if batch.running == Running::Ready {
            // The writer before opened this one's savepoint as it handed on.
            batch.running = Running::Savepoint;
            return Ok(w);
        }
        tidy(batch).await;
        match batch.open.as_mut() {
            None => {
                batch.open = Some(pool.begin_with("BEGIN IMMEDIATE").await?);
                batch.running = Running::Alone;
            }
            Some(tx) => {
                batch.running = Running::Starting;
                sqlx::query("SAVEPOINT batched").execute(&mut **tx).await?;
                batch.running = Running::Savepoint;
            }
        }
        Ok(w)
    }
}

/// Undoes the work of a writer that did not finish (cancelled, failed, dropped).
async fn tidy(batch: &mut Batch) {
    match batch.running {
        Running::Nobody => {}
        // Nobody else's work is in it: the whole transaction goes (sqlx rolls it back).
        Running::Alone => fail(batch, "abandoned"),
        Running::Finishing => {
            if let Err(why) = undo_finishing(batch).await {
                fail(batch, &why);
            }
        }
        running @ (Running::Starting | Running::Savepoint | Running::Releasing | Running::Ready) => {
            let undone = match batch.open.as_mut() {
                Some(tx) => match sqlx::query("ROLLBACK TO batched").execute(&mut **tx).await {
                    Ok(_) => sqlx::query("RELEASE batched").execute(&mut **tx).await.map(|_| ()),
                    // Cancelled while its `SAVEPOINT` (it wrote nothing) or its `RELEASE` (its
                    // work, audit events included, is whole) was being run. In the savepoint
                    // itself, the same answer means SQLite rolled the whole transaction back on
                    // its own (a full disk, an I/O error): the batch is lost.
                    Err(e) if matches!(running, Running::Starting | Running::Releasing) && no_such_savepoint(&e) => {
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                None => Ok(()),
            };
            if let Err(e) = undone {
                fail(batch, &e.to_string());
            }
        }
    }
    batch.running = Running::Nobody;
}

/// SQLite's answer to `ROLLBACK TO batched` when that savepoint is not open.
fn no_such_savepoint(e: &sqlx::Error) -> bool {
    e.to_string().contains("no such savepoint")
}

/// After a cancelled [`Write::run_finishing`]: if the writer's savepoint (or the next one's,
/// empty) is still there, rolling back to it undoes the writer's work or nothing; if it is not,
/// either the `RELEASE` ran (the work and its audit rows are whole: the chain head is the one
/// the query set) or SQLite rolled the whole transaction back on its own (the batch is lost).
async fn undo_finishing(batch: &mut Batch) -> std::result::Result<(), String> {
    let Some(tx) = batch.open.as_mut() else { return Ok(()) };
    match sqlx::query("ROLLBACK TO batched").execute(&mut **tx).await {
        Ok(_) => sqlx::query("RELEASE batched").execute(&mut **tx).await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) if no_such_savepoint(&e) => {
            let head: String = sqlx::query_scalar("SELECT hash FROM audit_head WHERE id = 1")
                .fetch_one(&mut **tx)
                .await
                .map_err(|e| e.to_string())?;
            if head == batch.finishing_head {
                Ok(())
            } else {
                Err("the transaction was rolled back".into())
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Gives up the whole batch (its transaction can no longer be trusted): rolls it back and tells
/// every waiting caller.
fn fail(batch: &mut Batch, why: &str) {
    batch.open = None; // sqlx rolls it back
    batch.running = Running::Nobody;
    for w in batch.waiting.drain(..) {
        let _ = w.send(Err(format!("group commit failed: {why}")));
    }
}

/// Callers to answer; any not answered (the commit was cancelled midway) are told it failed.
struct Answers(Vec<Answer>);

impl Drop for Answers {
    fn drop(&mut self) {
        for w in self.0.drain(..) {
            let _ = w.send(Err("group commit: the outcome is unknown".into()));
        }
    }
}

/// Commits the batch once and answers every caller in it; `own`: whether the writer settling
/// it has work of its own in it (not after a rollback).
async fn settle(writers: &Writers, batch: &mut Batch, own: bool) -> Result<()> {
    let Some(tx) = batch.open.take() else { return Ok(()) };
    let mut answers = Answers(std::mem::take(&mut batch.waiting));
    let outcome = tx.commit().await;
    if outcome.is_ok() {
        writers.commits.fetch_add(1, Ordering::Relaxed);
        writers.committed.fetch_add(answers.0.len() as u64 + u64::from(own), Ordering::Relaxed);
    }
    let answer = outcome.as_ref().copied().map_err(ToString::to_string);
    for w in answers.0.drain(..) {
        let _ = w.send(answer.clone());
    }
    Ok(outcome?)
}

/// Whether a finishing writer leaves the batch open: another writer is queued and there is room.
fn goes_on(writers: &Writers, batch: &Batch) -> bool {
    writers.queued.load(Ordering::SeqCst) > 0 && batch.waiting.len() < MAX_BATCH
}

/// What a finishing writer sends: its work joins the batch (a later writer releases its
/// savepoint) and, handing on, the next writer's savepoint is opened in the same round trip.
fn finish_sql(running: Running, hand_on: bool) -> Option<&'static str> {
    match (running == Running::Savepoint, hand_on) {
        (true, true) => Some("RELEASE batched; SAVEPOINT batched"),
        (true, false) => Some("RELEASE batched"),
        (false, true) => Some("SAVEPOINT batched"),
        (false, false) => None,
    }
}

/// Later, with the writer's turn: undoes an abandoned writer's work and commits the batch if
/// nobody is queued to go on with it.
fn finish_later(writers: &Arc<Writers>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        // No runtime (the process is ending): give the batch up now, telling everyone.
        if let Ok(mut batch) = writers.state.clone().try_lock_owned() {
            fail(&mut batch, "the process is ending");
        }
        return;
    };
    let writers = writers.clone();
    drop(rt.spawn(async move {
        let mut batch = writers.state.clone().lock_owned().await;
        tidy(&mut batch).await;
        if batch.open.is_some() && writers.queued.load(Ordering::SeqCst) == 0 {
            if let Err(e) = settle(&writers, &mut batch, false).await {
                tracing::error!(error = %e, "group commit failed");
            }
        }
    }));
}

impl Write {
    fn batch_mut(&mut self) -> &mut Batch {
        match self.batch.as_mut() {
            Some(b) => b,
            None => unreachable!("a finished write transaction is never used"),
        }
    }

    /// The connection, for statements.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        match self.batch_mut().open.as_mut() {
            Some(tx) => tx,
            None => unreachable!("a write transaction's database transaction is open while it runs"),
        }
    }

    pub(crate) fn conn_ref(&self) -> &SqliteConnection {
        match self.batch.as_ref().and_then(|b| b.open.as_ref()) {
            Some(tx) => tx,
            None => unreachable!("a write transaction's database transaction is open while it runs"),
        }
    }

    /// How this writer's commit will end its part of the batch, if it sends anything: a later
    /// writer releases its savepoint, and a writer handing on opens the next one's. `None` for a
    /// writer alone that commits the batch itself.
    pub(crate) fn finish(&mut self) -> Option<Finish> {
        let writers = self.writers.clone();
        let batch = self.batch_mut();
        let hand_on = goes_on(&writers, batch);
        finish_sql(batch.running, hand_on).map(|sql| Finish { sql, hand_on })
    }

    /// Runs `query`: the writer's last statements, then `finish.sql` (see [`Self::finish`]).
    /// `head`: the chain head's hash once they ran, how a cancelled or failed run is told apart
    /// from a transaction SQLite rolled back on its own. SQLite stops at a failing statement: an
    /// error for which `failed_first` holds (the first statement's) released nothing, and the
    /// writer goes on in its savepoint.
    pub(crate) async fn run_finishing<'q>(
        &mut self,
        query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
        head: &str,
        failed_first: impl Fn(&sqlx::Error) -> bool,
    ) -> std::result::Result<SqliteQueryResult, sqlx::Error> {
        let batch = self.batch_mut();
        let before = std::mem::replace(&mut batch.running, Running::Finishing);
        head.clone_into(&mut batch.finishing_head);
        let Some(tx) = batch.open.as_mut() else {
            unreachable!("a write transaction's database transaction is open while it runs")
        };
        let result = query.execute(&mut **tx).await;
        if result.as_ref().is_err_and(failed_first) {
            batch.running = before;
        }
        result
    }

    /// Commits this writer's work; returns once it is durable (alone, or with its batch).
    /// `finished`: the [`Finish`] already run by [`Self::run_finishing`], if it was.
    pub(crate) async fn commit(mut self, finished: Option<Finish>) -> Result<()> {
        let writers = self.writers.clone();
        let batch = self.batch_mut();
        let hand_on = if let Some(finish) = finished {
            finish.hand_on
        } else {
            let hand_on = goes_on(&writers, batch);
            if let (Some(sql), Some(tx)) = (finish_sql(batch.running, hand_on), batch.open.as_mut()) {
                batch.running = Running::Releasing;
                sqlx::query(sql).execute(&mut **tx).await?;
            }
            hand_on
        };
        batch.running = if hand_on { Running::Ready } else { Running::Nobody };
        if hand_on {
            // Another writer is waiting: it goes on in this transaction; the last one commits.
            let (answer, outcome) = oneshot::channel();
            batch.waiting.push(answer);
            drop(self.batch.take());
            return match outcome.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(why)) => Err(Error::Other(anyhow::anyhow!(why))),
                Err(_) => Err(Error::Other(anyhow::anyhow!("group commit: the outcome is unknown"))),
            };
        }
        if batch.waiting.is_empty() {
            let outcome = settle(&writers, batch, true).await;
            drop(self.batch.take());
            return outcome;
        }
        // Others wait on this commit: it runs to its end in a task of its own even if this
        // request is cancelled meanwhile, so each of them learns the real outcome.
        let Some(mut batch) = self.batch.take() else { unreachable!("checked above") };
        tokio::spawn(async move { settle(&writers, &mut batch, true).await })
            .await
            .map_err(|e| Error::Other(anyhow::anyhow!("group commit: {e}")))?
    }
}

impl Drop for Write {
    /// Not committed (an error, a refusal, or cancelled midway): this writer's work is undone.
    /// Alone, its transaction is dropped (sqlx rolls it back); in a batch, its savepoint is
    /// rolled back by the next writer or a clean-up task, which also commits the batch if
    /// nobody else is queued.
    fn drop(&mut self) {
        let Some(mut batch) = self.batch.take() else { return };
        match batch.running {
            // Nobody else's work is in it: the whole transaction goes (sqlx rolls it back).
            Running::Alone => fail(&mut batch, "abandoned"),
            Running::Starting | Running::Savepoint | Running::Releasing | Running::Finishing | Running::Ready => {
                drop(batch);
                finish_later(&self.writers);
            }
            Running::Nobody => {
                if batch.open.is_some() {
                    drop(batch);
                    finish_later(&self.writers);
                }
            }
        }
    }
}
