//! The staff home page.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use lending::store::devices;

use crate::i18n::Lang;
use crate::routes::Routes;
use crate::web::session::Staff;
use crate::web::{render, Chrome, PageError};
use crate::AppState;

pub fn routes() -> Routes {
    Routes::new().get("/", home)
}

#[derive(Template)]
#[template(path = "staff/home.html")]
struct HomePage {
    c: Chrome,
    counts: Vec<(&'static str, i64)>,
}

async fn home(State(state): State<AppState>, s: Staff) -> Result<Response, PageError> {
    let mut tx = state.store.read().await?;
    let counts = devices::count_by_status(&mut tx)
        .await?
        .into_iter()
        .map(|(status, n)| (if s.lang == Lang::En { status.label_en() } else { status.label_ja() }, n))
        .collect();
    Ok(render(&HomePage { c: s.chrome(), counts }))
}
