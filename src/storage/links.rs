//! Download links (part of the object storage adapter). On S3 and GCS they are presigned URLs served by the store
//! itself; on the local disk they point at the API and carry an expiry and an
//! HMAC signature, so a link cannot be forged, altered or used after it expires.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use sha2::Sha256;
use uuid::Uuid;

use super::{LinkError, StorageError};

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub(crate) enum LinkSigner {
    Local { key: Vec<u8>, ttl: Duration, base: String },
    Presigned { signer: Arc<dyn Signer>, ttl: Duration },
}

impl LinkSigner {
    pub(crate) async fn url(&self, id: Uuid, key: &ObjectPath) -> Result<String, StorageError> {
        match self {
            LinkSigner::Local { key: secret, ttl, base } => {
                let expires = chrono::Utc::now().timestamp() + ttl.as_secs() as i64;
                let sig = sign(secret, id, expires);
                Ok(format!("{}/download/{id}?expires={expires}&sig={sig}", base.trim_end_matches('/')))
            }
            LinkSigner::Presigned { signer, ttl } => signer
                .signed_url(http::Method::GET, key, *ttl)
                .await
                .map(|u| u.to_string())
                .map_err(StorageError::from),
        }
    }

    /// Checks a local link: `Ok(())` when the signature matches and it has not expired.
    pub(crate) fn verify(&self, id: Uuid, expires: i64, sig: &str) -> Result<(), LinkError> {
        let LinkSigner::Local { key, .. } = self else { return Err(LinkError::NotLocal) };
        let Ok(given) = hex::decode(sig) else { return Err(LinkError::BadSignature) };
        let mut mac = HmacSha256::new_from_slice(key).map_err(|_| LinkError::BadSignature)?;
        mac.update(message(id, expires).as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&given).map_err(|_| LinkError::BadSignature)?;
        if expires < chrono::Utc::now().timestamp() {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

fn message(id: Uuid, expires: i64) -> String {
    format!("{id}:{expires}")
}

fn sign(key: &[u8], id: Uuid, expires: i64) -> String {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(message(id, expires).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The configured key, or one generated once and kept in the data directory so
/// links survive restarts. The file is readable by this user only.
pub(crate) async fn local_signing_key(configured: &str, data_dir: &Path) -> Result<Vec<u8>, StorageError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join("signing.key");
    if let Ok(s) = tokio::fs::read_to_string(&path).await
        && s.trim().len() >= 32
    {
        let private = std::fs::Permissions::from_mode(0o600);
        if std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            tracing::warn!(path = %path.display(), "the signing key was readable by others; now 0600");
            std::fs::set_permissions(&path, private)?;
        }
        return Ok(s.trim().as_bytes().to_vec());
    }
    tokio::fs::create_dir_all(data_dir).await?;
    let hex_key = hex::encode(rand::random::<[u8; 32]>());
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    std::io::Write::write_all(&mut file, hex_key.as_bytes())?;
    Ok(hex_key.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_expire() {
        let s = LinkSigner::Local { key: b"k".repeat(32), ttl: Duration::from_secs(60), base: String::new() };
        let id = Uuid::now_v7();
        let later = chrono::Utc::now().timestamp() + 60;
        let sig = sign(b"k".repeat(32).as_slice(), id, later);
        assert_eq!(s.verify(id, later, &sig), Ok(()));
        assert_eq!(s.verify(id, later + 1, &sig), Err(LinkError::BadSignature));
        assert_eq!(s.verify(Uuid::now_v7(), later, &sig), Err(LinkError::BadSignature));
        let past = chrono::Utc::now().timestamp() - 1;
        assert_eq!(s.verify(id, past, &sign(b"k".repeat(32).as_slice(), id, past)), Err(LinkError::Expired));
    }

    #[tokio::test]
    async fn a_generated_signing_key_is_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = local_signing_key("", dir.path()).await.unwrap();
        assert_eq!(key.len(), 64);
        let path = dir.path().join("signing.key");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(local_signing_key("", dir.path()).await.unwrap(), key, "the same key after a restart");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "tightened");
    }

    #[test]
    fn dispositions_are_ascii_with_utf8_alternative() {
        use crate::job::ReportFormat;
        use crate::storage::content_disposition;
        let d = content_disposition("Vendas por região: 2026/01", ReportFormat::Xlsx);
        assert_eq!(
            d,
            "attachment; filename=\"Vendas por regiao_ 2026_01.xlsx\"; filename*=UTF-8''Vendas%20por%20regi%C3%A3o_%202026_01.xlsx"
        );
        assert!(content_disposition("\"..\"", ReportFormat::Pdf).contains("filename=\"_.._.pdf\""));
        // A right-to-left override (U+202E) would show "report<RLO>fdp.exe" as "reportexe.pdf".
        let d = content_disposition("report\u{202E}fdp.exe\u{200B}", ReportFormat::Pdf);
        assert!(!d.contains("%E2%80%AE") && !d.contains("%E2%80%8B"), "{d}");
        assert!(d.contains("filename*=UTF-8''reportfdp.exe.pdf"), "{d}");
    }
}
