//! Passwords: Argon2id hashes, a strength check instead of composition rules, no forced rotation.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use zxcvbn::Score;

use crate::error::{Error, Result};

/// With a second factor, 8 characters suffice (guideline Q&A シQ-54 c); long passphrases welcome.
pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(anyhow::anyhow!("password hashing failed: {e}")))
}

pub fn verify(password: &str, stored_hash: &str) -> bool {
    PasswordHash::new(stored_hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the same time as a real check, so an unknown login answers no faster than a known one.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let h = DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default());
    let _ = verify(password, h);
}

/// Refuses short, long or guessable passwords. `context` holds words an attacker would try
/// first: the login, the person's name, the clinic's name.
pub fn check_strength(password: &str, context: &[&str]) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Err(Error::invalid(
            "password",
            &format!("パスワードは{MIN_CHARS}文字以上にしてください。"),
            &format!("Use at least {MIN_CHARS} characters."),
        ));
    }
    if chars > MAX_CHARS {
        return Err(Error::invalid(
            "password",
            &format!("パスワードは{MAX_CHARS}文字以内にしてください。"),
            &format!("Use at most {MAX_CHARS} characters."),
        ));
    }
    let words: Vec<&str> =
        context.iter().flat_map(|w| w.split([' ', '　', '.', '_', '-', '@'])).filter(|w| !w.is_empty()).collect();
    let lower = password.to_lowercase();
    let contains_context = words.iter().any(|w| w.chars().count() >= 3 && lower.contains(&w.to_lowercase()));
    if contains_context || zxcvbn::zxcvbn(password, &words).score() < Score::Three {
        return Err(Error::invalid(
            "password",
            "推測されやすいパスワードです。氏名やログインID、辞書の単語を含まない、長めの語句にしてください（例: 単語を4つ以上つなげる）。",
            "This password is easy to guess. Avoid your name, login and dictionary words; a longer phrase of several words works well.",
        ));
    }
    Ok(())
}

/// A temporary password for a new or reset account: 20 characters from an alphabet without
/// look-alikes (about 100 bits), changed at first sign-in.
pub fn temporary() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let bytes = crate::ids::random_bytes::<20>();
    let chars: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
    format!("{}-{}-{}-{}", &chars[0..5], &chars[5..10], &chars[10..15], &chars[15..20])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_guessable_passwords_are_refused() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapler", &h));
        assert!(check_strength("password", &[]).is_err());
        assert!(check_strength("sakura2026", &["さくら在宅クリニック", "sakura"]).is_err());
        assert!(check_strength("sato.nurse!2026", &["sato.nurse", "佐藤 美咲"]).is_err());
        assert!(check_strength("short", &[]).is_err());
        assert!(check_strength("川の流れは絶えずして夕焼け", &[]).is_ok(), "Japanese passphrases are allowed");
        assert!(check_strength("violet-tractor-harbor-lamp", &["sato.nurse"]).is_ok());
        let t = temporary();
        assert_eq!(t.len(), 23);
        assert!(check_strength(&t, &[]).is_ok());
    }
}
