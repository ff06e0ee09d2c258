//! The staff check-out pages over HTTP (the signature pad's strokes posted as the page's script
//! would): choose, explain, sign, lend, and the patient's copy with its verification code.

use lending::both_dbs;
use lending::testing::{enroll, seed_basic};
use reqwest::StatusCode;

use crate::{csrf_of, location, spawn_app_with_clock};

both_dbs!(
    async fn a_nurse_lends_a_kit_through_the_pages(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 2).await;
        let n1 = enroll(&app.store, "n1", &app.keys).await;
        let nurse = app.sign_in("n1", &n1).await;
        let page = nurse.get(app.url("/loans/new?q=山田")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("山田 花子") && page.contains("T-0000") && page.contains("T-0001"));
        let csrf = csrf_of(&page);
        let choice = [
            ("csrf", csrf.as_str()),
            ("patient_id", b.patients[0].as_str()),
            ("device_id", b.devices[0].as_str()),
            ("device_id", b.devices[1].as_str()),
            ("due_on", "2099-01-01"),
            ("purpose", "在宅モニタリング"),
        ];
        let page = nurse.post(app.url("/loans/explain")).form(&choice).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("03-0000-1111"), "the explanation shows the clinic's phones filled in");
        assert!(page.contains("id=\"signature-pad\"") && page.contains("/static/signature.js"));
        let doc_id = page.split("name=\"document_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        assert_eq!(doc_id, b.document_id);

        let mut sign: Vec<(&str, &str)> = choice.to_vec();
        sign.extend([("document_id", doc_id.as_str()), ("signer_name", "山田 花子"), ("relationship", "self"), ("explained", "yes")]);
        let without_signature = nurse.post(app.url("/loans")).form(&sign).send().await.unwrap();
        assert_eq!(without_signature.status(), StatusCode::UNPROCESSABLE_ENTITY, "no signature, no loan");
        let again = without_signature.text().await.unwrap();
        assert!(again.contains("id=\"strokes-error\"") && again.contains("value=\"山田 花子\""), "the same page, the name kept");
        sign.push(("strokes", "100,200 150,150 200,220|300,180 350,120"));
        let r = nurse.post(app.url("/loans")).form(&sign).send().await.unwrap();
        let to = location(&r);
        assert!(to.starts_with("/loans/") && to.ends_with("/copy"), "{to}");
        let copy = nurse.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
        assert!(copy.contains("山田 花子 様") && copy.contains("T-0000、T-0001") && copy.contains("data:image/svg+xml;base64,"));
        let code = copy.split("id=\"verification-code\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
        assert_eq!(code.len(), 19);

        let mut tx = app.store.read().await.unwrap();
        let consent_id = lending::store::audit::recent(&mut tx, 50).await.unwrap().into_iter().find(|e| e.action == "consent.view").unwrap().target_id;
        let check = lending::service::loans::check_receipt(&mut tx, &lending::testing::receipt_key(), &consent_id).await.unwrap();
        assert_eq!(check.verification_code, code);
        let consent = lending::store::loans::consent(&mut tx, &consent_id).await.unwrap().unwrap();
        assert!(consent.signature_svg.contains("M100 200 L150 150 L200 220"), "the strokes are stored as vectors");
        drop(tx);

        // Return through the page, wipe with the model's checklist, a second person verifies.
        let csrf = app.csrf(&nurse, "/devices").await;
        let r = nurse
            .post(app.url(&format!("/devices/{}/return", b.devices[0])))
            .form(&[("csrf", csrf.as_str()), ("accessories_complete", "yes"), ("cleaned", "yes"), ("returned_by_name", "山田 花子")])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&r), "/devices");
        let mut wipe: Vec<(&str, &str)> = vec![("csrf", csrf.as_str()), ("method", "clear"), ("passed", "yes"), ("tool", "初期化")];
        wipe.extend(b.wipe_steps.iter().map(|s| ("checklist", s.as_str())));
        let r = nurse.post(app.url(&format!("/devices/{}/wipe", b.devices[0]))).form(&wipe).send().await.unwrap();
        let cert = location(&r);
        assert!(cert.ends_with("/certificate"), "{cert}");
        let wipe_id = cert.trim_start_matches("/wipes/").trim_end_matches("/certificate").to_owned();
        let same = nurse.post(app.url(&format!("/wipes/{wipe_id}/verify"))).form(&[("csrf", csrf.as_str()), ("confirmed", "yes")]).send().await.unwrap();
        assert_eq!(same.status(), StatusCode::CONFLICT, "the one who wiped cannot verify");
        let n2 = enroll(&app.store, "n2", &app.keys).await;
        let other = app.sign_in("n2", &n2).await;
        let csrf2 = app.csrf(&other, "/devices").await;
        let page = other.get(app.url(&cert)).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("name=\"confirmed\""), "the second person is asked to confirm what they checked");
        let r = other.post(app.url(&format!("/wipes/{wipe_id}/verify"))).form(&[("csrf", csrf2.as_str())]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "not confirmed, not verified");
        assert!(r.text().await.unwrap().contains("id=\"confirmed-error\""));
        let r = other.post(app.url(&format!("/wipes/{wipe_id}/verify"))).form(&[("csrf", csrf2.as_str()), ("confirmed", "yes")]).send().await.unwrap();
        assert_eq!(location(&r), cert, "the certificate, now with the verifier");
        let certificate = other.get(app.url(&cert)).send().await.unwrap().text().await.unwrap();
        assert!(certificate.contains("データ消去証明書") && certificate.contains("職員 n1") && certificate.contains("職員 n2"));
        let mut tx = app.store.read().await.unwrap();
        let d = lending::store::devices::get(&mut tx, &b.devices[0]).await.unwrap().unwrap();
        assert_eq!(d.status, lending::DeviceStatus::Available);
        drop(tx);
        app.stop().await;
    }
);
