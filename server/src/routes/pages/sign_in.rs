//! Sign-in: password, then the second factor; sign-out.

use askama::Template;
use axum::extract::{FromRequest, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use lending::service::auth::{self, Factor, SignIn};

use super::{CodeForm, Empty};
use crate::auth::ClientAddr;
use crate::routes::Routes;
use crate::web::session::{clear_session, next_page, set_session, Pending, PendingForm};
use crate::web::{lang_of, render, Chrome, PageError};
use crate::AppState;
use lending::store::sessions::Stage;

pub fn routes() -> Routes {
    Routes::new()
        .get("/login", login_page)
        .post("/login", login)
        .get("/login/code", code_page)
        .post("/login/code", code)
        .post("/logout", logout)
}

#[derive(Template)]
#[template(path = "staff/login.html")]
struct LoginPage {
    c: Chrome,
    error: Option<&'static str>,
    login: String,
}

#[derive(Template)]
#[template(path = "staff/code.html")]
struct CodePage {
    c: Chrome,
    error: Option<&'static str>,
}

#[derive(serde::Deserialize)]
struct LoginForm {
    login: String,
    password: String,
}

/// A form without a session yet (sign-in); cross-site posts are refused by the Origin check.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
struct PlainForm<T>(T);

impl From<axum::extract::rejection::FormRejection> for PageError {
    fn from(_: axum::extract::rejection::FormRejection) -> Self {
        PageError::Domain(
            lending::Error::invalid("form", "入力内容を読み取れません。", "The form could not be read."),
            crate::i18n::Lang::Ja,
        )
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    #[serde(default)]
    signed_out: String,
}

async fn login_page(headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    let mut c = Chrome::anonymous(lang_of(&headers));
    c.flash = match q.signed_out.as_str() {
        "all" => Some(c.t.signed_out_everywhere.to_owned()),
        "1" => Some(c.t.signed_out.to_owned()),
        // The consent page was sent after the idle lock: it is kept as a draft.
        "locked" => Some(c.t.locked_draft_kept.to_owned()),
        _ => None,
    };
    render(&LoginPage { c, error: None, login: String::new() })
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(source): ClientAddr,
    PlainForm(f): PlainForm<LoginForm>,
) -> Result<Response, PageError> {
    let lang = lang_of(&headers);
    if source.parse().is_ok_and(|ip| !state.sign_in_throttle.allow(ip)) {
        let c = Chrome::anonymous(lang);
        let error = Some(c.t.too_many_sign_ins);
        return Ok((StatusCode::TOO_MANY_REQUESTS, render(&LoginPage { c, error, login: f.login })).into_response());
    }
    let outcome = auth::sign_in_password(&state.store, &f.login, &f.password, &source).await?;
    match outcome {
        SignIn::Refused => {
            let c = Chrome::anonymous(lang);
            let error = Some(c.t.sign_in_refused);
            Ok((StatusCode::UNAUTHORIZED, render(&LoginPage { c, error, login: f.login })).into_response())
        }
        SignIn::Started { session, user, .. } => {
            let to = next_page(&state, &user).await?;
            Ok((set_session(&state.cfg, &session.token), Redirect::to(to)).into_response())
        }
    }
}

async fn code_page(State(state): State<AppState>, p: Pending) -> Result<Response, PageError> {
    if next_page(&state, &p.user).await? != "/login/code" || p.session.stage == Stage::Full {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(render(&CodePage { c: p.chrome(), error: None }))
}

async fn code(State(state): State<AppState>, form: PendingForm<CodeForm>) -> Result<Response, PageError> {
    let p = form.who;
    let mut tx = state.store.begin().await?;
    let outcome =
        auth::second_factor(&mut tx, &p.session, &p.user, &form.form.code, &state.keys, &p.actor.source).await;
    let outcome = outcome.map_err(|e| p.error(e))?;
    tx.commit().await?;
    let t = p.lang.t();
    let (status, error) = match outcome {
        Factor::SignedIn(new) => return Ok((set_session(&state.cfg, &new.token), Redirect::to("/")).into_response()),
        Factor::Wrong => (StatusCode::UNAUTHORIZED, t.code_wrong),
        Factor::Replayed => (StatusCode::UNAUTHORIZED, t.code_replayed),
        Factor::Locked => {
            let page = LoginPage { c: Chrome::anonymous(p.lang), error: Some(t.locked), login: String::new() };
            return Ok((StatusCode::UNAUTHORIZED, clear_session(&state.cfg), render(&page)).into_response());
        }
    };
    Ok((status, render(&CodePage { c: p.chrome(), error: Some(error) })).into_response())
}

async fn logout(State(state): State<AppState>, form: PendingForm<Empty>) -> Result<Response, PageError> {
    let p = form.who;
    let mut tx = state.store.begin().await?;
    auth::sign_out(&mut tx, &p.actor, &p.session).await?;
    tx.commit().await?;
    Ok((clear_session(&state.cfg), Redirect::to("/login?signed_out=1")).into_response())
}
