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
        let mut h = Sha256::new();
        h.update(DOMAIN);
        let seq = self.seq.to_string();
        for field in [
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
        ] {
            let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
            h.update(len.to_be_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finalize())
    }
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
        if row.seq != self.expected_seq {
            return Err(Break::Missing { seq: self.expected_seq });
        }
        if row.prev_hash != self.prev_hash {
            return Err(Break::BadLink { seq: row.seq });
        }
        if row.compute_hash() != row.hash {
            return Err(Break::BadHash { seq: row.seq });
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&row.hash);
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
