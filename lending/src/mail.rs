//! Mail: templates (Japanese, text + HTML, never patient data: links into the staff app) and
//! delivery of the outbox. The default transport writes `.eml` files under `data/outbox/`, so
//! it works offline.

use std::path::PathBuf;

use askama::Template;
use chrono::Duration;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

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
#[derive(Clone)]
pub enum Mailer {
    /// `.eml` files in a folder (the default: `data/outbox/`).
    Files(PathBuf),
    /// An SMTP server: `smtps://` (TLS), `smtp://…?tls=required` (STARTTLS), or plain `smtp://`
    /// to a relay on the same machine.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files(dir) => write!(f, "Mailer::Files({})", dir.display()),
            Self::Smtp(_) => f.write_str("Mailer::Smtp(***)"),
        }
    }
}

impl Mailer {
    /// SMTP when `LENDING_SMTP_URL` is set, `.eml` files otherwise. A plain `smtp://` URL to
    /// another host gets STARTTLS required: credentials never cross a network in clear.
    pub fn from_config(cfg: &crate::Config) -> Result<Self> {
        let Some(url) = &cfg.smtp_url else { return Ok(Self::Files(cfg.data_dir.join("outbox"))) };
        Self::smtp(url.expose())
    }

    pub fn smtp(url: &str) -> Result<Self> {
        let local = ["smtp://127.", "smtp://localhost", "smtp://[::1]"].iter().any(|p| url.starts_with(p))
            || url.contains("@127.")
            || url.contains("@localhost");
        let url = if url.starts_with("smtp://") && !url.contains("tls=") && !local {
            format!("{url}{}tls=required", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_owned()
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
            .map_err(|e| Error::Mail(format!("LENDING_SMTP_URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self::Smtp(transport))
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
                // Mail bodies name devices and staff: the folder 0700, each file 0600.
                crate::files::private_dir(dir).map_err(|e| Error::Mail(e.to_string()))?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| Error::Mail(e.to_string()))?;
                crate::files::private_file(&dir.join(format!("{id}.eml"))).map_err(|e| Error::Mail(e.to_string()))?;
            }
            Self::Smtp(transport) => {
                transport.send(message).await.map_err(|e| Error::Mail(e.to_string()))?;
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
