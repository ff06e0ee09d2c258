//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30 s). Each code is accepted once: the last
//! accepted time step is stored and only later steps pass (ASVS 2.8.4).

use totp_rs::{Algorithm, Secret, TOTP};

pub const STEP_SECONDS: u64 = 30;

/// A new random 160-bit seed.
pub fn new_secret() -> Vec<u8> {
    crate::ids::random_bytes::<20>().to_vec()
}

/// The seed as base32, for typing it in by hand.
pub fn base32(secret: &[u8]) -> String {
    match Secret::Raw(secret.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => String::new(),
    }
}

fn totp(secret: &[u8]) -> TOTP {
    // new_unchecked: our seeds are 160 bits, above the RFC minimum the checked constructor enforces.
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP_SECONDS, secret.to_vec())
}

/// The `otpauth://` URI an authenticator app scans.
pub fn otpauth_uri(secret: &[u8], account: &str, issuer: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// The code for a time (tests and the browser test's "authenticator").
pub fn code_at(secret: &[u8], unix_seconds: u64) -> String {
    totp(secret).generate(unix_seconds)
}

/// Checks `code` at `unix_seconds`, allowing one step of clock drift either way. Returns the
/// matched step if it is later than `last_step` (a replayed or older code is `Replay`).
pub fn check(secret: &[u8], code: &str, unix_seconds: u64, last_step: Option<i64>) -> Check {
    let code = code.trim().replace([' ', '-'], "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Check::Wrong;
    }
    let t = totp(secret);
    let now_step = i64::try_from(unix_seconds / STEP_SECONDS).unwrap_or(i64::MAX);
    for step in [now_step - 1, now_step, now_step + 1] {
        let at = u64::try_from(step).unwrap_or(0) * STEP_SECONDS;
        if constant_time_eq(t.generate(at).as_bytes(), code.as_bytes()) {
            return if last_step.is_some_and(|last| step <= last) { Check::Replay } else { Check::Ok { step } };
        }
    }
    Check::Wrong
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Ok { step: i64 },
    Replay,
    Wrong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_drift_is_tolerated() {
        let s = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&s, now);
        let Check::Ok { step } = check(&s, &code, now, None) else { panic!("valid code") };
        assert_eq!(check(&s, &code, now, Some(step)), Check::Replay);
        assert!(matches!(check(&s, &code, now + 30, None), Check::Ok { .. }), "one step of drift");
        assert_eq!(check(&s, &code, now + 120, None), Check::Wrong);
        assert_eq!(check(&s, "12345", now, None), Check::Wrong);
        assert!(otpauth_uri(&s, "sato.nurse", "さくら").starts_with("otpauth://totp/%E3%81%95"));
    }
}
