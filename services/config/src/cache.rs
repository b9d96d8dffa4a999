//! The on-disk copy of a node's last config, for static stability: a node
//! that restarts while the control plane is down starts from it.
//!
//! The snapshot holds app secrets, so the file is encrypted (AES-256-GCM)
//! with a key derived from the cell secret; a node without the secret cannot
//! read it, and a corrupt or foreign file is ignored, never half-trusted.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

use crate::{ConfigError, Snapshot};

const NONCE_LEN: usize = 12;

fn cipher(secret: &str) -> Aes256Gcm {
    let key = Sha256::new()
        .chain_update(b"confab config cache v1\0")
        .chain_update(secret.as_bytes())
        .finalize();
    Aes256Gcm::new(&key)
}

/// Writes the snapshot atomically (temp file + rename).
pub fn save(path: &Path, snapshot: &Snapshot, secret: &str) -> Result<(), ConfigError> {
    let plain = serde_json::to_vec(snapshot).map_err(|e| ConfigError::Cache(e.to_string()))?;
    let nonce_bytes: [u8; NONCE_LEN] = rand_nonce();
    let sealed = cipher(secret)
        .encrypt(Nonce::from_slice(&nonce_bytes), plain.as_slice())
        .map_err(|_| ConfigError::Cache("encryption failed".into()))?;
    let mut file = Vec::with_capacity(NONCE_LEN + sealed.len());
    file.extend_from_slice(&nonce_bytes);
    file.extend_from_slice(&sealed);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &file)
        .map_err(|e| ConfigError::Cache(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| ConfigError::Cache(format!("{}: {e}", path.display())))
}

/// Reads the snapshot; `Ok(None)` when there is no file.
pub fn load(path: &Path, secret: &str) -> Result<Option<Snapshot>, ConfigError> {
    let file = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ConfigError::Cache(format!("{}: {e}", path.display()))),
    };
    if file.len() < NONCE_LEN {
        return Err(ConfigError::Cache("file is truncated".into()));
    }
    let (nonce, sealed) = file.split_at(NONCE_LEN);
    let plain = cipher(secret)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| {
            ConfigError::Cache("cannot decrypt (another cell secret, or corrupt)".into())
        })?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| ConfigError::Cache(format!("bad snapshot: {e}")))
}

fn rand_nonce() -> [u8; NONCE_LEN] {
    use aes_gcm::aead::OsRng;
    use aes_gcm::aead::rand_core::RngCore;
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    nonce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_the_wrong_secret_or_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.cache");
        assert!(load(&path, "s").unwrap().is_none());
        let snap = Snapshot {
            version: 42,
            cell_id: "c1".into(),
            ..Default::default()
        };
        save(&path, &snap, "s").unwrap();
        assert_eq!(load(&path, "s").unwrap(), Some(snap));
        let raw = std::fs::read(&path).unwrap();
        assert!(
            !String::from_utf8_lossy(&raw).contains("c1"),
            "stored in clear"
        );
        assert!(load(&path, "other").is_err());
        let mut bad = raw.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        std::fs::write(&path, bad).unwrap();
        assert!(load(&path, "s").is_err());
    }
}
