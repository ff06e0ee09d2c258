//! Configuration from a TOML file and the environment (SPEC §5). The environment wins over the
//! file. A bad value stops start-up with a message naming the setting.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One setting: its environment name, its key in the TOML file, and what it is for.
pub struct Setting {
    pub env: &'static str,
    pub key: &'static str,
    pub help: &'static str,
}

/// Every setting, for `--help` and the README.
pub const SETTINGS: &[Setting] = &[
    Setting {
        env: "LENDING_CONFIG",
        key: "-",
        help: "path of an optional TOML file holding the settings below (keys in lower case)",
    },
    Setting {
        env: "LENDING_DATA_DIR",
        key: "data_dir",
        help: "data directory (SQLite file, mail outbox, keys); default ./data",
    },
    Setting {
        env: "LENDING_DATABASE_URL",
        key: "database_url",
        help: "sqlite://… or postgres://…; default SQLite file in the data directory",
    },
    Setting { env: "LENDING_SERVER_LISTEN", key: "server_listen", help: "staff app address; default 127.0.0.1:8080" },
    Setting {
        env: "LENDING_MOBILE_LISTEN",
        key: "mobile_listen",
        help: "public service address; default 127.0.0.1:8081",
    },
    Setting {
        env: "LENDING_MOBILE_DATABASE_URL",
        key: "mobile_database_url",
        help: "the public service's own database credentials; default the main URL",
    },
    Setting {
        env: "LENDING_PUBLIC_BASE_URL",
        key: "public_base_url",
        help: "what QR labels point at, e.g. https://help.example-clinic.jp; default http://127.0.0.1:8081",
    },
    Setting {
        env: "LENDING_STAFF_BASE_URL",
        key: "staff_base_url",
        help: "the staff app's address as staff reach it (links in e-mails); default http://127.0.0.1:8080",
    },
    Setting {
        env: "LENDING_SMTP_URL",
        key: "smtp_url",
        help: "smtp://user:pass@host:587 (STARTTLS, required unless the host is this machine) or smtps://… (TLS); unset = .eml files in data/outbox",
    },
    Setting {
        env: "LENDING_MAIL_FROM",
        key: "mail_from",
        help: "sender address of reminder mails; default lending@localhost",
    },
    Setting {
        env: "LENDING_KEY_DIR",
        key: "key_dir",
        help: "folder of the key files (kept apart from the data and its backups); default: the data directory's name + \"-keys\" beside it (./data-keys)",
    },
    Setting {
        env: "LENDING_SECRETS_KEY",
        key: "secrets_key",
        help: "32-byte base64url key sealing TOTP seeds at rest; default: the key folder's secrets.key, created on first start",
    },
    Setting {
        env: "LENDING_RECEIPT_KEY",
        key: "receipt_key",
        help: "32-byte base64url Ed25519 seed signing consent receipts; default: the key folder's receipt.key, created on first start",
    },
    Setting {
        env: "LENDING_REMINDER_CADENCE",
        key: "reminder_cadence",
        help: "reminder days: before due (nurse), then overdue for the nurse, her site, the admins; default 2,1,3,7",
    },
    Setting {
        env: "LENDING_CUSTODY_CHECK_DAYS",
        key: "custody_check_days",
        help: "a device out on loan needs a custody check (所在確認) after this many days; default 30",
    },
    Setting {
        env: "LENDING_WIPE_WAIT_DAYS",
        key: "wipe_wait_days",
        help: "a returned device still unwiped after this many days is flagged to admins; default 7",
    },
    Setting {
        env: "LENDING_VOID_MINUTES",
        key: "void_minutes",
        help: "a mistaken check-out may be voided (by its nurse or an admin) this many minutes after lending; default 30",
    },
    Setting {
        env: "LENDING_SESSION_IDLE_MINUTES",
        key: "session_idle_minutes",
        help: "staff sessions lock after this many idle minutes; default 15",
    },
    Setting {
        env: "LENDING_SESSION_MAX_HOURS",
        key: "session_max_hours",
        help: "staff sessions end after this many hours in all; default 12",
    },
    Setting {
        env: "LENDING_TOKEN_DAYS",
        key: "token_days",
        help: "API tokens stop working this many days after they are created; default 90",
    },
    Setting {
        env: "LENDING_UNUSED_ACCOUNT_DAYS",
        key: "unused_account_days",
        help: "the inspection record (点検用の記録) lists enabled staff accounts not signed in for more than this many days; default 90",
    },
    Setting {
        env: "LENDING_TRUSTED_PROXIES",
        key: "trusted_proxies",
        help: "comma-separated addresses or networks (10.0.0.0/8, fd00::/8) of reverse proxies whose X-Forwarded-For both services believe (rate limits, audit source); default none",
    },
    Setting {
        env: "LENDING_MOBILE_DB_ROLE",
        key: "mobile_db_role",
        help: "PostgreSQL role `server migrate` creates for mobile-api; default lending_mobile",
    },
    Setting {
        env: "LENDING_MOBILE_DB_PASSWORD",
        key: "mobile_db_password",
        help: "its password; without it `server migrate` does not create the role",
    },
    Setting {
        env: "LENDING_LOG_FORMAT",
        key: "log_format",
        help: "text (default) or json: one JSON object per log line, for a log collector",
    },
    Setting {
        env: "LENDING_METRICS_LISTEN",
        key: "metrics_listen",
        help: "address of the staff service's Prometheus /metrics listener (operators only, e.g. 127.0.0.1:9180); default off",
    },
    Setting {
        env: "LENDING_MOBILE_METRICS_LISTEN",
        key: "mobile_metrics_listen",
        help: "the same for the public service (e.g. 127.0.0.1:9181); default off",
    },
    Setting {
        env: "LENDING_PDF_FONT",
        key: "pdf_font",
        help: "the Japanese TrueType font embedded in archival PDFs (patient copy, receipts, certificates); default Debian's IPAGothic (fonts-ipafont-gothic)",
    },
    Setting {
        env: "LENDING_BACKUP_KEY_FILE",
        key: "backup_key_file",
        help: "key file sealing backups (`server backup`, created if missing) and opening them (`server restore`); keep it apart from the backups; default: backups unencrypted",
    },
];

/// Debian's IPAGothic (package fonts-ipafont-gothic): fixed-pitch, every JIS X 0208 character.
pub const DEFAULT_PDF_FONT: &str = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf";

/// A secret that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// Where the key files live: apart from the data, so a copy of the data folder (or of its
    /// backups) holds no key.
    pub key_dir: PathBuf,
    pub database_url: Secret,
    pub server_listen: SocketAddr,
    pub mobile_listen: SocketAddr,
    pub mobile_database_url: Secret,
    pub public_base_url: String,
    pub staff_base_url: String,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub secrets_key: Option<Secret>,
    pub receipt_key: Option<Secret>,
    pub reminder_cadence: crate::service::reminders::Cadence,
    pub thresholds: crate::store::dashboard::Thresholds,
    /// How long after lending a mistaken check-out may be voided (SPEC §4).
    pub void_minutes: i64,
    pub session_idle_minutes: i64,
    pub session_max_hours: i64,
    pub token_days: i64,
    /// Enabled accounts without a sign-in for longer than this are listed as unused (点検用の記録).
    pub unused_account_days: i64,
    pub trusted_proxies: Vec<crate::web::IpNet>,
    pub mobile_db_role: String,
    pub mobile_db_password: Option<Secret>,
    pub log_format: LogFormat,
    pub metrics_listen: Option<SocketAddr>,
    pub mobile_metrics_listen: Option<SocketAddr>,
    pub backup_key_file: Option<PathBuf>,
    pub pdf_font: PathBuf,
}

/// How both binaries write their logs (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("設定エラー / configuration error: {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

fn err(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.to_owned(), message: message.into() }
}

impl Config {
    /// Reads `LENDING_CONFIG` (if set) and then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("LENDING_")).collect();
        Self::from_sources(&env)
    }

    /// Builds the configuration from environment-style variables (tests pass their own).
    pub fn from_sources(env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<&'static str, String> = BTreeMap::new();
        if let Some(path) = env.get("LENDING_CONFIG") {
            for (setting, value) in read_file(Path::new(path))? {
                values.insert(setting, value);
            }
        }
        for s in SETTINGS {
            if let Some(v) = env.get(s.env) {
                values.insert(s.env, v.clone());
            }
        }
        let get = |name: &str| values.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let data_dir = PathBuf::from(get("LENDING_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let key_dir = get("LENDING_KEY_DIR").map_or_else(|| default_key_dir(&data_dir), PathBuf::from);
        let database_url = match get("LENDING_DATABASE_URL") {
            Some(u) => check_db_url("LENDING_DATABASE_URL", &u)?,
            None => format!("sqlite://{}", data_dir.join("lending.sqlite").display()),
        };
        let mobile_database_url = match get("LENDING_MOBILE_DATABASE_URL") {
            Some(u) => check_db_url("LENDING_MOBILE_DATABASE_URL", &u)?,
            None => database_url.clone(),
        };
        let addr = |name: &str, default: &str| -> Result<SocketAddr, ConfigError> {
            let v = get(name).unwrap_or_else(|| default.to_owned());
            v.parse().map_err(|_| {
                err(name, format!("「{v}」はアドレスとして読めません (expected host:port, e.g. 127.0.0.1:8080)"))
            })
        };
        let url = |name: &str, default: &str| -> Result<String, ConfigError> {
            let v = get(name).unwrap_or_else(|| default.to_owned());
            if !(v.starts_with("http://") || v.starts_with("https://")) || v.contains(char::is_whitespace) {
                return Err(err(name, format!("「{v}」は http:// または https:// で始まる URL ではありません")));
            }
            Ok(v.trim_end_matches('/').to_owned())
        };
        let smtp_url = match get("LENDING_SMTP_URL") {
            Some(u) if u.starts_with("smtp://") || u.starts_with("smtps://") => Some(Secret::new(u)),
            Some(_) => {
                return Err(err(
                    "LENDING_SMTP_URL",
                    "smtp:// または smtps:// で始めてください (must start with smtp:// or smtps://)",
                ))
            }
            None => None,
        };
        let mail_from = get("LENDING_MAIL_FROM").unwrap_or_else(|| "lending@localhost".into());
        if !mail_from.contains('@') {
            return Err(err("LENDING_MAIL_FROM", "メールアドレスではありません (not an e-mail address)"));
        }
        let number = |name: &str, default: i64, max: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                    err(name, format!("「{v}」は 1〜{max} の整数ではありません (expected a whole number 1-{max})"))
                }),
            }
        };
        let secrets_key = get("LENDING_SECRETS_KEY").map(Secret::new);
        if secrets_key.as_ref().is_some_and(|k| crate::secrets::SecretBox::from_base64(k.expose()).is_none()) {
            return Err(err(
                "LENDING_SECRETS_KEY",
                "32 バイトの base64url 鍵ではありません (not a 32-byte base64url key)",
            ));
        }
        let trusted_proxies = get("LENDING_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::web::IpNet::parse(s).ok_or_else(|| {
                    err(
                        "LENDING_TRUSTED_PROXIES",
                        format!("「{s}」は IP アドレス・ネットワークではありません (not an IP address or network)"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mobile_db_role = get("LENDING_MOBILE_DB_ROLE").unwrap_or_else(|| "lending_mobile".into());
        if !mobile_db_role.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            || mobile_db_role.len() > 63
        {
            return Err(err(
                "LENDING_MOBILE_DB_ROLE",
                "英小文字・数字・_ で63文字以内にしてください (lower-case letters, digits, _)",
            ));
        }
        let receipt_key = get("LENDING_RECEIPT_KEY").map(Secret::new);
        if receipt_key.as_ref().is_some_and(|k| crate::receipts::ReceiptKey::from_base64(k.expose()).is_none()) {
            return Err(err(
                "LENDING_RECEIPT_KEY",
                "32 バイトの base64url 鍵ではありません (not a 32-byte base64url seed)",
            ));
        }
        let reminder_cadence = match get("LENDING_REMINDER_CADENCE") {
            None => crate::service::reminders::Cadence::default(),
            Some(v) => crate::service::reminders::Cadence::parse(&v).ok_or_else(|| {
                err(
                    "LENDING_REMINDER_CADENCE",
                    format!("「{v}」は「2,1,3,7」の形ではありません (four day counts, escalating)"),
                )
            })?,
        };
        let thresholds = crate::store::dashboard::Thresholds {
            custody_days: number("LENDING_CUSTODY_CHECK_DAYS", 30, 365)?,
            wipe_days: number("LENDING_WIPE_WAIT_DAYS", 7, 365)?,
        };
        let log_format = match get("LENDING_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(v) => {
                return Err(err("LENDING_LOG_FORMAT", format!("「{v}」ではなく text か json (expected text or json)")))
            }
        };
        let optional_addr = |name: &str| get(name).map(|_| addr(name, "")).transpose();
        Ok(Self {
            key_dir,
            log_format,
            metrics_listen: optional_addr("LENDING_METRICS_LISTEN")?,
            mobile_metrics_listen: optional_addr("LENDING_MOBILE_METRICS_LISTEN")?,
            backup_key_file: get("LENDING_BACKUP_KEY_FILE").map(PathBuf::from),
            pdf_font: get("LENDING_PDF_FONT").map_or_else(|| PathBuf::from(DEFAULT_PDF_FONT), PathBuf::from),
            reminder_cadence,
            thresholds,
            receipt_key,
            trusted_proxies,
            mobile_db_role,
            mobile_db_password: get("LENDING_MOBILE_DB_PASSWORD").map(Secret::new),
            secrets_key,
            void_minutes: number("LENDING_VOID_MINUTES", 30, 24 * 60)?,
            session_idle_minutes: number("LENDING_SESSION_IDLE_MINUTES", 15, 24 * 60)?,
            session_max_hours: number("LENDING_SESSION_MAX_HOURS", 12, 24 * 7)?,
            token_days: number("LENDING_TOKEN_DAYS", 90, 366)?,
            unused_account_days: number("LENDING_UNUSED_ACCOUNT_DAYS", 90, 3650)?,
            data_dir,
            database_url: Secret::new(database_url),
            server_listen: addr("LENDING_SERVER_LISTEN", "127.0.0.1:8080")?,
            mobile_listen: addr("LENDING_MOBILE_LISTEN", "127.0.0.1:8081")?,
            mobile_database_url: Secret::new(mobile_database_url),
            public_base_url: url("LENDING_PUBLIC_BASE_URL", "http://127.0.0.1:8081")?,
            staff_base_url: url("LENDING_STAFF_BASE_URL", "http://127.0.0.1:8080")?,
            smtp_url,
            mail_from,
        })
    }

    /// A configuration for tests: everything under `data_dir`, on the given database.
    pub fn for_tests(data_dir: &Path, database_url: &str) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            key_dir: data_dir.join("keys"),
            database_url: Secret::new(database_url),
            server_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mobile_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            mobile_database_url: Secret::new(database_url),
            public_base_url: "http://127.0.0.1:8081".into(),
            staff_base_url: "http://127.0.0.1:8080".into(),
            smtp_url: None,
            mail_from: "lending@localhost".into(),
            secrets_key: None,
            receipt_key: None,
            reminder_cadence: crate::service::reminders::Cadence::default(),
            thresholds: crate::store::dashboard::Thresholds::default(),
            void_minutes: 30,
            session_idle_minutes: 15,
            session_max_hours: 12,
            token_days: 90,
            unused_account_days: 90,
            trusted_proxies: Vec::new(),
            mobile_db_role: "lending_mobile".into(),
            mobile_db_password: None,
            log_format: LogFormat::Text,
            metrics_listen: None,
            mobile_metrics_listen: None,
            backup_key_file: None,
            pdf_font: PathBuf::from(DEFAULT_PDF_FONT),
        }
    }

    /// The void window as a duration.
    pub fn void_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.void_minutes)
    }

    /// The key that seals secrets at rest: configured, or the data directory's key file.
    pub fn secret_box(&self) -> Result<crate::secrets::SecretBox, ConfigError> {
        if let Some(k) = &self.secrets_key {
            return crate::secrets::SecretBox::from_base64(k.expose())
                .ok_or_else(|| err("LENDING_SECRETS_KEY", "not a 32-byte base64url key"));
        }
        let path = self.key_file("secrets.key")?;
        crate::secrets::SecretBox::from_file(&path)
            .map_err(|e| err("LENDING_KEY_DIR", format!("{}: {e}", path.display())))
    }

    /// The Ed25519 key that signs consent receipts: configured, or the data directory's key file.
    pub fn receipt_key(&self) -> Result<crate::receipts::ReceiptKey, ConfigError> {
        if let Some(k) = &self.receipt_key {
            return crate::receipts::ReceiptKey::from_base64(k.expose())
                .ok_or_else(|| err("LENDING_RECEIPT_KEY", "not a 32-byte base64url seed"));
        }
        let path = self.key_file("receipt.key")?;
        crate::receipts::ReceiptKey::from_file(&path)
            .map_err(|e| err("LENDING_KEY_DIR", format!("{}: {e}", path.display())))
    }

    /// The path of key file `name` in the key folder. An install from before the key folder kept
    /// its keys in `<data>/keys/`: such a file is moved to the key folder on first use.
    fn key_file(&self, name: &str) -> Result<PathBuf, ConfigError> {
        let path = self.key_dir.join(name);
        let legacy = self.data_dir.join("keys").join(name);
        if !path.exists() && legacy.exists() && legacy != path {
            let moved = crate::files::private_dir(&self.key_dir).and_then(|()| {
                std::fs::copy(&legacy, &path)?;
                crate::files::private_file(&path)?;
                std::fs::remove_file(&legacy)
            });
            moved.map_err(|e| {
                err("LENDING_KEY_DIR", format!("moving {} to {}: {e}", legacy.display(), path.display()))
            })?;
            tracing::warn!(from = %legacy.display(), to = %path.display(), "key file moved out of the data folder");
        }
        Ok(path)
    }

    /// Whether staff reach the service over TLS (then cookies are `Secure` and `__Host-`).
    pub fn staff_https(&self) -> bool {
        self.staff_base_url.starts_with("https://")
    }
}

/// `./data` → `./data-keys`: beside the data folder, not in it.
fn default_key_dir(data_dir: &Path) -> PathBuf {
    let name = data_dir.file_name().map_or_else(|| "data".into(), |n| n.to_string_lossy().into_owned());
    data_dir.with_file_name(format!("{name}-keys"))
}

fn check_db_url(setting: &str, url: &str) -> Result<String, ConfigError> {
    if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_owned())
    } else {
        Err(err(setting, "sqlite:// または postgres:// で始めてください (must start with sqlite:// or postgres://)"))
    }
}

fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("LENDING_CONFIG", format!("{} を読めません: {e}", path.display())))?;
    let table: toml::Table =
        text.parse().map_err(|e| err("LENDING_CONFIG", format!("{} は TOML として読めません: {e}", path.display())))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let setting = SETTINGS
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| err(&key, format!("{} に未知の設定があります (unknown setting)", path.display())))?;
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            other => return Err(err(&key, format!("文字列で指定してください (expected a string, got {other})"))),
        };
        out.push((setting.env, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn w9_keys_live_beside_the_data_folder_and_old_installs_move_them_out() {
        let c = Config::from_sources(&env(&[])).unwrap();
        assert_eq!(c.key_dir, PathBuf::from("./data-keys"));
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("lending");
        let c = Config::from_sources(&env(&[("LENDING_DATA_DIR", data.to_str().unwrap())])).unwrap();
        assert_eq!(c.key_dir, root.path().join("lending-keys"), "a copy of the data folder holds no key");
        // An install from before: its keys in data/keys/. They move out on first use, unchanged.
        let legacy = crate::secrets::SecretBox::from_file(&data.join("keys/secrets.key")).unwrap();
        let sealed = legacy.seal(b"totp seed", "aad").unwrap();
        let receipt_before = crate::receipts::ReceiptKey::from_file(&data.join("keys/receipt.key")).unwrap().key_id();
        let moved = c.secret_box().unwrap();
        assert_eq!(moved.open(&sealed, "aad").unwrap(), b"totp seed");
        assert_eq!(c.receipt_key().unwrap().key_id(), receipt_before);
        assert!(!data.join("keys/secrets.key").exists() && !data.join("keys/receipt.key").exists());
        assert!(c.key_dir.join("secrets.key").exists() && c.key_dir.join("receipt.key").exists());
    }

    #[test]
    fn defaults_are_embedded_sqlite_on_loopback() {
        let c = Config::from_sources(&env(&[])).unwrap();
        assert_eq!(c.server_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.mobile_listen.to_string(), "127.0.0.1:8081");
        assert!(c.database_url.expose().starts_with("sqlite://"));
        assert_eq!(c.mobile_database_url, c.database_url);
        assert!(!format!("{c:?}").contains("lending.sqlite"), "database URLs are redacted in Debug");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = Config::from_sources(&env(&[("LENDING_SERVER_LISTEN", "nonsense")])).unwrap_err();
        assert_eq!(e.setting, "LENDING_SERVER_LISTEN");
        let e = Config::from_sources(&env(&[("LENDING_DATABASE_URL", "mysql://x")])).unwrap_err();
        assert_eq!(e.setting, "LENDING_DATABASE_URL");
        let e = Config::from_sources(&env(&[("LENDING_PUBLIC_BASE_URL", "help.example")])).unwrap_err();
        assert_eq!(e.setting, "LENDING_PUBLIC_BASE_URL");
        let e = Config::from_sources(&env(&[("LENDING_METRICS_LISTEN", "9180")])).unwrap_err();
        assert_eq!(e.setting, "LENDING_METRICS_LISTEN");
        let e = Config::from_sources(&env(&[("LENDING_LOG_FORMAT", "JSON!")])).unwrap_err();
        assert_eq!(e.setting, "LENDING_LOG_FORMAT");
    }

    #[test]
    fn operations_settings_are_off_unless_set() {
        let c = Config::from_sources(&env(&[])).unwrap();
        assert_eq!(
            (c.log_format, c.metrics_listen, c.mobile_metrics_listen, c.backup_key_file),
            (LogFormat::Text, None, None, None)
        );
        let c = Config::from_sources(&env(&[
            ("LENDING_LOG_FORMAT", "json"),
            ("LENDING_METRICS_LISTEN", "127.0.0.1:9180"),
            ("LENDING_MOBILE_METRICS_LISTEN", "127.0.0.1:9181"),
            ("LENDING_BACKUP_KEY_FILE", "/etc/lending/backup.key"),
        ]))
        .unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.metrics_listen.unwrap().port(), 9180);
        assert_eq!(c.mobile_metrics_listen.unwrap().port(), 9181);
        assert_eq!(c.backup_key_file.unwrap(), PathBuf::from("/etc/lending/backup.key"));
    }

    #[test]
    fn every_setting_is_read_from_the_environment() {
        let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let c = Config::from_sources(&env(&[
            ("LENDING_SECRETS_KEY", key),
            ("LENDING_SESSION_IDLE_MINUTES", "5"),
            ("LENDING_SESSION_MAX_HOURS", "8"),
            ("LENDING_TRUSTED_PROXIES", "10.0.0.1, ::1, 172.16.0.0/12"),
            ("LENDING_MOBILE_DB_ROLE", "clinic_public"),
            ("LENDING_MOBILE_DB_PASSWORD", "pw"),
            ("LENDING_SMTP_URL", "smtp://mail.example:587"),
            ("LENDING_MAIL_FROM", "lending@clinic.example"),
            ("LENDING_STAFF_BASE_URL", "https://staff.clinic.example"),
            ("LENDING_CUSTODY_CHECK_DAYS", "14"),
            ("LENDING_WIPE_WAIT_DAYS", "3"),
            ("LENDING_UNUSED_ACCOUNT_DAYS", "60"),
        ]))
        .unwrap();
        assert_eq!(c.secrets_key.as_ref().map(Secret::expose), Some(key));
        assert_eq!((c.session_idle_minutes, c.session_max_hours), (5, 8));
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[2].contains("::ffff:172.20.1.2".parse().unwrap()));
        assert_eq!((c.thresholds.custody_days, c.thresholds.wipe_days), (14, 3));
        assert_eq!(c.unused_account_days, 60);
        assert_eq!(c.mobile_db_role, "clinic_public");
        assert_eq!(c.mobile_db_password.as_ref().map(Secret::expose), Some("pw"));
        assert!(c.smtp_url.is_some() && c.mail_from == "lending@clinic.example" && c.staff_https());
        for e in [
            "LENDING_SESSION_IDLE_MINUTES",
            "LENDING_UNUSED_ACCOUNT_DAYS",
            "LENDING_TRUSTED_PROXIES",
            "LENDING_MOBILE_DB_ROLE",
            "LENDING_SECRETS_KEY",
        ] {
            assert_eq!(
                Config::from_sources(&env(&[(e, "not valid!!")])).unwrap_err().setting,
                e,
                "a bad {e} names itself"
            );
        }
    }

    #[test]
    fn file_values_are_overridden_by_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lending.toml");
        std::fs::write(&path, "server_listen = \"127.0.0.1:9000\"\nmobile_listen = \"127.0.0.1:9001\"\n").unwrap();
        let c = Config::from_sources(&env(&[
            ("LENDING_CONFIG", path.to_str().unwrap()),
            ("LENDING_MOBILE_LISTEN", "127.0.0.1:9100"),
        ]))
        .unwrap();
        assert_eq!(c.server_listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.mobile_listen.to_string(), "127.0.0.1:9100");
        std::fs::write(&path, "no_such_key = \"x\"\n").unwrap();
        let e = Config::from_sources(&env(&[("LENDING_CONFIG", path.to_str().unwrap())])).unwrap_err();
        assert_eq!(e.setting, "no_such_key");
    }
}
