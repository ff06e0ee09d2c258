//! Labels: every QR code decodes back to the exact URL, from the single-label SVG (rendered
//! to PNG by rsvg-convert) and from the A4 24-up sheet printed to PDF by headless Chromium
//! (rasterised by pdftoppm); decoding by zbarimg. Rotating a label revokes the old one.

use std::process::Command;

use fantoccini::wd::{PrintConfiguration, PrintMargins, PrintSize};
use fantoccini::Locator;
use lending::testing::{enroll, seed_basic};
use lending::{both_dbs, Backend};

use crate::browser::{browser_sign_in, open_browser};
use crate::{spawn_app_with_clock, TestApp};

/// The URLs in an image, decoded by zbarimg (Debian zbar-tools).
fn decode(png: &std::path::Path) -> Vec<String> {
    let out = Command::new("zbarimg")
        .args(["--raw", "-q", "-Sdisable", "-Sqrcode.enable"])
        .arg(png)
        .output()
        .expect("zbarimg is needed (apt-get install zbar-tools; .ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()
}

async fn tokens(app: &TestApp, ids: &[String]) -> Vec<String> {
    let mut tx = app.store.read().await.unwrap();
    let mut out = Vec::new();
    for id in ids {
        out.push(lending::store::devices::get(&mut tx, id).await.unwrap().unwrap().qr_token);
    }
    out
}

async fn long_institution_name(app: &TestApp) {
    let mut tx = app.store.begin().await.unwrap();
    let mut inst = lending::store::registry::institution(&mut tx).await.unwrap().unwrap();
    inst.name = "医療法人社団さくら会 さくら在宅クリニック 訪問看護ステーション本院".into();
    lending::service::registry::save_institution(&mut tx, &lending::Actor::cli(), &inst).await.unwrap();
    tx.commit().await.unwrap();
}

both_dbs!(
    async fn single_label_svgs_decode_to_their_exact_urls_and_rotation_revokes(backend) {
        let app = spawn_app_with_clock(backend, lending::testing::test_clock()).await;
        let b = seed_basic(&app.store, 3).await;
        long_institution_name(&app).await;
        let token = app.token("n1").await;
        let dir = tempfile::tempdir().unwrap();
        for (i, qr) in tokens(&app, &b.devices).await.iter().enumerate() {
            for layout in ["a4-24", "a4-12", "tape-62"] {
                let r = app.client.get(app.url(&format!("/api/v1/devices/{}/label.svg?layout={layout}", b.devices[i]))).bearer_auth(&token).send().await.unwrap();
                assert_eq!(r.headers()["content-type"], "image/svg+xml; charset=utf-8");
                let svg = r.text().await.unwrap();
                assert!(svg.contains(">T-000") && svg.contains("03-0000-2222") && svg.contains("読み取ると使い方と連絡先が表示されます"), "real text on the label");
                let (svg_path, png_path) = (dir.path().join(format!("{i}-{layout}.svg")), dir.path().join(format!("{i}-{layout}.png")));
                std::fs::write(&svg_path, &svg).unwrap();
                let ok = Command::new("rsvg-convert").args(["-d", "300", "-p", "300", "-b", "white", "-o"]).arg(&png_path).arg(&svg_path).status()
                    .expect("rsvg-convert is needed (apt-get install librsvg2-bin; .ci/run installs it)");
                assert!(ok.success());
                assert_eq!(decode(&png_path), vec![format!("http://127.0.0.1:8081/d/{qr}")], "{layout}");
            }
        }
        // A reprint: the new label works, the old one is revoked.
        let old = tokens(&app, &b.devices[..1]).await.remove(0);
        let r = app.client.post(app.url(&format!("/api/v1/devices/{}/rotate-label", b.devices[0]))).bearer_auth(&token).send().await.unwrap();
        let new_url = r.json::<serde_json::Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
        assert!(!new_url.ends_with(&old));
        let mut tx = app.store.read().await.unwrap();
        assert!(lending::store::public::is_revoked(&mut tx, &old).await.unwrap());
        assert!(lending::store::public::device_help(&mut tx, &old).await.unwrap().is_none());
        assert_eq!(lending::store::audit::count_action(&mut tx, "device.rotate_label").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_a4_24_sheet_prints_to_pdf_and_every_code_decodes() {
    let app = spawn_app_with_clock(Backend::Sqlite, lending::testing::test_clock()).await;
    let b = seed_basic(&app.store, 26).await;
    long_institution_name(&app).await;
    let secret = enroll(&app.store, "n1", &app.keys).await;
    let (_driver, c) = open_browser(1280, 900).await;
    browser_sign_in(&c, &app, "n1", &secret).await;

    c.goto(&app.url("/labels")).await.unwrap();
    for checkbox in c.find_all(Locator::Css("input[name=device_id]")).await.unwrap() {
        checkbox.click().await.unwrap();
    }
    c.find(Locator::Css("form[action='/labels/print'] button[type=submit]")).await.unwrap().click().await.unwrap();
    c.wait().for_element(Locator::Css("section.sheet")).await.unwrap();
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("labels-a4-24-preview.png"), c.screenshot().await.unwrap()).unwrap();

    let config = PrintConfiguration::builder()
        .size(PrintSize { width: 21.0, height: 29.7 })
        .margins(PrintMargins { top: 0.0, bottom: 0.0, left: 0.0, right: 0.0 })
        .shrink_to_fit(false)
        .background(true)
        .build()
        .unwrap();
    let pdf = c.print(config).await.unwrap();
    c.close().await.unwrap();
    let pdf_path = artifacts.join("labels-a4-24.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();

    let info =
        Command::new("pdfinfo").arg(&pdf_path).output().expect("pdfinfo is needed (apt-get install poppler-utils)");
    let pages: usize = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("page count");
    assert_eq!(pages, 2, "26 labels on 24-up sheets: exactly 2 pages");

    // Each label cell cut from the page at 300 dpi, as a phone camera would see one label.
    let layout = lending::labels::Layout::find("a4-24").unwrap();
    let px = |mm: f64| format!("{:.0}", mm / 25.4 * 300.0);
    let dir = tempfile::tempdir().unwrap();
    let mut decoded = Vec::new();
    for page in 1..=pages {
        for slot in 0..layout.per_page() {
            let (col, row) = (
                f64::from(u32::try_from(slot % layout.cols).unwrap()),
                f64::from(u32::try_from(slot / layout.cols).unwrap()),
            );
            let out = dir.path().join(format!("p{page}-{slot}"));
            let ok = Command::new("pdftoppm")
                .args(["-r", "300", "-png", "-singlefile", "-f", &page.to_string(), "-l", &page.to_string()])
                .args([
                    "-x",
                    &px(layout.margin_left + col * layout.label_w),
                    "-y",
                    &px(layout.margin_top + row * layout.label_h),
                ])
                .args(["-W", &px(layout.label_w), "-H", &px(layout.label_h)])
                .arg(&pdf_path)
                .arg(&out)
                .status()
                .expect("pdftoppm is needed (apt-get install poppler-utils; .ci/run installs it)");
            assert!(ok.success());
            let codes = decode(&out.with_extension("png"));
            let expect_label = (page - 1) * layout.per_page() + slot < 26;
            assert_eq!(codes.len(), usize::from(expect_label), "page {page}, label {slot}: {codes:?}");
            decoded.extend(codes);
        }
    }
    decoded.sort();
    let mut expected: Vec<String> =
        tokens(&app, &b.devices).await.iter().map(|t| format!("http://127.0.0.1:8081/d/{t}")).collect();
    expected.sort();
    assert_eq!(decoded, expected, "every label decodes to its own device's URL");
    let mut tx = app.store.read().await.unwrap();
    assert_eq!(lending::store::audit::count_action(&mut tx, "labels.print").await.unwrap(), 1);
    drop(tx);
    app.stop().await;
}
