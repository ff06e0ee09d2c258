//! Mails the worker gave up on: admins and auditors see them with the reason; admins send one
//! again (after fixing the cause) or set it aside. Mails carry no patient data, so the list
//! shows recipient, subject and the server's answer.

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::store::outbox::{self, FailedMail};
use crate::store::Tx;

/// Failed mails shown at most; the count says how many there are in all.
const LIST_MAX: i64 = 200;

/// The failed mails and how many there are. Admins and auditors.
pub async fn failed(tx: &mut Tx, actor: &Actor) -> Result<(Vec<FailedMail>, i64)> {
    authorize(actor, Action::Oversee)?;
    Ok((outbox::failed(tx, LIST_MAX).await?, outbox::count_failed(tx).await?))
}

/// Queues a failed mail again with fresh attempts (audited).
pub async fn retry(tx: &mut Tx, actor: &Actor, id: &str) -> Result<()> {
    authorize(actor, Action::ManageStaff)?;
    if !outbox::requeue(tx, id).await? {
        return Err(not_failed());
    }
    tx.audit(actor, NewEvent::new("mail.retry", "mail", id));
    Ok(())
}

/// Sets a failed mail aside: kept in the database, no longer listed or counted (audited).
pub async fn dismiss(tx: &mut Tx, actor: &Actor, id: &str) -> Result<()> {
    authorize(actor, Action::ManageStaff)?;
    if !outbox::dismiss(tx, id).await? {
        return Err(not_failed());
    }
    tx.audit(actor, NewEvent::new("mail.dismiss", "mail", id));
    Ok(())
}

fn not_failed() -> Error {
    Error::conflict(
        "このメールは送信できなかったメールの一覧にありません（再送済みか、取り下げ済みです）。",
        "This mail is not among the failed mails (already sent again or set aside).",
    )
}
