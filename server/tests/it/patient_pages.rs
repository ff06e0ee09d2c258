//! Patient search as people type it on a phone, registration with kana folded and a date of
//! birth, and paging instead of a silent cap.

use lending::both_dbs;
use lending::service::registry::{self, NewPatient};
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::spawn_app;

/// The rows of the patients table on a page.
fn rows(html: &str) -> Vec<String> {
    let table = html.split("<table id=\"patients\">").nth(1).unwrap().split("</table>").next().unwrap();
    table.split("<tr>").skip(2).map(ToOwned::to_owned).collect()
}

both_dbs!(
    async fn kana_and_numbers_are_found_however_typed(backend) {
        let app = spawn_app(backend).await;
        seed_basic(&app.store, 1).await;
        let secret = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &secret).await;
        let csrf = app.csrf(&nurse, "/patients").await;

        // Typed on a phone: full-width number, kana in hiragana; stored folded.
        let form = [
            ("csrf", csrf.as_str()),
            ("number", "Ｋ－０００４２"),
            ("name", "山本 太郎"),
            ("kana", "やまもと　たろう"),
            ("birth_date", "1950-04-01"),
        ];
        let r = nurse.post(app.url("/patients")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let mut tx = app.store.read().await.unwrap();
        let stored = lending::store::patients::by_number(&mut tx, "K-00042").await.unwrap().expect("stored folded");
        drop(tx);
        assert_eq!(stored.kana, "ヤマモト タロウ");
        assert_eq!(stored.birth_date, chrono::NaiveDate::from_ymd_opt(1950, 4, 1));

        for q in ["やまもと", "ﾔﾏﾓﾄ ﾀﾛｳ", "ヤマモトタロウ", "４２", "00042", "K00042", "山本太郎"] {
            let page = nurse.get(app.url("/patients")).query(&[("q", q)]).send().await.unwrap().text().await.unwrap();
            let found = rows(&page);
            assert_eq!(found.len(), 1, "{q}: {found:?}");
            assert!(found[0].contains("山本 太郎") && found[0].contains("ヤマモト タロウ"), "{q}");
            assert!(found[0].contains("1950年4月1日"), "{q}: the date of birth is shown");
        }
        let none = nurse.get(app.url("/patients?q=さとう")).send().await.unwrap().text().await.unwrap();
        assert!(rows(&none).is_empty());

        // The lending page's pick list: name, kana, number and date of birth together.
        let pick = nurse.get(app.url("/loans/new?q=ﾔﾏﾓﾄ")).send().await.unwrap().text().await.unwrap();
        let label = pick.split("<label class=\"patient\">").nth(1).unwrap().split("</label>").next().unwrap();
        assert!(label.contains("山本 太郎") && label.contains("（ヤマモト タロウ）") && label.contains("K-00042"));
        assert!(label.contains("1950年4月1日"), "{label}");

        // A date of birth in the future is refused, with the reason.
        let form = [("csrf", csrf.as_str()), ("number", "K-1"), ("name", "x"), ("birth_date", "2030-01-01")];
        let r = nurse.post(app.url("/patients")).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("生年月日"));
        app.stop().await;
    }
);

both_dbs!(
    async fn searches_page_instead_of_stopping_at_fifty(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 1).await;
        let mut tx = app.store.begin().await.unwrap();
        for i in 0..52 {
            let p = NewPatient {
                number: format!("Q-{i:04}"),
                name: format!("患者 {i}"),
                kana: "かんじゃ".into(),
                phone: String::new(),
                birth_date: String::new(),
            };
            registry::create_patient(&mut tx, &b.admin, p).await.unwrap();
        }
        tx.commit().await.unwrap();
        let secret = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &secret).await;
        let first = nurse.get(app.url("/patients?q=カンジャ")).send().await.unwrap().text().await.unwrap();
        assert_eq!(rows(&first).len(), 50);
        assert!(first.contains("52件（1–50）"), "the total is said");
        let next = first.split("rel=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap();
        let next = next.split('"').next().unwrap().replace("&#38;", "&");
        let second = nurse.get(app.url(&next)).send().await.unwrap().text().await.unwrap();
        let last = rows(&second);
        assert_eq!(last.len(), 2, "{next}");
        assert!(last[1].contains("Q-0051") && second.contains("rel=\"prev\"") && !second.contains("rel=\"next\""));
        // Each page shown is an audited read naming its patients.
        let events = lending::store::audit::recent(&mut app.store.read().await.unwrap(), 3).await.unwrap();
        let read = events.iter().find(|e| e.action == "patient.search").unwrap();
        assert!(read.details.contains("\"page\":2") && read.details.contains("\"results\":2"), "{}", read.details);
        app.stop().await;
    }
);
