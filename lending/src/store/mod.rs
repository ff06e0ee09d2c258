//! The storage layer: one code path over SQLite and PostgreSQL.
//!
//! Every query is one SQL string with `$1, $2…` placeholders, compiled for each pool by the
//! [`on!`] macro. "Now" is bound from the injected [`Clock`], never read by SQL. Every write
//! happens in a [`Tx`]; its audit events are chained and written in the same transaction at
//! commit, so an acknowledged change always has its audit event and a rolled-back one never does.

pub mod audit;
pub mod custody;
pub mod dashboard;
pub mod devices;
pub mod drafts;
pub mod idempotency;
pub mod json_list;
pub mod loans;
pub mod monthly;
pub mod offline;
pub mod outbox;
pub mod patients;
pub mod public;
pub mod registry;
pub mod reports;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod users;
pub mod wipes;
mod writer;

pub use writer::GroupCommits;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::clock::Clock;
use crate::error::{Error, Result};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    clock: Clock,
    memo: std::sync::Arc<Memo>,
}

/// What this process remembers between transactions to save round trips. Nothing here is
/// trusted blindly; each entry is checked against the database inside the transaction that uses
/// it, so a change made by another process (the CLI, a second server) is never missed:
///
/// - `audit_head`: the chain head this process last wrote or read, a guess. [`audit::append`]
///   moves the head with `UPDATE … WHERE seq = guess AND hash = guess`, under SQLite's write
///   lock or PostgreSQL's row lock; if another writer moved the head, no row matches and the
///   head is read from the database as before.
/// - `registry`: institution, models, vendors and current explanation documents, tagged with the
///   `public_version` they were read at. Triggers bump `public_version` in the same transaction
///   as every change to those tables, whoever makes it, so a transaction that reads the same
///   version sees the same rows. An entry is published only after the transaction that read it
///   commits (a rolled-back transaction may have bumped the version to a number a later commit
///   reuses for different rows).
#[derive(Debug, Default)]
pub(crate) struct Memo {
    pub(crate) audit_head: std::sync::Mutex<Option<(i64, String)>>,
    pub(crate) registry: std::sync::Mutex<Option<std::sync::Arc<registry::Snapshot>>>,
    /// SQLite's one writer, queued in this process: writers wait here in turn instead of in
    /// SQLite's busy handler, which sleeps up to 100 ms between tries (a p99 of 1.5 s under 64
    /// concurrent check-outs), and queued writers are committed together ([`writer`]). Other
    /// processes still meet the busy timeout.
    writers: std::sync::Arc<writer::Writers>,
}

/// An open transaction on either backend.
pub(crate) enum TxInner {
    Sqlite(SqliteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A SQLite read transaction, or a write transaction of this process's one writer.
pub(crate) enum SqliteTx {
    Read(Transaction<'static, Sqlite>),
    Write(writer::Write),
}

impl std::ops::Deref for SqliteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &Self::Target {
        match self {
            Self::Read(t) => t,
            Self::Write(w) => w.conn_ref(),
        }
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Read(t) => t,
            Self::Write(w) => w.conn(),
        }
    }
}

/// Runs one body against whichever connection a [`Tx`] holds: the same SQL text, compiled
/// once per backend. `$c` is bound to `&mut SqliteConnection` or `&mut PgConnection`.
macro_rules! on {
    ($tx:expr, $c:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::store::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::store::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on;

/// Connection pool sizes. SQLite has one writer anyway; readers share the rest.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize(pub u32);

impl Default for PoolSize {
    fn default() -> Self {
        Self(16)
    }
}

/// What [`Store::pool_use`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl Store {
    /// Opens the database at `url` (creating a SQLite file and its folder if needed) and
    /// refuses to return unless durable settings are in force.
    pub async fn connect(url: &str, clock: Clock, size: PoolSize) -> Result<Self> {
        let store = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Consent and loan records are evidence: every commit is synced (SPEC §7).
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(30));
            // The database holds patient data: its folder 0700, the file (and so the -wal/-shm
            // files SQLite creates with the file's mode) 0600, whatever the umask.
            let file = opts.get_filename().to_owned();
            let in_memory = file.as_os_str().is_empty() || file.as_os_str() == ":memory:";
            if !in_memory {
                let private = |r: std::io::Result<()>| r.map_err(|e| Error::Other(e.into()));
                private(file.parent().map_or(Ok(()), crate::files::private_dir))?;
                private(crate::files::create_private(&file))?;
                for suffix in ["-wal", "-shm"] {
                    let mut sidecar = file.clone().into_os_string();
                    sidecar.push(suffix);
                    private(crate::files::private_file(std::path::Path::new(&sidecar)))?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(size.0)
                .acquire_timeout(Duration::from_mins(1))
                .connect_with(opts)
                .await?;
            Self { db: Db::Sqlite(pool), clock, memo: std::sync::Arc::default() }
        } else {
            // Short queries only: the JIT compiler would spend longer than the query runs
            // (it did on the dashboard's counts, 180 ms of 320).
            let opts = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
            let pool = PgPoolOptions::new()
                .max_connections(size.0)
                .acquire_timeout(Duration::from_mins(1))
                .connect_with(opts)
                .await?;
            Self { db: Db::Postgres(pool), clock, memo: std::sync::Arc::default() }
        };
        store.check_durability().await?;
        Ok(store)
    }

    /// Wraps an existing SQLite pool (tests use it to show weak settings are refused).
    pub fn from_sqlite_pool(pool: SqlitePool, clock: Clock) -> Self {
        Self { db: Db::Sqlite(pool), clock, memo: std::sync::Arc::default() }
    }

    /// The SQLite pool, for tooling that must speak SQLite itself (backup, tests).
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.db {
            Db::Sqlite(p) => Some(p),
            Db::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool, for tooling that must speak PostgreSQL itself (roles, tests).
    pub fn pg_pool(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Postgres(p) => Some(p),
            Db::Sqlite(_) => None,
        }
    }

    /// SQLite only: how many database commits the writer made for how many write transactions
    /// (fewer commits than transactions when queued writers were committed together).
    pub fn group_commits(&self) -> Option<GroupCommits> {
        matches!(self.db, Db::Sqlite(_)).then(|| self.memo.writers.group_commits())
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The same database seen through another clock (the demo back-dates its history).
    #[must_use]
    pub fn with_clock(&self, clock: Clock) -> Self {
        Self { db: self.db.clone(), clock, memo: self.memo.clone() }
    }

    /// Applies pending migrations of this backend's folder.
    pub async fn migrate(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(p) => SQLITE_MIGRATOR.run(p).await,
            Db::Postgres(p) => POSTGRES_MIGRATOR.run(p).await,
        }
        .map_err(|e| Error::Other(e.into()))
    }

    /// Whether every migration this build knows has been applied, and nothing newer (readiness).
    pub async fn schema_current(&self) -> Result<bool> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        let (migrator, applied): (&Migrator, Vec<i64>) = match &self.db {
            Db::Sqlite(p) => (&SQLITE_MIGRATOR, sqlx::query_scalar(sql).fetch_all(p).await?),
            Db::Postgres(p) => (&POSTGRES_MIGRATOR, sqlx::query_scalar(sql).fetch_all(p).await?),
        };
        let known: Vec<i64> =
            migrator.iter().filter(|m| !m.migration_type.is_down_migration()).map(|m| m.version).collect();
        Ok(applied == known)
    }

    /// Connections open, of them idle, and the pool's limit.
    pub fn pool_use(&self) -> PoolUse {
        let (open, idle, max) = match &self.db {
            Db::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            Db::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        PoolUse { open, idle: u32::try_from(idle).unwrap_or(u32::MAX), max }
    }

    /// Checks, on a pooled connection, that commits are durable: SQLite in WAL with
    /// `synchronous=FULL`, foreign keys on and a busy timeout; PostgreSQL with fsync,
    /// synchronous_commit and full_page_writes on. The server refuses to start otherwise.
    pub async fn check_durability(&self) -> Result<()> {
        let refuse = |what: String| {
            Err(Error::Other(anyhow::anyhow!(
                "データベースの設定が安全ではありません / unsafe database setting: {what}"
            )))
        };
        match &self.db {
            Db::Sqlite(p) => {
                let mut c = p.acquire().await?;
                let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *c).await?;
                let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *c).await?;
                let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut *c).await?;
                let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut *c).await?;
                if !journal.eq_ignore_ascii_case("wal") {
                    return refuse(format!("journal_mode={journal} (need wal)"));
                }
                if sync < 2 {
                    return refuse(format!("synchronous={sync} (need 2 = FULL)"));
                }
                if fk != 1 {
                    return refuse("foreign_keys=off".into());
                }
                if busy <= 0 {
                    return refuse("busy_timeout=0".into());
                }
            }
            Db::Postgres(p) => {
                for setting in ["fsync", "synchronous_commit", "full_page_writes"] {
                    let v: String = sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(p).await?;
                    if v != "on" {
                        return refuse(format!("{setting}={v} (need on)"));
                    }
                }
            }
        }
        Ok(())
    }

    /// A write transaction. On SQLite it takes the write lock up front (`BEGIN IMMEDIATE`),
    /// so a read-then-write transaction cannot fail to upgrade under concurrency.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.db {
            Db::Sqlite(p) => TxInner::Sqlite(SqliteTx::Write(self.memo.writers.begin(p).await?)),
            Db::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(self.tx(inner))
    }

    /// A read-only transaction: one consistent snapshot for a page or a report.
    pub async fn read(&self) -> Result<Tx> {
        let inner = match &self.db {
            Db::Sqlite(p) => TxInner::Sqlite(SqliteTx::Read(p.begin().await?)),
            Db::Postgres(p) => TxInner::Postgres(p.begin().await?),
        };
        Ok(self.tx(inner))
    }

    fn tx(&self, inner: TxInner) -> Tx {
        Tx { inner, events: Vec::new(), clock: self.clock.clone(), memo: self.memo.clone(), read_registry: None }
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// A transaction plus the audit events its changes produced.
pub struct Tx {
    pub(crate) inner: TxInner,
    events: Vec<(Actor, NewEvent)>,
    clock: Clock,
    pub(crate) memo: std::sync::Arc<Memo>,
    /// Registry rows read in this transaction, published to `memo` once it commits.
    pub(crate) read_registry: Option<std::sync::Arc<registry::Snapshot>>,
}

impl Tx {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records an audit event, written to the chain when the transaction commits.
    pub fn audit(&mut self, actor: &Actor, event: NewEvent) {
        self.events.push((actor.clone(), event));
    }

    /// Appends the pending audit events to the chain, then commits everything at once.
    pub async fn commit(mut self) -> Result<()> {
        let events = std::mem::take(&mut self.events);
        let mut finished = None;
        if !events.is_empty() {
            // A later writer of a SQLite batch releases its work in the audit rows' round trip.
            let finish = match &mut self.inner {
                TxInner::Sqlite(SqliteTx::Write(w)) => w.finish(),
                _ => None,
            };
            if audit::append(&mut self, events, finish).await? {
                finished = finish;
            }
        }
        match self.inner {
            TxInner::Sqlite(SqliteTx::Read(t)) => t.commit().await?,
            TxInner::Sqlite(SqliteTx::Write(w)) => w.commit(finished).await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if let Some(read) = self.read_registry {
            *self.memo.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(read);
        }
        Ok(())
    }
}
