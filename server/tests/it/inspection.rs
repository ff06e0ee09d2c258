//! 点検用の記録 over HTTP (issue #19): the page and its CSV show every seeded fact — an account
//! without a second factor, a leaver disabled from the admin page, an unused account, an expired
//! token, a failed sign-in, a patient search, a backup and a verified restore test, the signed
//! checkpoint — on both backends and the injected clock; printable (A4, 作成・確認・承認 印);
//! English through the language switch; a bad period is a 422 in Japanese; nurses get 403; every
//! read is audited.

use chrono::Duration;
use lending::testing::{enroll, receipt_key, seed_basic, test_now};
use lending::{both_dbs, Actor, Role};
use reqwest::StatusCode;

use crate::spawn_app_with_clock;

/// The HTML of the element with `id` up to its end tag's line (enough for the checks here).
fn part<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[start..];
    &rest[..rest.find("</tr>").or_else(|| rest.find("</table>")).unwrap_or(rest.len())]
}

both_dbs!(
    async fn the_inspection_record_shows_every_seeded_fact(backend) {
        let clock = lending::testing::test_clock();
        let app = spawn_app_with_clock(backend, clock.clone()).await;
        seed_basic(&app.store, 1).await;
        let t0 = test_now();
        let a1 = enroll(&app.store, "a1", &app.keys).await;
        let au1 = enroll(&app.store, "au1", &app.keys).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await; // n2 never sets up a second factor
        let mut tx = app.store.begin().await.unwrap();
        let leaver = lending::service::users::add_user(
            &mut tx,
            &Actor::cli(),
            lending::service::users::NewUser { login: "leaver".into(), name: "退職 太郎".into(), role: Role::Nurse, site: String::new(), email: String::new() },
        )
        .await
        .unwrap()
        .0
        .id;
        tx.commit().await.unwrap();
        app.token("a1").await; // expires after 90 days
        assert_eq!(t0, app.store.clock().now());

        clock.advance(Duration::days(100));
        let admin = app.sign_in("a1", &a1).await;
        let csrf = app.csrf(&admin, "/admin/users").await;
        let r = admin.post(app.url(&format!("/admin/users/{leaver}/disable"))).form(&[("csrf", csrf.as_str()), ("confirm", "yes")]).send().await.unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        let nurse = app.sign_in("n1", &n1).await;
        assert!(nurse.get(app.url("/patients?q=山田")).send().await.unwrap().status().is_success());
        let wrong = app.browser().post(app.url("/login")).form(&[("login", "n2"), ("password", "not the password")]).send().await.unwrap();
        assert!(!wrong.status().is_server_error());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nightly.backup");
        let key = receipt_key();
        let m = lending::backup::backup(&app.store, &app.db.url, &file, None, &key).await.unwrap();
        lending::backup::restore_check(&file, &app.store, &app.db.url, None, &key.public_key()).await.unwrap();

        // Nurses may not read it.
        for path in ["/inspection", "/inspection.csv"] {
            assert_eq!(nurse.get(app.url(path)).send().await.unwrap().status(), StatusCode::FORBIDDEN, "{path}");
        }

        let auditor = app.sign_in("au1", &au1).await;
        let page = auditor.get(app.url("/inspection?from=2027-02-27&until=2027-02-28")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        assert!(page.contains("点検用の記録（サイバーセキュリティ対策チェックリスト）"));
        assert!(part(&page, "period").contains("2027年2月27日〜2027年2月28日"));
        let stamps = page.split("class=\"stamps\"").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(stamps.contains("<th>作成</th><th>確認</th><th>承認</th>") && stamps.matches("<td>印</td>").count() == 3);

        let a1_row = part(&page, "account-a1");
        assert!(a1_row.contains("管理者") && a1_row.contains("2026年11月20日 10:00") && a1_row.contains("2027年2月28日 10:00"), "{a1_row}");
        assert!(a1_row.contains("管理者権限を持つ者の明示") && a1_row.contains("二要素認証の導入"));
        let n2_row = part(&page, "account-n2");
        assert!(n2_row.contains("second-factor finding\">未設定") && n2_row.contains("last-sign-in\">なし"), "{n2_row}");
        assert!(n2_row.contains("90日を超えて未使用") && n2_row.contains("初回サインイン未完了"), "{n2_row}");
        assert!(n2_row.contains("不要なアカウントの削除"));
        let leaver_row = part(&page, "account-leaver");
        assert!(leaver_row.contains("無効（退職者等） 2027年2月28日 10:00") && !leaver_row.contains("未使用"), "{leaver_row}");
        let n1_row = part(&page, "account-n1");
        assert!(n1_row.contains("看護師") && n1_row.contains("state\">有効<") && !n1_row.contains("不要なアカウント"), "{n1_row}");
        assert!(part(&page, "admins").contains("<td>a1</td>"));
        assert!(part(&page, "password-rule").contains("8〜128文字") && part(&page, "password-rule").contains("直近5回"));
        let tokens = page.split("id=\"tokens\"").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(tokens.contains("<td>a1</td>") && tokens.contains("<td class=\"num\">100</td>") && tokens.contains("期限切れ"), "{tokens}");
        assert_eq!(part(&page, "failed"), "id=\"failed\">1</td>");
        assert_eq!(part(&page, "lockouts"), "id=\"lockouts\">0</td>");
        let readers = page.split("id=\"readers\"").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(readers.contains("<td>n1</td>"), "{readers}");
        let failures = page.split("id=\"failure-list\"").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(failures.contains("<td>n2</td>") && failures.contains("2027年2月28日 10:00"));
        assert!(part(&page, "generations").contains(">1<"));
        let backups = page.split("id=\"backups\"").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(backups.contains(&m.sha256) && backups.contains(&format!("#{}", m.audit_head_seq)));
        let restore = page.split("id=\"restore\"").nth(1).unwrap().split("</div>").next().unwrap();
        assert!(restore.contains("最後に確認できた復元: 2027年2月28日 10:00 — nightly.backup") && restore.contains(&m.sha256), "{restore}");
        let anchor = page.split("id=\"anchor\"").nth(1).unwrap().split("</div>").next().unwrap();
        assert!(anchor.contains(&format!("最新の署名付きチェックポイント: #{}", m.audit_head_seq)) && anchor.contains(&key.key_id()), "{anchor}");
        assert!(app.client.get(app.url("/static/staff.css")).send().await.unwrap().text().await.unwrap().contains("@page { size: A4"));

        // A bad period: 422, in Japanese.
        let bad = auditor.get(app.url("/inspection?from=2027-02-28&until=2027-02-01")).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.text().await.unwrap().contains("期間の終わりは始まり以降の日付にしてください"));
        let bad = auditor.get(app.url("/inspection.csv?from=yesterday")).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // The CSV for Excel.
        let csv = admin.get(app.url("/inspection.csv?from=2027-02-27&until=2027-02-28")).send().await.unwrap();
        assert_eq!(csv.status(), StatusCode::OK);
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        assert!(csv.headers()["content-disposition"].to_str().unwrap().contains("inspection-2027-02-28.csv"));
        let bytes = csv.bytes().await.unwrap();
        assert_eq!(&bytes[..3], b"\xEF\xBB\xBF");
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        assert!(text.starts_with("チェックリスト項目,記録,対象,項目,値"));
        assert!(text.contains("二要素認証の導入,職員アカウント,n2（職員 n2）,二要素認証,未設定"));
        assert!(text.contains("退職者や使用していないアカウント等、不要なアカウントの削除,職員アカウント,leaver（退職 太郎）,無効化（退職者等）,はい"));

        // English through the language switch.
        auditor.get(app.url("/lang?to=en")).send().await.unwrap();
        let en = auditor.get(app.url("/inspection?from=2027-02-27&until=2027-02-28")).send().await.unwrap().text().await.unwrap();
        assert!(en.contains("Inspection record (MHLW cybersecurity checklist)") && en.contains("<th>Prepared</th>"));
        assert!(part(&en, "account-n2").contains("not enrolled") && part(&en, "account-n2").contains("Two-factor authentication"));

        // Every read named people, so every read is in the audit chain.
        let mut tx = app.store.read().await.unwrap();
        let views = lending::store::audit::count_action(&mut tx, "inspection.view").await.unwrap();
        let exports = lending::store::audit::count_action(&mut tx, "inspection.export").await.unwrap();
        drop(tx);
        assert_eq!((views, exports), (2, 1));
        app.stop().await;
    }
);
