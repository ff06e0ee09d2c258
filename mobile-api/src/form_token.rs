//! The report form's anti-forgery token: an HMAC of the label token and the time the page was
//! shown, with a key that lives only in this process. No cookies, no session.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a page may stay open before its form must be reloaded.
pub const VALID_SECONDS: i64 = 2 * 60 * 60;
/// Tokens are issued per period, so a rendered page can be cached for that long.
pub const PERIOD_SECONDS: i64 = 10 * 60;

/// The start of the period `now` falls in.
pub fn period(now: i64) -> i64 {
    now - now.rem_euclid(PERIOD_SECONDS)
}

pub struct FormKey([u8; 32]);

impl FormKey {
    pub fn random() -> Self {
        Self(lending::ids::random_bytes::<32>())
    }

    fn mac(&self, token: &str, issued: i64) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("any key length works"));
        mac.update(format!("report:{token}:{issued}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A token for pages shown during `now`'s period.
    pub fn issue(&self, token: &str, now: i64) -> String {
        let issued = period(now);
        format!("{issued}.{}", self.mac(token, issued))
    }

    pub fn check(&self, token: &str, form_token: &str, now: i64) -> bool {
        let Some((issued, mac)) = form_token.split_once('.') else { return false };
        let Ok(issued) = issued.parse::<i64>() else { return false };
        let fresh = issued <= now + 60 && now - issued <= VALID_SECONDS;
        let expected = self.mac(token, issued);
        fresh
            && mac.len() == expected.len()
            && mac.bytes().zip(expected.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_the_label_and_expire() {
        let k = FormKey::random();
        let t = k.issue("abc", 1000);
        assert!(k.check("abc", &t, 1000 + 60));
        assert!(!k.check("abd", &t, 1000), "another label");
        assert!(!k.check("abc", &t, 1000 + VALID_SECONDS + 1), "expired");
        assert!(!k.check("abc", "1000.00", 1000));
        assert!(!FormKey::random().check("abc", &t, 1000), "another process's key");
    }
}
