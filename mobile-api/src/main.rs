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
    let filter = tracing_subscriber::EnvFilter::try_from_env("LENDING_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
        eprintln!("cannot start the runtime");
        return ExitCode::from(2);
    };
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("エラー / error: {e:#}");
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
    let state = mobile_api::AppState::new(store.clone(), cfg, Duration::from_secs(2));
    mobile_api::run(listener, state, mobile_api::shutdown_signal()).await?;
    store.close().await;
    Ok(())
}
