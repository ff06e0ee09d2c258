//! Domain operations: each authorises its caller first ([`crate::policy`]), validates its input,
//! checks the lifecycle, writes through the `Store` (SQL lives only in `store/`) in the caller's
//! transaction and records its audit event, reads of patient data included. Handlers and the CLI
//! call these.

pub mod archive;
pub mod auth;
pub mod checkpoints;
pub mod custody;
pub mod devices;
pub mod documents;
pub mod drafts;
pub mod home;
pub mod idempotency;
pub mod import;
pub mod incidents;
pub mod inspection;
pub mod integrity;
pub mod labels;
pub mod loans;
pub mod monthly;
pub mod offline;
pub mod operations;
pub mod outbox;
pub mod oversight;
pub mod patients;
pub mod registry;
pub mod reminders;
pub mod reports;
pub mod users;
pub mod wipes;

use crate::error::{Error, Result};

/// A required, trimmed, bounded text field.
pub(crate) fn required(field: &str, value: &str, max_chars: usize, label_ja: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(Error::invalid(
            field,
            &format!("{label_ja}を入力してください。"),
            &format!("{field} is required."),
        ));
    }
    bounded(field, v, max_chars, label_ja)
}

/// An optional, trimmed, bounded text field. The limit counts what was sent, spaces included,
/// as the API's schema states it (`maxLength`).
pub(crate) fn bounded(field: &str, value: &str, max_chars: usize, label_ja: &str) -> Result<String> {
    let v = value.trim();
    if value.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            &format!("{label_ja}は{max_chars}文字以内で入力してください。"),
            &format!("{field} must be at most {max_chars} characters."),
        ));
    }
    Ok(v.to_owned())
}

/// A Japanese phone number as people type it: NFKC first (０３－１２３４… from an IME becomes
/// 03-1234…), trimmed; then only digits and single hyphens between them, 10 or 11 digits
/// starting with 0 (landline, mobile, 0120). Kept in that form, so its `tel:` link always dials.
pub(crate) fn phone(field: &str, value: &str, label_ja: &str) -> Result<String> {
    use unicode_normalization::UnicodeNormalization as _;
    let v = required(field, &value.nfkc().collect::<String>(), 20, label_ja)?;
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let well_formed = v.starts_with('0')
        && (10..=11).contains(&digits)
        && v.split('-').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    if well_formed {
        return Ok(v);
    }
    Err(Error::invalid(
        field,
        &format!("{label_ja}は数字とハイフンで入力してください（例: 03-1234-5678、0から始まる10〜11桁）。"),
        &format!("{field} must be a phone number of digits and hyphens (e.g. 03-1234-5678; 10 or 11 digits starting with 0)."),
    ))
}
