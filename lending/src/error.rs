//! The one domain error. Every message a user can see exists in Japanese and English.

use std::borrow::Cow;

use crate::lifecycle::DeviceStatus;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A reason shown to the user, Japanese first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub ja: Cow<'static, str>,
    pub en: Cow<'static, str>,
}

impl Reason {
    pub fn new(ja: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        Self { ja: ja.into(), en: en.into() }
    }
}

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message_ja: String,
    pub message_en: String,
}

impl FieldError {
    pub fn new(field: &str, ja: &str, en: &str) -> Self {
        Self { field: field.to_owned(), message_ja: ja.to_owned(), message_en: en.to_owned() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("conflict: {}", .0.en)]
    Conflict(Reason),
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("illegal device status transition {from} -> {to}")]
    IllegalTransition { from: DeviceStatus, to: DeviceStatus },
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    #[error("mail error: {0}")]
    Mail(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The last page number a list accepts (checked by [`Error::check_page`]).
pub const MAX_PAGE: i64 = 100_000;

impl Error {
    pub fn conflict(ja: impl Into<Cow<'static, str>>, en: impl Into<Cow<'static, str>>) -> Self {
        Self::Conflict(Reason::new(ja, en))
    }

    pub fn invalid(field: &str, ja: &str, en: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, ja, en)])
    }

    /// An API filter that was given must not be empty ("any" is said by leaving it out), so
    /// `?nurse=` is refused instead of guessed at.
    pub fn check_filter(value: &str, field: &str, label_ja: &str) -> Result<(), Self> {
        if value.is_empty() {
            return Err(Self::invalid(
                field,
                &format!("{label_ja}が空です。指定しない場合は項目ごと省いてください。"),
                &format!("{field} is empty; leave it out to mean any."),
            ));
        }
        Ok(())
    }

    /// A 1-based page number of a list the API pages through: 1 to [`MAX_PAGE`].
    pub fn check_page(page: i64) -> Result<(), Self> {
        if (1..=MAX_PAGE).contains(&page) {
            return Ok(());
        }
        Err(Self::invalid(
            "page",
            "ページは 1 から 100000 までの数で指定してください。",
            "page must be from 1 to 100000.",
        ))
    }

    /// Two refusals as one, so every wrong field is reported at once (a non-field error wins).
    #[must_use]
    pub fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Validation(mut a), Self::Validation(b)) => {
                a.extend(b);
                Self::Validation(a)
            }
            (Self::Validation(_), other) | (other, _) => other,
        }
    }

    /// A short machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Validation(_) => "validation",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::IllegalTransition { .. } => "illegal_transition",
            Self::Db(_) | Self::Mail(_) | Self::Other(_) => "internal",
        }
    }

    /// Whether the error is the server's fault (logged, never shown in detail).
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Db(_) | Self::Mail(_) | Self::Other(_))
    }

    pub fn message_ja(&self) -> String {
        match self {
            Self::NotFound => "見つかりません。".into(),
            Self::Conflict(r) => r.ja.to_string(),
            Self::Validation(f) => f.iter().map(|f| f.message_ja.as_str()).collect::<Vec<_>>().join(" "),
            Self::Unauthorized => "ログインが必要です。".into(),
            Self::Forbidden => "この操作を行う権限がありません。".into(),
            Self::IllegalTransition { from, to } => {
                format!("機器の状態が「{}」のため「{}」にできません。", from.label_ja(), to.label_ja())
            }
            Self::Db(_) | Self::Mail(_) | Self::Other(_) => {
                "システムエラーが発生しました。記録は保存されていません。時間をおいて再度お試しください。".into()
            }
        }
    }

    pub fn message_en(&self) -> String {
        match self {
            Self::NotFound => "Not found.".into(),
            Self::Conflict(r) => r.en.to_string(),
            Self::Validation(f) => f.iter().map(|f| f.message_en.as_str()).collect::<Vec<_>>().join(" "),
            Self::Unauthorized => "Sign-in required.".into(),
            Self::Forbidden => "You are not allowed to do this.".into(),
            Self::IllegalTransition { from, to } => {
                format!("The device is {} and cannot become {}.", from.label_en(), to.label_en())
            }
            Self::Db(_) | Self::Mail(_) | Self::Other(_) => {
                "A system error occurred. Nothing was saved. Please try again later.".into()
            }
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::conflict("同じ内容がすでに登録されています。", "This already exists.")
            }
            // The lifecycle triggers are the last line of defence under the domain checks.
            sqlx::Error::Database(db) if db.message().contains("device status transition") => Self::conflict(
                "機器の状態が変わったため、この操作はできません。画面を更新してください。",
                "The device's status has changed; reload and try again.",
            ),
            sqlx::Error::Database(db) if db.message().contains("needs a") => Self::conflict(
                "必要な記録（貸出または消去の確認）がないため、この操作はできません。",
                "A required record (open loan or verified wipe) is missing.",
            ),
            _ => Self::Db(e),
        }
    }
}
