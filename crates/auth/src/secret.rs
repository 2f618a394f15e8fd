//! Encryption of secrets at rest (e.g. stored SecretKeys, instance passwords).
//!
//! XChaCha20-Poly1305 from the `chacha20poly1305` crate: its 192-bit nonces can
//! be drawn at random for every message without a realistic collision risk, so
//! no nonce counter has to be persisted. A sealed value is
//! `base64(nonce[24] || ciphertext || tag[16])`.

use std::fs;
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Generate, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Errors of [`SecretBox`].
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("key file {path} must hold exactly {KEY_LEN} bytes, found {len}")]
    BadKeyFile { path: PathBuf, len: usize },
    /// Not base64, or too short to hold a nonce and tag.
    #[error("sealed value is malformed")]
    Malformed,
    /// Wrong key or the sealed value was modified.
    #[error("sealed value failed authentication")]
    Tampered,
    #[error("decrypted secret is not UTF-8")]
    NotUtf8,
}

pub type Result<T> = std::result::Result<T, SecretError>;

/// Seals and opens secrets with a key kept in a local file.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox { .. }") // never print key material
    }
}

impl SecretBox {
    /// Loads the 32-byte key at `path`, or creates it (mode 0600, parent
    /// directories as needed) from the OS RNG if the file does not exist.
    ///
    /// Creation writes a temporary file and hard-links it into place, so a
    /// crash or a concurrent creator can never leave a truncated key behind:
    /// whoever links first wins and everyone else loads that key. An existing
    /// file of the wrong length is an error rather than being replaced, because
    /// replacing it would make every sealed secret unreadable.
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io_err = |source| SecretError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => return Self::from_key_bytes(&bytes, path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let key = Key::generate();
        let tmp = temp_path(path);
        let linked = write_private(&tmp, key.as_slice()).and_then(|()| fs::hard_link(&tmp, path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Self::from_key(key.into())),
            // Lost a creation race: use the winner's key.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let bytes = fs::read(path).map_err(io_err)?;
                Self::from_key_bytes(&bytes, path)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// A box with an explicit key (tests, or keys from another store).
    pub fn from_key(key: [u8; KEY_LEN]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(key)),
        }
    }

    fn from_key_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SecretError::BadKeyFile {
            path: path.to_owned(),
            len: bytes.len(),
        })?;
        Ok(Self::from_key(key))
    }

    /// Encrypts `plaintext` under a fresh random nonce; returns
    /// `base64(nonce || ciphertext)`. Sealing the same text twice gives
    /// different outputs.
    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = XNonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        BASE64.encode(out)
    }

    /// Decrypts a value produced by [`SecretBox::seal`] with the same key.
    pub fn open(&self, sealed: &str) -> Result<String> {
        let raw = BASE64
            .decode(sealed.trim())
            .map_err(|_| SecretError::Malformed)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| SecretError::Malformed)?;
        let plaintext = self
            .cipher
            .decrypt(&nonce, ciphertext)
            .map_err(|_| SecretError::Tampered)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::NotUtf8)
    }
}

/// Sibling temp file name, unique per process and call.
fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    path.with_file_name(name)
}

/// Creates `path` (must not exist) readable by the owner only, and syncs it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600); // set at creation: the key is never world-readable, even briefly
    let mut file = opts.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fresh empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "nubis-auth-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn round_trip_and_key_persistence() {
        let dir = TempDir::new("roundtrip");
        let key_path = dir.0.join("sub/dir/secret.key");
        let sb = SecretBox::load_or_create(&key_path).unwrap();
        for text in ["", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "pässwörd ✓"] {
            let sealed = sb.seal(text);
            assert_eq!(sb.open(&sealed).unwrap(), text);
        }
        let a = sb.seal("same");
        let b = sb.seal("same");
        assert_ne!(a, b, "nonces must differ");

        // Reloading uses the same key, and the file is not rewritten.
        let before = fs::read(&key_path).unwrap();
        assert_eq!(before.len(), KEY_LEN);
        let again = SecretBox::load_or_create(&key_path).unwrap();
        assert_eq!(again.open(&a).unwrap(), "same");
        assert_eq!(fs::read(&key_path).unwrap(), before);
        // No temp files left behind.
        assert_eq!(fs::read_dir(key_path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn tamper_and_wrong_key_are_detected() {
        let sb = SecretBox::from_key([7; KEY_LEN]);
        let sealed = sb.seal("top secret");
        let mut raw = BASE64.decode(&sealed).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            assert!(matches!(
                sb.open(&BASE64.encode(&raw)),
                Err(SecretError::Tampered)
            ));
            raw[i] ^= 1;
        }
        assert_eq!(sb.open(&BASE64.encode(&raw)).unwrap(), "top secret");

        let other = SecretBox::from_key([8; KEY_LEN]);
        assert!(matches!(other.open(&sealed), Err(SecretError::Tampered)));
        assert!(matches!(
            sb.open("not base64!"),
            Err(SecretError::Malformed)
        ));
        assert!(matches!(
            sb.open(&BASE64.encode([0u8; 39])),
            Err(SecretError::Malformed)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_mode_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        let key_path = dir.0.join("secret.key");
        SecretBox::load_or_create(&key_path).unwrap();
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bad_key_file_is_not_replaced() {
        let dir = TempDir::new("badkey");
        let key_path = dir.0.join("secret.key");
        fs::write(&key_path, b"short").unwrap();
        let err = SecretBox::load_or_create(&key_path).unwrap_err();
        assert!(
            matches!(err, SecretError::BadKeyFile { len: 5, .. }),
            "{err}"
        );
        assert_eq!(fs::read(&key_path).unwrap(), b"short");
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(
            format!("{:?}", SecretBox::from_key([1; KEY_LEN])),
            "SecretBox { .. }"
        );
    }
}
