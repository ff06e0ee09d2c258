//! 点検用の記録 (issue #19): every field of the checklist evidence against seeded facts — an
//! account without a second factor, a leaver, unused accounts, an expired token, a failed and a
//! verified restore test, sign-in failures and a lock-out, a patient read — on both backends,
//! on the injected clock. Bad periods are refused as input errors; nurses are refused; reading
//! is audited.

use chrono::Duration;
use lending::audit::NewEvent;
use lending::service::inspection::Item::{AccessRights as R, AdminRights as A, TwoFactor as T, UnneededAccounts as U};
use lending::service::inspection::{self, Account, Item, PasswordRule, Period};
use lending::service::{auth, patients, users};
use lending::store::audit;
use lending::testing::{enroll, own_token, receipt_key, seed_basic, test_now, TestDb};
use lending::{both_dbs, Actor, Error, Role};

const SECRETS: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

both_dbs!(
    async fn every_field_of_the_inspection_record_matches_the_seeded_facts(backend) {
        let db = TestDb::new(backend).await;
        let clock = lending::testing::test_clock();
        let store = db.store(clock.clone()).await;
        let b = seed_basic(&store, 1).await;
        let keys = lending::secrets::SecretBox::from_base64(SECRETS).unwrap();
        let t0 = test_now();
        for login in ["n1", "a1", "au1"] {
            enroll(&store, login, &keys).await; // n2 never sets up a second factor
        }
        let mut tx = store.begin().await.unwrap();
        let mut add = async |login: &str| {
            let u = users::NewUser { login: login.into(), name: format!("職員 {login}"), role: Role::Nurse, site: "本院".into(), email: String::new() };
            users::add_user(&mut tx, &Actor::cli(), u).await.unwrap().0.id
        };
        let leaver = add("leaver").await;
        add("idle").await;
        tx.commit().await.unwrap();
        let old_token = own_token(&store, "a1").await; // expires after 90 days

        // 100 days later: n1, a1 and au1 sign in; the leaver is disabled; n2 and idle never sign in.
        clock.advance(Duration::days(100));
        let t1 = t0 + Duration::days(100);
        let mut tx = store.begin().await.unwrap();
        for who in [&b.nurse, &b.admin, &b.auditor] {
            tx.audit(who, NewEvent::new("auth.sign_in", "user", &who.user_id));
        }
        auth::set_disabled(&mut tx, &b.admin, &leaver, true).await.unwrap();
        patients::view(&mut tx, &b.nurse, &b.patients[0]).await.unwrap();
        tx.commit().await.unwrap();
        let new_token = own_token(&store, "n1").await;
        assert!(users::authenticate_token(&store, &new_token, "10.0.0.5").await.unwrap().is_ok());
        assert!(users::authenticate_token(&store, &old_token, "10.0.0.5").await.unwrap().is_err(), "expired");
        for _ in 0..auth::LOCK_AFTER {
            auth::sign_in_password(&store, "n1", "wrong password", "198.51.100.7").await.unwrap();
        }

        // A restore test that fails (no such file), then a backup and a restore test that passes.
        let dir = tempfile::tempdir().unwrap();
        let key = receipt_key();
        let missing = dir.path().join("missing.sqlite");
        assert!(lending::backup::restore_check(&missing, &store, &db.url, None, &key.public_key()).await.is_err());
        let file = dir.path().join("lending-2027-02-28.backup");
        let m = lending::backup::backup(&store, &db.url, &file, None, &key).await.unwrap();
        let checked = lending::backup::restore_check(&file, &store, &db.url, None, &key.public_key()).await.unwrap();
        assert_eq!(checked, m);
        let mut tx = store.read().await.unwrap();
        let (head_seq, head_hash) = audit::head(&mut tx).await.unwrap();
        drop(tx);

        let mut tx = store.begin().await.unwrap();
        let e = inspection::read(&mut tx, &b.auditor, "2027-02-27", "2027-02-28", 90).await.unwrap();
        tx.commit().await.unwrap();

        assert_eq!(e.generated_at, t1);
        assert_eq!(e.period, Period { from: chrono::NaiveDate::from_ymd_opt(2027, 2, 27).unwrap(), until: chrono::NaiveDate::from_ymd_opt(2027, 2, 28).unwrap() });
        assert_eq!(e.unused_days, 90);
        let account = |login: &str, role, second_factor: bool, last: bool, disabled: bool, unused: bool, items: &[Item]| Account {
            login: login.into(),
            name: format!("職員 {login}"),
            role,
            site: "本院".into(),
            created_at: t0,
            second_factor_since: second_factor.then_some(t0),
            first_sign_in_pending: !second_factor, // enroll() also set a real password
            last_sign_in: last.then_some(t1),
            disabled,
            disabled_since: disabled.then_some(t1),
            unused,
            items: items.to_vec(),
        };
        let expected = vec![
            account("a1", Role::Admin, true, true, false, false, &[R, T, A]),
            account("au1", Role::Auditor, true, true, false, false, &[R, T]),
            account("idle", Role::Nurse, false, false, false, true, &[R, T, U]),
            account("leaver", Role::Nurse, false, false, true, false, &[R, T, U]),
            account("n1", Role::Nurse, true, true, false, false, &[R, T]),
            account("n2", Role::Nurse, false, false, false, true, &[R, T, U]),
        ];
        assert_eq!(e.accounts, expected);
        assert_eq!(e.admins, vec!["a1".to_owned()]);
        assert_eq!(e.password_rule, PasswordRule::IN_FORCE);
        assert_eq!((e.password_rule.min_chars, e.password_rule.history, e.password_rule.lock_after), (8, 5, 5));
        assert!(e.password_rule.second_factor_required && !e.password_rule.periodic_change_required);

        assert_eq!(e.tokens.len(), 2);
        let (n1, a1) = (&e.tokens[0], &e.tokens[1]);
        assert_eq!((n1.owner.as_str(), n1.name.as_str(), n1.created_at, n1.age_days), ("n1", "test", t1, 0));
        assert_eq!((n1.last_used_at, n1.expires_at, n1.expired, n1.revoked_at, n1.made_at_cli), (Some(t1), Some(t1 + Duration::days(90)), false, None, false));
        assert_eq!((a1.owner.as_str(), a1.created_at, a1.age_days), ("a1", t0, 100));
        assert_eq!((a1.last_used_at, a1.expires_at, a1.expired, a1.revoked_at), (None, Some(t0 + Duration::days(90)), true, None));

        assert_eq!(e.access.patient_readers, vec![("n1".to_owned(), 1)]);
        assert_eq!((e.access.failed_sign_ins, e.access.lockouts, e.access.refused_tokens), (5, 1, 0));
        assert_eq!(e.access.failures.len(), 5);
        assert!(e.access.failures.iter().all(|f| f.login == "n1" && f.source == "198.51.100.7" && f.at == t1));
        assert_eq!(e.access.lockout_events.len(), 1);
        assert_eq!((e.access.lockout_events[0].login.as_str(), e.access.lockout_events[0].at), ("n1", t1));

        assert_eq!(e.backups.total, 1);
        let made = &e.backups.recent[0];
        assert_eq!((made.at, made.sha256.as_str(), made.format.as_str(), made.encrypted, made.audit_head_seq), (t1, m.sha256.as_str(), m.format.as_str(), false, m.audit_head_seq));
        let restored = e.backups.last_verified_restore.as_ref().unwrap();
        assert_eq!((restored.at, restored.sha256.as_str(), restored.file.as_str(), restored.audit_head_seq, restored.reason.as_str()), (t1, m.sha256.as_str(), "lending-2027-02-28.backup", m.audit_head_seq, ""));
        assert_eq!(e.backups.failed_since, None, "the failed test came before the one that passed");

        let checkpoint = e.anchor.checkpoint.as_ref().unwrap();
        assert_eq!((checkpoint.seq, checkpoint.key_id.as_str()), (m.audit_head_seq, key.key_id().as_str()));
        assert_eq!((e.anchor.head_seq, e.anchor.head_hash.as_str()), (head_seq, head_hash.as_str()));

        // Reading it is audited (it names people).
        let mut tx = store.read().await.unwrap();
        let last = audit::recent(&mut tx, 1).await.unwrap().remove(0);
        drop(tx);
        assert_eq!((last.action.as_str(), last.actor_login.as_str()), ("inspection.view", "au1"));
        assert!(last.details.contains("\"from\":\"2027-02-27\""));

        // A restore test failing after the last good one shows.
        assert!(lending::backup::restore_check(&missing, &store, &db.url, None, &key.public_key()).await.is_err());
        let mut tx = store.begin().await.unwrap();
        let csv = inspection::csv(&mut tx, &b.admin, "2027-02-27", "2027-02-28", 90).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        let later = inspection::read(&mut tx, &b.admin, "2027-02-27", "2027-02-28", 90).await.unwrap();
        tx.commit().await.unwrap();
        let failed = later.backups.failed_since.unwrap();
        assert!(failed.file == "missing.sqlite" && !failed.reason.is_empty() && failed.sha256.is_empty());

        // The CSV: BOM, header, one fact a line, each naming its checklist item.
        assert_eq!(&csv[..3], b"\xEF\xBB\xBF");
        let text = std::str::from_utf8(&csv[3..]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "チェックリスト項目,記録,対象,項目,値");
        for want in [
            "二要素認証の導入,職員アカウント,n2（職員 n2）,二要素認証,未設定",
            "二要素認証の導入,職員アカウント,a1（職員 a1）,二要素認証の設定日時,2026年11月20日 10:00",
            "退職者や使用していないアカウント等、不要なアカウントの削除,職員アカウント,leaver（職員 leaver）,無効化の日時,2027年2月28日 10:00",
            "退職者や使用していないアカウント等、不要なアカウントの削除,職員アカウント,idle（職員 idle）,90日を超えて未使用,はい",
            "退職者や使用していないアカウント等、不要なアカウントの削除,職員アカウント,n1（職員 n1）,最終サインイン,2027年2月28日 10:00",
            "管理者権限を持つ者の明示,管理者権限を持つ者,,ログインID,a1",
            "退職者や使用していないアカウント等、不要なアカウントの削除,APIトークン,a1（test）,期限切れ,はい",
            "利用者の職種・担当業務別のアクセス権限の設定,APIトークン,a1（test）,経過日数,100",
            "アクセスログの管理,アクセスログの確認,n1,患者情報の閲覧（回）,1",
            "アクセスログの管理,アクセスログの確認,2027年2月27日〜2027年2月28日,ロック（件）,1",
            "バックアップ（複数世代）の取得と復旧手順の確認,バックアップ,,作成した世代（件）,1",
        ] {
            assert!(lines.contains(&want), "missing line {want}\n{text}");
        }
        assert!(lines.iter().any(|l| l.starts_with("バックアップ（複数世代）の取得と復旧手順の確認,復元テスト,lending-2027-02-28.backup,最後に確認できた復元,2027年2月28日 10:00") && l.contains(&m.sha256)));
        assert!(lines.iter().any(|l| l.contains(",その後に失敗した復元テスト,")));
        assert!(lines[1..].iter().all(|l| l.split(',').next().is_some_and(|item| !item.is_empty())), "every line names its item");
    }
);

both_dbs!(
    async fn bad_periods_are_input_errors_and_nurses_are_refused(backend) {
        let db = TestDb::new(backend).await;
        let store = db.store(lending::testing::test_clock()).await;
        let b = seed_basic(&store, 1).await;
        let mut tx = store.begin().await.unwrap();
        for (from, until) in [("2026-11-30", "2026-11-01"), ("2026/11/01", "2026-11-30"), ("2025-01-01", "2026-11-30"), ("", "2026-11-30")] {
            let got = inspection::read(&mut tx, &b.admin, from, until, 90).await;
            assert!(matches!(got, Err(Error::Validation(_))), "{from}..{until}: {got:?}");
        }
        assert!(matches!(inspection::read(&mut tx, &b.nurse, "2026-13-01", "", 90).await, Err(Error::Forbidden)), "the policy first");
        // No dates: the last complete month.
        let e = inspection::read(&mut tx, &b.auditor, "", "", 90).await.unwrap();
        assert_eq!(e.period.label_ja(), "2026年10月1日〜2026年10月31日");
        drop(tx);
    }
);
