//! Label printing: choose devices and a label stock, preview, print (audited). Each printed
//! page is one SVG of the exact sheet size, so nothing depends on browser scaling; the
//! stylesheet sets `@page` to the stock's size in millimetres.

use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use lending::labels::{self, Layout, LAYOUTS};
use lending::store::{devices, registry};
use lending::Error;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::{Staff, StaffForm};
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/labels", choose).post("/labels/print", print).get("/static/labels/{layout}", stylesheet)
}

#[derive(Template)]
#[template(path = "staff/labels.html")]
struct ChoosePage {
    c: Chrome,
    layouts: Vec<(&'static str, &'static str)>,
    /// (id, asset tag, model, status)
    devices: Vec<(String, String, String, &'static str)>,
}

async fn choose(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let models = registry::models(&mut tx).await?;
    let devices = devices::list(&mut tx, None)
        .await?
        .into_iter()
        .filter(|d| d.status != lending::DeviceStatus::Retired)
        .map(|d| {
            let model = models.iter().find(|m| m.id == d.model_id).map(|m| m.model_name.clone()).unwrap_or_default();
            (d.id, d.asset_tag, model, s.lang.status(d.status))
        })
        .collect();
    Ok(render(&ChoosePage {
        c: s.chrome(),
        layouts: LAYOUTS.iter().map(|l| (l.key, if s.lang == Lang::En { l.name_en } else { l.name_ja })).collect(),
        devices,
    }))
}

#[derive(Template)]
#[template(path = "staff/labels_print.html")]
struct PrintPage {
    title: String,
    layout: &'static str,
    layout_name: &'static str,
    count: usize,
    pages: usize,
    sheets: Vec<String>,
}

/// Sheets of SVG: labels placed by the layout, shifted by the printer's offset, starting after
/// `skip` already-used labels on the first sheet.
pub fn sheets(
    layout: &Layout,
    labels: &[labels::LabelInfo],
    offset: (f64, f64),
    skip: usize,
) -> lending::Result<Vec<String>> {
    let per = layout.per_page();
    let bodies = labels::bodies(labels, layout.label_w, layout.label_h)?;
    let mut sheets = Vec::new();
    let mut current = String::new();
    for (n, body) in bodies.iter().enumerate() {
        let slot = (n + skip) % per;
        if slot == 0 || n == 0 {
            if n > 0 {
                current.push_str("</svg>");
                sheets.push(std::mem::take(&mut current));
            }
            current = format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}" font-family="{fonts}">"#,
                w = layout.page_w,
                h = layout.page_h,
                fonts = labels::FONTS
            );
        }
        let (col, row) = (slot % layout.cols, slot / layout.cols);
        let x = layout.margin_left
            + offset.0
            + (layout.label_w + layout.gap_x) * f64::from(u32::try_from(col).unwrap_or(0));
        let y =
            layout.margin_top + offset.1 + (layout.label_h + layout.gap_y) * f64::from(u32::try_from(row).unwrap_or(0));
        let _ = write!(current, r#"<g transform="translate({x:.2} {y:.2})">"#);
        current.push_str(body);
        current.push_str("</g>");
    }
    if !current.is_empty() {
        current.push_str("</svg>");
        sheets.push(current);
    }
    Ok(sheets)
}

fn number(pairs: &[(String, String)], key: &str, range: std::ops::RangeInclusive<f64>) -> Result<f64, Error> {
    let v = pairs.iter().find(|(k, _)| k == key).map_or("0", |(_, v)| v.as_str());
    v.trim().parse::<f64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        Error::invalid(
            key,
            "位置の調整は −10〜10 mm、とばす枚数は 0〜23 で入力してください。",
            "Offsets: -10 to 10 mm; skip: 0 to 23.",
        )
    })
}

async fn print(State(state): State<AppState>, form: StaffForm<Vec<(String, String)>>) -> Result<Response, PageError> {
    let (s, pairs) = (form.who, form.form);
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let layout = Layout::find(&get("layout"))
        .ok_or_else(|| s.error(Error::invalid("layout", "ラベル用紙を選んでください。", "Choose a label stock.")))?;
    let offset = (
        number(&pairs, "offset_x", -10.0..=10.0).map_err(|e| s.error(e))?,
        number(&pairs, "offset_y", -10.0..=10.0).map_err(|e| s.error(e))?,
    );
    let skip = number(&pairs, "skip", 0.0..=23.0).map_err(|e| s.error(e))?;
    let skip = (0..layout.per_page()).find(|n| f64::from(u32::try_from(*n).unwrap_or(0)) >= skip).unwrap_or(0);
    let ids: Vec<String> = pairs.iter().filter(|(k, _)| k == "device_id").map(|(_, v)| v.clone()).collect();
    let mut tx = state.store.begin().await?;
    let labels = lending::service::labels::print_batch(&mut tx, &s.actor, &ids, &layout, &state.cfg.public_base_url)
        .await
        .map_err(|e| s.error(e))?;
    tx.commit().await?;
    let sheets = sheets(&layout, &labels, offset, skip).map_err(|e| s.error(e))?;
    let page = PrintPage {
        title: format!("ラベル {} 枚", labels.len()),
        layout: layout.key,
        layout_name: layout.name_ja,
        count: labels.len(),
        pages: sheets.len(),
        sheets,
    };
    Ok(render(&page))
}

/// `@page` at the stock's exact size; sheets one per page; on screen, a preview.
async fn stylesheet(Path(file): Path<String>) -> Response {
    let Some(layout) = file.strip_suffix(".css").and_then(Layout::find) else {
        return PageError::Domain(Error::NotFound, crate::i18n::Lang::Ja).into_response();
    };
    let css = format!(
        "@page {{ size: {w}mm {h}mm; margin: 0; }}\n\
         html, body {{ margin: 0; padding: 0; }}\n\
         .sheet {{ width: {w}mm; height: {h}mm; overflow: hidden; break-after: page; page-break-after: always; }}\n\
         .sheet:last-of-type {{ break-after: auto; page-break-after: auto; }}\n\
         .sheet svg {{ display: block; }}\n\
         @media screen {{ body {{ background: #d9d9d9; font-family: sans-serif; }} .sheet {{ background: #fff; margin: 6mm auto; box-shadow: 0 0 2mm #777; }} .toolbar {{ max-width: 60rem; margin: 0 auto; padding: .5rem 1rem; background: #fff; }} }}\n\
         @media print {{ .screen-only {{ display: none; }} }}\n",
        w = layout.page_w,
        h = layout.page_h
    );
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], css)
        .into_response()
}
