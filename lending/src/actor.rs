//! Who is acting: every write and every read of patient data names its actor in the audit chain.

use std::fmt;

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

/// The person (or the command line) behind an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub login: String,
    /// `nurse`, `admin`, `auditor`, or `system` for the command line.
    pub role: String,
    /// Where the request came from: a client address, or `cli`.
    pub source: String,
}

impl Actor {
    pub fn user(user_id: &str, login: &str, role: Role, source: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            login: login.to_owned(),
            role: role.as_str().to_owned(),
            source: source.to_owned(),
        }
    }

    /// The operator at the command line (`server user add`, `server demo`, …).
    pub fn cli() -> Self {
        Self { user_id: String::new(), login: "cli".to_owned(), role: "system".to_owned(), source: "cli".to_owned() }
    }
}
