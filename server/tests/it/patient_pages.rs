//! Patient search as people type it on a phone, registration with kana folded and a date of
//! birth, and paging instead of a silent cap; the patient's page with every loan and its copy
//! (an audited read) and the record's edit (audited, refused for auditors, values kept).

use lending::both_dbs;
use lending::service::loans::ReturnRequest;
use lending::service::registry::{self, NewPatient};
use lending::testing::{enroll, seed_basic, Basic};
use reqwest::StatusCode;

use crate::{csrf_of, location, spawn_app, TestApp};

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

/// Lends devices `devices` to patient `patient` as nurse n1, through the service.
async fn lend(app: &TestApp, b: &Basic, patient: usize, devices: &[usize]) -> String {
    let mut tx = app.store.begin().await.unwrap();
    let req = b.check_out_request(patient, devices);
    let out = lending::service::loans::check_out(&mut tx, &b.nurse, req, &app.state.receipts).await.unwrap();
    tx.commit().await.unwrap();
    out.loan.id
}

/// The newest audit event about patient `id`.
async fn last_event(app: &TestApp, id: &str) -> lending::audit::EventRow {
    let mut tx = app.store.read().await.unwrap();
    lending::store::audit::for_target(&mut tx, "patient", id).await.unwrap().pop().unwrap()
}

/// The fields an edit event says changed.
fn changed(e: &lending::audit::EventRow) -> Vec<String> {
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
    serde_json::from_value(details["changed"].clone()).unwrap()
}

async fn patient(app: &TestApp, id: &str) -> lending::store::patients::Patient {
    let mut tx = app.store.read().await.unwrap();
    lending::store::patients::get(&mut tx, id).await.unwrap().unwrap()
}

both_dbs!(
    async fn patient_page_lists_every_loan_with_its_copy_and_is_an_audited_read(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 3).await;
        let p = b.patients[0].clone();
        // A closed loan (lent on the 20th, returned on the 22nd), an open one, and another patient's.
        let closed = lend(&app, &b, 0, &[0]).await;
        app.store.clock().advance(chrono::Duration::days(2));
        let mut tx = app.store.begin().await.unwrap();
        let ret = ReturnRequest { device_id: b.devices[0].clone(), returned_by_name: "山田".into(), ..ReturnRequest::default() };
        lending::service::loans::return_device(&mut tx, &b.nurse, ret).await.unwrap();
        tx.commit().await.unwrap();
        let open = lend(&app, &b, 0, &[1]).await;
        let other = lend(&app, &b, 1, &[2]).await;

        let nurse = app.sign_in("n1", &enroll(&app.store, "n1", &app.keys).await).await;
        let r = nurse.get(app.url(&format!("/patients/{p}"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page = r.text().await.unwrap();
        for shown in ["山田 花子", "P-000000", "T-0000", "T-0001", "2026年11月20日", "2026年11月22日", "2099年1月1日", "職員 n1"] {
            assert!(page.contains(shown), "{shown} is on the page");
        }
        for loan in [&closed, &open] {
            assert!(page.contains(&format!("href=\"/loans/{loan}\"")), "the loan page is linked");
            assert!(page.contains(&format!("href=\"/loans/{loan}/copy\"")), "the patient's copy is linked");
        }
        assert!(!page.contains(&other) && !page.contains("T-0002"), "another patient's loan is not listed");
        assert!(page.contains("返却済み") && page.contains("貸出中") && page.contains("終了"), "statuses");
        assert!(page.contains(&format!("href=\"/patients/{p}/edit\"")), "a nurse may edit");
        // The read is audited, by id only.
        let read = last_event(&app, &p).await;
        assert_eq!((read.action.as_str(), read.actor_login.as_str(), read.patient_id.as_str()), ("patient.view", "n1", p.as_str()));

        // Reached from the patient list and from the loan page.
        let list = nurse.get(app.url("/patients?q=P-000000")).send().await.unwrap().text().await.unwrap();
        assert!(list.contains(&format!("href=\"/patients/{p}\"")));
        let loan = nurse.get(app.url(&format!("/loans/{open}"))).send().await.unwrap().text().await.unwrap();
        assert!(loan.contains(&format!("href=\"/patients/{p}\"")));

        // In English, and for an unknown patient a 404.
        let en = nurse.get(app.url(&format!("/patients/{p}"))).header("accept-language", "en").send().await.unwrap();
        let en = en.text().await.unwrap();
        assert!(en.contains("Patient record") && en.contains("Loans") && en.contains("Lent by"));
        let none = nurse.get(app.url("/patients/no-such-patient")).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::NOT_FOUND);

        // An auditor reads it without the edit link, and may not edit.
        let auditor = app.sign_in("au1", &enroll(&app.store, "au1", &app.keys).await).await;
        let page = auditor.get(app.url(&format!("/patients/{p}"))).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("T-0001") && !page.contains("/edit\""), "no edit link for an auditor");
        let r = auditor.get(app.url(&format!("/patients/{p}/edit"))).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let csrf = app.csrf(&auditor, &format!("/patients/{p}")).await;
        let form = [("csrf", csrf.as_str()), ("name", "改ざん"), ("kana", ""), ("birth_date", "")];
        let r = auditor.post(app.url(&format!("/patients/{p}/edit"))).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(patient(&app, &p).await.name, "山田 花子");
        app.stop().await;
    }
);

both_dbs!(
    async fn edit_changes_the_record_audits_the_fields_and_keeps_what_was_typed_on_refusal(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 1).await;
        let p = b.patients[0].clone();
        let nurse = app.sign_in("n1", &enroll(&app.store, "n1", &app.keys).await).await;
        let edit = app.url(&format!("/patients/{p}/edit"));
        let form = nurse.get(&edit).send().await.unwrap().text().await.unwrap();
        assert!(form.contains("value=\"山田 花子\"") && form.contains("P-000000"), "the form holds the record");
        let csrf = csrf_of(&form);

        // Kana typed in hiragana is stored in katakana; the number is not changed by a form.
        let typed = [
            ("csrf", csrf.as_str()),
            ("number", "X-1"),
            ("name", "山田 花子"),
            ("kana", "やまだ　はなこ"),
            ("birth_date", "１９５０-０４-０１"),
        ];
        let r = nurse.post(&edit).form(&typed).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&r), format!("/patients/{p}?done=edit"));
        let saved = patient(&app, &p).await;
        assert_eq!((saved.number.as_str(), saved.name.as_str(), saved.kana.as_str()), ("P-000000", "山田 花子", "ヤマダ ハナコ"));
        assert_eq!(saved.birth_date, chrono::NaiveDate::from_ymd_opt(1950, 4, 1));
        // Audited with the fields that changed, not their values.
        let e = last_event(&app, &p).await;
        assert_eq!((e.action.as_str(), e.actor_login.as_str(), e.patient_id.as_str()), ("patient.edit", "n1", p.as_str()));
        assert_eq!(changed(&e), ["kana", "birth_date"]);
        assert!(!e.details.contains("ヤマダ") && !e.details.contains("1950"), "no PHI in the chain: {}", e.details);
        let shown = nurse.get(app.url(&location(&r))).send().await.unwrap().text().await.unwrap();
        assert!(shown.contains("患者情報を保存しました。") && shown.contains("1950年4月1日") && shown.contains("ヤマダ ハナコ"));

        // An empty name and an impossible date: 422, both reasons, every typed value kept, nothing saved.
        let edits = || async {
            let mut tx = app.store.read().await.unwrap();
            lending::store::audit::count_action(&mut tx, "patient.edit").await.unwrap()
        };
        let before = edits().await;
        let bad = [("csrf", csrf.as_str()), ("name", " "), ("kana", "すずき"), ("birth_date", "1950-13-40")];
        let r = nurse.post(&edit).form(&bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"form-errors\"") && page.contains("氏名を入力してください。"), "the name's reason");
        assert!(page.contains("生年月日は1900年以降の今日までの日付"), "the date's reason");
        assert!(page.contains("value=\"すずき\"") && page.contains("value=\"1950-13-40\""), "what was typed is kept");
        assert!(page.contains("type=\"text\" inputmode=\"numeric\""), "a date the picker cannot hold stays in view");
        // A date of birth in the future is refused too.
        let future = [("csrf", csrf.as_str()), ("name", "山田 花子"), ("kana", ""), ("birth_date", "2030-01-01")];
        let r = nurse.post(&edit).form(&future).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("value=\"2030-01-01\""));
        assert_eq!(patient(&app, &p).await, saved, "nothing was saved");
        assert_eq!(edits().await, before, "a refusal is not an edit");

        // An admin may edit as well; English messages in English mode.
        let admin = app.sign_in("a1", &enroll(&app.store, "a1", &app.keys).await).await;
        let csrf = app.csrf(&admin, &format!("/patients/{p}/edit")).await;
        let r = admin
            .post(&edit)
            .header("accept-language", "en")
            .form(&[("csrf", csrf.as_str()), ("name", ""), ("kana", ""), ("birth_date", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("Edit patient details"));
        let ok = [("csrf", csrf.as_str()), ("name", "山田 華子"), ("kana", "ヤマダ ハナコ"), ("birth_date", "")];
        let r = admin.post(&edit).form(&ok).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let e = last_event(&app, &p).await;
        assert_eq!((e.action.as_str(), changed(&e)), ("patient.edit", vec!["name".to_owned(), "birth_date".to_owned()]));
        assert_eq!(patient(&app, &p).await.birth_date, None);
        app.stop().await;
    }
);
