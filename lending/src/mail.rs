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
    reports: &'a [(String, String)],
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/problem_report.html")]
struct ProblemReportHtml<'a> {
    reports: &'a [(String, String)],
    link: &'a str,
}

/// "Patients reported problems with devices X, Y": asset tags, categories and a link; one mail
/// per admin for all reports of a few minutes. A report's own text may hold anything the patient
/// typed, so it never goes into a mail.
pub struct ProblemReportEmail {
    /// (asset tag, category in Japanese) per report.
    pub reports: Vec<(String, String)>,
    pub link: String,
}

impl ProblemReportEmail {
    /// (subject, text, html)
    pub fn render(&self) -> Result<(String, String, String)> {
        let (reports, link) = (self.reports.as_slice(), self.link.as_str());
        let text = ProblemReportText { reports, link }.render().map_err(|e| Error::Mail(e.to_string()))?;
        let html = ProblemReportHtml { reports, link }.render().map_err(|e| Error::Mail(e.to_string()))?;
        let subject = match reports {
            [(asset_tag, category_ja)] => {
                format!("【貸出機器】患者さまから連絡がありました（{category_ja}・{asset_tag}）")
            }
            _ => format!("【貸出機器】患者さまから{}件の連絡がありました", reports.len()),
        };
        Ok((subject, text, html))
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

    async fn send(&self, from: &Mailbox, mail: &Mail) -> std::result::Result<(), SendError> {
        let to: Mailbox = mail.recipient.parse().map_err(|e| SendError::permanent(format!("recipient: {e}")))?;
        // A stable Message-ID: if a worker dies after the server took a mail but before it was
        // marked sent, the retry carries the same id and mail clients show it once.
        let message_id = format!("<{}@{}>", mail.id, from.email.domain());
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .message_id(Some(message_id))
            .subject(&mail.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.body_text.clone()))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.body_html.clone())),
            )
            .map_err(|e| SendError::permanent(e.to_string()))?;
        match self {
            Self::Files(dir) => {
                // Mail bodies name devices and staff: the folder 0700, each file 0600.
                crate::files::private_dir(dir).map_err(|e| SendError::transient(e.to_string()))?;
                let id = AsyncFileTransport::<Tokio1Executor>::new(dir)
                    .send(message)
                    .await
                    .map_err(|e| SendError::transient(e.to_string()))?;
                crate::files::private_file(&dir.join(format!("{id}.eml")))
                    .map_err(|e| SendError::transient(e.to_string()))?;
            }
            Self::Smtp(transport) => {
                transport
                    .send(message)
                    .await
                    .map_err(|e| SendError { permanent: e.is_permanent(), reason: e.to_string() })?;
            }
        }
        Ok(())
    }
}

/// Why a mail was not sent, and whether trying again can help (an SMTP 5xx answer, an address
/// that cannot be parsed) or not.
#[derive(Debug)]
struct SendError {
    permanent: bool,
    reason: String,
}

impl SendError {
    fn permanent(reason: String) -> Self {
        Self { permanent: true, reason }
    }

    fn transient(reason: String) -> Self {
        Self { permanent: false, reason }
    }
}

/// A mail the server refuses for good is tried this many times (a mistyped address may be fixed
/// in the user's record meanwhile), then given up and shown to admins.
pub const MAX_ATTEMPTS_REFUSED: i32 = 3;
/// A mail that fails for other reasons (server down, network) is tried this many times, about
/// six hours with the back-off, then given up and shown to admins.
pub const MAX_ATTEMPTS: i32 = 10;
/// Mails leased per batch; a batch's lease covers each send's 30 s time-out plus a margin.
const BATCH: i64 = 10;
/// Batches one call sends at most, so the other background jobs get their turn.
const MAX_BATCHES: usize = 20;

fn lease() -> Duration {
    Duration::seconds(30 * BATCH + 60)
}

/// Sends the mails that are due, a leased batch at a time, until none is left (or
/// [`MAX_BATCHES`] were sent). Several workers on one database may call it at once: each mail is
/// leased by one of them. A failure is retried later with back-off (1, 2, 4 … 60 minutes) and
/// given up after [`MAX_ATTEMPTS`] (or [`MAX_ATTEMPTS_REFUSED`] when the server refuses it for
/// good); it never holds up the other mails. Returns (sent, failed attempts).
pub async fn deliver_due(store: &Store, mailer: &Mailer, from: &str) -> Result<(usize, usize)> {
    let from: Mailbox = from.parse().map_err(|e| Error::Mail(format!("LENDING_MAIL_FROM: {e}")))?;
    let worker = crate::ids::new_id();
    let (mut sent, mut failed) = (0, 0);
    for _ in 0..MAX_BATCHES {
        let mut tx = store.begin().await?;
        let until = tx.now() + lease();
        let batch = outbox::claim(&mut tx, &worker, until, BATCH).await?;
        tx.commit().await?;
        if batch.is_empty() {
            break;
        }
        for mail in batch {
            let outcome = mailer.send(&from, &mail).await;
            let mut tx = store.begin().await?;
            match outcome {
                Ok(()) => {
                    let now = tx.now();
                    outbox::mark_sent(&mut tx, &mail.id, now).await?;
                    sent += 1;
                }
                Err(e) => {
                    let attempts = mail.attempts + 1;
                    let limit = if e.permanent { MAX_ATTEMPTS_REFUSED } else { MAX_ATTEMPTS };
                    let retry = if attempts >= limit {
                        tracing::error!(mail = %mail.id, attempts, error = %e.reason, "mail given up");
                        outbox::Retry::GiveUp
                    } else {
                        let wait = Duration::minutes((1i64 << mail.attempts.clamp(0, 6)).min(60));
                        tracing::warn!(mail = %mail.id, attempts, error = %e.reason, "mail not sent; will retry");
                        outbox::Retry::At(tx.now() + wait)
                    };
                    outbox::mark_failed(&mut tx, &mail.id, retry, &e.reason).await?;
                    failed += 1;
                }
            }
            tx.commit().await?;
        }
    }
    Ok((sent, failed))
}
