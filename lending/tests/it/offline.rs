//! Offline check-out and return (SPEC §10, issue #18): records signed by an enrolled phone sync
//! once through the online services; what changed meanwhile becomes a conflict; an altered record
//! is refused and audited; a revoked phone's records are conflicts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lending::service::idempotency::IdempotencyKey;
use lending::service::loans;
use lending::service::offline::{self, Envelope, Outcome, SIGNED_PREFIX};
use lending::service::registry::NewDocument;
use lending::store::{self, audit, Store};
use lending::testing::{receipt_key, seed_basic, test_now, Basic, TestDb};
use lending::{both_dbs, Actor};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

/// A phone: its key pair (as WebCrypto would hold it) and its approved enrolment.
struct Phone {
    key: SigningKey,
    enrolment_id: String,
}

impl Phone {
    async fn enrol(store: &Store, b: &Basic, nurse: &Actor, seed: u8, approve: bool) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        let mut tx = store.begin().await.unwrap();
        let e = offline::request_enrolment(&mut tx, nurse, "訪問用スマホ 1", "ES256", &public).await.unwrap();
        if approve {
            offline::approve_enrolment(&mut tx, &b.admin, &e.id).await.unwrap();
        }
        tx.commit().await.unwrap();
        Self { key, enrolment_id: e.id }
    }

    /// What the phone posts: the payload text and its P1363 signature.
    fn sign(&self, payload: &serde_json::Value) -> Envelope {
        let payload = payload.to_string();
        let sig: Signature = self.key.sign([SIGNED_PREFIX.as_bytes(), payload.as_bytes()].concat().as_slice());
        Envelope { enrolment_id: self.enrolment_id.clone(), payload, signature: URL_SAFE_NO_PAD.encode(sig.to_bytes()) }
    }

    /// A check-out of `devices` to `patient` completed offline, on the explanation cached now.
    async fn check_out(&self, store: &Store, b: &Basic, key: &str, patient: usize, devices: &[usize]) -> Envelope {
        let req = b.check_out_request(patient, devices);
        let mut tx = store.read().await.unwrap();
        let explained = loans::explain(&mut tx, &req.device_ids).await.unwrap();
        drop(tx);
        let consent = req.consent.as_ref().unwrap();
        self.sign(&serde_json::json!({
            "key": key,
            "enrolment_id": self.enrolment_id,
            "phone_time": phone_time(),
            "check_out": {
                "document_sha256": lending::ids::sha256_hex(&explained.text),
                "request": {
                    "patient_id": req.patient_id,
                    "device_ids": req.device_ids,
                    "due_on": req.due_on,
                    "purpose": req.purpose,
                    "consent": {
                        "signer_name": consent.signer_name,
                        "relationship": consent.relationship,
                        "signature_svg": consent.signature_svg,
                        "document_ids": consent.document_ids,
                    },
                },
            },
        }))
    }

    fn return_device(&self, key: &str, loan_id: &str, device_id: &str) -> Envelope {
        self.sign(&serde_json::json!({
            "key": key,
            "enrolment_id": self.enrolment_id,
            "phone_time": phone_time(),
            "return": {
                "loan_id": loan_id,
                "devices": [{ "device_id": device_id, "accessories_complete": true, "cleaned": true }],
                "returned_by_name": "山田 花子",
            },
        }))
    }
}

/// The phone's clock: 40 minutes before the server's when it syncs.
fn phone_time() -> String {
    (test_now() - chrono::Duration::minutes(40)).to_rfc3339()
}

async fn sync(store: &Store, nurse: &Actor, env: &Envelope) -> Outcome {
    offline::sync(store, nurse, &receipt_key(), None, env).await.unwrap()
}

async fn open_loan(store: &Store, device: &str) -> Option<store::loans::Loan> {
    let mut tx = store.read().await.unwrap();
    store::loans::open_loan_of_device(&mut tx, device).await.unwrap()
}

async fn count(store: &Store, action: &str) -> i64 {
    let mut tx = store.read().await.unwrap();
    audit::count_action(&mut tx, action).await.unwrap()
}

async fn lend_online(store: &Store, b: &Basic, nurse: &Actor, patient: usize, devices: &[usize]) -> String {
    let mut tx = store.begin().await.unwrap();
    let out = loans::check_out(&mut tx, nurse, b.check_out_request(patient, devices), &receipt_key()).await.unwrap();
    tx.commit().await.unwrap();
    out.loan.id
}

both_dbs!(
    async fn an_offline_kit_loan_and_return_sync_once_with_phone_and_server_time(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 4).await;
        let phone = Phone::enrol(&store, &b, &b.nurse, 7, true).await;
        // A loan made online earlier, whose device comes back while the phone is offline.
        let earlier = lend_online(&store, &b, &b.nurse, 1, &[2]).await;

        let lend = phone.check_out(&store, &b, "offline-checkout-000001", 0, &[0, 1]).await;
        let ret = phone.return_device("offline-return-00000001", &earlier, &b.devices[2]);
        let Outcome::Synced(rec) = sync(&store, &b.nurse, &lend).await else { panic!("check-out not synced") };
        let Outcome::Synced(back) = sync(&store, &b.nurse, &ret).await else { panic!("return not synced") };
        assert_eq!(back.loan_id, earlier);

        // One loan with both devices; its consent's receipt verifies.
        let loan = open_loan(&store, &b.devices[0]).await.unwrap();
        assert_eq!(loan.id, rec.loan_id);
        assert_eq!(open_loan(&store, &b.devices[1]).await.unwrap().id, loan.id);
        assert!(open_loan(&store, &b.devices[2]).await.is_none(), "the other loan's device came back");
        let mut tx = store.begin().await.unwrap();
        let view = loans::view(&mut tx, &b.nurse, &receipt_key(), &loan.id, chrono::Duration::minutes(30)).await.unwrap();
        tx.commit().await.unwrap();
        assert!(view.receipt.valid, "the consent's receipt verifies");
        assert_eq!(view.consent.signed_at, test_now(), "signed at the server's time");

        // Phone time and server time are both kept, in the record and in the audit event.
        assert_eq!(rec.phone_time, test_now() - chrono::Duration::minutes(40));
        assert_eq!(rec.server_time, test_now());
        assert!(!rec.countersignature.is_empty());
        let mut tx = store.read().await.unwrap();
        let events = audit::for_target(&mut tx, "loan", &loan.id).await.unwrap();
        drop(tx);
        let ev = events.iter().find(|e| e.action == "offline.check_out").expect("offline.check_out audited");
        let details: serde_json::Value = serde_json::from_str(&ev.details).unwrap();
        assert_eq!(details["phone_time"], lending::timefmt::audit_time(rec.phone_time));
        assert_eq!(details["server_time"], lending::timefmt::audit_time(rec.server_time));
        assert!(events.iter().any(|e| e.action == "loan.check_out"), "written through the online check-out");

        // A second sync writes nothing and answers with the first result.
        let head = count(&store, "loan.check_out").await;
        assert!(matches!(sync(&store, &b.nurse, &lend).await, Outcome::Duplicate(r) if r.loan_id == loan.id));
        assert!(matches!(sync(&store, &b.nurse, &ret).await, Outcome::Duplicate(_)));
        assert_eq!(count(&store, "loan.check_out").await, head);
        assert_eq!(count(&store, "offline.check_out").await, 1);
        assert_eq!(count(&store, "offline.return").await, 1);
        assert_eq!(count(&store, "loan.return").await, 1);
        // The header key, when sent, must be the record's own.
        let other = IdempotencyKey::parse(Some("some-other-key-000001")).unwrap();
        let err = offline::sync(&store, &b.nurse, &receipt_key(), other.as_ref(), &lend).await.unwrap_err();
        assert!(matches!(err, lending::Error::Validation(_)), "{err:?}");
    }
);

both_dbs!(
    async fn a_device_lent_meanwhile_is_a_conflict_and_nothing_is_written(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 3).await;
        let phone = Phone::enrol(&store, &b, &b.nurse, 9, true).await;
        let lend = phone.check_out(&store, &b, "offline-checkout-000002", 0, &[0, 1]).await;
        // Another nurse lends device 0 online while the phone has no signal.
        let theirs = lend_online(&store, &b, &b.nurse2, 2, &[0]).await;

        let Outcome::Conflict(c, again) = sync(&store, &b.nurse, &lend).await else { panic!("no conflict") };
        assert!(!again);
        assert_eq!(c.kind, "device_unavailable");
        assert!(c.detail_ja.contains("ほかで使われました"), "{}", c.detail_ja);
        assert_eq!(open_loan(&store, &b.devices[0]).await.unwrap().id, theirs, "the other nurse's loan stands");
        assert!(open_loan(&store, &b.devices[1]).await.is_none(), "nothing written for the conflict");
        assert_eq!(count(&store, "offline.conflict").await, 1);

        // Syncing again reports the same conflict; the nurse and the admins see it until resolved.
        assert!(matches!(sync(&store, &b.nurse, &lend).await, Outcome::Conflict(d, true) if d.id == c.id));
        let mut tx = store.begin().await.unwrap();
        assert_eq!(offline::conflicts(&mut tx, &b.nurse, false).await.unwrap().len(), 1);
        assert_eq!(offline::conflicts(&mut tx, &b.admin, true).await.unwrap().len(), 1);
        assert!(offline::conflicts(&mut tx, &b.nurse2, false).await.unwrap().is_empty());
        assert_eq!(store::offline::count_open_conflicts(&mut tx).await.unwrap(), 1);
        // The admins' digest counts it.
        let t = store::dashboard::Thresholds::default();
        lending::service::reminders::queue_digest(&mut tx, t, "https://staff.example").await.unwrap();
        let mails = store::outbox::all(&mut tx).await.unwrap();
        let digest = mails.into_iter().find(|m| m.dedupe_key.starts_with("digest:")).expect("a digest");
        assert!(digest.body_text.contains("未解決のオフライン記録の競合: 1件"), "{}", digest.body_text);
        let refused = offline::resolve_conflict(&mut tx, &b.nurse2, &c.id, "確認").await.unwrap_err();
        assert!(matches!(refused, lending::Error::Conflict(_)), "another nurse may not resolve it");
        let done = offline::resolve_conflict(&mut tx, &b.nurse, &c.id, "次回訪問時に別の機器で再同意").await.unwrap();
        assert!(done.resolved_at.is_some());
        assert_eq!(store::offline::count_open_conflicts(&mut tx).await.unwrap(), 0);
        tx.commit().await.unwrap();
    }
);

both_dbs!(
    async fn a_document_revised_meanwhile_is_a_conflict(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 2).await;
        let phone = Phone::enrol(&store, &b, &b.nurse, 11, true).await;
        let lend = phone.check_out(&store, &b, "offline-checkout-000003", 0, &[0]).await;
        let mut tx = store.begin().await.unwrap();
        let doc = NewDocument {
            title_ja: "説明（改訂）".into(),
            title_en: String::new(),
            body_ja: "改訂した本文".into(),
            body_en: String::new(),
        };
        lending::service::registry::add_document_version(&mut tx, &b.admin, &b.model_id, doc).await.unwrap();
        tx.commit().await.unwrap();
        let Outcome::Conflict(c, _) = sync(&store, &b.nurse, &lend).await else { panic!("no conflict") };
        assert_eq!(c.kind, "document_revised");
        assert!(open_loan(&store, &b.devices[0]).await.is_none());
    }
);

both_dbs!(
    async fn an_altered_record_is_refused_and_audited(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 3).await;
        let phone = Phone::enrol(&store, &b, &b.nurse, 13, true).await;
        let lend = phone.check_out(&store, &b, "offline-checkout-000004", 0, &[0]).await;

        // A device changed in the stored record after it was signed.
        let changed = Envelope { payload: lend.payload.replace(&b.devices[0], &b.devices[1]), ..lend.clone() };
        assert_ne!(changed.payload, lend.payload);
        assert!(matches!(sync(&store, &b.nurse, &changed).await, Outcome::Refused(_)));
        // A signature altered.
        let mut sig = URL_SAFE_NO_PAD.decode(&lend.signature).unwrap();
        sig[5] ^= 1;
        let forged = Envelope { signature: URL_SAFE_NO_PAD.encode(sig), ..lend.clone() };
        assert!(matches!(sync(&store, &b.nurse, &forged).await, Outcome::Refused(_)));
        // Another nurse cannot send this phone's records.
        assert!(matches!(sync(&store, &b.nurse2, &lend).await, Outcome::Refused(_)));

        assert_eq!(count(&store, "offline.refused").await, 3);
        assert!(open_loan(&store, &b.devices[0]).await.is_none());
        assert!(open_loan(&store, &b.devices[1]).await.is_none());
        // The genuine record still syncs.
        assert!(matches!(sync(&store, &b.nurse, &lend).await, Outcome::Synced(_)));
    }
);

both_dbs!(
    async fn a_revoked_or_unapproved_phones_records_are_conflicts(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 3).await;
        let phone = Phone::enrol(&store, &b, &b.nurse, 15, true).await;
        let lend = phone.check_out(&store, &b, "offline-checkout-000005", 0, &[0]).await;
        let mut tx = store.begin().await.unwrap();
        let revoked = offline::revoke_enrolment(&mut tx, &b.admin, &phone.enrolment_id).await.unwrap();
        assert!(revoked.revoked_at.is_some());
        tx.commit().await.unwrap();
        let Outcome::Conflict(c, _) = sync(&store, &b.nurse, &lend).await else { panic!("no conflict") };
        assert_eq!(c.kind, "enrolment_revoked");
        assert!(open_loan(&store, &b.devices[0]).await.is_none(), "no silent write");

        let pending = Phone::enrol(&store, &b, &b.nurse, 17, false).await;
        let lend = pending.check_out(&store, &b, "offline-checkout-000006", 0, &[1]).await;
        let Outcome::Conflict(c, _) = sync(&store, &b.nurse, &lend).await else { panic!("no conflict") };
        assert_eq!(c.kind, "enrolment_not_approved");
        assert!(open_loan(&store, &b.devices[1]).await.is_none());

        // The user page lists both phones with their state.
        let mut tx = store.begin().await.unwrap();
        let phones = offline::enrolments(&mut tx, &b.admin, &b.nurse.user_id).await.unwrap();
        let states: Vec<_> = phones.iter().map(offline::EnrolmentState::of).collect();
        assert_eq!(states.len(), 2);
        assert!(states.contains(&offline::EnrolmentState::Revoked));
        assert!(states.contains(&offline::EnrolmentState::Requested));
        assert!(offline::enrolments(&mut tx, &b.nurse2, &b.nurse.user_id).await.is_err(), "not another nurse's");
    }
);

both_dbs!(
    async fn an_enrolment_needs_a_valid_public_key(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 1).await;
        let mut tx = store.begin().await.unwrap();
        let err = offline::request_enrolment(&mut tx, &b.nurse, "", "RS256", "not-a-key").await.unwrap_err();
        let lending::Error::Validation(fields) = err else { panic!("{err:?}") };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["label", "algorithm", "public_key"]);
        let ed = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let public = URL_SAFE_NO_PAD.encode(ed.verifying_key().as_bytes());
        offline::request_enrolment(&mut tx, &b.nurse, "タブレット", "Ed25519", &public).await.unwrap();
        let again = offline::request_enrolment(&mut tx, &b.nurse, "タブレット", "Ed25519", &public).await.unwrap_err();
        assert!(matches!(again, lending::Error::Conflict(_)), "{again:?}");
    }
);
