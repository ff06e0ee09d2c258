//! 点検用の記録: the evidence an admin shows at a 医療法 立入検査 against the MHLW
//! 「医療機関におけるサイバーセキュリティ対策チェックリスト」, read from what the product already
//! records: the staff accounts (role, second factor, last sign-in, leavers, unused ones, who is
//! an administrator), the password rule in force, the API tokens, the access-log review of a
//! period, the backups and the last verified restore test, and the audit chain's latest signed
//! checkpoint. Each line names the checklist item it is evidence for. It names people, so
//! reading it is audited, and only admins and auditors may ([`Action::Oversee`]).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use crate::actor::{Actor, Role};
use crate::audit::{EventRow, NewEvent};
use crate::backup::{BACKUP_ACTION, RESTORE_TESTED, RESTORE_TEST_FAILED};
use crate::error::{Error, Result};
use crate::policy::{authorize, Action};
use crate::service::auth::{HISTORY, LOCK_AFTER, LOCK_MINUTES};
use crate::service::monthly::Month;
use crate::service::oversight::spreadsheet_safe;
use crate::store::audit::{self, Checkpoint, Search};
use crate::store::{users, Tx};
use crate::timefmt::{audit_time, date_ja, datetime_ja, tokyo_midnight};

/// The checklist items this record gives evidence for (wording from the MHLW checklist and its
/// 令和7年度 additions, as in the project's research notes; item numbers are left out because the
/// numbering differs between editions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// 利用者の職種・担当業務別のアクセス権限の設定.
    AccessRights,
    /// 退職者や使用していないアカウント等、不要なアカウントの削除.
    UnneededAccounts,
    /// 管理者権限を持つ者の明示 (令和7年度).
    AdminRights,
    /// パスワードの桁数・使い回しの禁止 (令和7年度).
    Password,
    /// 二要素認証 (令和9年度までに).
    TwoFactor,
    /// アクセスログの管理.
    AccessLog,
    /// バックアップ（複数世代）と復旧手順の確認.
    Backup,
}

impl Item {
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::AccessRights => "利用者の職種・担当業務別のアクセス権限の設定",
            Self::UnneededAccounts => "退職者や使用していないアカウント等、不要なアカウントの削除",
            Self::AdminRights => "管理者権限を持つ者の明示",
            Self::Password => "パスワードの桁数・使い回しの禁止",
            Self::TwoFactor => "二要素認証の導入",
            Self::AccessLog => "アクセスログの管理",
            Self::Backup => "バックアップ（複数世代）の取得と復旧手順の確認",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::AccessRights => "Access rights set by job and duty",
            Self::UnneededAccounts => "Leavers' and unused accounts removed",
            Self::AdminRights => "Who holds administrator rights is explicit",
            Self::Password => "Password length and no reuse",
            Self::TwoFactor => "Two-factor authentication",
            Self::AccessLog => "Access logs managed",
            Self::Backup => "Backups in several generations and a confirmed restore",
        }
    }
}

/// The period of the access-log review: whole days in Asia/Tokyo, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub until: NaiveDate,
}

impl Period {
    /// The longest period one record reviews.
    pub const MAX_DAYS: i64 = 366;

    /// From the form's two dates (`2026-11-01`); both empty: the last complete month.
    pub fn parse(from: &str, until: &str, today: NaiveDate) -> Result<Self> {
        let (from, until) = (from.trim(), until.trim());
        if from.is_empty() && until.is_empty() {
            return Ok(Self::last_month(today));
        }
        let date = |field: &str, v: &str| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .filter(|d| (2000..=2200).contains(&chrono::Datelike::year(d)))
                .ok_or_else(|| {
                    Error::invalid(
                        field,
                        "期間の日付は「2026-11-01」の形で入力してください。",
                        "Dates of the period look like 2026-11-01.",
                    )
                })
        };
        let (from, until) = match (date("from", from), date("until", until)) {
            (Ok(f), Ok(u)) => (f, u),
            (Err(a), Err(b)) => return Err(a.merge(b)),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        if until < from {
            return Err(Error::invalid(
                "until",
                "期間の終わりは始まり以降の日付にしてください。",
                "The period must end on or after its first day.",
            ));
        }
        if (until - from).num_days() >= Self::MAX_DAYS {
            return Err(Error::invalid(
                "until",
                &format!("期間は{}日以内にしてください。", Self::MAX_DAYS),
                &format!("The period may be at most {} days.", Self::MAX_DAYS),
            ));
        }
        Ok(Self { from, until })
    }

    /// The month before the one `today` is in.
    pub fn last_month(today: NaiveDate) -> Self {
        let m = Month::last_complete(today);
        Self { from: m.first_day(), until: m.next().first_day().pred_opt().unwrap_or(m.first_day()) }
    }

    /// `[from 00:00, until + 1 day 00:00)` in Tokyo, as audit time texts.
    fn bounds(self) -> (String, String) {
        let end = self.until.succ_opt().unwrap_or(self.until);
        (audit_time(tokyo_midnight(self.from)), audit_time(tokyo_midnight(end)))
    }

    pub fn label_ja(self) -> String {
        format!("{}〜{}", date_ja(self.from), date_ja(self.until))
    }
}

/// One staff account as reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub login: String,
    pub name: String,
    pub role: Role,
    pub site: String,
    pub created_at: DateTime<Utc>,
    /// When the second factor was enrolled; `None`: not enrolled (cannot sign in until it is).
    pub second_factor_since: Option<DateTime<Utc>>,
    /// Still on the temporary password: the first sign-in is not finished.
    pub first_sign_in_pending: bool,
    pub last_sign_in: Option<DateTime<Utc>>,
    /// Disabled (a leaver, or access withdrawn), and since when.
    pub disabled: bool,
    pub disabled_since: Option<DateTime<Utc>>,
    /// Enabled, but no sign-in for more than the configured days (never signed in, and created
    /// longer ago than that, counts too).
    pub unused: bool,
    /// The checklist items this line is evidence for.
    pub items: Vec<Item>,
}

/// An API token as reviewed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub owner: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub age_days: i64,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub expired: bool,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Made at the command line for its owner, not by the owner.
    pub made_at_cli: bool,
}

/// The password rule the product enforces (fixed in code, so it is the same everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRule {
    pub min_chars: usize,
    pub max_chars: usize,
    /// Earlier passwords that may not be used again.
    pub history: i64,
    /// Failures from one source before its attempts are held back, and the first hold.
    pub lock_after: i32,
    pub lock_minutes: i64,
    pub second_factor_required: bool,
    pub periodic_change_required: bool,
}

impl PasswordRule {
    pub const IN_FORCE: Self = Self {
        min_chars: crate::auth::passwords::MIN_CHARS,
        max_chars: crate::auth::passwords::MAX_CHARS,
        history: HISTORY,
        lock_after: LOCK_AFTER,
        lock_minutes: LOCK_MINUTES,
        second_factor_required: true,
        periodic_change_required: false,
    };

    pub fn describe_ja(self) -> String {
        format!(
            "{}〜{}文字。氏名・ログインID・医療機関名・辞書の語を含む推測されやすいものは不可。直近{}回と同じものは再使用不可。\
             定期的な変更は求めない。同じ送信元から{}回失敗すると{}分保留（以後倍増、最長1日）。二要素認証（認証アプリ）は全職員に必須。",
            self.min_chars, self.max_chars, self.history, self.lock_after, self.lock_minutes
        )
    }

    pub fn describe_en(self) -> String {
        format!(
            "{}-{} characters; guessable ones (name, login, clinic name, dictionary words) refused; the last {} \
             cannot be reused; no forced periodic change; after {} failures from one source, its attempts are held \
             back {} minutes (doubling, up to a day); a second factor (authenticator app) is required for all staff.",
            self.min_chars, self.max_chars, self.history, self.lock_after, self.lock_minutes
        )
    }
}

/// An audit event as the review lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub at: DateTime<Utc>,
    /// The account concerned (empty for an unknown login).
    pub login: String,
    pub source: String,
    /// Why, where the event says (e.g. `unknown_login`, `locked`).
    pub reason: String,
}

/// The access-log review of the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessReview {
    /// Staff who read patient data: (login, reads), most first.
    pub patient_readers: Vec<(String, i64)>,
    /// Failed sign-ins (password, code or replayed code).
    pub failed_sign_ins: i64,
    pub lockouts: i64,
    pub refused_tokens: i64,
    /// The newest failed sign-ins and every lock-out (at most [`LIST_LIMIT`] each).
    pub failures: Vec<Event>,
    pub lockout_events: Vec<Event>,
}

/// How many events each list of the review shows.
pub const LIST_LIMIT: i64 = 100;

/// A backup made (`server backup`), from its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub at: DateTime<Utc>,
    pub sha256: String,
    pub format: String,
    pub encrypted: bool,
    pub audit_head_seq: i64,
}

/// A restore test (`server restore --check`), from its audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreTest {
    pub at: DateTime<Utc>,
    pub file: String,
    /// The backup's SHA-256 (empty when it failed before the backup was read).
    pub sha256: String,
    pub audit_head_seq: i64,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backups {
    /// Backups made in all (generations recorded).
    pub total: i64,
    /// The newest, newest first (at most [`BACKUPS_SHOWN`]).
    pub recent: Vec<Backup>,
    pub last_verified_restore: Option<RestoreTest>,
    /// The newest failed restore test, if it is newer than the last one that passed.
    pub failed_since: Option<RestoreTest>,
}

pub const BACKUPS_SHOWN: i64 = 10;

/// The audit chain's anchor: the newest signed checkpoint and the current head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub checkpoint: Option<Checkpoint>,
    pub head_seq: i64,
    pub head_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub generated_at: DateTime<Utc>,
    pub period: Period,
    pub unused_days: i64,
    pub accounts: Vec<Account>,
    /// Logins of the enabled administrators.
    pub admins: Vec<String>,
    pub password_rule: PasswordRule,
    pub tokens: Vec<Token>,
    pub access: AccessReview,
    pub backups: Backups,
    pub anchor: Anchor,
}

/// The record for someone who may read it, for the period of the two dates as typed (both
/// empty: the last complete month); audited as `inspection.view`.
pub async fn read(tx: &mut Tx, actor: &Actor, from: &str, until: &str, unused_days: i64) -> Result<Evidence> {
    authorize(actor, Action::Oversee)?;
    let period = Period::parse(from, until, tx.clock().today_tokyo())?;
    let e = build(tx, period, unused_days).await?;
    audit_read(tx, actor, "inspection.view", &e);
    Ok(e)
}

/// The record as CSV for Excel (UTF-8 with BOM): one line per fact, each naming its checklist
/// item; audited as `inspection.export`.
pub async fn csv(tx: &mut Tx, actor: &Actor, from: &str, until: &str, unused_days: i64) -> Result<Vec<u8>> {
    authorize(actor, Action::Oversee)?;
    let period = Period::parse(from, until, tx.clock().today_tokyo())?;
    let e = build(tx, period, unused_days).await?;
    audit_read(tx, actor, "inspection.export", &e);
    to_csv(&e)
}

fn audit_read(tx: &mut Tx, actor: &Actor, action: &str, e: &Evidence) {
    tx.audit(
        actor,
        NewEvent::new(action, "report", "inspection").details(&json!({
            "from": e.period.from, "until": e.period.until, "unused_days": e.unused_days,
            "accounts": e.accounts.len(), "tokens": e.tokens.len(),
        })),
    );
}

fn parse_time(at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(at).ok().map(|t| t.with_timezone(&Utc))
}

fn detail(row: &EventRow, key: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&row.details).ok().and_then(|d| d.get(key).cloned()).unwrap_or_default()
}

fn detail_text(row: &EventRow, key: &str) -> String {
    detail(row, key).as_str().unwrap_or_default().to_owned()
}

async fn events(tx: &mut Tx, action: &str, from: &str, until: &str, limit: i64) -> Result<Vec<EventRow>> {
    let search = Search { action: action.into(), from: from.into(), until: until.into(), ..Search::default() };
    audit::search(tx, &search, limit).await
}

async fn build(tx: &mut Tx, period: Period, unused_days: i64) -> Result<Evidence> {
    let now = tx.now();
    let unused_before = now - Duration::days(unused_days);
    let accounts: Vec<Account> = users::accounts_for_review(tx)
        .await?
        .into_iter()
        .map(|a| {
            let last_sign_in = a.last_sign_in.as_deref().and_then(parse_time);
            let unused = !a.disabled && last_sign_in.unwrap_or(a.created_at) < unused_before;
            let mut items = vec![Item::AccessRights, Item::TwoFactor];
            if a.disabled || unused {
                items.push(Item::UnneededAccounts);
            }
            if a.role == Role::Admin {
                items.push(Item::AdminRights);
            }
            Account {
                login: a.login,
                name: a.name,
                role: a.role,
                site: a.site,
                created_at: a.created_at,
                second_factor_since: a.totp_enrolled_at,
                first_sign_in_pending: a.must_change_password,
                last_sign_in,
                disabled: a.disabled,
                disabled_since: if a.disabled { a.disabled_at.as_deref().and_then(parse_time) } else { None },
                unused,
                items,
            }
        })
        .collect();
    let admins = accounts.iter().filter(|a| a.role == Role::Admin && !a.disabled).map(|a| a.login.clone()).collect();
    let tokens = users::tokens(tx, None)
        .await?
        .into_iter()
        .map(|t| Token {
            age_days: (now - t.created_at).num_days(),
            expired: t.expires_at.is_some_and(|e| e <= now),
            made_at_cli: t.created_by != t.user_id,
            owner: t.login,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        })
        .collect();

    let (from, until) = period.bounds();
    let counts = audit::count_by_action(tx, &from, &until).await?;
    let count =
        |actions: &[&str]| counts.iter().filter(|(a, _)| actions.contains(&a.as_str())).map(|(_, n)| n).sum::<i64>();
    let listed = |rows: Vec<EventRow>| -> Vec<Event> {
        rows.into_iter()
            .map(|r| Event {
                at: parse_time(&r.at).unwrap_or_default(),
                reason: detail_text(&r, "reason"),
                login: r.actor_login,
                source: r.source,
            })
            .collect()
    };
    let access = AccessReview {
        patient_readers: audit::patient_readers(tx, &from, &until).await?,
        failed_sign_ins: count(&["auth.failed", "auth.totp_failed", "auth.totp_replay"]),
        lockouts: count(&["auth.locked"]),
        refused_tokens: count(&["auth.token_failed"]),
        failures: listed(events(tx, "auth.failed", &from, &until, LIST_LIMIT).await?),
        lockout_events: listed(events(tx, "auth.locked", &from, &until, LIST_LIMIT).await?),
    };

    let restore_test = |r: EventRow| RestoreTest {
        at: parse_time(&r.at).unwrap_or_default(),
        file: detail_text(&r, "file"),
        audit_head_seq: detail(&r, "audit_head_seq").as_i64().unwrap_or_default(),
        reason: detail_text(&r, "reason"),
        sha256: r.target_id,
    };
    let passed = events(tx, RESTORE_TESTED, "", "", 1).await?.into_iter().next();
    let failed = events(tx, RESTORE_TEST_FAILED, "", "", 1).await?.into_iter().next();
    let failed_since = failed.filter(|f| passed.as_ref().is_none_or(|ok| f.seq > ok.seq)).map(restore_test);
    let last_verified_restore = passed.map(restore_test);
    let backups = Backups {
        total: audit::count_action(tx, BACKUP_ACTION).await?,
        recent: events(tx, BACKUP_ACTION, "", "", BACKUPS_SHOWN)
            .await?
            .into_iter()
            .map(|r| Backup {
                at: parse_time(&r.at).unwrap_or_default(),
                format: detail_text(&r, "format"),
                encrypted: detail(&r, "encrypted").as_bool().unwrap_or_default(),
                audit_head_seq: detail(&r, "audit_head_seq").as_i64().unwrap_or_default(),
                sha256: r.target_id,
            })
            .collect(),
        last_verified_restore,
        failed_since,
    };
    let (head_seq, head_hash) = audit::head(tx).await?;
    let anchor = Anchor { checkpoint: audit::last_checkpoint(tx).await?, head_seq, head_hash };
    Ok(Evidence {
        generated_at: now,
        period,
        unused_days,
        accounts,
        admins,
        password_rule: PasswordRule::IN_FORCE,
        tokens,
        access,
        backups,
        anchor,
    })
}

fn time_ja(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(|| none.to_owned(), datetime_ja)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "はい"
    } else {
        "いいえ"
    }
}

/// The CSV: チェックリスト項目, 記録, 対象, 項目, 値 — one fact a line.
fn to_csv(e: &Evidence) -> Result<Vec<u8>> {
    let mut lines: Vec<[String; 5]> = Vec::new();
    let mut add = |item: Item, record: &str, subject: &str, field: &str, value: String| {
        lines.push([item.label_ja().into(), record.into(), subject.into(), field.into(), value]);
    };
    let period = e.period.label_ja();
    add(Item::AccessLog, "作成", "点検用の記録", "作成日時", datetime_ja(e.generated_at));
    add(Item::AccessLog, "作成", "点検用の記録", "アクセスログ確認の期間", period.clone());
    for a in &e.accounts {
        let who = format!("{}（{}）", a.login, a.name);
        let rec = "職員アカウント";
        add(Item::AccessRights, rec, &who, "役割", a.role.label_ja().into());
        add(Item::AccessRights, rec, &who, "所属", a.site.clone());
        add(Item::AccessRights, rec, &who, "登録日時", datetime_ja(a.created_at));
        add(
            Item::TwoFactor,
            rec,
            &who,
            "二要素認証",
            (if a.second_factor_since.is_some() { "設定済み" } else { "未設定" }).into(),
        );
        add(Item::TwoFactor, rec, &who, "二要素認証の設定日時", time_ja(a.second_factor_since, ""));
        add(Item::UnneededAccounts, rec, &who, "最終サインイン", time_ja(a.last_sign_in, "なし"));
        add(Item::UnneededAccounts, rec, &who, "無効化（退職者等）", yes_no(a.disabled).into());
        add(Item::UnneededAccounts, rec, &who, "無効化の日時", time_ja(a.disabled_since, ""));
        add(Item::UnneededAccounts, rec, &who, &format!("{}日を超えて未使用", e.unused_days), yes_no(a.unused).into());
        add(Item::UnneededAccounts, rec, &who, "初回サインイン未完了", yes_no(a.first_sign_in_pending).into());
        add(Item::AdminRights, rec, &who, "管理者権限", yes_no(a.role == Role::Admin).into());
    }
    add(Item::AdminRights, "管理者権限を持つ者", "", "ログインID", e.admins.join("、"));
    add(Item::Password, "パスワードの規則", "", "規則", e.password_rule.describe_ja());
    add(
        Item::TwoFactor,
        "パスワードの規則",
        "",
        "二要素認証の必須化",
        yes_no(e.password_rule.second_factor_required).into(),
    );
    for t in &e.tokens {
        let what = format!("{}（{}）", t.owner, t.name);
        let rec = "APIトークン";
        add(Item::AccessRights, rec, &what, "所有者", t.owner.clone());
        add(Item::AccessRights, rec, &what, "発行日時", datetime_ja(t.created_at));
        add(Item::AccessRights, rec, &what, "経過日数", t.age_days.to_string());
        add(Item::AccessRights, rec, &what, "コマンドラインで発行", yes_no(t.made_at_cli).into());
        add(Item::UnneededAccounts, rec, &what, "最終使用", time_ja(t.last_used_at, "なし"));
        add(Item::UnneededAccounts, rec, &what, "有効期限", time_ja(t.expires_at, "なし"));
        add(Item::UnneededAccounts, rec, &what, "期限切れ", yes_no(t.expired).into());
        add(Item::UnneededAccounts, rec, &what, "失効日時", time_ja(t.revoked_at, ""));
    }
    let rec = "アクセスログの確認";
    for (login, n) in &e.access.patient_readers {
        add(Item::AccessLog, rec, login, "患者情報の閲覧（回）", n.to_string());
    }
    add(Item::AccessLog, rec, &period, "サインイン失敗（件）", e.access.failed_sign_ins.to_string());
    add(Item::AccessLog, rec, &period, "ロック（件）", e.access.lockouts.to_string());
    add(Item::AccessLog, rec, &period, "拒否したAPIトークン（件）", e.access.refused_tokens.to_string());
    for (field, list) in [("サインイン失敗", &e.access.failures), ("ロック", &e.access.lockout_events)] {
        for ev in list {
            let value = format!("{} 送信元 {} {}", datetime_ja(ev.at), ev.source, ev.reason);
            add(Item::AccessLog, rec, &ev.login, field, value.trim_end().to_owned());
        }
    }
    let rec = "バックアップ";
    add(Item::Backup, rec, "", "作成した世代（件）", e.backups.total.to_string());
    for b in &e.backups.recent {
        let value = format!(
            "{} sha256 {} 監査記録#{}{}",
            b.format,
            b.sha256,
            b.audit_head_seq,
            if b.encrypted { " 暗号化" } else { "" }
        );
        add(Item::Backup, rec, &datetime_ja(b.at), "作成", value);
    }
    match &e.backups.last_verified_restore {
        Some(r) => add(
            Item::Backup,
            "復元テスト",
            &r.file,
            "最後に確認できた復元",
            format!("{} sha256 {} 監査記録#{}まで確認", datetime_ja(r.at), r.sha256, r.audit_head_seq),
        ),
        None => add(Item::Backup, "復元テスト", "", "最後に確認できた復元", "なし".into()),
    }
    if let Some(f) = &e.backups.failed_since {
        add(
            Item::Backup,
            "復元テスト",
            &f.file,
            "その後に失敗した復元テスト",
            format!("{} {}", datetime_ja(f.at), f.reason),
        );
    }
    let rec = "監査記録の改ざん防止";
    match &e.anchor.checkpoint {
        Some(c) => add(
            Item::AccessLog,
            rec,
            &format!("#{}", c.seq),
            "最新の署名付きチェックポイント",
            format!("{} {} 鍵 {}", time_ja(parse_time(&c.at), &c.at), c.hash, c.key_id),
        ),
        None => add(Item::AccessLog, rec, "", "最新の署名付きチェックポイント", "なし".into()),
    }
    add(Item::AccessLog, rec, &format!("#{}", e.anchor.head_seq), "現在の連鎖の先頭", e.anchor.head_hash.clone());

    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let csv_error = |e: csv::Error| Error::Other(e.into());
    out.write_record(["チェックリスト項目", "記録", "対象", "項目", "値"]).map_err(csv_error)?;
    for l in &lines {
        out.write_record(l.iter().map(|c| spreadsheet_safe(c))).map_err(csv_error)?;
    }
    out.into_inner().map_err(|e| Error::Other(anyhow::anyhow!("csv: {e}")))
}
