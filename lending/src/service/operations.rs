//! What operators watch (`/metrics` of the staff service): the mail outbox, unanswered problem
//! reports, the audit chain's head and the last backup. Counts only, never patient data.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::store::outbox::{self, Backlog};
use crate::store::{audit, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gauges {
    pub outbox: Backlog,
    pub reports_open: i64,
    pub audit_head_seq: i64,
    /// When `server backup` last wrote a backup of this database.
    pub last_backup: Option<DateTime<Utc>>,
}

pub async fn gauges(store: &Store) -> Result<Gauges> {
    let mut tx = store.read().await?;
    let outbox = outbox::backlog(&mut tx).await?;
    let reports_open = super::reports::open_count(&mut tx).await?;
    let (audit_head_seq, _) = audit::head(&mut tx).await?;
    let last_backup = audit::last_at(&mut tx, crate::backup::BACKUP_ACTION)
        .await?
        .and_then(|at| DateTime::parse_from_rfc3339(&at).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(Gauges { outbox, reports_open, audit_head_seq, last_backup })
}
