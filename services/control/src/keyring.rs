//! Key-encryption keys (KEKs): app secrets are stored sealed with one.
//!
//! Configured as `CONFAB_KEK=<id>:<base64 of 32 bytes>[,<id>:<key>...]`; the
//! first is current (new secrets are sealed with it), the others can still
//! open what they sealed. Rotation (docs/operations.md): put a new KEK first,
//! keep the old one listed, run `confab admin kek rewrap` (re-seals every
//! secret with the current KEK), then drop the old one. In embedded mode, when
//! no KEK is configured, one is generated into `<data dir>/kek` (mode 0600).

use std::collections::HashMap;
use std::path::Path;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::error::{ControlError, Result};

const PREFIX: &str = "kek1";

pub struct Keyring {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Parses `id:base64key[,id:base64key...]`.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut current = None;
        let mut keys = HashMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, key) = part.split_once(':').ok_or_else(|| {
                ControlError::config("each KEK must be written <id>:<base64 of 32 bytes>")
            })?;
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(ControlError::config(
                    "a KEK id must be letters, digits, - or _",
                ));
            }
            let bytes = B64
                .decode(key)
                .map_err(|_| ControlError::config(format!("KEK {id} is not base64")))?;
            if bytes.len() != 32 {
                return Err(ControlError::config(format!("KEK {id} must be 32 bytes")));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| ControlError::config(format!("KEK {id} must be 32 bytes")))?;
            current.get_or_insert_with(|| id.to_owned());
            keys.insert(id.to_owned(), cipher);
        }
        let current = current.ok_or_else(|| ControlError::config("no KEK given"))?;
        Ok(Self { current, keys })
    }

    /// A new random KEK spec (`id:base64`).
    pub fn generate_spec() -> String {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        format!("k{}:{}", confab_model::now_ms() / 1000, B64.encode(key))
    }

    /// The KEK from `<dir>/kek`, created on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let path = dir.join("kek");
        match std::fs::read_to_string(&path) {
            Ok(spec) => Self::parse(&spec),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let spec = Self::generate_spec();
                write_private(&path, &spec)?;
                Self::parse(&spec)
            }
            Err(e) => Err(ControlError::config(format!("{}: {e}", path.display()))),
        }
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Seals a secret with the current KEK: `kek1:<id>:<base64(nonce ‖ ciphertext)>`.
    pub fn seal(&self, plain: &str) -> Result<String> {
        let cipher = &self.keys[&self.current];
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .map_err(|_| ControlError::internal("sealing a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}:{}:{}", self.current, B64.encode(out)))
    }

    /// Opens a sealed secret (with whichever listed KEK sealed it).
    pub fn open(&self, sealed: &str) -> Result<String> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(PREFIX), Some(id), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ControlError::internal("a stored secret is not sealed"));
        };
        let cipher = self.keys.get(id).ok_or_else(|| {
            ControlError::internal(format!(
                "a secret is sealed with KEK {id}, which is not configured"
            ))
        })?;
        let bytes = B64
            .decode(data)
            .map_err(|_| ControlError::internal("a sealed secret is corrupt"))?;
        if bytes.len() < 12 {
            return Err(ControlError::internal("a sealed secret is corrupt"));
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| ControlError::internal("a sealed secret does not open"))?;
        String::from_utf8(plain).map_err(|_| ControlError::internal("a sealed secret is corrupt"))
    }

    /// The id of the KEK that sealed `sealed`.
    pub fn sealed_with(sealed: &str) -> Option<&str> {
        sealed.split(':').nth(1)
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| ControlError::config(format!("{}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| ControlError::config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_rotates() {
        let old = Keyring::generate_spec();
        let ring = Keyring::parse(&old).unwrap();
        let sealed = ring.seal("sk_secret").unwrap();
        assert!(!sealed.contains("sk_secret"));
        assert_eq!(ring.open(&sealed).unwrap(), "sk_secret");
        // A new current KEK still opens what the old one sealed.
        let new = format!("new:{}", B64.encode([7u8; 32]));
        let rotated = Keyring::parse(&format!("{new},{old}")).unwrap();
        assert_eq!(rotated.current_id(), "new");
        assert_eq!(rotated.open(&sealed).unwrap(), "sk_secret");
        assert!(rotated.seal("x").unwrap().starts_with("kek1:new:"));
        // Without the old KEK it cannot.
        assert!(Keyring::parse(&new).unwrap().open(&sealed).is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in ["", "nocolon", "a:notbase64!", "a:AAAA", ":AAAA"] {
            assert!(Keyring::parse(spec).is_err(), "{spec}");
        }
    }
}
