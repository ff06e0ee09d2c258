//! `GET /metrics` (Prometheus text format) on its own listener (`LENDING_METRICS_LISTEN`),
//! which only operators reach: requests by route template and status, the mail outbox, open
//! problem reports, the audit head, the last backup's age and the database pool.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use lending::metrics::Text;

use crate::AppState;

pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(state)
}

async fn scrape(State(state): State<AppState>) -> Response {
    let mut out = Text::default();
    state.metrics.render("lending_server", &mut out);
    let pool = state.store.pool_use();
    out.header("lending_db_pool_connections", "gauge", "Database connections of the staff service's pool, by state.");
    out.sample("lending_db_pool_connections", &[("state", "in_use")], f64::from(pool.open - pool.idle.min(pool.open)));
    out.sample("lending_db_pool_connections", &[("state", "idle")], f64::from(pool.idle));
    out.gauge("lending_db_pool_max_connections", "The pool's limit.", i64::from(pool.max));
    if let Some(g) = state.store.group_commits() {
        let name = "lending_sqlite_commits_total";
        out.header(name, "counter", "Durable commits of SQLite write transactions (several share one when queued).");
        out.count(name, &[], g.commits);
        let name = "lending_sqlite_write_transactions_total";
        out.header(name, "counter", "SQLite write transactions committed.");
        out.count(name, &[], g.transactions);
    }
    let gauges = lending::service::operations::gauges(&state.store).await;
    out.gauge("lending_database_up", "1 if the database answered this scrape.", i64::from(gauges.is_ok()));
    match gauges {
        Ok(g) => {
            let now = state.store.clock().now();
            out.gauge("lending_mail_outbox_queued", "Mails not yet sent.", g.outbox.queued);
            out.gauge(
                "lending_mail_outbox_failed",
                "Mails not yet sent whose delivery failed at least once.",
                g.outbox.failed,
            );
            out.gauge(
                "lending_mail_outbox_oldest_age_seconds",
                "Age of the oldest mail not yet sent (0 when none).",
                g.outbox.oldest.map_or(0, |t| (now - t).num_seconds().max(0)),
            );
            out.gauge(
                "lending_mail_given_up",
                "Mails given up on after their last try, listed at /admin/mail until sent again or set aside.",
                g.outbox.given_up,
            );
            out.gauge("lending_problem_reports_unanswered", "Problem reports not yet resolved.", g.reports_open);
            out.gauge("lending_audit_head_seq", "Sequence number of the newest audit event.", g.audit_head_seq);
            if let Some(at) = g.last_backup {
                out.gauge(
                    "lending_backup_age_seconds",
                    "Time since `server backup` last wrote a backup (absent: never).",
                    (now - at).num_seconds().max(0),
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the database did not answer"),
    }
    lending::metrics::response(out)
}
