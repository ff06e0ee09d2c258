use std::process::ExitCode;
use std::time::Duration;

use lending::store::PoolSize;
use lending::{Clock, Config, Store};

fn main() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let log_format = cfg.log_format;
    lending::logging::init(log_format);
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
        eprintln!("cannot start the runtime");
        return ExitCode::from(2);
    };
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            lending::logging::fatal(log_format, &format!("{e:#}"));
            ExitCode::from(2)
        }
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let store = Store::connect(cfg.mobile_database_url.expose(), Clock::system(), PoolSize(8)).await?;
    // The public service never migrates; it needs the views the staff service created.
    let mut tx = store.read().await?;
    lending::store::public::version(&mut tx).await.map_err(|e| {
        anyhow::anyhow!("LENDING_MOBILE_DATABASE_URL: the public views are missing or not readable; run `server migrate` first ({e})")
    })?;
    drop(tx);
    // On PostgreSQL it must run as its own restricted role, never with staff credentials.
    if let Some(readable) = lending::store::roles::readable_private_tables(&store).await? {
        if !readable.is_empty() {
            anyhow::bail!(
                "LENDING_MOBILE_DATABASE_URL: this role can read {} — use the restricted role `server migrate` \
                 creates (LENDING_MOBILE_DB_ROLE) / 公開サービスは専用の制限付きロールで接続してください",
                readable.join(", ")
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(cfg.mobile_listen)
        .await
        .map_err(|e| anyhow::anyhow!("LENDING_MOBILE_LISTEN={}: cannot listen: {e}", cfg.mobile_listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "public service listening");
    println!("listening on http://{addr}");
    let metrics_listen = cfg.mobile_metrics_listen;
    let state = mobile_api::AppState::new(store.clone(), cfg, Duration::from_secs(2));
    if let Some(at) = metrics_listen {
        lending::metrics::serve("LENDING_MOBILE_METRICS_LISTEN", at, mobile_api::metrics_router(state.clone())).await?;
    }
    mobile_api::run(listener, state, mobile_api::shutdown_signal()).await?;
    store.close().await;
    Ok(())
}
