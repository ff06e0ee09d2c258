//! Identifiers. Everything that can reach a URL is random and unguessable.

use base64::Engine as _;

use crate::error::{Error, Result};

/// A new random record id (UUID v4: 122 random bits).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `n` random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not recoverable; refusing to make a weak token is the safe choice.
    getrandom::fill(&mut buf).unwrap_or_else(|e| panic!("OS random number generator failed: {e}"));
    buf
}

/// A random URL-safe secret of `N` bytes, base64url without padding.
pub fn random_token<const N: usize>() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

/// The token printed in a device's QR label: 128 random bits, URL-safe, nothing else in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QrToken(String);

impl QrToken {
    pub fn generate() -> Self {
        Self(random_token::<16>())
    }

    /// Accepts only the shape a real token has (22 base64url characters), so junk never
    /// reaches the database.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 22 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An asset tag as printed on the device: 1–32 characters of A–Z, a–z, 0–9, `-`, `_`, `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetTag(String);

impl AssetTag {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(Error::invalid(
                "asset_tag",
                "資産番号は英数字と - _ . で32文字以内で入力してください。",
                "Asset tag: up to 32 letters, digits, '-', '_' or '.'.",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A code as people type or read it aloud, made comparable: NFKC (full-width letters, digits and
/// hyphens become ASCII: ＧＷ－００１ → GW-001), trimmed, upper case.
pub fn fold_code(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    s.nfkc().collect::<String>().trim().to_uppercase()
}

/// Kana as people type it, made comparable: NFKC (half-width ｶﾅ → full-width カナ, full-width
/// digits and spaces → ASCII), hiragana → katakana, runs of spaces → one, trimmed.
pub fn fold_kana(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let katakana = s.nfkc().map(|c| match c {
        // ぁ..ゖ and ゝゞ sit 0x60 below their katakana.
        'ぁ'..='ゖ' | 'ゝ' | 'ゞ' => char::from_u32(u32::from(c) + 0x60).unwrap_or(c),
        c => c,
    });
    katakana.collect::<String>().split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SHA-256 of a text, as lowercase hex.
pub fn sha256_hex(text: &str) -> String {
    sha256_bytes(text.as_bytes())
}

/// SHA-256 of bytes, as lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kana_folds_to_full_width_katakana() {
        assert_eq!(fold_kana("やまだ　はなこ"), "ヤマダ ハナコ");
        assert_eq!(fold_kana("ﾔﾏﾀﾞ ﾊﾅｺ"), "ヤマダ ハナコ");
        assert_eq!(fold_kana(" ゆゔぁーゞ "), "ユヴァーヾ");
        assert_eq!(fold_kana("１２３"), "123");
    }

    #[test]
    fn qr_tokens_are_128_bit_and_url_safe() {
        let t = QrToken::generate();
        assert_eq!(t.as_str().len(), 22);
        assert!(QrToken::parse(t.as_str()).is_some());
        assert_ne!(QrToken::generate(), t);
        assert!(QrToken::parse("../../etc/passwd").is_none());
        assert!(QrToken::parse("").is_none());
    }

    #[test]
    fn asset_tags_are_checked() {
        assert_eq!(AssetTag::parse(" ECG-001 ").unwrap().as_str(), "ECG-001");
        assert!(AssetTag::parse("").is_err());
        assert!(AssetTag::parse("a b").is_err());
        assert!(AssetTag::parse(&"x".repeat(33)).is_err());
    }
}
