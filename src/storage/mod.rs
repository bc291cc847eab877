//! The object storage port: claim-check payloads in, reports out, and the
//! links clients download them through. `object` is the adapter (object_store
//! over local disk, S3 or GCS); `links` signs the local download links.
mod counted;
pub(crate) mod links;
pub(crate) mod object;

use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use uuid::Uuid;

use crate::job::{ReportFormat, SealedPayload};

/// Where the error came from, for logs.
pub type ErrorSource = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object {0} does not exist")]
    NotFound(String),
    #[error("object storage: {0}")]
    Unavailable(ErrorSource),
    #[error("object storage configuration: {0}")]
    Config(ErrorSource),
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
}

/// A stream of an object's bytes, for an HTTP response.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Prefix of every key this service writes, so buckets can be shared.
    fn prefix(&self) -> &str;

    fn payload_key(&self, id: Uuid) -> String {
        format!("{}payloads/{id}.rpd", self.prefix())
    }

    fn report_key(&self, id: Uuid, format: ReportFormat) -> String {
        format!("{}reports/{id}.{}", self.prefix(), format.extension())
    }

    /// Streams a sealed payload up; nothing is visible until it completes. Returns its size.
    async fn put_payload(&self, key: &str, payload: SealedPayload) -> Result<u64, StorageError>;
    /// Uploads a rendered report from a local file, with the headers a download should carry.
    async fn put_report(&self, key: &str, file: &Path, format: ReportFormat, title: &str) -> Result<u64, StorageError>;
    /// Downloads an object into a local file.
    async fn fetch_to(&self, key: &str, dest: &Path) -> Result<u64, StorageError>;
    /// Opens an object for streaming: its size and its bytes.
    async fn open(&self, key: &str) -> Result<(u64, ByteStream), StorageError>;
    /// An object's size, without reading it (a download's `HEAD`, and what a `Range` is checked against).
    async fn size(&self, key: &str) -> Result<u64, StorageError>;
    /// Streams the bytes of `range` (within the object's size) of an object: a download's `Range`.
    async fn open_range(&self, key: &str, range: Range<u64>) -> Result<ByteStream, StorageError>;
    /// Deletes an object; one already gone is fine.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Every key under `prefix` (after the configured prefix).
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError>;
    /// Reachable means a lookup got an answer, even "not found".
    async fn ping(&self) -> Result<(), StorageError>;
    /// A link to download job `id`'s report stored at `key`.
    async fn download_url(&self, id: Uuid, key: &str) -> Result<String, StorageError>;
    /// Checks a link this API serves (the local store); S3 and GCS check their own.
    fn verify_link(&self, id: Uuid, expires: i64, sig: &str) -> Result<(), LinkError>;
}

/// Deletes a job's payload and report, whichever it still has.
pub(crate) async fn erase_files(storage: &dyn Storage, job: &crate::job::Job) -> Result<(), StorageError> {
    if !job.payload_inline && !job.payload_key.is_empty() {
        storage.delete(&job.payload_key).await?;
    }
    if let Some(key) = &job.report_key {
        storage.delete(key).await?;
    }
    Ok(())
}

/// Where scratch files for one job go.
pub(crate) fn scratch_path(dir: &Path, id: Uuid, what: &str) -> PathBuf {
    dir.join(format!("reportd-{id}-{what}"))
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("the download link's signature is not valid")]
    BadSignature,
    #[error("the download link has expired; poll the job's status for a fresh one")]
    Expired,
    #[error("downloads are served by the object store, not by this API")]
    NotLocal,
}

/// Unicode's invisible format characters (category Cf): bidi overrides and
/// isolates, zero-width joiners and spaces, tags. In a file name they can
/// disguise its extension ("report\u{202E}fdp.exe"), so they are dropped.
fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// `attachment; filename="<ascii>"; filename*=UTF-8''<utf-8>`: an ASCII name
/// every client understands, and the exact title for those that read RFC 6266,
/// without control or invisible format characters.
pub fn content_disposition(title: &str, format: ReportFormat) -> String {
    let clean: String = title
        .chars()
        .filter(|c| !is_format_char(*c))
        .map(|c| if c.is_control() || matches!(c, '/' | '\\' | '"' | ':' | '*' | '?' | '<' | '>' | '|') { '_' } else { c })
        .collect();
    let clean = clean.trim().trim_matches('.');
    let clean = if clean.is_empty() { "report" } else { clean };
    let ascii: String = deunicode::deunicode(clean)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-' | '_' | '(' | ')' | ',') { c } else { '_' })
        .take(150)
        .collect();
    let ext = format.extension();
    let encoded: String = format!("{clean}.{ext}")
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}.{ext}\"; filename*=UTF-8''{encoded}")
}
