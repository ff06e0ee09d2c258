//! The registry pages over HTTP: an admin sets the institution, adds a vendor with its
//! responsibility split, a model with its first explanation document, then a second version;
//! the first version stays as it was. Auditors read and are refused writes.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::{location, spawn_app_with_clock};

both_dbs!(
    async fn an_admin_registers_vendor_model_and_document_versions(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        seed_basic(&app.store, 1).await;
        let a1 = enroll(&app.store, "a1", &app.keys).await;
        let admin = app.sign_in("a1", &a1).await;

        // Institution settings: the form shows the current values and saves new ones.
        let page = admin.get(app.url("/registry/institution")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("value=\"03-0000-1111\""));
        let csrf = crate::csrf_of(&page);
        let inst = [
            ("csrf", csrf.as_str()),
            ("name", "みどり在宅クリニック"),
            ("name_en", "Midori Home Clinic"),
            ("day_phone", "03-1111-2222"),
            ("day_hours", "平日 9時〜17時"),
            ("day_hours_en", "Weekdays 9-17"),
            ("night_phone", "090-0000-0000"),
            ("night_hours", "夜間・休日"),
            ("night_hours_en", "Nights"),
            ("email", "info@example.jp"),
            ("address", "東京都港区"),
            ("public_base_url", "https://help.example.jp"),
        ];
        let r = admin.post(app.url("/registry/institution")).form(&inst).send().await.unwrap();
        assert_eq!(location(&r), "/registry/institution?saved=1");
        let page = admin.get(app.url("/registry/institution?saved=1")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("保存しました") && page.contains("みどり在宅クリニック") && page.contains("090-0000-0000"));
        let mut missing = inst.to_vec();
        missing.retain(|(k, _)| *k != "night_phone");
        let r = admin.post(app.url("/registry/institution")).form(&missing).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("夜間・休日の電話番号を入力してください"));

        // A vendor with its support contacts and responsibility split.
        let r = admin
            .post(app.url("/registry/vendors"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "ヘルステック株式会社"),
                ("support_phone", "0120-000-111"),
                ("support_hours", "24時間"),
                ("responsibility_notes", "クラウド上のデータ管理は委託先、機器の貸出・回収・消去は当院。"),
                ("may_access_data", "yes"),
                ("review_date", "2027-04-01"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), "/registry/vendors?saved=1");
        let page = admin.get(app.url("/registry/vendors")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("ヘルステック株式会社") && page.contains("0120-000-111") && page.contains("2027年4月1日"));
        assert!(page.contains("クラウド上のデータ管理は委託先"));
        let bad_date = admin
            .post(app.url("/registry/vendors"))
            .form(&[("csrf", csrf.as_str()), ("name", "X"), ("review_date", "来年")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad_date.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad_date.text().await.unwrap().contains("見直し日は 2026-11-22 の形で入力してください"));

        let nul = admin.post(app.url("/registry/vendors")).form(&[("csrf", csrf.as_str()), ("name", "A\0B")]).send().await.unwrap();
        assert_eq!(nul.status(), StatusCode::UNPROCESSABLE_ENTITY, "a NUL is bad input, not a database failure");
        assert!(nul.text().await.unwrap().contains("使えない文字"));
        let en = admin.get(app.url("/registry/vendors")).header("accept-language", "en-US,en;q=0.9").send().await.unwrap().text().await.unwrap();
        assert!(en.contains("Add a vendor") && en.contains("Responsibility split"), "English on switch");

        // A model with every field of NewModel and its first document.
        let vendor_id = {
            let mut tx = app.store.read().await.unwrap();
            lending::store::registry::vendors(&mut tx).await.unwrap().into_iter().find(|v| v.name == "ヘルステック株式会社").unwrap().id
        };
        let model = [
            ("csrf", csrf.as_str()),
            ("manufacturer", "ヘルステック"),
            ("model_name", "心電図パッチ E2"),
            ("model_name_en", "ECG patch E2"),
            ("kind", "wearable"),
            ("vendor_id", vendor_id.as_str()),
            ("connectivity", "Bluetooth LE"),
            ("data_on_device", "心電図波形\n装着時間\n"),
            ("security_limitations", "端末内のデータは暗号化されない"),
            ("latest_firmware", "2.1"),
            ("support_ends", "2030-03-31"),
            ("wipe_steps", "アプリから登録解除\n初期化\n\n清拭"),
            ("summary_ja", "胸に貼って心電図を記録します。"),
            ("summary_en", "Records an ECG on the chest."),
            ("troubleshooting_ja", "ランプが消えた\nはがれた"),
            ("troubleshooting_en", "The light is off"),
            ("alarms_ja", "アラームはありません"),
            ("alarms_en", "No alarms"),
            ("if_lost_ja", "すぐにお電話ください"),
            ("if_lost_en", "Call us at once"),
            ("returning_ja", "返却袋に入れてください"),
            ("returning_en", "Use the return bag"),
            ("data_protection_ja", "返却後にすべて消去します"),
            ("data_protection_en", "Erased after return"),
            ("title_ja", "心電図パッチの貸出について"),
            ("title_en", "About the ECG patch"),
            ("body_ja", "困ったときは{day_phone}へ。"),
            ("body_en", "Call {day_phone}."),
        ];
        let r = admin.post(app.url("/registry/models")).form(&model).send().await.unwrap();
        let to = location(&r);
        assert!(to.starts_with("/registry/models/") && to.ends_with("?saved=1"), "{to}");
        let model_id = to.trim_start_matches("/registry/models/").trim_end_matches("?saved=1").to_owned();
        let mut tx = app.store.read().await.unwrap();
        let m = lending::store::registry::model(&mut tx, &model_id).await.unwrap().unwrap();
        assert_eq!(m.vendor_id.as_deref(), Some(vendor_id.as_str()));
        assert_eq!(lending::store::registry::DeviceModel::list(&m.wipe_steps), ["アプリから登録解除", "初期化", "清拭"]);
        assert_eq!(lending::store::registry::DeviceModel::list(&m.data_on_device), ["心電図波形", "装着時間"]);
        assert_eq!(m.support_ends, chrono::NaiveDate::from_ymd_opt(2030, 3, 31));
        assert_eq!((m.if_lost_en.as_str(), m.data_protection_ja.as_str()), ("Call us at once", "返却後にすべて消去します"));
        let v1 = lending::store::registry::documents(&mut tx, &model_id).await.unwrap();
        assert_eq!(v1.len(), 1);
        let v1 = v1[0].clone();
        drop(tx);
        let page = admin.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("心電図パッチ E2") && page.contains("アプリから登録解除") && page.contains(&v1.sha256));

        // A second version: current from now on; version 1 unchanged.
        let r = admin
            .post(app.url(&format!("/registry/models/{model_id}/documents")))
            .form(&[("csrf", csrf.as_str()), ("title_ja", "心電図パッチの貸出について（改訂）"), ("body_ja", "改訂版です。{night_phone}")])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), format!("/registry/models/{model_id}?saved=1"));
        let mut tx = app.store.read().await.unwrap();
        let docs = lending::store::registry::documents(&mut tx, &model_id).await.unwrap();
        assert_eq!(docs.iter().map(|d| d.version).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(docs[1], v1, "the first version is exactly as it was");
        let m = lending::store::registry::model(&mut tx, &model_id).await.unwrap().unwrap();
        assert_eq!(m.current_document_id.as_deref(), Some(docs[0].id.as_str()));
        let actions: Vec<String> = lending::store::audit::recent(&mut tx, 50).await.unwrap().into_iter().map(|e| e.action).collect();
        drop(tx);
        for a in ["institution.save", "vendor.create", "model.create", "document.create"] {
            assert!(actions.iter().any(|x| x == a), "{a} audited");
        }
        let page = admin.get(app.url(&format!("/registry/models/{model_id}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains(&docs[0].sha256) && page.contains(&v1.sha256) && page.contains("（現行）"));
        let empty = admin
            .post(app.url(&format!("/registry/models/{model_id}/documents")))
            .form(&[("csrf", csrf.as_str()), ("title_ja", "x"), ("body_ja", " ")])
            .send()
            .await
            .unwrap();
        assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(empty.text().await.unwrap().contains("本文を入力してください"));
        let list = admin.get(app.url("/registry/models")).send().await.unwrap().text().await.unwrap();
        assert!(list.contains("心電図パッチ E2") && list.contains("第2版"));

        // The auditor reads every page and may change nothing.
        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let auditor = app.sign_in("au1", &au1).await;
        for path in ["/registry/institution", "/registry/vendors", "/registry/models", &format!("/registry/models/{model_id}")] {
            let r = auditor.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let page = r.text().await.unwrap();
            assert!(page.contains("監査担当は閲覧のみです"), "{path}");
            assert!(!page.contains("<form method=\"post\" action=\"/registry"), "{path}: no write form");
        }
        let csrf = app.csrf(&auditor, "/registry/vendors").await;
        for (path, form) in [
            ("/registry/vendors".to_owned(), vec![("csrf", csrf.as_str()), ("name", "監査の試み")]),
            ("/registry/institution".to_owned(), vec![("csrf", csrf.as_str()), ("name", "x"), ("day_phone", "1"), ("night_phone", "2")]),
            ("/registry/models".to_owned(), vec![("csrf", csrf.as_str()), ("manufacturer", "m"), ("model_name", "m"), ("kind", "other"), ("title_ja", "t"), ("body_ja", "b")]),
            (format!("/registry/models/{model_id}/documents"), vec![("csrf", csrf.as_str()), ("title_ja", "t"), ("body_ja", "b")]),
        ] {
            let r = auditor.post(app.url(&path)).form(&form).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
            assert!(r.text().await.unwrap().contains("この操作を行う権限がありません"));
        }
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::registry::vendors(&mut tx).await.unwrap().iter().all(|v| v.name != "監査の試み"));
        assert_eq!(lending::store::registry::documents(&mut tx, &model_id).await.unwrap().len(), 2);
        drop(tx);
        app.stop().await;
    }
);
