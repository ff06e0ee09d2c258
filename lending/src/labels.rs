//! Device labels: a QR code that opens `{public base URL}/d/{token}`, with the clinic's day and
//! night/holiday phones, the vendor's support line, the asset tag and one line telling the
//! patient what scanning does. SVG with real text, sized in millimetres; the print layouts
//! place them on A4 label sheets or 62 mm label-printer tape.

use std::fmt::Write as _;

use qrcode::{EcLevel, QrCode};

use crate::error::{Error, Result};

/// What one label shows.
#[derive(Debug, Clone)]
pub struct LabelInfo {
    pub url: String,
    pub asset_tag: String,
    pub institution: String,
    pub day_phone: String,
    pub night_phone: String,
    /// "機器の故障: 0120-…" when the model has a vendor support line.
    pub vendor_line: String,
}

/// The one-line instruction printed on every label.
pub const INSTRUCTION: &str = "読み取ると使い方と連絡先が表示されます";

/// The label's address: `{public base URL}/d/{token}`.
pub fn label_url(public_base_url: &str, token: &str) -> String {
    format!("{}/d/{token}", public_base_url.trim_end_matches('/'))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The QR code as one SVG path in a `size`-wide square at (x, y), quiet zone included. The
/// path uses whole-module coordinates under a scale, one rectangle per horizontal run of dark
/// modules, which keeps a page of labels small and quick to write.
fn qr_path(out: &mut String, data: &str, x: f64, y: f64, size: f64) -> Result<()> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| Error::Other(anyhow::anyhow!("QR: {e}")))?;
    let n = code.width();
    let modules = code.to_colors();
    // Four modules of quiet zone on each side (ISO/IEC 18004).
    let total = n + 8;
    let m = size / f64::from(u32::try_from(total).unwrap_or(u32::MAX));
    let _ = write!(
        out,
        r##"<rect x="{x:.3}" y="{y:.3}" width="{size:.3}" height="{size:.3}" fill="#fff"/><path fill="#000" transform="translate({x:.3} {y:.3}) scale({m:.5})" d=""##
    );
    for row in 0..n {
        let mut col = 0;
        while col < n {
            if modules[row * n + col] == qrcode::Color::Dark {
                let start = col;
                while col < n && modules[row * n + col] == qrcode::Color::Dark {
                    col += 1;
                }
                let _ = write!(out, "M{} {}h{}v1h-{}z", start + 4, row + 4, col - start, col - start);
            } else {
                col += 1;
            }
        }
    }
    out.push_str(r#""/>"#);
    Ok(())
}

/// One label as a standalone SVG document, `width_mm` × `height_mm`.
pub fn svg(info: &LabelInfo, width_mm: f64, height_mm: f64) -> Result<String> {
    Ok(document(&body(info, width_mm, height_mm)?, width_mm, height_mm))
}

/// The drawings of many labels, rendered on all cores (QR encoding dominates the cost).
pub fn bodies(infos: &[LabelInfo], width: f64, height: f64) -> Result<Vec<String>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = infos.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = infos
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|i| body(i, width, height)).collect::<Result<Vec<_>>>()))
            .collect();
        let mut out = Vec::with_capacity(infos.len());
        for h in handles {
            out.extend(h.join().map_err(|_| Error::Other(anyhow::anyhow!("label rendering panicked")))??);
        }
        Ok(out)
    })
}

/// Complete SVG documents for many labels (see [`bodies`]).
pub fn svgs(infos: &[LabelInfo], width_mm: f64, height_mm: f64) -> Result<Vec<String>> {
    Ok(bodies(infos, width_mm, height_mm)?.into_iter().map(|b| document(&b, width_mm, height_mm)).collect())
}

fn document(body: &str, width_mm: f64, height_mm: f64) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width_mm}mm" height="{height_mm}mm" viewBox="0 0 {width_mm} {height_mm}" font-family="{FONTS}">{body}</svg>"#
    )
}

/// Fonts with Japanese glyphs on Linux, macOS and Windows, then any sans-serif.
pub const FONTS: &str = "'IPAGothic','Noto Sans CJK JP','Hiragino Sans','Yu Gothic',sans-serif";

/// The label's drawing, in a `width` × `height` (mm) coordinate space.
pub fn body(info: &LabelInfo, width: f64, height: f64) -> Result<String> {
    let mut out = String::with_capacity(8 * 1024);
    let pad = 1.5;
    let qr = (height - 2.0 * pad - 3.2).min(width * 0.45);
    qr_path(&mut out, &info.url, pad, pad, qr)?;
    let tx = pad + qr + 1.2;
    let text_w = width - tx - pad;
    // Sizes in mm: ~2.6 mm is 7.4 pt, readable at arm's length; the phones are larger.
    // A long clinic name takes two lines (broken at a space where there is one) rather than
    // being squeezed unreadably thin.
    let (name1, name2) = split_for_width(&info.institution, 2.4, text_w);
    let lines = [
        (2.4, "bold", name1),
        (2.4, "bold", name2),
        (2.5, "normal", format!("日中 {}", info.day_phone)),
        (2.5, "normal", format!("夜間・休日 {}", info.night_phone)),
        (2.2, "normal", info.vendor_line.clone()),
        (3.0, "bold", info.asset_tag.clone()),
    ];
    let mut y = pad + 2.2;
    for (size, weight, text) in lines {
        if text.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            r#"<text x="{tx:.2}" y="{y:.2}" font-size="{size}" font-weight="{weight}" textLength="{}" lengthAdjust="spacingAndGlyphs">{}</text>"#,
            fit(&text, size, text_w),
            escape(&text)
        );
        y += size + 1.3;
    }
    let _ = write!(
        out,
        r#"<text x="{pad}" y="{:.2}" font-size="2.3" textLength="{}" lengthAdjust="spacingAndGlyphs">{INSTRUCTION}</text>"#,
        height - pad,
        fit(INSTRUCTION, 2.3, width - 2.0 * pad)
    );
    Ok(out)
}

fn ems(text: &str) -> f64 {
    text.chars().map(|c| if c.is_ascii() { 0.55 } else { 1.0 }).sum()
}

/// The text as one line if it fits `width` at `size`, else two lines split near the middle.
fn split_for_width(text: &str, size: f64, width: f64) -> (String, String) {
    if ems(text) * size <= width * 1.15 {
        return (text.to_owned(), String::new());
    }
    let chars: Vec<char> = text.chars().collect();
    let middle = chars.len() / 2;
    let at = (0..chars.len())
        .filter(|&i| chars[i] == ' ' || chars[i] == '　')
        .min_by_key(|&i| i.abs_diff(middle))
        .filter(|&i| i.abs_diff(middle) <= chars.len() / 4)
        .unwrap_or(middle);
    let first: String = chars[..at].iter().collect();
    let second: String = chars[at..].iter().collect();
    (first.trim().to_owned(), second.trim().to_owned())
}

/// The length to squeeze a line into when it would overflow (full-width characters count as
/// one em, others as half), or its natural length otherwise.
fn fit(text: &str, size: f64, max: f64) -> String {
    let natural = ems(text) * size;
    format!("{:.2}", natural.min(max))
}

/// A label stock: how labels sit on a page (all in mm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    pub key: &'static str,
    pub name_ja: &'static str,
    pub name_en: &'static str,
    pub page_w: f64,
    pub page_h: f64,
    pub cols: usize,
    pub rows: usize,
    pub label_w: f64,
    pub label_h: f64,
    pub margin_left: f64,
    pub margin_top: f64,
    pub gap_x: f64,
    pub gap_y: f64,
}

impl Layout {
    pub fn per_page(&self) -> usize {
        self.cols * self.rows
    }

    pub fn find(key: &str) -> Option<Self> {
        LAYOUTS.iter().copied().find(|l| l.key == key)
    }
}

/// The stocks clinics use: A4 sheets of 24 and 12 labels, and 62 mm continuous tape.
pub const LAYOUTS: [Layout; 3] = [
    Layout {
        key: "a4-24",
        name_ja: "A4 24面（70×37 mm）",
        name_en: "A4, 24 labels (70×37 mm)",
        page_w: 210.0,
        page_h: 297.0,
        cols: 3,
        rows: 8,
        label_w: 70.0,
        label_h: 37.0,
        margin_left: 0.0,
        margin_top: 0.5,
        gap_x: 0.0,
        gap_y: 0.0,
    },
    Layout {
        key: "a4-12",
        name_ja: "A4 12面（86.4×42.3 mm）",
        name_en: "A4, 12 labels (86.4×42.3 mm)",
        page_w: 210.0,
        page_h: 297.0,
        cols: 2,
        rows: 6,
        label_w: 86.4,
        label_h: 42.3,
        margin_left: 18.6,
        margin_top: 21.5,
        gap_x: 0.0,
        gap_y: 0.0,
    },
    Layout {
        key: "tape-62",
        name_ja: "ラベルプリンタ 62 mm 幅テープ（62×35 mm）",
        name_en: "Label printer, 62 mm tape (62×35 mm)",
        page_w: 62.0,
        page_h: 35.0,
        cols: 1,
        rows: 1,
        label_w: 62.0,
        label_h: 35.0,
        margin_left: 0.0,
        margin_top: 0.0,
        gap_x: 0.0,
        gap_y: 0.0,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> LabelInfo {
        LabelInfo {
            url: label_url("https://help.sakura-clinic.example/", "AbCdEfGhIjKlMnOpQrStUv"),
            asset_tag: "ECG-001".into(),
            institution: "医療法人社団さくら会 さくら在宅クリニック & <訪問看護>".into(),
            day_phone: "03-0000-1234".into(),
            night_phone: "03-0000-5678".into(),
            vendor_line: "機器の故障 0120-000-111".into(),
        }
    }

    #[test]
    fn label_holds_real_text_and_a_qr_code() {
        let s = svg(&info(), 70.0, 37.0).unwrap();
        assert!(s.starts_with("<svg") && s.contains(r#"width="70mm""#));
        assert!(s.contains("ECG-001") && s.contains("03-0000-5678") && s.contains(INSTRUCTION));
        assert!(s.contains("&amp; &lt;訪問看護&gt;"), "text is escaped");
        assert_eq!(label_url("https://x.example/", "t"), "https://x.example/d/t");
        assert!(LAYOUTS
            .iter()
            .all(|l| l.label_w * f64::from(u32::try_from(l.cols).unwrap()) + l.margin_left <= l.page_w + 0.01));
    }
}
