//! Mail: templates (Japanese, text + HTML, never patient data: links into the staff app) and
//! delivery of the outbox. The default transport writes `.eml` files under `data/outbox/`, so
//! it works offline.

use std::path::PathBuf;

use askama::Template;
use chrono::Duration;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::{Error, Result};
use crate::store::outbox::{self, Mail};
use crate::store::Store;

#[derive(Template)]
#[template(path = "email/problem_report.txt")]
struct ProblemReportText<'a> {
    asset_tag: &'a str,
    category_ja: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/problem_report.html")]
struct ProblemReportHtml<'a> {
    asset_tag: &'a str,
    category_ja: &'a str,
    link: &'a str,
}

/// "A patient reported a problem with device X": asset tag, category and a link. The report's
/// own text may hold anything the patient typed, so it never goes into a mail.
pub struct ProblemReportEmail {
    pub asset_tag: String,
    pub category_ja: String,
    pub link: String,
}

impl ProblemReportEmail {
    /// (subject, text, html)
    pub fn render(&self) -> Result<(String, String, String)> {
        let (asset_tag, category_ja, link) = (self.asset_tag.as_str(), self.category_ja.as_str(), self.link.as_str());
        let text =
            ProblemReportText { asset_tag, category_ja, link }.render().map_err(|e| Error::Mail(e.to_string()))?;
        let html =
            ProblemReportHtml { asset_tag, category_ja, link }.render().map_err(|e| Error::Mail(e.to_string()))?;
        Ok((format!("【貸出機器】患者さまから連絡がありました（{category_ja}・{asset_tag}）"), text, html))
    }
}

/// Where mail goes.
#[derive(Clone, Debug)]
pub enum Mailer {
    /// `.eml` files in a folder (the default: `data/outbox/`).
    Files(PathBuf),
}

impl Mailer {
    pub fn from_config(cfg: &crate::Config) -> Self {
        Self::Files(cfg.data_dir.join("outbox"))
    }

    async fn send(&self, from: &Mailbox, mail: &Mail) -> Result<()> {
        let to: Mailbox = mail.recipient.parse().map_err(|e| Error::Mail(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.body_text.clone()))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.body_html.clone())),
            )
            .map_err(|e| Error::Mail(e.to_string()))?;
        match self {
            Self::Files(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| Error::Mail(e.to_string()))?;
                AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| Error::Mail(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Sends the mails that are due; a failure is retried later with back-off (1, 2, 4 … 60
/// minutes). Returns (sent, failed).
pub async fn deliver_due(store: &Store, mailer: &Mailer, from: &str) -> Result<(usize, usize)> {
    let from: Mailbox = from.parse().map_err(|e| Error::Mail(format!("LENDING_MAIL_FROM: {e}")))?;
    let now = store.clock().now();
    let mut tx = store.read().await?;
    let due = outbox::due(&mut tx, now, 50).await?;
    drop(tx);
    let (mut sent, mut failed) = (0, 0);
    for mail in due {
        let outcome = mailer.send(&from, &mail).await;
        let mut tx = store.begin().await?;
        match outcome {
            Ok(()) => {
                outbox::mark_sent(&mut tx, &mail.id, store.clock().now()).await?;
                sent += 1;
            }
            Err(e) => {
                let wait = Duration::minutes((1i64 << mail.attempts.clamp(0, 6)).min(60));
                tracing::warn!(mail = %mail.id, attempts = mail.attempts + 1, error = %e, "mail not sent; will retry");
                outbox::mark_failed(&mut tx, &mail.id, store.clock().now() + wait, &e.to_string()).await?;
                failed += 1;
            }
        }
        tx.commit().await?;
    }
    Ok((sent, failed))
}
