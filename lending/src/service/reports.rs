//! Problem reports (異常・不都合の連絡) from the QR help page, and how staff hear of them: the
//! staff service picks new reports up, audits them and queues an alert mail that carries no
//! patient data, only a link into the staff app.

use serde_json::json;

use super::bounded;
use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::{Error, Result};
use crate::ids::new_id;
use crate::mail::ProblemReportEmail;
use crate::policy::{authorize, Action};
use crate::store::outbox::{self, Mail};
use crate::store::public::{self, NewReport};
use crate::store::{reports, Tx};

/// (value, Japanese, English) in the order the form shows them.
pub const CATEGORIES: [(&str, &str, &str); 6] = [
    ("not_working", "動かない・電源が入らない", "Not working / will not turn on"),
    ("alarm", "アラームが鳴った・測定値がおかしい", "Alarm, or an unusual reading"),
    ("damaged", "壊れた・ぬれた", "Damaged or got wet"),
    ("lost", "なくした・盗まれた", "Lost or stolen"),
    ("strange", "いつもと違う動きをする", "Behaving strangely"),
    ("other", "その他", "Something else"),
];

pub const MAX_BODY_CHARS: usize = 2000;

pub fn category_label(value: &str, en: bool) -> &'static str {
    CATEGORIES.iter().find(|c| c.0 == value).map_or("", |c| if en { c.2 } else { c.1 })
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ReportInput {
    pub category: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub callback_phone: String,
}

/// Stores a report against the device behind `token` (the public service's one write).
/// `NotFound` if the token leads nowhere.
pub async fn submit(tx: &mut Tx, token: &str, input: &ReportInput) -> Result<String> {
    // Every field is checked, so the page names everything to fix at once (in 敬語: patients
    // and families read these).
    let mut problems = Vec::new();
    if !CATEGORIES.iter().any(|c| c.0 == input.category) {
        problems.push(Error::invalid("category", "どのようなことか、お選びください。", "Please choose what happened."));
    }
    let body = input.body.trim().to_owned();
    if body.chars().count() > MAX_BODY_CHARS {
        problems.push(Error::invalid(
            "body",
            &format!(
                "くわしい内容は{MAX_BODY_CHARS}文字以内でお書きください（今は{}文字です）。",
                body.chars().count()
            ),
            &format!("Please keep the details to {MAX_BODY_CHARS} characters (now {}).", body.chars().count()),
        ));
    }
    // Full-width digits and hyphens (０９０－…) as a phone keyboard or an IME types them.
    let phone = &crate::ids::fold_code(&input.callback_phone);
    if phone.chars().count() > 20 || !phone.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c)) {
        problems.push(Error::invalid(
            "callback_phone",
            "電話番号は、数字（と - + ( )）で20文字以内でご入力ください。",
            "Phone number: digits (and - + ( )), at most 20 characters.",
        ));
    }
    if let Some(e) = problems.into_iter().reduce(Error::merge) {
        return Err(e);
    }
    let help = public::device_help(tx, token).await?.ok_or(Error::NotFound)?;
    let id = new_id();
    let now = tx.now();
    public::insert_report(
        tx,
        &NewReport {
            id: &id,
            device_id: &help.device_id,
            category: &input.category,
            body: &body,
            callback_phone: phone,
            created_at: now,
        },
    )
    .await?;
    Ok(id)
}

pub use crate::store::reports::ReportRow;

/// Reports, newest first; only open ones unless `all`.
pub async fn list(tx: &mut Tx, all: bool) -> Result<Vec<ReportRow>> {
    reports::list(tx, all).await
}

/// Reports not yet resolved (the digest mail and `/metrics`).
pub async fn open_count(tx: &mut Tx) -> Result<i64> {
    reports::open_count(tx).await
}

pub async fn resolve(tx: &mut Tx, actor: &Actor, id: &str, note: &str) -> Result<()> {
    authorize(actor, Action::Operate)?;
    let note = bounded("resolution", note, 2000, "対応内容")?;
    let report = reports::get(tx, id).await?.ok_or(Error::NotFound)?;
    if report.status == "resolved" {
        let at = crate::timefmt::datetime_ja(report.created_at);
        return Err(Error::conflict(
            format!("{}についての連絡（{at} 受付）はすでに対応済みです。", report.asset_tag),
            format!("The report on {} received {at} is already resolved.", report.asset_tag),
        ));
    }
    let n = reports::resolve(tx, id, &actor.user_id, &note).await?;
    if n != 1 {
        return Err(Error::conflict("この連絡は見つからないか、すでに対応済みです。", "No such open report."));
    }
    tx.audit(actor, NewEvent::new("problem_report.resolve", "problem_report", id));
    Ok(())
}

/// How often admins are mailed about new reports at most: the reports of a few minutes go out in
/// one mail per admin, so a burst of reports (or someone flooding the form) is one mail.
pub const ALERT_EVERY_MINUTES: i64 = 5;

/// Picks up reports no one was alerted to yet: audits each and queues one alert mail per admin
/// with an e-mail address listing them (counts, asset tags, categories; never the text), at most
/// once every [`ALERT_EVERY_MINUTES`]. Returns how many reports were picked up.
pub async fn alert_new(tx: &mut Tx, staff_base_url: &str) -> Result<usize> {
    let now = tx.now();
    let last = reports::last_alerted_at(tx).await?;
    if last.is_some_and(|at| at > now - chrono::Duration::minutes(ALERT_EVERY_MINUTES)) {
        return Ok(0);
    }
    let new = reports::not_alerted(tx, 100).await?;
    if new.is_empty() {
        return Ok(0);
    }
    let recipients = crate::store::users::admin_emails(tx).await?;
    let system = Actor {
        user_id: String::new(),
        login: "mobile-api".into(),
        role: crate::policy::Principal::Public,
        source: "qr".into(),
        credential: crate::Credential::None,
    };
    let mut claimed = Vec::new();
    for (id, asset_tag, category) in &new {
        // Claim the report first: with several staff replicas, only one alerts for it.
        let n = reports::claim_alert(tx, id, now).await?;
        if n != 1 {
            continue;
        }
        tx.audit(
            &system,
            NewEvent::new("problem_report.received", "problem_report", id)
                .details(&json!({ "asset_tag": asset_tag, "category": category, "alerts": recipients.len() })),
        );
        claimed.push((id.clone(), asset_tag.clone(), category_label(category, false).to_owned()));
    }
    let Some((first, _, _)) = claimed.first() else { return Ok(0) };
    let email = ProblemReportEmail {
        reports: claimed.iter().map(|(_, tag, category)| (tag.clone(), category.clone())).collect(),
        link: format!("{staff_base_url}/reports"),
    };
    let (subject, text, html) = email.render()?;
    for to in &recipients {
        let mail = Mail {
            id: new_id(),
            dedupe_key: format!("report:{first}:{to}"),
            recipient: to.clone(),
            subject: subject.clone(),
            body_text: text.clone(),
            body_html: html.clone(),
            attempts: 0,
        };
        outbox::enqueue(tx, &mail).await?;
    }
    Ok(claimed.len())
}

/// Reports for a staff member who may read them (the reports page and the API), newest first,
/// at most 500; only open ones unless `all`.
pub async fn list_for(tx: &mut Tx, actor: &Actor, all: bool) -> Result<Vec<ReportRow>> {
    authorize(actor, Action::Read)?;
    reports::list(tx, all).await
}

/// One report, open or resolved.
pub async fn get(tx: &mut Tx, actor: &Actor, id: &str) -> Result<ReportRow> {
    authorize(actor, Action::Read)?;
    reports::get(tx, id).await?.ok_or(Error::NotFound)
}
