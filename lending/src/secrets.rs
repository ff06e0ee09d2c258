//! Encryption at rest for secrets the service must read back (TOTP seeds): XChaCha20-Poly1305
//! with a 256-bit key from configuration, and the row it belongs to as associated data, so a
//! sealed value copied to another row does not open.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::{Error, Result};
use crate::ids::random_bytes;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// A key given as base64url (43 characters, 32 bytes).
    pub fn from_base64(key: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(key.trim()).ok()?;
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(Self { cipher: XChaCha20Poly1305::new(&key.into()) })
    }

    /// The key in `path`, created (mode 0600) if missing: the embedded default. Production
    /// deployments set `LENDING_SECRETS_KEY` and keep the key apart from the database and backups.
    pub fn from_file(path: &Path) -> std::io::Result<Self> {
        if !path.exists() {
            if let Some(dir) = path.parent() {
                crate::files::private_dir(dir)?;
            }
            let key = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
            write_private(path, &key)?;
        }
        let text = std::fs::read_to_string(path)?;
        Self::from_base64(&text)
            .ok_or_else(|| std::io::Error::other(format!("{} is not a 32-byte base64url key", path.display())))
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(self.seal_bytes(plaintext, aad)?))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<Vec<u8>> {
        let bytes =
            URL_SAFE_NO_PAD.decode(sealed).map_err(|_| Error::Other(anyhow::anyhow!("sealed value is not base64")))?;
        self.open_bytes(&bytes, aad)
            .map_err(|_| Error::Other(anyhow::anyhow!("sealed value does not open with this key and row")))
    }

    /// Nonce followed by ciphertext and tag, as bytes (backup files).
    pub fn seal_bytes(&self, plaintext: &[u8], aad: &str) -> Result<Vec<u8>> {
        let nonce = random_bytes::<24>();
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| Error::Other(anyhow::anyhow!("encryption failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open_bytes(&self, sealed: &[u8], aad: &str) -> Result<Vec<u8>> {
        if sealed.len() < 24 {
            return Err(Error::Other(anyhow::anyhow!("sealed value too short")));
        }
        let (nonce, ct) = sealed.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| Error::Other(anyhow::anyhow!("does not open with this key")))
    }
}

/// Writes a new file readable by its owner only (never replacing one), durably: the text goes to
/// a temporary file that is synced and then linked into place, and the folder is synced. A crash
/// or power cut leaves either no file or the whole key, never an empty one, and a key that has
/// signed a committed consent receipt is on disk before that commit.
#[cfg(unix)]
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(random_bytes::<8>())));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let placed = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    placed?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_row() {
        let dir = tempfile::tempdir().unwrap();
        let b = SecretBox::from_file(&dir.path().join("keys/secrets.key")).unwrap();
        let sealed = b.seal(b"JBSWY3DPEHPK3PXP", "users:1").unwrap();
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(b.open(&sealed, "users:1").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(b.open(&sealed, "users:2").is_err(), "moved to another row, it does not open");
        let again = SecretBox::from_file(&dir.path().join("keys/secrets.key")).unwrap();
        assert_eq!(again.open(&sealed, "users:1").unwrap(), b"JBSWY3DPEHPK3PXP", "the key file is reused");
        assert!(SecretBox::from_base64("short").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_appears_whole_private_and_never_replaced() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("receipt.key");
        // What an interrupted earlier creation leaves behind does not get in the way.
        std::fs::write(dir.path().join(".receipt.key.0011223344556677.tmp"), "").unwrap();
        write_private(&path, "first").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = write_private(&path, "second").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first", "an existing key is never replaced");
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 2, "no temporary file of its own is left: {left:?}");
    }
}
