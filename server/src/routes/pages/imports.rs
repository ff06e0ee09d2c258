//! Device import from a CSV on a page (`lending::service::import`, as the CLI and the API):
//! all rows or none; when a row is bad the page lists each bad line's number and reason and
//! keeps the text for fixing. The CSV travels in a plain form field (no multipart): pasted,
//! or read from a chosen file by `csv-file.js`. Up to `MAX_UPLOAD_BYTES`.

use askama::Template;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::import;
use lending::Action;
use lending::Error;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::csrf::tokens_match;
use crate::web::session::Staff;
use crate::web::{render, Chrome, PageError};
use crate::{AppState, MAX_UPLOAD_BYTES};

pub fn routes() -> Routes {
    use axum::handler::Handler as _;
    Routes::new()
        .get("/devices/import", page)
        .post("/devices/import", upload.layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
}

#[derive(Template)]
#[template(path = "staff/import.html")]
struct ImportPage {
    c: Chrome,
    csv: String,
    errors: Vec<String>,
    max_bytes: usize,
    max_mb: usize,
}

fn view(c: Chrome, csv: String, errors: Vec<String>) -> ImportPage {
    ImportPage { c, csv, errors, max_bytes: MAX_UPLOAD_BYTES, max_mb: MAX_UPLOAD_BYTES / (1024 * 1024) }
}

/// Nurses and admins register devices; auditors only read.
#[derive(serde::Deserialize, Default)]
struct Done {
    imported: Option<usize>,
}

async fn page(s: Staff, Query(done): Query<Done>) -> Result<Response, PageError> {
    s.require(Action::Operate)?;
    let mut c = s.chrome();
    c.flash = done.imported.map(|n| match s.lang {
        Lang::Ja => format!("{n}台を登録しました。"),
        Lang::En => format!("Imported {n} devices."),
    });
    Ok(render(&view(c, String::new(), Vec::new())))
}

#[derive(serde::Deserialize)]
struct UploadForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    csv: String,
}

async fn upload(State(state): State<AppState>, s: Staff, body: Body) -> Result<Response, PageError> {
    let too_large = || {
        s.error(Error::invalid(
            "csv",
            &format!(
                "ファイルが大きすぎます（{}MBまで）。分けて取り込んでください。",
                MAX_UPLOAD_BYTES / (1024 * 1024)
            ),
            "The file is too large; split it.",
        ))
    };
    let bytes = axum::body::to_bytes(body, MAX_UPLOAD_BYTES).await.map_err(|_| too_large())?;
    let form: UploadForm = serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::Csrf)?;
    if !tokens_match(&form.csrf, &s.session.csrf_token) {
        return Err(PageError::Csrf);
    }
    s.require(Action::Operate)?;
    if crate::web::session::has_nul(&bytes) {
        return Err(s.error(crate::web::session::nul_error()));
    }
    let mut tx = state.store.begin().await?;
    match import::import_devices(&mut tx, &s.actor, form.csv.as_bytes()).await {
        Ok(n) => {
            tx.commit().await?;
            Ok(Redirect::to(&format!("/devices/import?imported={n}")).into_response())
        }
        // Bad rows: nothing was written (the transaction is dropped); list them with the text.
        Err(Error::Validation(fields)) => {
            let errors = fields
                .into_iter()
                .map(|f| match s.lang {
                    Lang::Ja => f.message_ja,
                    Lang::En => f.message_en,
                })
                .collect();
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view(s.chrome(), form.csv, errors))).into_response())
        }
        Err(e) => Err(s.error(e)),
    }
}
