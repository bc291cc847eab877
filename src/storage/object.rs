//! The object storage adapter: object_store over local disk, S3 or GCS.
//! Uploads stream (multipart past `PART_SIZE`); on S3 and GCS the object
//! carries the headers its presigned download serves.
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use super::counted::Counted;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, Certificate, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::links::{self, LinkSigner};
use super::{ByteStream, LinkError, Storage, StorageError, content_disposition};
use crate::config::{Settings, StorageBackend};
use crate::job::{ReportFormat, SealedPayload};

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => StorageError::NotFound(path),
            other => StorageError::Unavailable(Box::new(other)),
        }
    }
}

pub(crate) struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    signer: LinkSigner,
    prefix: String,
    backend: StorageBackend,
}

/// Uploads larger than this go up in parts (multipart upload).
const PART_SIZE: usize = 8 * 1024 * 1024;

impl ObjectStorage {
    pub(crate) async fn from_settings(settings: &Settings) -> Result<Self, StorageError> {
        let s = &settings.storage;
        let mut client = ClientOptions::new().with_timeout(Duration::from_secs(60)).with_connect_timeout(Duration::from_secs(5));
        if !s.ca_file.is_empty() {
            let pem = tokio::fs::read(&s.ca_file).await?;
            for cert in Certificate::from_pem_bundle(&pem).map_err(|e| StorageError::Config(Box::new(e)))? {
                client = client.with_root_certificate(cert);
            }
        }
        // Short internal retries: longer outages belong to the job's own backoff.
        let retry = RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(10), ..Default::default() };
        let (store, signer): (Arc<dyn ObjectStore>, LinkSigner) = match s.backend {
            StorageBackend::Local => {
                let dir = settings.local_storage_dir();
                tokio::fs::create_dir_all(&dir).await?;
                let fs = LocalFileSystem::new_with_prefix(&dir).map_err(|e| StorageError::Config(Box::new(e)))?;
                let key = links::local_signing_key(&s.signing_key, &settings.data_dir).await?;
                (Arc::new(fs), LinkSigner::Local { key, ttl: s.link_ttl, base: settings.http.public_url.clone() })
            }
            StorageBackend::S3 => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&s.bucket)
                    .with_region(&s.region)
                    .with_virtual_hosted_style_request(!s.path_style)
                    .with_allow_http(s.allow_http)
                    .with_client_options(client.clone().with_allow_http(s.allow_http))
                    .with_retry(retry);
                if !s.endpoint.is_empty() {
                    b = b.with_endpoint(&s.endpoint);
                }
                if !s.access_key_id.is_empty() {
                    b = b.with_access_key_id(&s.access_key_id).with_secret_access_key(&s.secret_access_key);
                }
                let s3 = Arc::new(b.build().map_err(|e| StorageError::Config(Box::new(e)))?);
                (s3.clone(), LinkSigner::Presigned { signer: s3, ttl: s.link_ttl })
            }
            StorageBackend::Gcs => {
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&s.bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                if !s.gcs_service_account_path.is_empty() {
                    b = b.with_service_account_path(&s.gcs_service_account_path);
                }
                let gcs = Arc::new(b.build().map_err(|e| StorageError::Config(Box::new(e)))?);
                (gcs.clone(), LinkSigner::Presigned { signer: gcs, ttl: s.link_ttl })
            }
        };
        Ok(Self { store: Arc::new(Counted(store)), signer, prefix: s.prefix.clone(), backend: s.backend })
    }

    async fn upload<R: tokio::io::AsyncRead + Unpin>(
        &self,
        key: &str,
        mut reader: R,
        attrs: Attributes,
    ) -> Result<(), StorageError> {
        let mut writer = BufWriter::with_capacity(self.store.clone(), ObjectPath::from(key), PART_SIZE)
            .with_attributes(attrs)
            .with_max_concurrency(4);
        let copied = tokio::io::copy(&mut reader, &mut writer).await;
        match copied {
            Ok(_) => match writer.shutdown().await {
                Ok(()) => Ok(()),
                Err(e) => Err(io_to_storage(e)),
            },
            Err(e) => {
                let _ = writer.abort().await;
                Err(io_to_storage(e))
            }
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self.store.head(&ObjectPath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Storage for ObjectStorage {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    async fn put_payload(&self, key: &str, payload: SealedPayload) -> Result<u64, StorageError> {
        let len = payload.len();
        let SealedPayload { prefix, rows, .. } = payload;
        let rows = tokio::fs::File::from_std(rows);
        let reader = std::io::Cursor::new(prefix).chain(rows);
        self.upload(key, reader, Attributes::new()).await?;
        Ok(len)
    }

    async fn put_report(&self, key: &str, file: &Path, format: ReportFormat, title: &str) -> Result<u64, StorageError> {
        let f = tokio::fs::File::open(file).await?;
        let len = f.metadata().await?.len();
        let mut attrs = Attributes::new();
        if self.backend != StorageBackend::Local {
            // The store serves these headers on presigned downloads.
            attrs.insert(Attribute::ContentType, format.content_type().into());
            attrs.insert(Attribute::ContentDisposition, content_disposition(title, format).into());
        }
        self.upload(key, f, attrs).await?;
        Ok(len)
    }

    async fn fetch_to(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        let result = self.store.get(&ObjectPath::from(key)).await?;
        let mut stream = result.into_stream();
        let mut file = tokio::fs::File::create(dest).await?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(n)
    }

    async fn open(&self, key: &str) -> Result<(u64, ByteStream), StorageError> {
        let result = self.store.get(&ObjectPath::from(key)).await?;
        let size = result.meta.size;
        Ok((size, result.into_stream().map(|r| r.map_err(StorageError::from)).boxed()))
    }

    async fn size(&self, key: &str) -> Result<u64, StorageError> {
        Ok(self.store.head(&ObjectPath::from(key)).await?.size)
    }

    async fn open_range(&self, key: &str, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let options = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
        let result = self.store.get_opts(&ObjectPath::from(key), options).await?;
        Ok(result.into_stream().map(|r| r.map_err(StorageError::from)).boxed())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = ObjectPath::from(format!("{}{prefix}", self.prefix));
        let mut out = Vec::new();
        let mut s = self.store.list(Some(&prefix));
        while let Some(meta) = s.next().await {
            out.push(meta?.location.to_string());
        }
        Ok(out)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.exists(&format!("{}.ready-probe", self.prefix)).await.map(|_| ())
    }

    async fn download_url(&self, id: Uuid, key: &str) -> Result<String, StorageError> {
        self.signer.url(id, &ObjectPath::from(key)).await
    }

    fn verify_link(&self, id: Uuid, expires: i64, sig: &str) -> Result<(), LinkError> {
        self.signer.verify(id, expires, sig)
    }
}

fn io_to_storage(e: std::io::Error) -> StorageError {
    // object_store reports its own failures through io::Error in AsyncWrite.
    match e.get_ref().and_then(|inner| inner.downcast_ref::<object_store::Error>()) {
        Some(_) => StorageError::Unavailable(Box::new(e)),
        None if e.kind() == std::io::ErrorKind::NotFound => StorageError::Io(e),
        None => StorageError::Unavailable(Box::new(e)),
    }
}
