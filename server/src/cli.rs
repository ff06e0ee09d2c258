//! `server <subcommand>`: serve, migrate, user add, token create, audit verify, demo, backup, restore.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lending::config::SETTINGS;
use lending::service::users::{self, NewUser};
use lending::store::PoolSize;
use lending::{Actor, Clock, Config, Role, Store};

use crate::AppState;

#[derive(Parser)]
#[command(name = "server", version, about = "医療機器貸出管理 — staff service and administration commands", after_help = settings_help())]
struct Cli {
    /// A TOML file with settings (same as LENDING_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the staff app and API (applies pending migrations first).
    Serve,
    /// Create or upgrade the database schema.
    Migrate,
    /// Staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens for the staff JSON API.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Check every record's integrity: the audit chain and its signed checkpoints, every consent
    /// receipt, every wipe against its audit events, the lifecycle invariants. Exit 0 if all
    /// hold, otherwise exit 1 naming the first bad record of each kind.
    Verify {
        /// A checkpoint kept outside the database (from the checkpoint mail): `SEQ:HASH`.
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchors: Vec<String>,
    },
    /// The audit chain (`audit verify` is `verify`).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Seed a realistic demo clinic into an empty database.
    Demo,
    /// Import records from a file.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Write a consistent copy of the database (SQLite: VACUUM INTO; PostgreSQL: pg_dump) and its
    /// manifest, while serving.
    Backup {
        /// The backup file to create (never overwritten); `<file>.manifest.json` is written beside it.
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Restore a backup after checking it against its manifest, then its audit chain and the
    /// lifecycle invariants (SQLite: stop the services first; PostgreSQL: into an empty database).
    /// With --check: a restore test instead, while serving.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        /// Restore test: restore into a scratch location (SQLite: a temporary file; PostgreSQL: a
        /// temporary database, the role needs CREATEDB), run the same checks, drop it, and record
        /// the outcome in the live audit chain (`restore.tested`, shown on 点検用の記録). The live
        /// database is not replaced.
        #[arg(long)]
        check: bool,
    },
}

#[derive(clap::Args)]
struct KeyArg {
    /// Seal (backup; the key is created if missing) or open (restore) the backup with this key
    /// file; keep it apart from the backups. Overrides LENDING_BACKUP_KEY_FILE.
    #[arg(long)]
    key_file: Option<PathBuf>,
}

impl KeyArg {
    /// The backup key, if one is configured; `create` makes a missing key file.
    fn load(self, cfg: &Config, create: bool) -> anyhow::Result<Option<lending::secrets::SecretBox>> {
        let Some(path) = self.key_file.or_else(|| cfg.backup_key_file.clone()) else {
            return Ok(None);
        };
        if !create && !path.exists() {
            anyhow::bail!("{}: バックアップの鍵がありません / backup key file not found", path.display());
        }
        if create && !path.exists() {
            tracing::warn!(path = %path.display(), "バックアップの鍵を作成しました（バックアップとは別の場所に保管） / new backup key: keep it apart from the backups");
        }
        let key =
            lending::secrets::SecretBox::from_file(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Some(key))
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff user.
    Add {
        #[arg(long)]
        login: String,
        #[arg(long, value_parser = ["nurse", "admin", "auditor"])]
        role: String,
        /// Full name (defaults to the login).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "")]
        site: String,
        #[arg(long, default_value = "")]
        email: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token acting as the user; the token is printed once, as the last line.
    Create {
        #[arg(long)]
        login: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Register devices from a CSV file (asset_tag, serial, model, firmware_version,
    /// firmware_updated_on, site, location, notes; Japanese headers work too). All rows or none.
    Devices { file: PathBuf },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The same as `server verify`.
    Verify {
        /// A checkpoint kept outside the database (from the checkpoint mail): `SEQ:HASH`.
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchors: Vec<String>,
    },
}

fn settings_help() -> String {
    SETTINGS.iter().fold(String::from("Settings (environment variables, or keys in the TOML file):\n"), |s, setting| {
        s + &format!("  {:<30} {}\n", setting.env, setting.help)
    })
}

/// Parses arguments, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("LENDING_")).collect();
    if let Some(path) = &cli.config {
        env.insert("LENDING_CONFIG".into(), path.display().to_string());
    }
    let cfg = match Config::from_sources(&env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let log_format = cfg.log_format;
    lending::logging::init(log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli.command, cfg)) {
        Ok(code) => code,
        Err(e) => {
            lending::logging::fatal(log_format, &format!("{e:#}"));
            ExitCode::from(2)
        }
    }
}

async fn open(cfg: &Config) -> anyhow::Result<Store> {
    Ok(Store::connect(cfg.database_url.expose(), Clock::system(), PoolSize::default()).await?)
}

/// Migrates, and on PostgreSQL (re)creates the public service's restricted role. Returns a
/// note for the operator about the role.
async fn migrate(store: &Store, cfg: &Config) -> anyhow::Result<Option<String>> {
    store.migrate().await?;
    if store.backend() != lending::Backend::Postgres {
        return Ok(None);
    }
    Ok(Some(match &cfg.mobile_db_password {
        Some(pw) => {
            lending::store::roles::ensure_mobile_role(store, &cfg.mobile_db_role, pw.expose()).await?;
            format!("mobile-api 用のロール {} を設定しました / public service role ready", cfg.mobile_db_role)
        }
        None => "LENDING_MOBILE_DB_PASSWORD が未設定のため mobile-api 用ロールは作成しません / set it to create the public service's role"
            .to_owned(),
    }))
}

async fn run(command: Command, cfg: Config) -> anyhow::Result<ExitCode> {
    let cli = Actor::cli();
    match command {
        Command::Serve => {
            let mailer = lending::mail::Mailer::from_config(&cfg)?;
            let store = open(&cfg).await?;
            if let Some(note) = migrate(&store, &cfg).await? {
                tracing::info!("{note}");
            }
            let listener = tokio::net::TcpListener::bind(cfg.server_listen)
                .await
                .map_err(|e| anyhow::anyhow!("LENDING_SERVER_LISTEN={}: cannot listen: {e}", cfg.server_listen))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, backend = ?store.backend(), "staff service listening");
            if !cfg.pdf_font.is_file() {
                // Everything else works; only the archival PDFs and EHR exports need the font.
                tracing::warn!(
                    path = %cfg.pdf_font.display(),
                    "PDF 用の日本語フォントがありません（apt-get install fonts-ipafont-gothic か LENDING_PDF_FONT） / the PDF font is missing: archival PDFs will fail"
                );
            }
            println!("listening on http://{addr}");
            let keys = cfg.secret_box()?;
            let receipts = cfg.receipt_key()?;
            let metrics_listen = cfg.metrics_listen;
            let state = AppState::new(store.clone(), cfg, keys, receipts);
            if let Some(at) = metrics_listen {
                lending::metrics::serve("LENDING_METRICS_LISTEN", at, crate::metrics::router(state.clone())).await?;
            }
            let worker = tokio::spawn(crate::worker::run(state.clone(), mailer));
            crate::run(listener, state, crate::shutdown_signal()).await?;
            worker.abort();
            store.close().await;
        }
        Command::Migrate => {
            let store = open(&cfg).await?;
            if let Some(note) = migrate(&store, &cfg).await? {
                println!("{note}");
            }
            println!("データベースを最新の状態にしました / database is up to date ({:?})", store.backend());
            store.close().await;
        }
        Command::User { command: UserCommand::Add { login, role, name, site, email } } => {
            let store = open(&cfg).await?;
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role"))?;
            let mut tx = store.begin().await?;
            let name = name.unwrap_or_else(|| login.clone());
            let (user, temporary) =
                users::add_user(&mut tx, &cli, NewUser { login, name, role, site, email }).await.map_err(user_error)?;
            tx.commit().await?;
            println!("職員を登録しました / user added: {} ({})", user.login, user.role);
            println!("仮パスワード（初回サインインで変更し、二要素認証を設定します） / temporary password, changed at first sign-in:");
            println!("{temporary}");
            store.close().await;
        }
        Command::Token { command: TokenCommand::Create { login, name } } => {
            let store = open(&cfg).await?;
            let mut tx = store.begin().await?;
            let owner = users::TokenFor::Login(&login);
            let token = users::create_token(&mut tx, &cli, owner, &name, cfg.token_days).await.map_err(user_error)?;
            tx.commit().await?;
            println!("API トークン（一度だけ表示されます / shown once):");
            println!("{token}");
            store.close().await;
        }
        Command::Verify { anchors } | Command::Audit { command: AuditCommand::Verify { anchors } } => {
            let anchors = anchors
                .iter()
                .map(|a| {
                    a.split_once(':')
                        .and_then(|(seq, hash)| Some((seq.trim().parse::<i64>().ok()?, hash.trim().to_owned())))
                        .ok_or_else(|| anyhow::anyhow!("--anchor {a}: expected SEQ:HASH"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key = cfg.receipt_key()?;
            let store = open(&cfg).await?;
            let started = std::time::Instant::now();
            let f = lending::service::integrity::verify(&store, &key, &anchors).await?;
            store.close().await;
            print_findings(&f, started.elapsed().as_secs_f64());
            return Ok(if f.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Import { command: ImportCommand::Devices { file } } => {
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let store = open(&cfg).await?;
            let mut tx = store.begin().await?;
            let n = match lending::service::import::import_devices(&mut tx, &cli, &bytes).await {
                Ok(n) => n,
                Err(lending::Error::Validation(rows)) => {
                    eprintln!("取り込みませんでした（1件も登録していません） / nothing imported:");
                    for r in rows {
                        eprintln!("  {} / {}", r.message_ja, r.message_en);
                    }
                    store.close().await;
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(user_error(e)),
            };
            tx.commit().await?;
            println!("{n} 台の機器を登録しました / {n} devices imported");
            store.close().await;
        }
        Command::Backup { file, key } => {
            let key = key.load(&cfg, true)?;
            let store = open(&cfg).await?;
            let signer = cfg.receipt_key()?;
            let m = lending::backup::backup(&store, cfg.database_url.expose(), &file, key.as_ref(), &signer).await?;
            store.close().await;
            println!(
                "バックアップを作成しました / backup written: {} ({} bytes{}, sha256 {}, audit head {} {})",
                file.display(),
                m.bytes,
                if m.encrypted { ", encrypted" } else { "" },
                m.sha256,
                m.audit_head_seq,
                m.audit_head_hash
            );
        }
        Command::Restore { file, key, check: true } => {
            let key = key.load(&cfg, false)?;
            let verifier = cfg.receipt_key()?.public_key();
            let store = open(&cfg).await?;
            let m =
                lending::backup::restore_check(&file, &store, cfg.database_url.expose(), key.as_ref(), &verifier).await;
            store.close().await;
            let m = m?;
            println!(
                "復元テストに成功しました（記録しました） / restore test passed and recorded: {}: audit chain verified up to event {} ({}), lifecycle invariants hold",
                file.display(),
                m.audit_head_seq,
                m.audit_head_hash
            );
        }
        Command::Restore { file, key, check: false } => {
            let key = key.load(&cfg, false)?;
            let verifier = cfg.receipt_key()?.public_key();
            let url = cfg.database_url.expose();
            let m = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
                let db_file = PathBuf::from(path.split('?').next().unwrap_or(path));
                lending::backup::restore(&file, lending::backup::Target::SqliteFile(&db_file), key.as_ref(), &verifier)
                    .await?
            } else {
                let store = open(&cfg).await?;
                let m = lending::backup::restore(
                    &file,
                    lending::backup::Target::Postgres { store: &store, url },
                    key.as_ref(),
                    &verifier,
                )
                .await;
                // The public service's role and grants are not in the backup: made again here.
                let note = match &m {
                    Ok(_) => migrate(&store, &cfg).await?,
                    Err(_) => None,
                };
                store.close().await;
                if let Some(note) = note {
                    println!("{note}");
                }
                m?
            };
            println!(
                "復元しました / restored {}: audit chain verified up to event {} ({}), lifecycle invariants hold",
                file.display(),
                m.audit_head_seq,
                m.audit_head_hash
            );
        }
        Command::Demo => {
            let store = open(&cfg).await?;
            store.migrate().await?;
            match lending::demo::seed(&store, &cfg.receipt_key()?).await? {
                Some(s) => {
                    println!(
                        "デモデータを登録しました / demo clinic seeded: {} devices, {} patients, {} loans",
                        s.devices, s.patients, s.loans
                    );
                    println!("職員と仮パスワード（初回サインインで変更） / staff and temporary passwords:");
                    for (login, role, temporary) in s.staff {
                        println!("  {login:<16} {:<6} {temporary}", role.label_ja());
                    }
                }
                None => println!(
                    "データが既にあるため、デモデータは登録しません / database already has a clinic; demo skipped"
                ),
            }
            store.close().await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Domain errors at the command line: the Japanese and English messages, not a debug dump.
fn user_error(e: lending::Error) -> anyhow::Error {
    if e.is_internal() {
        anyhow::Error::new(e)
    } else {
        anyhow::anyhow!("{} / {}", e.message_ja(), e.message_en())
    }
}

/// One line per kind of record: intact, or the first bad one.
fn print_findings(f: &lending::service::integrity::Findings, seconds: f64) {
    let broken = |b: &lending::audit::Break| {
        println!("監査記録の連鎖に異常があります / audit chain broken at event {}: {}", b.seq(), b.describe());
    };
    match (&f.chain, &f.checkpoints) {
        (Ok(n), Ok(c)) => println!(
            "監査記録の連鎖は正常です / audit chain intact: {n} events, {c} signed checkpoints and anchors match ({seconds:.2} s)"
        ),
        (Err(b), _) | (Ok(_), Err(b)) => broken(b),
    }
    for (ja, en, c) in [("同意書", "consent receipts", &f.consents), ("データ消去記録", "wipe records", &f.wipes)]
    {
        match &c.first_bad {
            None => println!("{ja}: {}件とも正常です / {en}: all {} intact", c.checked, c.checked),
            Some(id) => println!("{ja}に異常があります / {en}: first bad record {id} (of {} checked)", c.checked),
        }
    }
    if f.invariants.is_clean() {
        println!("貸出記録の整合性は正常です / lifecycle invariants hold");
    } else {
        println!("貸出記録の整合性に異常があります / lifecycle invariants broken: {:?}", f.invariants);
    }
}
