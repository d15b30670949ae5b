//! The off-site bucket (DESIGN §9): the only importer of `object_store`. Listing, small
//! atomic puts, streamed multipart uploads, streamed reads and deletes, each under a
//! deadline, with errors that say what the operator must fix and never carry a secret.
//!
//! A multipart upload that does not complete is aborted: on an error, on a signal (through
//! the clean-up registry), and, when the server could not be reached to abort it, by the
//! next command that opens the bucket, from a journal of the uploads in flight.

use crate::error::{CtlError, Result};
use crate::output::Printer;
use crate::stack::offsite::Offsite;
use crate::sys::undo;
use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// S3 needs 5 MiB parts but the last; 8 MiB with three in flight keeps memory flat and low.
const PART_SIZE: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 3;

/// One object under the prefix.
#[derive(Debug, Clone)]
pub struct Object {
    /// The key below the prefix, e.g. `<ID>/manifest.json`.
    pub name: String,
    pub size: u64,
    pub modified: chrono::DateTime<chrono::Utc>,
}

pub type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>;

#[derive(Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    cfg: Offsite,
    journal: PathBuf,
}

impl Bucket {
    /// A client for the configured bucket; `journal` records uploads still in flight.
    pub fn open(cfg: &Offsite, journal: PathBuf) -> Result<Self> {
        let mut options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(10).min(cfg.timeout))
            .with_timeout_disabled()
            .with_read_timeout(cfg.timeout);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(&cfg.access_key_id)
            .with_secret_access_key(&cfg.secret_access_key)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 2,
                retry_timeout: cfg.timeout,
            });
        if let Some(endpoint) = &cfg.endpoint {
            options = options.with_allow_http(endpoint.starts_with("http://"));
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.with_client_options(options).build().map_err(|e| {
            CtlError::usage("the off-site settings are not usable").cause(scrub(&e.to_string(), cfg))
        })?;
        Ok(Self {
            store: Arc::new(store),
            cfg: cfg.clone(),
            journal,
        })
    }

    pub fn settings(&self) -> &Offsite {
        &self.cfg
    }

    fn key(&self, name: &str) -> Key {
        Key::from(match self.cfg.prefix.is_empty() {
            true => name.to_string(),
            false => format!("{}/{name}", self.cfg.prefix),
        })
    }

    /// A hard stop around one call, beyond the client's own per-read deadline.
    async fn within<T>(&self, what: &str, fut: impl Future<Output = object_store::Result<T>>) -> Result<T> {
        let limit = self.cfg.timeout * 3;
        match tokio::time::timeout(limit, fut).await {
            Ok(result) => result.map_err(|e| self.error(what, e)),
            Err(_) => Err(self.error_text(
                what,
                format!("no answer within {}", humantime::format_duration(limit)),
            )),
        }
    }

    /// Every object under the prefix.
    pub async fn list(&self) -> Result<Vec<Object>> {
        let prefix = (!self.cfg.prefix.is_empty()).then(|| Key::from(self.cfg.prefix.as_str()));
        let strip = match self.cfg.prefix.is_empty() {
            true => String::new(),
            false => format!("{}/", self.cfg.prefix),
        };
        let listing = self.store.list(prefix.as_ref()).try_collect::<Vec<_>>();
        let metas = self.within("cannot list the off-site backups", listing).await?;
        Ok(metas
            .into_iter()
            .map(|m| Object {
                name: m
                    .location
                    .as_ref()
                    .strip_prefix(&strip)
                    .unwrap_or(m.location.as_ref())
                    .to_string(),
                size: m.size,
                modified: m.last_modified,
            })
            .collect())
    }

    /// One small object, written whole (a single PUT is atomic: readers see all or nothing).
    pub async fn put(&self, name: &str, bytes: Bytes) -> Result<()> {
        let key = self.key(name);
        self.within(
            &format!("cannot upload {name}"),
            self.store.put(&key, PutPayload::from(bytes)),
        )
        .await
        .map(drop)
    }

    /// An upload of `name` that streams: parts go out while the caller writes.
    pub fn upload(&self, name: &str) -> Upload {
        Upload {
            bucket: self.clone(),
            name: name.to_string(),
            key: self.key(name),
            buf: BytesMut::new(),
            multipart: None,
            size: 0,
        }
    }

    /// The object's bytes as they arrive.
    pub async fn get(&self, name: &str) -> Result<ByteStream> {
        let key = self.key(name);
        let result = self
            .within(&format!("cannot download {name}"), self.store.get(&key))
            .await?;
        let cfg = self.cfg.clone();
        let name = name.to_string();
        Ok(result
            .into_stream()
            .map_err(move |e| std::io::Error::other(format!("{name}: {}", scrub(&e.to_string(), &cfg))))
            .boxed())
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let key = self.key(name);
        self.within(&format!("cannot delete {name}"), self.store.delete(&key))
            .await
    }

    /// Aborts the uploads a killed or cut-off command left in flight. Returns how many.
    pub async fn abort_leftovers(&self) -> Result<usize> {
        let mut aborted = 0;
        for (key, id) in journal::read(&self.journal) {
            let path = Key::from(key.as_str());
            match self.abort(&path, &id).await {
                Ok(()) => aborted += 1,
                Err(e) => return Err(e.hint("the off-site server must be reachable to clean up")),
            }
        }
        Ok(aborted)
    }

    async fn abort(&self, key: &Key, id: &String) -> Result<()> {
        let result = self
            .within(
                "cannot abort an unfinished upload",
                self.store.abort_multipart(key, id),
            )
            .await;
        // Gone already (completed, aborted, or expired by the server) is as good as aborted.
        let gone = matches!(&result, Err(e) if e.to_string().contains("NoSuchUpload"));
        if result.is_ok() || gone {
            journal::remove(&self.journal, key.as_ref(), id);
            return Ok(());
        }
        result
    }

    fn error(&self, what: &str, e: object_store::Error) -> CtlError {
        let text = answer(&scrub(&e.to_string(), &self.cfg));
        let err = CtlError::failure(format!("{what} ({})", self.cfg.location()));
        let refused = [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied",
            "403 Forbidden",
        ]
        .iter()
        .any(|code| text.contains(code));
        match e {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => err
                .cause("the storage server refused the credentials")
                .cause(text)
                .hint("check BACKUP_REMOTE_ACCESS_KEY_ID and BACKUP_REMOTE_SECRET_ACCESS_KEY, and the key's rights on the bucket"),
            _ if refused => err
                .cause("the storage server refused the credentials")
                .cause(text)
                .hint("check BACKUP_REMOTE_ACCESS_KEY_ID and BACKUP_REMOTE_SECRET_ACCESS_KEY, and the key's rights on the bucket"),
            _ if text.contains("NoSuchBucket") => err
                .cause(format!("the bucket {} does not exist", self.cfg.bucket))
                .hint("create it, or correct BACKUP_REMOTE_URL"),
            object_store::Error::NotFound { .. } => err.cause("no such object on the server"),
            _ => err.cause(text).hint(
                "check that BACKUP_REMOTE_ENDPOINT is reachable from this server; the local backups are untouched",
            ),
        }
    }

    fn error_text(&self, what: &str, cause: String) -> CtlError {
        CtlError::failure(format!("{what} ({})", self.cfg.location()))
            .cause(cause)
            .hint("the storage server hangs or is unreachable; the local backups are untouched")
    }
}

/// The server's S3 error as one line: its `<Code>` and `<Message>` instead of the XML.
fn answer(text: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    match (tag("Code"), text.find("<?xml")) {
        (Some(code), Some(at)) => {
            let head = text[..at].trim_end().trim_end_matches(':');
            match tag("Message") {
                Some(message) => format!("{head}: {code}: {message}"),
                None => format!("{head}: {code}"),
            }
        }
        _ => text.to_string(),
    }
}

/// Errors can quote request URLs; make sure neither secret can ride along.
fn scrub(text: &str, cfg: &Offsite) -> String {
    // Signed URLs carry no secret, but a provider could echo one back in its message.
    crate::error::mask_text(text, std::slice::from_ref(&cfg.secret_access_key))
}

/// A streamed upload. Small objects go out as one PUT on `finish`; larger ones as a
/// multipart upload begun once the first part is full, with parts sent concurrently.
pub struct Upload {
    bucket: Bucket,
    name: String,
    key: Key,
    buf: BytesMut,
    multipart: Option<Multipart>,
    size: u64,
}

struct Multipart {
    id: String,
    parts: Vec<Option<PartId>>,
    in_flight: JoinSet<(usize, Result<PartId>)>,
    /// Aborts the upload if this command ends before it completes.
    undo: undo::Pending,
}

impl Upload {
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.size += data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let take = rest.len().min(PART_SIZE - self.buf.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == PART_SIZE {
                let part = self.buf.split().freeze();
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Bytes) -> Result<()> {
        if self.multipart.is_none() {
            self.multipart = Some(self.begin().await?);
        }
        let mp = self.multipart.as_mut().expect("begun above");
        spawn_part(&self.bucket, &self.key, &self.name, mp, part).await
    }

    async fn begin(&self) -> Result<Multipart> {
        let what = format!("cannot start the upload of {}", self.name);
        let id = self
            .bucket
            .within(&what, self.bucket.store.create_multipart(&self.key))
            .await?;
        journal::add(&self.bucket.journal, self.key.as_ref(), &id);
        let (bucket, key, upload) = (self.bucket.clone(), self.key.clone(), id.clone());
        let undo = undo::on_exit(format!("abort the off-site upload of {}", self.name), move |_| {
            Box::pin(async move { bucket.abort(&key, &upload).await })
        });
        Ok(Multipart {
            id,
            parts: Vec::new(),
            in_flight: JoinSet::new(),
            undo,
        })
    }

    /// Completes the object; returns its size. On failure the upload is aborted.
    pub async fn finish(mut self) -> Result<u64> {
        let Some(mut mp) = self.multipart.take() else {
            let bytes = self.buf.split().freeze();
            self.bucket.put(&self.name, bytes).await?;
            return Ok(self.size);
        };
        let result = self.complete(&mut mp).await;
        match result {
            Ok(()) => {
                journal::remove(&self.bucket.journal, self.key.as_ref(), &mp.id);
                mp.undo.disarm();
                Ok(self.size)
            }
            Err(e) => {
                mp.in_flight.abort_all();
                let _ = mp.undo.run_now(&Printer::silent()).await;
                Err(e)
            }
        }
    }

    async fn complete(&mut self, mp: &mut Multipart) -> Result<()> {
        if !self.buf.is_empty() {
            let last = self.buf.split().freeze();
            spawn_part(&self.bucket, &self.key, &self.name, mp, last).await?;
        }
        while !mp.in_flight.is_empty() {
            collect_one(mp).await?;
        }
        let parts: Vec<PartId> = mp
            .parts
            .iter_mut()
            .map(|p| p.take().expect("every part sent"))
            .collect();
        let what = format!("cannot complete the upload of {}", self.name);
        let store = self.bucket.store.clone();
        self.bucket
            .within(&what, store.complete_multipart(&self.key, &mp.id, parts))
            .await
            .map(drop)
    }

    /// Gives up: aborts a multipart upload begun on the server.
    pub async fn abort(mut self) {
        if let Some(mut mp) = self.multipart.take() {
            mp.in_flight.abort_all();
            let _ = mp.undo.run_now(&Printer::silent()).await;
        }
    }
}

/// Sends one part in the background, once fewer than PARTS_IN_FLIGHT are on their way.
async fn spawn_part(bucket: &Bucket, key: &Key, name: &str, mp: &mut Multipart, part: Bytes) -> Result<()> {
    while mp.in_flight.len() >= PARTS_IN_FLIGHT {
        collect_one(mp).await?;
    }
    let (bucket, key, id, idx) = (bucket.clone(), key.clone(), mp.id.clone(), mp.parts.len());
    let what = format!("cannot upload part {} of {name}", idx + 1);
    mp.parts.push(None);
    mp.in_flight.spawn(async move {
        let payload = PutPayload::from(part);
        (
            idx,
            bucket
                .within(&what, bucket.store.put_part(&key, &id, idx, payload))
                .await,
        )
    });
    Ok(())
}

async fn collect_one(mp: &mut Multipart) -> Result<()> {
    match mp.in_flight.join_next().await {
        Some(Ok((idx, Ok(part)))) => {
            mp.parts[idx] = Some(part);
            Ok(())
        }
        Some(Ok((_, Err(e)))) => Err(e),
        Some(Err(e)) => Err(CtlError::failure("an upload task failed").cause(e)),
        None => Ok(()),
    }
}

/// `.pricescan/offsite-uploads.jsonl`: one line per multipart upload in flight.
mod journal {
    use std::path::Path;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Line {
        key: String,
        upload_id: String,
    }

    pub fn read(path: &Path) -> Vec<(String, String)> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Line>(l).ok())
            .map(|l| (l.key, l.upload_id))
            .collect()
    }

    pub fn add(path: &Path, key: &str, id: &str) {
        let mut lines = read(path);
        lines.push((key.to_string(), id.to_string()));
        write(path, &lines);
    }

    pub fn remove(path: &Path, key: &str, id: &str) {
        let mut lines = read(path);
        let before = lines.len();
        lines.retain(|(k, i)| !(k == key && i == id));
        if lines.len() != before {
            write(path, &lines);
        }
    }

    fn write(path: &Path, lines: &[(String, String)]) {
        let text: String = lines
            .iter()
            .filter_map(|(key, upload_id)| {
                serde_json::to_string(&Line {
                    key: key.clone(),
                    upload_id: upload_id.clone(),
                })
                .ok()
            })
            .map(|l| l + "\n")
            .collect();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        // Best effort: losing a line costs a stray upload that the bucket's lifecycle expires,
        // never a backup.
        let _ = crate::sys::fsutil::write_atomic(path, text.as_bytes(), 0o600);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_errors_read_as_one_line() {
        let raw = "Error performing GET http://h/b in 2ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message></Error>";
        assert_eq!(
            super::answer(raw),
            "Error performing GET http://h/b in 2ms - Server returned non-2xx status code: 403 Forbidden: SignatureDoesNotMatch: The signature does not match."
        );
        assert_eq!(super::answer("connection refused"), "connection refused");
    }
}
