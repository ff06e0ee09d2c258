//! What is outstanding, as JSON and CSV; the monthly management report; custody checks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lending::service::custody::{self, NewCheck};
use lending::service::monthly::{self, Month, Report};
use lending::service::oversight;
use lending::store::dashboard::{self, Filter, Summary};
use lending::Error;
use serde_json::{json, Value};

use super::{write_once, IdemKey};
use crate::auth::ApiUser;
use crate::routes::pages::oversight::csv_download;
use crate::routes::Routes;
use crate::{write_tx, AppState};
use lending::web::json::{ApiJson, ApiQuery, ApiResult};

pub fn routes() -> Routes {
    Routes::new()
        .get("/reports/summary", summary)
        .get("/reports/outstanding", outstanding)
        .get("/reports/outstanding.csv", outstanding_csv)
        .get("/reports/monthly", monthly_report)
        .get("/reports/inspection.csv", inspection_csv)
        .post("/custody-checks", record_custody)
}

type Pairs = ApiQuery<Vec<(String, String)>>;

async fn summary(_user: ApiUser, State(state): State<AppState>) -> ApiResult<Json<Summary>> {
    let mut tx = state.store.read().await?;
    Ok(Json(dashboard::summary(&mut tx, state.cfg.thresholds).await?))
}

/// One page (50 rows) of a dashboard view: `?view=overdue&nurse=&site=&sort=due&desc=true&page=1`.
async fn outstanding(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): Pairs,
) -> ApiResult<Json<Value>> {
    let f = Filter::from_query(&q)?;
    let (rows, total) = oversight::outstanding(&state.store, &actor, &f, state.cfg.thresholds).await?;
    Ok(Json(json!({
        "view": f.view,
        "page": f.page(),
        "per_page": Filter::PER_PAGE,
        "total": total,
        "rows": rows,
    })))
}

/// Every row of a view as CSV (UTF-8 with BOM, for Excel).
async fn outstanding_csv(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): Pairs,
) -> ApiResult<Response> {
    let f = Filter::from_query(&q)?;
    let body = oversight::outstanding_csv(&state.store, &actor, &f, state.cfg.thresholds).await?;
    let today = state.store.clock().today_tokyo();
    Ok(csv_download(body, &format!("{}-{today}.csv", f.view.as_str())))
}

/// `?month=2026-11` (default: the last complete month).
async fn monthly_report(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): Pairs,
) -> ApiResult<Json<Report>> {
    let month = q.iter().find(|(k, _)| k == "month").map(|(_, m)| Month::parse(m)).transpose()?;
    let mut tx = state.store.begin().await?;
    let report = monthly::read(&mut tx, &actor, month).await?;
    tx.commit().await?;
    Ok(Json(report))
}

async fn record_custody(
    ApiUser(actor): ApiUser,
    key: IdemKey,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewCheck>,
) -> ApiResult<Response> {
    let fingerprint = format!("{req:?}");
    write_once(&state, &actor, key, ("custody.record", &fingerprint), StatusCode::CREATED, async |tx| {
        custody::record(tx, &actor, req).await
    })
    .await
}

/// The inspection record (点検用の記録) of `?from=YYYY-MM-DD&until=YYYY-MM-DD` as CSV (UTF-8 with
/// BOM); both omitted: the last complete month.
async fn inspection_csv(
    ApiUser(actor): ApiUser,
    State(state): State<AppState>,
    ApiQuery(q): Pairs,
) -> ApiResult<Response> {
    let value = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    for (k, v) in &q {
        match k.as_str() {
            "from" => Error::check_filter(v.trim(), "from", "開始日")?,
            "until" => Error::check_filter(v.trim(), "until", "終了日")?,
            _ => {}
        }
    }
    let body = write_tx!(state, |tx| lending::service::inspection::csv(
        tx,
        &actor,
        &value("from"),
        &value("until"),
        state.cfg.unused_account_days
    ));
    let today = state.store.clock().today_tokyo();
    Ok(csv_download(body, &format!("inspection-{today}.csv")))
}
