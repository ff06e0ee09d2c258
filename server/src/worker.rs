//! Background work of the staff service: alert staff to new problem reports, queue loan
//! reminders, sign an audit checkpoint each hour, forget old idempotency keys and deliver the
//! mail outbox. Runs every few seconds; each step is its own transaction, so a crash loses
//! nothing (reports stay unalerted, mails stay queued).

use std::time::Duration;

use lending::mail::{deliver_due, Mailer};

use crate::AppState;

pub const INTERVAL: Duration = Duration::from_secs(2);

/// One round: pick up new reports, then send what is due.
pub async fn tick(state: &AppState, mailer: &Mailer) -> lending::Result<()> {
    let mut tx = state.store.begin().await?;
    let picked = lending::service::reports::alert_new(&mut tx, &state.cfg.staff_base_url).await?;
    let reminders =
        lending::service::reminders::queue_due(&mut tx, state.cfg.reminder_cadence, &state.cfg.staff_base_url).await?;
    let digests =
        lending::service::reminders::queue_digest(&mut tx, state.cfg.thresholds, &state.cfg.staff_base_url).await?;
    lending::service::idempotency::prune(&mut tx).await?;
    lending::service::drafts::prune(&mut tx).await?;
    if let Some(c) = lending::service::checkpoints::sign_head(&mut tx, &state.receipts).await? {
        tracing::info!(seq = c.seq, "audit checkpoint signed and mailed");
        // Hourly housekeeping rides on the checkpoint's rhythm.
        lending::service::auth::forget_stale_failures(&mut tx).await?;
    }
    tx.commit().await?;
    let reminders = reminders + digests;
    if reminders > 0 {
        tracing::info!(reminders, "reminders queued");
    }
    if picked > 0 {
        tracing::info!(reports = picked, "problem reports picked up");
    }
    let (sent, failed) = deliver_due(&state.store, mailer, &state.cfg.mail_from).await?;
    if sent + failed > 0 {
        tracing::info!(sent, failed, "outbox delivered");
    }
    Ok(())
}

/// Runs until the process ends.
pub async fn run(state: AppState, mailer: Mailer) {
    loop {
        if let Err(e) = tick(&state, &mailer).await {
            tracing::error!(error = %e, "background work failed; will retry");
        }
        tokio::time::sleep(INTERVAL).await;
    }
}
