//! Reminders for loans that are due soon or overdue, escalating on a set cadence: the lending
//! nurse first, then the nurses of her site, then the admins. Each step is mailed once (the
//! outbox's dedupe key), and a returned loan gets nothing more. Mails carry no patient data:
//! asset tags, the due date and a link into the staff app.

use std::fmt::Write as _;

use chrono::{NaiveDate, Timelike as _};
use serde_json::json;

use crate::actor::Actor;
use crate::audit::NewEvent;
use crate::error::Result;
use crate::ids::new_id;
use crate::store::dashboard::{self, Thresholds, View};
use crate::store::outbox::{self, Mail};
use crate::store::Tx;
use crate::timefmt::date_ja;

/// When reminders go out, in days (`LENDING_REMINDER_CADENCE`, default `2,1,3,7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Days before the due date: the lending nurse is reminded.
    pub due_soon: i64,
    /// Days overdue: the lending nurse.
    pub overdue_nurse: i64,
    /// Days overdue: every nurse of the nurse's site.
    pub overdue_site: i64,
    /// Days overdue: the admins.
    pub overdue_admins: i64,
}

impl Default for Cadence {
    fn default() -> Self {
        Self { due_soon: 2, overdue_nurse: 1, overdue_site: 3, overdue_admins: 7 }
    }
}

impl Cadence {
    /// "2,1,3,7": days before due, then days overdue for the nurse, the site and the admins.
    pub fn parse(s: &str) -> Option<Self> {
        let n: Vec<i64> = s.split(',').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
        let [due_soon, overdue_nurse, overdue_site, overdue_admins] = n.as_slice() else { return None };
        let ok = (0..=60).contains(due_soon)
            && 1 <= *overdue_nurse
            && overdue_nurse <= overdue_site
            && overdue_site <= overdue_admins
            && *overdue_admins <= 365;
        ok.then_some(Self {
            due_soon: *due_soon,
            overdue_nurse: *overdue_nurse,
            overdue_site: *overdue_site,
            overdue_admins: *overdue_admins,
        })
    }
}

/// Queues the reminders due today (Asia/Tokyo). Returns how many mails were queued.
pub async fn queue_due(tx: &mut Tx, cadence: Cadence, staff_base_url: &str) -> Result<usize> {
    let today = tx.clock().today_tokyo();
    let horizon = today + chrono::Duration::days(cadence.due_soon);
    let loans = crate::store::loans::open_due_by(tx, horizon).await?;
    let mut queued = 0;
    for loan in loans {
        let overdue = (today - loan.due_on).num_days();
        let mut steps: Vec<(&str, Vec<String>)> = Vec::new();
        if overdue <= 0 {
            steps.push(("due_soon", vec![loan.nurse_email.clone()]));
        }
        if overdue >= cadence.overdue_nurse {
            steps.push(("overdue_nurse", vec![loan.nurse_email.clone()]));
        }
        if overdue >= cadence.overdue_site {
            let site = crate::store::users::nurse_emails_at_site(tx, &loan.site).await?;
            steps.push(("overdue_site", site));
        }
        if overdue >= cadence.overdue_admins {
            let admins = crate::store::users::admin_emails(tx).await?;
            steps.push(("overdue_admins", admins));
        }
        let tags = crate::store::loans::open_asset_tags(tx, &loan.id).await?;
        for (step, recipients) in steps {
            let (subject, body) = text(step, &tags, loan.due_on, overdue, &format!("{staff_base_url}/devices"));
            for to in recipients.into_iter().filter(|r| !r.is_empty()) {
                // After an extension the steps are keyed by the new date, so they are mailed again.
                let key = if loan.extensions == 0 {
                    format!("reminder:{}:{step}:{to}", loan.id)
                } else {
                    format!("reminder:{}:{step}.{}:{to}", loan.id, loan.due_on)
                };
                let mail = staff_mail(key, &to, &subject, &body);
                if outbox::enqueue(tx, &mail).await? {
                    queued += 1;
                    tx.audit(
                        &system(),
                        NewEvent::new("reminder.queue", "loan", &loan.id).details(&json!({ "step": step, "to": to })),
                    );
                }
            }
        }
    }
    Ok(queued)
}

/// The admins' daily digest (from 08:00 Asia/Tokyo, once a day): counts of what needs
/// attention — overdue, custody checks due, waiting too long for a wipe, re-consent, unanswered
/// problem reports, mails given up on — instead of a mail per device. Counts and a link only; nothing when all is
/// well. Returns how many mails were queued.
pub async fn queue_digest(tx: &mut Tx, thresholds: Thresholds, staff_base_url: &str) -> Result<usize> {
    let local = tx.now().with_timezone(&chrono_tz::Asia::Tokyo);
    if local.hour() < 8 {
        return Ok(0);
    }
    let today = local.date_naive();
    // Checked first so the every-few-seconds worker does not recount the dashboard all day.
    let sent_today = outbox::count_keys_between(tx, &format!("digest:{today}:"), &format!("digest:{today};")).await?;
    if sent_today > 0 {
        return Ok(0);
    }
    let summary = dashboard::summary(tx, thresholds).await?;
    let of = |v: View| summary.by_view.iter().find(|(w, _)| *w == v).map_or(0, |(_, n)| *n);
    let open_reports = super::reports::open_count(tx).await?;
    let lines = [
        ("返却遅れの機器", of(View::Overdue)),
        (&*format!("所在確認が{}日以上ない機器", thresholds.custody_days), of(View::Unconfirmed)),
        (&*format!("返却後{}日以上データ消去されていない機器", thresholds.wipe_days), summary.wipe_waiting_long),
        ("古い説明文書で同意した貸出中の機器", of(View::OutdatedConsent)),
        ("紛失・盗難のままの機器", of(View::Lost)),
        ("未対応の患者さまからの連絡", open_reports),
        ("送信できなかったメール（スタッフ画面の「送信できなかったメール」）", outbox::count_failed(tx).await?),
        ("未解決のオフライン記録の競合", crate::store::offline::count_open_conflicts(tx).await?),
    ];
    if lines.iter().all(|(_, n)| *n == 0) {
        return Ok(0);
    }
    let subject = format!("【貸出機器・管理者】本日の要対応（{}）", date_ja(today));
    let counts = lines.iter().filter(|(_, n)| *n > 0).fold(String::new(), |mut out, (label, n)| {
        let _ = writeln!(out, "  {label}: {n}件");
        out
    });
    let body = format!(
        "管理者各位\n\n本日時点で対応が必要な件数です。\n\n{counts}\n一覧はスタッフ画面の「状況」で確認してください（このメールには患者さまの情報を載せていません）。\n{staff_base_url}/dashboard\n\n-- \n医療機器 貸出管理（自動送信）\n"
    );
    let admins = crate::store::users::admin_emails(tx).await?;
    let mut queued = 0;
    for to in admins {
        let mail = staff_mail(format!("digest:{today}:{to}"), &to, &subject, &body);
        if outbox::enqueue(tx, &mail).await? {
            queued += 1;
            tx.audit(&system(), NewEvent::new("reminder.digest", "mail", &mail.id).details(&json!({ "to": to })));
        }
    }
    Ok(queued)
}

/// A plain-text mail to one staff member, queued once per `dedupe_key`.
pub(crate) fn staff_mail(dedupe_key: String, to: &str, subject: &str, body: &str) -> Mail {
    Mail {
        id: new_id(),
        dedupe_key,
        recipient: to.to_owned(),
        subject: subject.to_owned(),
        body_text: body.to_owned(),
        body_html: String::new(),
        attempts: 0,
    }
}

/// The actor of mails the worker queues by itself.
fn system() -> Actor {
    Actor {
        user_id: String::new(),
        login: "reminders".into(),
        role: crate::policy::Principal::Cli,
        source: "worker".into(),
        credential: crate::Credential::None,
    }
}

fn text(step: &str, tags: &[String], due_on: NaiveDate, overdue: i64, link: &str) -> (String, String) {
    let devices = tags.join("、");
    let due = date_ja(due_on);
    let (subject, lead) = match step {
        "due_soon" => (
            format!("【貸出機器】返却予定日が近づいています（{devices}）"),
            format!("返却予定日は{due}です。回収の予定をご確認ください。"),
        ),
        "overdue_nurse" => (
            format!("【貸出機器】返却予定日を{overdue}日過ぎています（{devices}）"),
            format!("返却予定日（{due}）を過ぎています。患者さまへのご連絡と回収をお願いします。"),
        ),
        "overdue_site" => (
            format!("【貸出機器・拠点】返却遅延 {overdue}日（{devices}）"),
            format!("返却予定日（{due}）から{overdue}日たっても返却されていません。拠点で状況をご確認ください。"),
        ),
        _ => (
            format!("【貸出機器・管理者】返却遅延 {overdue}日（{devices}）"),
            format!("返却予定日（{due}）から{overdue}日たっても返却されていません。所在確認と対応をお願いします。"),
        ),
    };
    let body = format!(
        "スタッフ各位\n\n{lead}\n\n  機器: {devices}\n  返却予定日: {due}\n\n詳しくはスタッフ画面で確認してください（このメールには患者さまの情報を載せていません）。\n{link}\n\n-- \n医療機器 貸出管理（自動送信）\n"
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::Cadence;

    #[test]
    fn cadence_parses_and_refuses_nonsense() {
        assert_eq!(Cadence::parse("2,1,3,7"), Some(Cadence::default()));
        assert!(Cadence::parse("2,5,3,7").is_none(), "escalation runs forward");
        assert!(Cadence::parse("x").is_none());
        assert!(Cadence::parse("1,1,1").is_none());
    }
}
