//! Archival PDFs and the EHR export (issue #19), on both backends: a two-device loan signed by a
//! family member, one device returned with a signature, wiped and verified. The patient copy, the
//! return receipt and the certificate are real PDFs: `pdffonts` shows every font embedded,
//! `pdftotext` finds the verification code, the signer and each asset tag, a second render has
//! the same SHA-256, and a page image (`pdftoppm`) is kept in test-artifacts/. The EHR ZIP holds
//! those PDFs named by 院内ID, date and kind and a FHIR R4 Bundle that `fhir.resources` accepts,
//! whose Consent attachment hashes are the copy PDF's. Every document made is audited.

use std::path::{Path, PathBuf};
use std::process::Command;

use lending::service::loans::{ConsentInput, ReturnRequest};
use lending::service::{loans, wipes};
use lending::testing::seed_basic;
use lending::{both_dbs, Backend};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Digest as _;

use crate::spawn_app;

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (install poppler-utils: .ci/run does)"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The python of the venv with fhir.resources (scripts/fhir-venv.sh), or LENDING_FHIR_PYTHON.
fn fhir_python() -> PathBuf {
    let python = std::env::var("LENDING_FHIR_PYTHON").map_or_else(
        |_| {
            let target = std::env::var("CARGO_TARGET_DIR")
                .map_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
            target.join("fhir-venv/bin/python")
        },
        PathBuf::from,
    );
    assert!(
        python.exists(),
        "{}: missing; the FHIR check needs fhir.resources: run scripts/fhir-venv.sh",
        python.display()
    );
    python
}

/// Checks a PDF with poppler and keeps it and its first page's image; returns its text.
fn check_pdf(bytes: &[u8], name: &str) -> String {
    assert!(bytes.starts_with(b"%PDF-1.7"), "{name}: a PDF");
    let dir = artifacts();
    let file = dir.join(format!("{name}.pdf"));
    std::fs::write(&file, bytes).unwrap();
    let file = file.to_str().unwrap();
    let fonts = run("pdffonts", &[file]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{name}: a font is used\n{fonts}");
    for row in rows {
        // name, type, encoding, emb, sub, uni, object, ID: the "emb" column of every font says yes.
        let cols: Vec<&str> = row.split_whitespace().collect();
        let emb = cols[cols.len() - 5];
        assert_eq!(emb, "yes", "{name}: every font embedded\n{fonts}");
    }
    let info = run("pdfinfo", &[file]);
    let info = info.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(info.contains("Title:") && info.contains("Page size: 595 x 842 pts (A4)"), "{info}");
    let prefix = dir.join(name);
    run("pdftoppm", &["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", file, prefix.to_str().unwrap()]);
    assert!(std::fs::metadata(dir.join(format!("{name}.png"))).unwrap().len() > 5_000, "{name}: a page image");
    run("pdftotext", &["-layout", file, "-"])
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

both_dbs!(
    async fn archival_pdfs_and_the_ehr_export(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 2).await;
        let label = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };

        // A 2-device kit signed by the patient's daughter; one device back with a signature, wiped
        // by one nurse and verified by another.
        let mut req = b.check_out_request(0, &[0, 1]);
        req.consent = Some(ConsentInput { signer_name: "山田 桜".into(), relationship: "family".into(), ..req.consent.unwrap() });
        let mut tx = app.store.begin().await.unwrap();
        let out = loans::check_out(&mut tx, &b.nurse, req, &app.state.receipts).await.unwrap();
        tx.commit().await.unwrap();
        let loan_id = out.loan.id.clone();
        let tags: Vec<String> = out.devices.iter().map(|d| d.asset_tag.clone()).collect();
        let code = out.consent.verification_code.clone();
        let mut tx = app.store.begin().await.unwrap();
        let ret = ReturnRequest {
            device_id: b.devices[0].clone(),
            damaged: false,
            accessories_complete: true,
            cleaned: true,
            condition_notes: String::new(),
            returned_by_name: "山田 桜".into(),
            signature_svg: Some(lending::demo::DEMO_SIGNATURE.into()),
        };
        loans::return_device(&mut tx, &b.nurse, ret).await.unwrap();
        let wipe = wipes::record(&mut tx, &b.nurse, b.wipe_request(&b.devices[0])).await.unwrap();
        wipes::verify(&mut tx, &b.nurse2, &wipe.id).await.unwrap();
        tx.commit().await.unwrap();

        let token = app.token("n1").await;
        let get = |path: String| {
            let (c, t) = (app.client.clone(), token.clone());
            let url = app.url(&path);
            async move {
                let r = c.get(url).bearer_auth(t).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK, "{path}");
                let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
                (ct, r.bytes().await.unwrap().to_vec())
            }
        };

        // The patient copy.
        let (ct, copy) = get(format!("/api/v1/loans/{loan_id}/copy.pdf")).await;
        assert_eq!(ct, "application/pdf");
        let text = check_pdf(&copy, &format!("archive-patient-copy-{label}"));
        assert!(text.contains(&code), "the verification code\n{text}");
        assert!(text.contains("山田 桜") && text.contains("家族"), "the signer and relationship\n{text}");
        for tag in &tags {
            assert!(text.contains(tag.as_str()), "asset tag {tag}\n{text}");
        }
        assert!(text.contains(&out.consent.document_sha256), "the document's SHA-256");
        let (_, again) = get(format!("/api/v1/loans/{loan_id}/copy.pdf")).await;
        assert_eq!(sha256(&copy), sha256(&again), "the same record gives the same bytes");

        // The return receipt and the certificate.
        let (_, receipt) = get(format!("/api/v1/loans/{loan_id}/returns/receipt.pdf")).await;
        let text = check_pdf(&receipt, &format!("archive-return-receipt-{label}"));
        assert!(text.contains(&tags[0]) && text.contains("山田 桜") && !text.contains(&tags[1]), "{text}");
        let (_, cert) = get(format!("/api/v1/wipes/{}/certificate.pdf", wipe.id)).await;
        let text = check_pdf(&cert, &format!("archive-certificate-{label}"));
        assert!(text.contains(&tags[0]) && text.contains("クリア") && text.contains(&b.wipe_steps[0]), "{text}");
        let (_, cert2) = get(format!("/api/v1/wipes/{}/certificate.pdf", wipe.id)).await;
        assert_eq!(sha256(&cert), sha256(&cert2));

        // The staff pages give the same files.
        let page = app.client.get(app.url(&format!("/loans/{loan_id}/copy.pdf"))).send().await.unwrap();
        assert!(page.status().is_redirection(), "pages need a signed-in member: {}", page.status());

        // The EHR export of the patient.
        let (ct, zip) = get(format!("/api/v1/patients/{}/ehr-export", b.patients[0])).await;
        assert_eq!(ct, "application/zip");
        let (_, zip2) = get(format!("/api/v1/patients/{}/ehr-export", b.patients[0])).await;
        assert_eq!(sha256(&zip), sha256(&zip2), "the export too");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let names: Vec<String> = archive.file_names().map(|n| n.unwrap().into_owned()).collect();
        let mut tx = app.store.read().await.unwrap();
        let number = lending::store::patients::get(&mut tx, &b.patients[0]).await.unwrap().unwrap().number;
        drop(tx);
        let folder = format!("{number}/{number}_");
        assert!(names.iter().all(|n| n.starts_with(&folder)), "named by 院内ID: {names:?}");
        let find = |kind: &str| names.iter().find(|n| n.contains(kind)).unwrap_or_else(|| panic!("{kind} in {names:?}")).clone();
        // 2026-11-20 in Japan, the injected clock's day.
        assert!(find("consent-copy").contains("_20261120_"), "{names:?}");
        let read = |archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| {
            let mut f = archive.by_name(name).unwrap();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut v).unwrap();
            v
        };
        let zipped_copy = read(&mut archive, &find("consent-copy"));
        assert_eq!(sha256(&zipped_copy), sha256(&copy), "the export holds the same copy");
        read(&mut archive, &find("return-receipt"));
        read(&mut archive, &find("sanitization-certificate"));
        let bundle_bytes = read(&mut archive, &find("fhir-bundle.json"));
        let bundle_file = artifacts().join(format!("archive-fhir-bundle-{label}.json"));
        std::fs::write(&bundle_file, &bundle_bytes).unwrap();
        let out_v = Command::new(fhir_python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fhir_validate.py"))
            .arg(&bundle_file)
            .output()
            .unwrap();
        assert!(out_v.status.success(), "fhir.resources: {}", String::from_utf8_lossy(&out_v.stderr));

        let bundle: Value = serde_json::from_slice(&bundle_bytes).unwrap();
        assert_eq!((bundle["resourceType"].as_str(), bundle["type"].as_str()), (Some("Bundle"), Some("collection")));
        let of = |kind: &str| -> Vec<Value> {
            bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).filter(|r| r["resourceType"] == kind).collect()
        };
        assert_eq!(of("Patient")[0]["identifier"][0]["value"], number.as_str());
        assert_eq!(of("Device").len(), 2);
        let uses = of("DeviceUseStatement");
        assert_eq!(uses.len(), 2);
        assert!(uses.iter().any(|u| u["status"] == "completed" && u["timingPeriod"]["end"].is_string()));
        assert!(uses.iter().any(|u| u["status"] == "active" && u["timingPeriod"]["end"].is_null()));
        let consent = &of("Consent")[0];
        assert_eq!(consent["performer"][0]["reference"].as_str().unwrap(), format!("RelatedPerson/{}", of("RelatedPerson")[0]["id"].as_str().unwrap()));
        let att = &consent["sourceAttachment"];
        use base64::Engine as _;
        let sha1 = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(&copy));
        assert_eq!(att["hash"].as_str(), Some(sha1.as_str()), "R4 Attachment.hash: the copy PDF's SHA-1");
        assert_eq!(att["extension"][0]["valueString"].as_str(), Some(sha256(&copy).as_str()), "and its SHA-256");
        assert!(att["url"].as_str().unwrap().ends_with(&format!("/api/v1/loans/{loan_id}/copy.pdf")), "{att}");
        let docs = of("DocumentReference");
        assert_eq!(docs.len(), 3);
        assert!(docs.iter().any(|d| d["description"].as_str() == Some(find("consent-copy").as_str())
            && d["content"][0]["attachment"]["hash"] == att["hash"]));

        // Each document made is audited, as a read of the patient's data.
        let mut tx = app.store.read().await.unwrap();
        for (action, n) in [("archive.patient_copy", 2), ("archive.return_receipt", 1), ("archive.certificate", 2), ("archive.ehr_export", 2)] {
            assert_eq!(lending::store::audit::count_action(&mut tx, action).await.unwrap(), n, "{action}");
        }
        drop(tx);

        // Nothing for a loan that does not exist, or a receipt before any return.
        let r = app.client.get(app.url("/api/v1/loans/no-such-loan/copy.pdf")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        app.stop().await;
    }
);
