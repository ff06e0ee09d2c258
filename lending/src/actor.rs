//! Who is acting: every write and every read of patient data names its actor in the audit chain.

use std::fmt;

use crate::policy::Principal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Nurse,
    Admin,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nurse => "nurse",
            Self::Admin => "admin",
            Self::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "nurse" => Some(Self::Nurse),
            "admin" => Some(Self::Admin),
            "auditor" => Some(Self::Auditor),
            _ => None,
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Self::Nurse => "看護師",
            Self::Admin => "管理者",
            Self::Auditor => "監査担当",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::Nurse => "nurse",
            Self::Admin => "administrator",
            Self::Auditor => "auditor",
        }
    }

    /// Auditors read everything and change nothing.
    pub fn can_write(self) -> bool {
        !matches!(self, Self::Auditor)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credential an action was taken with; the audit chain records it with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// None (sign-in steps, background work).
    #[default]
    None,
    /// A session finished with password and second factor (a prefix of its stored id hash).
    Session(String),
    /// An API token, and whether its owner created it (a token the command line minted for
    /// someone is not that person's own credential).
    Token { id: String, own: bool },
    /// The command line, run by this operating-system user.
    Cli(String),
}

impl Credential {
    /// What the audit chain records, if anything.
    pub fn label(&self) -> Option<String> {
        match self {
            Self::None => None,
            Self::Session(id) => Some(format!("session:{id}")),
            Self::Token { id, .. } => Some(format!("token:{id}")),
            Self::Cli(os_user) => Some(format!("cli:{os_user}")),
        }
    }

    /// Whether the person proved themselves with it: their own signed-in session, or a token
    /// they created themselves (what the four-eyes rules require).
    pub fn is_own(&self) -> bool {
        match self {
            Self::Session(_) => true,
            Self::Token { own, .. } => *own,
            Self::None | Self::Cli(_) => false,
        }
    }
}

/// The person (or the command line) behind an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub login: String,
    /// A staff role, the command line, the public service or nobody yet.
    pub role: Principal,
    /// Where the request came from: a client address, or `cli`.
    pub source: String,
    pub credential: Credential,
}

impl Actor {
    pub fn user(user_id: &str, login: &str, role: Role, source: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            login: login.to_owned(),
            role: Principal::Staff(role),
            source: source.to_owned(),
            credential: Credential::None,
        }
    }

    /// Nobody known yet (a failed sign-in or token, from `source`).
    pub fn anonymous(source: &str) -> Self {
        Self {
            user_id: String::new(),
            login: String::new(),
            role: Principal::Nobody,
            source: source.to_owned(),
            credential: Credential::None,
        }
    }

    #[must_use]
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credential = credential;
        self
    }

    /// The operator at the command line (`server user add`, `server demo`, …), recorded with
    /// the operating-system user who ran it (`$USER`).
    pub fn cli() -> Self {
        let os_user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "?".to_owned());
        Self {
            user_id: String::new(),
            login: "cli".to_owned(),
            role: Principal::Cli,
            source: "cli".to_owned(),
            credential: Credential::Cli(os_user),
        }
    }
}
