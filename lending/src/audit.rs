//! The audit chain: every state change and every read of patient data, hash-chained.
//!
//! `hash_n = SHA-256("lending-audit-v1" ‖ field_1 ‖ … ‖ prev_hash_{n-1})`, each field written as
//! its byte length (u32, big-endian) followed by its UTF-8 bytes, so no two different events
//! encode alike. The first event links to 64 zeros.

use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const DOMAIN: &[u8] = b"lending-audit-v1";

/// What a change wants recorded; the store adds seq, time and the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewEvent {
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// Set when the event touches a patient's record (the access-log review filters on it).
    pub patient_id: String,
    /// Canonical JSON (serde_json writes object keys in sorted order).
    pub details: String,
}

impl NewEvent {
    pub fn new(action: &str, target_type: &str, target_id: &str) -> Self {
        Self {
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.to_owned(),
            patient_id: String::new(),
            details: "{}".to_owned(),
        }
    }

    #[must_use]
    pub fn patient(mut self, patient_id: &str) -> Self {
        patient_id.clone_into(&mut self.patient_id);
        self
    }

    #[must_use]
    pub fn details(mut self, details: &serde_json::Value) -> Self {
        self.details = details.to_string();
        self
    }
}

/// One stored event, exactly as in the `audit_events` table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub actor_id: String,
    pub actor_login: String,
    pub role: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub patient_id: String,
    pub details: String,
    pub source: String,
    pub prev_hash: String,
    pub hash: String,
}

impl EventRow {
    /// The hash this row should carry, from its content and its `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let seq = self.seq.to_string();
        hex::encode(hash_fields(&[
            seq.as_str(),
            &self.at,
            &self.actor_id,
            &self.actor_login,
            &self.role,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.patient_id,
            &self.details,
            &self.source,
            &self.prev_hash,
        ]))
    }
}

/// An event's fields in hashing order (seq as decimal text first, `prev_hash` last), borrowed
/// from wherever they were read; the verifier's fast path needs no `String` per field.
pub type Fields<'a> = [&'a str; 12];

/// The chain hash (raw digest) of an event's fields: the one definition of the format.
pub fn hash_fields(fields: &Fields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    for field in fields {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().into()
}

/// Where verification stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Row `seq` is missing: deleted, or the chain was renumbered.
    Missing { seq: i64 },
    /// Row `seq` does not link to the row before it: inserted, reordered or swapped.
    BadLink { seq: i64 },
    /// Row `seq`'s content does not match its hash: edited.
    BadHash { seq: i64 },
    /// The chain goes past the recorded head, or ends on a hash the head does not know.
    HeadMismatch { head_seq: i64 },
    /// Event `seq` is not what a signed checkpoint (or an anchor kept elsewhere) says it was:
    /// the chain was rewritten or cut back.
    CheckpointMismatch { seq: i64 },
    /// The checkpoint at `seq` is not signed by the institution's key.
    BadCheckpointSignature { seq: i64 },
}

impl Break {
    /// The first event found bad.
    pub fn seq(&self) -> i64 {
        match self {
            Self::Missing { seq }
            | Self::BadLink { seq }
            | Self::BadHash { seq }
            | Self::CheckpointMismatch { seq }
            | Self::BadCheckpointSignature { seq } => *seq,
            Self::HeadMismatch { head_seq } => *head_seq,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Missing { seq } => format!("event {seq} is missing (deleted or renumbered) / 監査記録 {seq} が欠落しています"),
            Self::BadLink { seq } => format!(
                "event {seq} does not follow event {}: an event was inserted before it, or events were reordered or swapped / 監査記録 {} と {seq} の間で連鎖が切れています（挿入・入れ替え）",
                seq - 1,
                seq - 1
            ),
            Self::BadHash { seq } => format!("event {seq} was altered (content does not match its hash) / 監査記録 {seq} が改ざんされています"),
            Self::HeadMismatch { head_seq } => {
                format!("the chain does not end at the recorded head (event {head_seq}) / 監査記録の末尾が一致しません")
            }
            Self::CheckpointMismatch { seq } => format!(
                "event {seq} differs from its signed checkpoint: the chain was rewritten or cut back / 監査記録 {seq} が署名済みチェックポイントと一致しません（書き換え・切り詰め）"
            ),
            Self::BadCheckpointSignature { seq } => format!(
                "the checkpoint at event {seq} is not signed by this institution's key / チェックポイント {seq} の署名が正しくありません"
            ),
        }
    }
}

/// What a checkpoint signs: the chain's head at one moment.
pub fn checkpoint_text(seq: i64, hash: &str) -> String {
    format!("lending-audit-checkpoint-v1\n{seq}\n{hash}\n")
}

/// Walks events in `seq` order, one at a time, so a chain of millions needs no memory.
#[derive(Debug)]
pub struct Verifier {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Self { expected_seq: 1, prev_hash: GENESIS.to_owned() }
    }
}

impl Verifier {
    /// A verifier for the part of the chain that starts at `seq`, after an event hashed `prev_hash`.
    pub fn starting_at(seq: i64, prev_hash: &str) -> Self {
        Self { expected_seq: seq, prev_hash: prev_hash.to_owned() }
    }

    /// Ends a part that must reach `last_seq`; returns the hash of its last event.
    pub fn end_at(self, last_seq: i64) -> Result<String, Break> {
        if self.expected_seq <= last_seq {
            return Err(Break::Missing { seq: self.expected_seq });
        }
        Ok(self.prev_hash)
    }

    pub fn push(&mut self, row: &EventRow) -> Result<(), Break> {
        let seq = row.seq.to_string();
        self.push_fields(
            row.seq,
            &[
                &seq,
                &row.at,
                &row.actor_id,
                &row.actor_login,
                &row.role,
                &row.action,
                &row.target_type,
                &row.target_id,
                &row.patient_id,
                &row.details,
                &row.source,
                &row.prev_hash,
            ],
            &row.hash,
        )
    }

    /// [`Self::push`] for an event read as borrowed fields (`fields[0]` is `seq` as text, which
    /// must be `seq`'s canonical decimal form); allocates nothing.
    pub fn push_fields(&mut self, seq: i64, fields: &Fields<'_>, hash: &str) -> Result<(), Break> {
        if seq != self.expected_seq {
            return Err(Break::Missing { seq: self.expected_seq });
        }
        if fields[11] != self.prev_hash {
            return Err(Break::BadLink { seq });
        }
        let mut hex = [0u8; 64];
        // 32 bytes always fit in 64 hex digits.
        let _ = hex::encode_to_slice(hash_fields(fields), &mut hex);
        if hex.as_slice() != hash.as_bytes() {
            return Err(Break::BadHash { seq });
        }
        self.expected_seq += 1;
        self.prev_hash.clear();
        self.prev_hash.push_str(hash);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<EventRow> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let mut r = EventRow {
                    seq,
                    at: format!("2026-11-22T00:00:{:02}.000000Z", seq % 60),
                    actor_id: "u1".into(),
                    actor_login: "sato".into(),
                    role: "nurse".into(),
                    action: "loan.check_out".into(),
                    target_type: "loan".into(),
                    target_id: format!("l{seq}"),
                    patient_id: String::new(),
                    details: "{}".into(),
                    source: "127.0.0.1".into(),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                r.hash = r.compute_hash();
                prev.clone_from(&r.hash);
                r
            })
            .collect()
    }

    /// The whole-chain check: every row, up to the head, ending on the head's hash.
    fn verify(rows: &[EventRow], head: (i64, &str)) -> Result<i64, Break> {
        let mut v = Verifier::default();
        for r in rows {
            v.push(r)?;
        }
        let last = v.end_at(head.0)?;
        if last == head.1 {
            Ok(head.0)
        } else {
            Err(Break::HeadMismatch { head_seq: head.0 })
        }
    }

    #[test]
    fn intact_chain_verifies_and_each_tamper_names_the_event() {
        let rows = chain(10);
        let head = (10, rows[9].hash.clone());
        assert_eq!(verify(&rows, (head.0, &head.1)), Ok(10));

        let mut edited = rows.clone();
        edited[4].details = "{\"x\":1}".into();
        assert_eq!(verify(&edited, (head.0, &head.1)), Err(Break::BadHash { seq: 5 }));

        let mut deleted = rows.clone();
        deleted.remove(6);
        assert_eq!(verify(&deleted, (head.0, &head.1)), Err(Break::Missing { seq: 7 }));

        let mut swapped = rows.clone();
        let (a, b) = (swapped[2].clone(), swapped[3].clone());
        swapped[2] = EventRow { seq: 3, ..b };
        swapped[3] = EventRow { seq: 4, ..a };
        assert_eq!(verify(&swapped, (head.0, &head.1)), Err(Break::BadLink { seq: 3 }));

        let truncated = &rows[..8];
        assert_eq!(verify(truncated, (head.0, &head.1)).unwrap_err().seq(), 9);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = chain(1).remove(0);
        let mut b = a.clone();
        a.actor_login = "ab".into();
        a.role = "c".into();
        b.actor_login = "a".into();
        b.role = "bc".into();
        assert_ne!(a.compute_hash(), b.compute_hash());
    }
}

/// Every action the audit chain records, with what it means to a person (Japanese, English):
/// reports and the audit viewer show these words, with the code beside them. A test checks that
/// every action the code writes is here.
pub const ACTIONS: &[(&str, &str, &str)] = &[
    ("archive.certificate", "データ消去証明書（PDF）の作成", "Certificate of sanitization PDF made"),
    ("archive.ehr_export", "電子カルテ用の書き出し", "Export for the EHR"),
    ("archive.patient_copy", "同意書控え（PDF）の作成", "Patient copy PDF made"),
    ("archive.return_receipt", "返却受領書（PDF）の作成", "Return receipt PDF made"),
    ("audit.search", "監査ログの閲覧", "Audit log read"),
    ("audit.verify", "監査ログの改ざん検査", "Audit chain verified"),
    ("auth.burst_alert", "サインイン失敗の集中を通知", "Burst of failed sign-ins alerted"),
    ("auth.failed", "サインイン失敗", "Failed sign-in"),
    ("auth.locked", "アカウントのロック", "Account locked"),
    ("auth.password_changed", "パスワード変更", "Password changed"),
    ("auth.password_ok", "パスワード確認（二要素の前）", "Password accepted (before the second factor)"),
    ("auth.sign_in", "サインイン", "Signed in"),
    ("auth.sign_out", "サインアウト", "Signed out"),
    ("auth.sign_out_all", "全端末からサインアウト", "Signed out everywhere"),
    ("auth.token_failed", "API トークンの拒否", "API token refused"),
    ("auth.totp_enrolled", "二要素認証の設定", "Second factor set up"),
    ("auth.totp_failed", "確認コードの誤り", "Wrong second-factor code"),
    ("auth.totp_replay", "確認コードの再使用を拒否", "Reused second-factor code refused"),
    ("backup.created", "バックアップ作成", "Backup made"),
    ("consent.draft_kept", "自動ロック時に同意の入力を保存", "Consent draft kept at the idle lock"),
    ("consent.view", "同意書控えの閲覧", "Patient copy read"),
    ("consent.withdraw", "同意の撤回", "Consent withdrawn"),
    ("custody.check", "所在確認", "Custody check"),
    ("dashboard.view", "一覧の閲覧", "Dashboard read"),
    ("device.found", "紛失機器の発見", "Lost device found"),
    ("device.import", "機器の一括登録", "Devices imported"),
    ("device.lost", "紛失・盗難の届出", "Device reported lost"),
    ("device.maintenance_back", "修理・点検からの戻り", "Back from maintenance"),
    ("device.maintenance_out", "修理・点検へ", "Sent to maintenance"),
    ("device.register", "機器の登録", "Device registered"),
    ("device.rotate_label", "QR ラベルの再発行", "QR label reissued"),
    ("device.write_off", "機器の除却", "Device written off"),
    ("document.create", "説明書の版の追加", "Explanation document version added"),
    ("inspection.export", "点検用の記録の書き出し", "Inspection evidence exported"),
    ("inspection.view", "点検用の記録の閲覧", "Inspection evidence read"),
    ("institution.save", "医療機関情報の変更", "Institution details changed"),
    ("labels.print", "QR ラベルの印刷", "Labels printed"),
    ("loan.check_out", "貸出", "Loan made"),
    ("loan.extend", "返却予定日の延長", "Due date extended"),
    ("loan.return", "返却の受付", "Device returned"),
    ("loan.return_receipt", "返却受付書の閲覧", "Return receipt read"),
    ("loan.view", "貸出記録の閲覧", "Loan read"),
    ("loan.void", "誤登録の取消", "Loan voided"),
    ("mail.dismiss", "送れないメールを対応済みに", "Undeliverable mail set aside"),
    ("mail.retry", "メールの再送", "Mail resent"),
    ("model.create", "機種の登録", "Device model added"),
    ("offline.check_out", "オフライン貸出の同期", "Offline loan synced"),
    ("offline.conflict", "オフライン記録の競合", "Offline record conflict"),
    ("offline.prepare", "オフライン用の患者情報の準備", "Patient prepared for offline visit"),
    ("offline.refused", "オフライン記録の拒否（署名不一致）", "Offline record refused (signature)"),
    ("offline.resolve", "オフライン記録の競合の解決", "Offline record conflict resolved"),
    ("offline.return", "オフライン返却の同期", "Offline return synced"),
    ("patient.create", "患者の登録", "Patient registered"),
    ("patient.edit", "患者情報の修正", "Patient record edited"),
    ("patient.search", "患者の検索", "Patient search"),
    ("patient.view", "患者情報の閲覧", "Patient record read"),
    ("phone.approve", "オフライン端末の承認", "Phone approved for offline use"),
    ("phone.request", "オフライン端末の登録申請", "Phone enrolment requested"),
    ("phone.revoke", "オフライン端末の取り消し", "Phone enrolment revoked"),
    ("problem_report.received", "QR からの連絡の受付", "Report from the QR page received"),
    ("problem_report.resolve", "QR からの連絡への対応", "Report from the QR page resolved"),
    ("reminder.digest", "管理者への日次通知", "Admins' daily digest"),
    ("reminder.queue", "返却のお知らせの送信予約", "Return reminder queued"),
    ("report.monthly", "月次報告の閲覧", "Monthly report read"),
    ("report.outstanding", "貸出中一覧の閲覧", "Outstanding list read"),
    ("restore.test_failed", "復元テストの失敗", "Restore test failed"),
    ("restore.tested", "復元テストの成功", "Restore test passed"),
    ("token.create", "API トークンの発行", "API token created"),
    ("token.revoke", "API トークンの失効", "API token revoked"),
    ("user.add", "職員アカウントの追加", "Staff account added"),
    ("user.disable", "職員アカウントの無効化", "Staff account disabled"),
    ("user.enable", "職員アカウントの再有効化", "Staff account enabled"),
    ("user.reset_password", "パスワードの再設定", "Password reset"),
    ("user.reset_second_factor", "二要素認証の再設定", "Second factor reset"),
    ("vendor.create", "業者の登録", "Vendor added"),
    ("wipe.record", "データ消去の記録", "Data wipe recorded"),
    ("wipe.verify", "データ消去の確認（別の職員）", "Data wipe verified by a second person"),
];

/// What action `code` means, in Japanese or English; the code itself for one not in [`ACTIONS`]
/// (an event written by a newer version).
pub fn action_label(code: &str, english: bool) -> &str {
    ACTIONS.iter().find(|(c, _, _)| *c == code).map_or(code, |(_, ja, en)| if english { en } else { ja })
}

#[cfg(test)]
mod action_tests {
    use super::*;

    /// Every action literal the workspace writes has words (a source scan over the crates).
    #[test]
    fn every_action_written_has_a_label() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut missing = Vec::new();
        let mut files = Vec::new();
        for dir in ["lending/src", "server/src", "mobile-api/src"] {
            collect(&root.join(dir), &mut files);
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (i, _) in text.match_indices("NewEvent::new(") {
                let rest = text[i + "NewEvent::new(".len()..].trim_start();
                let lit = rest.strip_prefix('"').and_then(|r| r.split('"').next());
                // An action code: lower-case words joined by dots (this test's own text is not one).
                let code =
                    |l: &&str| l.contains('.') && l.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.');
                if let Some(lit) = lit.filter(code) {
                    if !ACTIONS.iter().any(|(c, _, _)| *c == lit) {
                        missing.push(format!("{}: {lit}", file.display()));
                    }
                }
            }
        }
        for named in [crate::backup::BACKUP_ACTION, crate::backup::RESTORE_TESTED, "dashboard.view", "auth.totp_replay"]
        {
            if !ACTIONS.iter().any(|(c, _, _)| *c == named) {
                missing.push(named.to_owned());
            }
        }
        assert!(missing.is_empty(), "audit actions without a label in ACTIONS: {missing:?}");
        assert_eq!(action_label("loan.check_out", false), "貸出");
        assert_eq!(action_label("something.new", true), "something.new");
    }

    fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
}
