//! Consent receipts: the institution signs each consent with its Ed25519 key, so anyone holding
//! the public key can check that a consent (the text shown, the document hash, the drawn
//! signature, who, when, which devices) is exactly what was signed. Changing any of it in the
//! database breaks the receipt. The patient's copy carries a short verification code.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::ids::{random_bytes, sha256_bytes, sha256_hex};
use crate::store::loans::Consent;
use crate::timefmt::audit_time;

#[derive(Clone)]
pub struct ReceiptKey(SigningKey);

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptKey(public {})", self.public_base64())
    }
}

impl ReceiptKey {
    /// A key given as a base64url 32-byte seed.
    pub fn from_base64(seed: &str) -> Option<Self> {
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(seed.trim()).ok()?.try_into().ok()?;
        Some(Self(SigningKey::from_bytes(&bytes)))
    }

    /// The key in `path`, created (mode 0600) if missing.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                crate::files::private_dir(dir)?;
            }
            crate::secrets::write_private(path, &URL_SAFE_NO_PAD.encode(random_bytes::<32>()))?;
        }
        Self::from_base64(&std::fs::read_to_string(path)?)
            .ok_or_else(|| std::io::Error::other(format!("{} is not a 32-byte base64url seed", path.display())))
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    pub fn public_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key().as_bytes())
    }

    /// A short name of the key (the first 8 hex digits of the SHA-256 of its public key).
    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }

    /// An Ed25519 signature (base64url) over any message (audit checkpoints).
    pub fn sign_bytes(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.0.sign(message).to_bytes())
    }

    /// (signature, verification code) for a consent about to be stored.
    pub fn sign(&self, consent: &Consent, asset_tags: &[String], due_on: &str) -> (String, String) {
        let sig = self.0.sign(&message(consent, asset_tags, due_on));
        let signature = URL_SAFE_NO_PAD.encode(sig.to_bytes());
        let code = verification_code(&signature);
        (signature, code)
    }
}

/// What is signed: every field a patient or auditor relies on, each on its own line, and the
/// SHA-256 of the text shown and of the drawn signature (so the message stays small).
fn message(c: &Consent, asset_tags: &[String], due_on: &str) -> Vec<u8> {
    let mut tags = asset_tags.to_vec();
    tags.sort();
    let mut text = format!(
        "lending-consent-receipt-v1\nconsent={}\nloan={}\npatient={}\ndocument_sha256={}\ntext_sha256={}\nsigner={}\nrelationship={} {}\nsignature_sha256={}\nexplained_by={}\nsigned_at={}\ndevices={}\ndue_on={}\n",
        c.id,
        c.loan_id,
        c.patient_id,
        c.document_sha256,
        sha256_hex(&c.document_text),
        c.signer_name,
        c.relationship,
        c.relationship_note,
        sha256_bytes(c.signature_svg.as_bytes()),
        c.explained_by,
        audit_time(c.signed_at),
        tags.join(","),
        due_on,
    );
    text.push_str(&proxy_line(c));
    text.into_bytes()
}

/// 代筆 (who wrote, for whom, why), signed with the rest; absent when the signer wrote it, so
/// receipts made before 代筆 was recorded still verify.
fn proxy_line(c: &Consent) -> String {
    if c.proxy_writer.is_empty() && c.proxy_written_for.is_empty() && c.proxy_reason.is_empty() {
        return String::new();
    }
    format!("proxy={}\nproxy_for={}\nproxy_reason={}\n", c.proxy_writer, c.proxy_written_for, c.proxy_reason)
}

const CODE_ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// 16 characters in four groups: the first 80 bits of the SHA-256 of the raw Ed25519 signature,
/// five bits a character. What the patient's copy prints.
pub fn verification_code(signature: &str) -> String {
    let raw = URL_SAFE_NO_PAD.decode(signature).unwrap_or_else(|_| signature.as_bytes().to_vec());
    let digest = Sha256::digest(&raw);
    let bits = digest.iter().take(10).fold(0u128, |acc, &b| acc << 8 | u128::from(b));
    let chars: Vec<char> = (0..16)
        .rev()
        .map(|i| char::from(CODE_ALPHABET[usize::try_from((bits >> (5 * i)) & 31).unwrap_or(0)]))
        .collect();
    group(&chars)
}

/// The code receipts printed before the raw-digest code (kept so they still verify).
fn legacy_verification_code(signature: &str) -> String {
    let digest = sha256_bytes(signature.as_bytes());
    let chars: Vec<char> =
        digest.bytes().take(16).map(|b| char::from(CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()])).collect();
    group(&chars)
}

fn group(chars: &[char]) -> String {
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

pub fn key_id(key: &VerifyingKey) -> String {
    sha256_bytes(key.as_bytes())[..8].to_owned()
}

/// Whether `signature` (base64url) is `key`'s over `message`.
pub fn verify_bytes(key: &VerifyingKey, message: &[u8], signature: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else { return false };
    Signature::from_slice(&bytes).is_ok_and(|sig| key.verify_strict(message, &sig).is_ok())
}

/// Whether the stored consent still matches its receipt: the text matches its hash and the
/// institution's signature covers the stored fields.
pub fn verify(key: &VerifyingKey, c: &Consent, asset_tags: &[String], due_on: &str) -> bool {
    if sha256_hex(&c.document_text) != c.document_sha256 {
        return false;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(&c.receipt_signature) else { return false };
    let Ok(sig) = Signature::from_slice(&bytes) else { return false };
    key.verify_strict(&message(c, asset_tags, due_on), &sig).is_ok()
        && [verification_code(&c.receipt_signature), legacy_verification_code(&c.receipt_signature)]
            .contains(&c.verification_code)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{legacy_verification_code, verification_code};

    #[test]
    fn codes_carry_80_bits_of_the_raw_digest() {
        let chars = |f: fn(&str) -> String| -> BTreeSet<char> {
            (0..300)
                .flat_map(|i| f(&format!("c2lnbmF0dXJl{i:04}")).chars().filter(|c| *c != '-').collect::<Vec<_>>())
                .collect()
        };
        // Five bits a character use the whole 32-letter alphabet; the old code read hex text
        // and reached only 16 letters (64 bits).
        assert_eq!(chars(verification_code).len(), 32);
        assert!(chars(legacy_verification_code).len() <= 16);
        let code = verification_code("c2lnbmF0dXJl");
        assert_eq!((code.len(), code.matches('-').count()), (19, 3));
    }
}
