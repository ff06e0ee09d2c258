//! Log output of both binaries, on stderr: text, or one JSON object per line
//! (`LENDING_LOG_FORMAT=json`); colour codes only when stderr is a terminal, so piped and
//! journald logs stay plain. The filter is `LENDING_LOG` (default `info,sqlx=warn`).

use std::io::IsTerminal as _;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LENDING_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// How a binary reports the error it stops on: the plain `エラー / error: …` line, or in JSON
/// mode a log event, so every line stays one JSON object.
pub fn fatal(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("エラー / error: {message}"),
        LogFormat::Json => tracing::error!(error = %message, "エラー / error"),
    }
}
