//! Off-site copies of backups (DESIGN §9): pushing a local backup to the bucket, pulling one
//! back, verifying the remote copy, listing and pruning. Each backup lands at
//! `PREFIX/<ID>/` with the same files as locally, sealed with age when recipients are set,
//! and `manifest.json` written last, so a backup is listed only once it is whole. A push
//! that fails removes what it had uploaded of that backup.

use crate::backup::bucket::{Bucket, Object};
use crate::backup::catalog::{self, MANIFEST, Manifest, OnDisk, SUMS};
use crate::backup::retention::{Candidate, Policy};
use crate::backup::seal::{self, Recipients};
use crate::error::{CtlError, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::stack::offsite::Offsite;
use futures_util::AsyncReadExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt};

/// Written after a successful `verify --remote`; its time is the verification's.
const VERIFIED: &str = "verified";
const CHUNK: usize = 1 << 20;

/// A backup as the bucket holds it.
#[derive(Debug, Clone)]
pub struct RemoteBackup {
    pub id: String,
    /// False while `manifest.json` is missing: an upload cut short, never a backup.
    pub complete: bool,
    pub size: u64,
    pub files: Vec<String>,
    pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Clone)]
pub struct Remote {
    pub(super) bucket: Bucket,
    pub(super) recipients: Recipients,
    pub(super) identity: Option<PathBuf>,
}

/// The off-site store, or None when BACKUP_REMOTE_URL is empty.
pub fn open(project: &Project) -> Result<Option<Remote>> {
    let Some(cfg) = Offsite::from_env(&project.env, &project.dir)? else {
        return Ok(None);
    };
    let journal = project.dir.join(".pricescan").join("offsite-uploads.jsonl");
    Ok(Some(Remote {
        recipients: Recipients::parse(&cfg.recipients)?,
        identity: cfg.identity_file.clone(),
        bucket: Bucket::open(&cfg, journal)?,
    }))
}

/// Like `open`, for commands that make no sense without an off-site store: exit 2.
pub fn require(project: &Project) -> Result<Remote> {
    open(project)?.ok_or_else(|| {
        CtlError::usage("off-site backups are not configured: BACKUP_REMOTE_URL is empty")
            .hint("set BACKUP_REMOTE_URL and its credentials in .env.prod (README: Off-site backups)")
    })
}

/// The remote policy: BACKUP_REMOTE_KEEP_*, each falling back to its local count.
pub fn policy(project: &Project) -> Policy {
    catalog::policy_from(&project.env, "BACKUP_REMOTE_KEEP_", catalog::policy(&project.env))
}

impl Remote {
    pub fn location(&self) -> String {
        self.bucket.settings().location()
    }

    pub fn encrypted(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// Aborts uploads an earlier, killed or cut-off command left in flight.
    pub async fn clean_leftovers(&self, printer: &Printer) -> Result<()> {
        let n = self.bucket.abort_leftovers().await?;
        if n > 0 {
            printer.warn(&format!(
                "aborted {n} unfinished off-site upload(s) an earlier command left"
            ));
        }
        Ok(())
    }

    /// Every backup under the prefix, oldest first, incomplete ones included.
    pub async fn backups(&self) -> Result<Vec<RemoteBackup>> {
        Ok(group(self.bucket.list().await?))
    }

    /// Uploads a local backup: its files, SHA256SUMS, and the manifest last. Returns the
    /// bytes sent. On failure, nothing of it stays listed.
    pub async fn push(&self, b: &OnDisk, printer: &Printer) -> Result<u64> {
        self.push_with(b, None, printer).await
    }

    /// `push`, where one file may already be on its way (`stream`): it is copied from disk
    /// only if that upload failed or does not match the manifest.
    pub async fn push_with(
        &self,
        b: &OnDisk,
        streamed: Option<StreamedFile>,
        printer: &Printer,
    ) -> Result<u64> {
        let manifest = b
            .manifest
            .as_ref()
            .ok_or_else(|| CtlError::failure(format!("backup {} has no valid manifest", b.id)))?;
        let done = match streamed {
            Some(s) => self.streamed_ok(s, manifest, printer).await,
            None => {
                self.clean_leftovers(printer).await?;
                // A copy already there (named again to repair it) stops being listed until replaced.
                self.remove(&b.id).await?;
                None
            }
        };
        // Interrupted or failed, what was uploaded of this backup goes.
        let (me, id) = (self.clone(), b.id.clone());
        let undo = crate::sys::undo::on_exit(
            format!("remove the unfinished off-site copy of {id}"),
            move |_| Box::pin(async move { me.remove(&id).await }),
        );
        let result = self.push_files(b, manifest, done.as_ref(), printer).await;
        match &result {
            Ok(_) => undo.disarm(),
            Err(_) => {
                let _ = undo.run_now(printer).await;
            }
        }
        result
    }

    /// The streamed file's name and size when its upload completed and matches the manifest.
    async fn streamed_ok(
        &self,
        s: StreamedFile,
        manifest: &Manifest,
        printer: &Printer,
    ) -> Option<(String, u64)> {
        let result = s
            .task
            .await
            .map_err(|e| CtlError::failure("the streamed upload failed").cause(e));
        // push_with's own undo covers the backup from here.
        s.undo.disarm();
        let entry = manifest.files.iter().find(|f| f.name == s.name)?;
        match result.and_then(|r| r) {
            Ok((size, hash)) if size == entry.size && hash == entry.sha256 => Some((s.name, size)),
            Ok(_) => {
                printer.debug(&format!(
                    "the streamed {} does not match the manifest; copying it again",
                    s.name
                ));
                None
            }
            Err(e) => {
                printer.debug(&format!(
                    "streaming {} failed ({}); copying it from disk",
                    s.name,
                    e.summary()
                ));
                None
            }
        }
    }

    async fn push_files(
        &self,
        b: &OnDisk,
        manifest: &Manifest,
        done: Option<&(String, u64)>,
        printer: &Printer,
    ) -> Result<u64> {
        let mut sent = done.map_or(0, |(_, size)| *size);
        for f in manifest
            .files
            .iter()
            .filter(|f| done.is_none_or(|(name, _)| *name != f.name))
        {
            let bar = printer.progress(f.size, &format!("off-site {}", f.name));
            let (size, hash) = self
                .upload_file(&b.id, &b.path.join(&f.name), &f.name, &bar)
                .await?;
            bar.finish_and_clear();
            if size != f.size || hash != f.sha256 {
                return Err(CtlError::failure(format!(
                    "backup {}: {} changed on disk since it was taken; not copied off-site",
                    b.id, f.name
                ))
                .hint(format!("run `pricescan-ctl backup verify {}`", b.id)));
            }
            sent += size;
        }
        for name in [SUMS, MANIFEST] {
            let bar = printer.progress(0, &format!("off-site {name}"));
            sent += self.upload_file(&b.id, &b.path.join(name), name, &bar).await?.0;
            bar.finish_and_clear();
        }
        Ok(sent)
    }

    /// Streams one local file up, sealed; returns its plaintext size and SHA-256.
    async fn upload_file(
        &self,
        id: &str,
        path: &Path,
        name: &str,
        bar: &indicatif::ProgressBar,
    ) -> Result<(u64, String)> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| CtlError::failure(format!("cannot open {}", path.display())).cause(e))?;
        let mut sealing = self.recipients.seal()?;
        let mut upload = self.bucket.upload(&format!("{id}/{name}"));
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let streamed = async {
            loop {
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(|e| CtlError::failure(format!("cannot read {}", path.display())).cause(e))?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                size += n as u64;
                bar.set_position(size);
                upload.write(&sealing.push(&buf[..n])?).await?;
            }
            upload.write(&sealing.finish()?).await
        }
        .await;
        match streamed {
            Ok(()) => upload.finish().await?,
            Err(e) => {
                upload.abort().await;
                return Err(e);
            }
        };
        Ok((size, hex::encode(hash.finalize())))
    }

    /// Removes every object of backup `id`, the manifest first so that it stops being listed.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let mut names: Vec<String> = self
            .bucket
            .list()
            .await?
            .into_iter()
            .filter(|o| o.name.split_once('/').is_some_and(|(i, _)| i == id))
            .map(|o| o.name)
            .collect();
        names.sort_by_key(|n| !n.ends_with(&format!("/{MANIFEST}")));
        for name in names {
            self.bucket.delete(&name).await?;
        }
        Ok(())
    }

    /// The remote manifest, decrypted.
    pub async fn manifest(&self, id: &str) -> Result<Manifest> {
        let mut reader = self.open_file(id, MANIFEST).await?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| CtlError::failure(format!("cannot read the off-site manifest of {id}")).cause(e))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| CtlError::failure(format!("the off-site manifest of {id} is damaged")).cause(e))?;
        if m.id != id || m.status != "complete" {
            return Err(CtlError::failure(format!(
                "the off-site manifest of {id} names another backup"
            )));
        }
        Ok(m)
    }

    async fn open_file(&self, id: &str, name: &str) -> Result<seal::Reader> {
        let stream = self.bucket.get(&format!("{id}/{name}")).await?;
        seal::open(stream, self.identity.as_deref(), &format!("{id}/{name}")).await
    }

    /// Streams `id/name`, decrypted, into `out` (if any); returns its size and SHA-256.
    async fn stream_file(
        &self,
        id: &str,
        name: &str,
        mut out: Option<&mut tokio::fs::File>,
        bar: &indicatif::ProgressBar,
    ) -> Result<(u64, String)> {
        let mut reader = self.open_file(id, name).await?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let damaged = |e: std::io::Error| {
            CtlError::failure(format!(
                "the off-site copy of {id}/{name} is damaged or truncated"
            ))
            .cause(e)
        };
        loop {
            let n = reader.read(&mut buf).await.map_err(damaged)?;
            if n == 0 {
                return Ok((size, hex::encode(hash.finalize())));
            }
            hash.update(&buf[..n]);
            size += n as u64;
            bar.set_position(size);
            if let Some(file) = out.as_deref_mut() {
                file.write_all(&buf[..n])
                    .await
                    .map_err(|e| CtlError::failure(format!("cannot write {name}")).cause(e))?;
            }
        }
    }

    /// Everything wrong with the remote copy of `id`: every file streamed, decrypted and
    /// hashed against the manifest. Marks it verified when sound.
    pub async fn verify(&self, id: &str, printer: &Printer) -> Result<Vec<String>> {
        let m = self.manifest(id).await?;
        let mut found = Vec::new();
        for f in &m.files {
            let bar = printer.progress(f.size, &format!("verify {}", f.name));
            match self.stream_file(id, &f.name, None, &bar).await {
                Ok((size, hash)) if size == f.size && hash == f.sha256 => {}
                Ok((size, _)) if size != f.size => {
                    found.push(format!("{}: {size} bytes, the manifest says {}", f.name, f.size))
                }
                Ok(_) => found.push(format!("{}: SHA-256 does not match the manifest", f.name)),
                Err(e) => found.push(format!("{}: {}", f.name, e.summary())),
            }
            bar.finish_and_clear();
        }
        if found.is_empty() {
            let now = chrono::Utc::now().to_rfc3339();
            self.bucket.put(&format!("{id}/{VERIFIED}"), now.into()).await?;
        }
        Ok(found)
    }

    /// Pulls `id` and checks it as `backup verify` would; a backup that fails is not kept.
    pub async fn pull_verified(&self, project: &Project, id: &str, printer: &Printer) -> Result<OnDisk> {
        let listed = self.backups().await?;
        if !listed.iter().any(|b| b.complete && b.id == id) {
            return Err(CtlError::usage(format!("no backup {id}, locally or off-site"))
                .hint("`pricescan-ctl backup list --remote` shows the off-site backups"));
        }
        let b = self.pull(project, id, printer).await?;
        let problems = catalog::problems(&b);
        if problems.is_empty() {
            catalog::mark_verified(&b, false)?;
            return catalog::find(project, Some(id));
        }
        let _ = std::fs::remove_dir_all(&b.path);
        let mut err = CtlError::failure(format!(
            "the off-site copy of {id} failed its checks; it was not kept"
        ));
        for p in problems {
            err = err.cause(p);
        }
        Err(err)
    }

    /// Downloads backup `id` into the local store, verifies it, and returns it. Written in
    /// `.<ID>.partial/` and renamed last, like a backup being taken.
    async fn pull(&self, project: &Project, id: &str, printer: &Printer) -> Result<OnDisk> {
        let root = catalog::backup_root(project);
        let m = self.manifest(id).await?;
        let partial = root.join(format!(".{id}.partial"));
        std::fs::create_dir_all(&partial)
            .map_err(|e| CtlError::failure(format!("cannot create {}", partial.display())).cause(e))?;
        let guard = crate::backup::catalog::PartialGuard::new(partial.clone());
        crate::sys::fsutil::set_mode(&partial, 0o700)?;
        for f in &m.files {
            let path = partial.join(&f.name);
            let mut file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| CtlError::failure(format!("cannot create {}", path.display())).cause(e))?;
            let bar = printer.progress(f.size, &format!("pull {}", f.name));
            let (size, hash) = self.stream_file(id, &f.name, Some(&mut file), &bar).await?;
            bar.finish_and_clear();
            file.sync_all()
                .await
                .map_err(|e| CtlError::failure(format!("cannot sync {}", path.display())).cause(e))?;
            if size != f.size || hash != f.sha256 {
                return Err(CtlError::failure(format!(
                    "the off-site copy of {id}/{} does not match its manifest; nothing was kept",
                    f.name
                )));
            }
        }
        let sums: String = m
            .files
            .iter()
            .map(|f| format!("{}  {}\n", f.sha256, f.name))
            .collect();
        crate::sys::fsutil::write_atomic(&partial.join(SUMS), sums.as_bytes(), 0o600)?;
        catalog::write_manifest(&partial, &m)?;
        guard.commit(&root.join(id))?;
        catalog::find(project, Some(id))
    }
}

/// What a backup being taken sends to its off-site upload: bytes as they are written,
/// then `End` once the file is known good. A channel that closes without `End` aborts.
pub enum Chunk {
    Data(bytes::Bytes),
    End,
}

/// An upload fed while the file is still being written (the dump, as it streams).
pub struct StreamedFile {
    name: String,
    task: tokio::task::JoinHandle<Result<(u64, String)>>,
    undo: crate::sys::undo::Pending,
}

impl Remote {
    /// Starts uploading `id/name` from the chunks sent on the returned channel, so the copy
    /// leaves while the backup is taken. Bounded: a slow server slows the writer, no more.
    pub fn stream(&self, id: &str, name: &str) -> (tokio::sync::mpsc::Sender<Chunk>, StreamedFile) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(8);
        let (me, id_owned) = (self.clone(), id.to_string());
        let undo = crate::sys::undo::on_exit(
            format!("remove the unfinished off-site copy of {id}"),
            move |_| Box::pin(async move { me.remove(&id_owned).await }),
        );
        let mut upload = self.bucket.upload(&format!("{id}/{name}"));
        let recipients = self.recipients.clone();
        let task = tokio::spawn(async move {
            let mut hash = Sha256::new();
            let mut size = 0u64;
            let fed = async {
                let mut sealing = recipients.seal()?;
                loop {
                    match rx.recv().await {
                        Some(Chunk::Data(bytes)) => {
                            hash.update(&bytes);
                            size += bytes.len() as u64;
                            upload.write(&sealing.push(&bytes)?).await?;
                        }
                        Some(Chunk::End) => break,
                        None => return Err(CtlError::failure("the streamed copy was given up")),
                    }
                }
                upload.write(&sealing.finish()?).await
            }
            .await;
            match fed {
                Ok(()) => upload
                    .finish()
                    .await
                    .map(|_| (size, hex::encode(hash.finalize()))),
                Err(e) => {
                    upload.abort().await;
                    Err(e)
                }
            }
        });
        let streamed = StreamedFile {
            name: name.to_string(),
            task,
            undo,
        };
        (tx, streamed)
    }
}

impl StreamedFile {
    /// The backup failed: the upload ends (its channel closed without `End`, so it aborts
    /// itself), and what reached the server is removed.
    pub async fn abandon(self, printer: &Printer) {
        let _ = self.task.await;
        let _ = self.undo.run_now(printer).await;
    }
}

/// An AsyncWrite that also hands what it writes to a streamed upload. The upload never
/// fails the write: a closed channel, or one stalled for STALL, detaches it, and the file
/// is then copied from disk after the backup.
pub struct Tee<W> {
    pub inner: W,
    sender: Option<(
        tokio::sync::mpsc::Sender<Chunk>,
        tokio_util::sync::PollSender<Chunk>,
    )>,
    stall: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

const STALL: std::time::Duration = std::time::Duration::from_secs(10);

impl<W> Tee<W> {
    pub fn new(inner: W, sender: Option<tokio::sync::mpsc::Sender<Chunk>>) -> Self {
        let sender = sender.map(|s| (s.clone(), tokio_util::sync::PollSender::new(s)));
        Self {
            inner,
            sender,
            stall: None,
        }
    }

    /// The file is complete and good: the upload may complete too.
    pub async fn finish(&mut self) {
        if let Some((sender, poll)) = self.sender.take() {
            drop(poll);
            let _ = sender.send(Chunk::End).await;
        }
    }

    /// Ready to hand over a chunk, or detached; Pending while the upload catches up.
    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::future::Future;
        use std::task::Poll;
        let Some((_, poll)) = self.sender.as_mut() else {
            return Poll::Ready(());
        };
        match poll.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {
                self.stall = None;
                Poll::Ready(())
            }
            Poll::Ready(Err(_)) => {
                self.sender = None;
                Poll::Ready(())
            }
            Poll::Pending => {
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(STALL)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.sender = None;
                        self.stall = None;
                        Poll::Ready(())
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Tee<W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::ready!(self.poll_ready(cx));
        let written = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = written
            && let Some((_, poll)) = self.sender.as_mut()
            && poll
                .send_item(Chunk::Data(bytes::Bytes::copy_from_slice(&buf[..n])))
                .is_err()
        {
            self.sender = None;
        }
        written
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Objects grouped by backup id, oldest first.
fn group(objects: Vec<Object>) -> Vec<RemoteBackup> {
    let mut by_id: BTreeMap<String, RemoteBackup> = BTreeMap::new();
    for o in objects {
        let Some((id, file)) = o.name.split_once('/') else {
            continue;
        };
        // The binlog archive's chunks live beside the backups and are none of them.
        if id == crate::stack::pitr::REMOTE_DIR {
            continue;
        }
        let b = by_id.entry(id.to_string()).or_insert_with(|| RemoteBackup {
            id: id.to_string(),
            complete: false,
            size: 0,
            files: Vec::new(),
            verified_at: None,
        });
        match file {
            MANIFEST => b.complete = true,
            VERIFIED => b.verified_at = Some(o.modified),
            _ => {}
        }
        b.size += o.size;
        b.files.push(file.to_string());
    }
    by_id.into_values().collect()
}

/// What retention needs of complete remote backups: the time and the reason are in the
/// id, so nothing has to be downloaded or decrypted.
pub fn candidates(remote: &[RemoteBackup]) -> Vec<Candidate> {
    remote
        .iter()
        .filter(|b| b.complete)
        .filter_map(|b| {
            let time = chrono::NaiveDateTime::parse_from_str(b.id.get(..16)?, "%Y%m%dT%H%M%SZ").ok()?;
            Some(Candidate {
                id: b.id.clone(),
                time: time.and_utc(),
                pre_deploy: b.id.ends_with("-pre-deploy"),
                verified: b.verified_at.is_some(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, size: u64) -> Object {
        Object {
            name: name.into(),
            size,
            modified: chrono::Utc::now(),
        }
    }

    #[test]
    fn grouping_and_candidates() {
        let remote = group(vec![
            obj("20261101T021500Z-nightly/mysql.sql.zst", 100),
            obj("20261101T021500Z-nightly/manifest.json", 10),
            obj("20261101T021500Z-nightly/verified", 1),
            obj("20261102T021500Z-pre-deploy/mysql.sql.zst", 50),
            obj("20261102T021500Z-pre-deploy/manifest.json", 10),
            obj("20261103T021500Z-nightly/mysql.sql.zst", 70),
            obj("stray", 1),
            obj("binlog/mysql-bin.000001/00000000000000000000-000000000100", 1),
        ]);
        assert_eq!(remote.len(), 3);
        assert!(remote[0].complete && remote[0].verified_at.is_some() && remote[0].size == 111);
        assert!(!remote[2].complete, "no manifest: an upload cut short");
        let c = candidates(&remote);
        assert_eq!(c.len(), 2);
        assert!(c[0].verified && !c[0].pre_deploy);
        assert!(c[1].pre_deploy && !c[1].verified);
        assert_eq!(c[1].time.to_rfc3339(), "2026-11-02T02:15:00+00:00");
    }
}
