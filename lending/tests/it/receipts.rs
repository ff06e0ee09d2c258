//! Consent receipts: the institution's Ed25519 signature covers the text shown, its hash and the
//! drawn signature; changing any of them in the database makes the receipt fail.

use lending::service::loans::{check_out, check_receipt};
use lending::testing::{receipt_key, seed_basic, TestDb};
use lending::{both_dbs, Backend, Store};

async fn raw(store: &Store, sql: &str) {
    match store.backend() {
        Backend::Sqlite => sqlx::query(sql).execute(store.sqlite_pool().unwrap()).await.map(|_| ()).unwrap(),
        Backend::Postgres => sqlx::query(sql).execute(store.pg_pool().unwrap()).await.map(|_| ()).unwrap(),
    }
}

both_dbs!(
    async fn tampering_with_a_consent_breaks_its_receipt(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 4).await;
        let key = receipt_key();
        let mut consents = Vec::new();
        for i in 0..4 {
            let mut tx = store.begin().await.unwrap();
            let out = check_out(&mut tx, &b.nurse, b.check_out_request(i % 3, &[i]), &key).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(out.consent.verification_code.len(), 19);
            consents.push(out.consent.id);
        }
        let mut tx = store.read().await.unwrap();
        for id in &consents {
            assert!(check_receipt(&mut tx, &key, id).await.unwrap().valid, "an untouched consent verifies");
        }
        drop(tx);
        // Another institution's key does not vouch for these consents.
        let other = lending::receipts::ReceiptKey::from_base64("b3RoZXItY2xpbmljLWtleS0wMDAwMDAwMDAwMDAwMDA").unwrap();
        let mut tx = store.read().await.unwrap();
        assert!(!check_receipt(&mut tx, &other, &consents[0]).await.unwrap().valid);
        drop(tx);

        match backend {
            Backend::Sqlite => raw(&store, "DROP TRIGGER consents_no_update").await,
            Backend::Postgres => raw(&store, "DROP TRIGGER consents_no_change ON consents").await,
        }
        let tamper = [
            "UPDATE consents SET document_text = replace(document_text, '夜間', '日中') WHERE id = $ID",
            "UPDATE consents SET signature_svg = replace(signature_svg, 'M20 70', 'M25 70') WHERE id = $ID",
            "UPDATE consents SET document_sha256 = '0000000000000000000000000000000000000000000000000000000000000000' WHERE id = $ID",
        ];
        for (sql, id) in tamper.iter().zip(&consents) {
            raw(&store, &sql.replace("$ID", &format!("'{id}'"))).await;
        }
        let mut tx = store.read().await.unwrap();
        for (n, id) in consents.iter().enumerate() {
            let valid = check_receipt(&mut tx, &key, id).await.unwrap().valid;
            assert_eq!(valid, n == 3, "consent {n}: tampered ones fail, the untouched one passes");
        }
        drop(tx);
        store.close().await;
    }
);

both_dbs!(
    async fn withdrawal_and_reconsent_are_recorded(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 2).await;
        let key = receipt_key();
        let mut tx = store.begin().await.unwrap();
        let out = check_out(&mut tx, &b.nurse, b.check_out_request(0, &[0]), &key).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert!(lending::service::loans::needing_reconsent(&mut tx).await.unwrap().is_empty());
        assert_eq!(lending::service::loans::consent_by_code(&mut tx, &out.consent.verification_code.to_lowercase()).await.unwrap(), Some(out.consent.id.clone()));
        // Typed off the copy without the hyphens, in lower case, or in full width: the same consent.
        let plain = out.consent.verification_code.replace('-', "").to_lowercase();
        let wide: String = out.consent.verification_code.chars().map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap()).collect();
        for typed in [plain, wide, format!(" {} ", out.consent.verification_code)] {
            assert_eq!(lending::service::loans::consent_by_code(&mut tx, &typed).await.unwrap(), Some(out.consent.id.clone()), "{typed}");
        }
        assert_eq!(lending::service::loans::consent_by_code(&mut tx, "ABCD").await.unwrap(), None);
        drop(tx);
        // A new version of the explanation: the open loan now needs re-consent.
        let mut tx = store.begin().await.unwrap();
        lending::service::registry::add_document_version(
            &mut tx,
            &b.admin,
            &b.model_id,
            lending::service::registry::NewDocument { title_ja: "第2版".into(), title_en: String::new(), body_ja: "改訂しました。".into(), body_en: String::new() },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(lending::service::loans::needing_reconsent(&mut tx).await.unwrap(), vec![out.loan.id.clone()]);
        drop(tx);
        // Withdrawal: a new record, once; the consent itself is unchanged and still verifies.
        let mut tx = store.begin().await.unwrap();
        lending::service::loans::withdraw_consent(&mut tx, &b.nurse, &out.loan.id, "山田 花子", "入院のため").await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        assert!(matches!(
            lending::service::loans::withdraw_consent(&mut tx, &b.nurse, &out.loan.id, "x", "").await,
            Err(lending::Error::Conflict(_))
        ));
        drop(tx);
        let mut tx = store.read().await.unwrap();
        assert!(check_receipt(&mut tx, &key, &out.consent.id).await.unwrap().valid);
        assert_eq!(lending::store::audit::count_action(&mut tx, "consent.withdraw").await.unwrap(), 1);
        drop(tx);
        store.close().await;
    }
);
