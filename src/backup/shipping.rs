//! The binlog archive off-site (DESIGN §13): `backup archive` ships each file's growing tail
//! as sealed chunks named by file and byte range, `binlog/<file>/<offset>-<length>`; a
//! restore after losing the server pulls them back and joins them. A chunk is one PUT, so it
//! lands whole or not at all, and the journal of shipped bytes is written only after it
//! landed: a chunk shipped again after a crash has the same name and the same bytes. Chunks
//! are read from the archive in bounded pieces, so memory stays flat.

use crate::backup::binlog::{self, Archive, ArchivedFile};
use crate::backup::coordinates::head_of;
use crate::backup::offsite::Remote;
use crate::backup::replay::{LastEvent, event_before};
use crate::backup::seal;
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::stack::Project;
use crate::stack::pitr::{ARCHIVE_DIR, REMOTE_DIR, sequence};
use crate::sys::fsutil;
use bytes::Bytes;
use futures_util::AsyncReadExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where a restore puts pulled files in the archiver's container: apart from the live
/// archive, since a new server numbers its binary log from 1 again.
pub const PULLED_DIR: &str = "/archive/pulled";
/// Beside the chunks: the off-site archive's newest complete event, so that the window is
/// known from the bucket alone.
const THROUGH: &str = "binlog/through.json";
/// The largest chunk: one PUT, held in memory once.
const MAX_CHUNK: u64 = 8 << 20;
/// The bytes of a file's start compared to tell two servers' files of one name apart.
const HEAD: u64 = crate::backup::coordinates::HEAD_BYTES as u64;

pub fn chunk_name(file: &str, offset: u64, len: u64) -> String {
    format!("{REMOTE_DIR}/{file}/{offset:020}-{len:012}")
}

/// One chunk in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub name: String,
    pub file: String,
    pub offset: u64,
    pub len: u64,
}

pub fn parse_chunk(name: &str) -> Option<Chunk> {
    let rest = name.strip_prefix(REMOTE_DIR)?.strip_prefix('/')?;
    let (file, range) = rest.split_once('/')?;
    sequence(file)?;
    let (offset, len) = range.split_once('-')?;
    Some(Chunk {
        name: name.to_string(),
        file: file.to_string(),
        offset: offset.parse().ok()?,
        len: len.parse().ok()?,
    })
}

/// Per file, its chunks in order and how far they reach without a hole; `hole` is where the
/// first missing byte is when a later chunk exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covered {
    pub chunks: Vec<Chunk>,
    pub end: u64,
    pub hole: Option<u64>,
}

pub fn coverage(mut chunks: Vec<Chunk>) -> BTreeMap<String, Covered> {
    chunks.sort_by_key(|c| (sequence(&c.file), c.offset));
    let mut out: BTreeMap<String, Covered> = BTreeMap::new();
    for c in chunks {
        let f = out.entry(c.file.clone()).or_default();
        if f.hole.is_some() {
            continue;
        }
        if c.offset > f.end {
            f.hole = Some(f.end);
            continue;
        }
        f.end = f.end.max(c.offset + c.len);
        f.chunks.push(c);
    }
    out
}

/// What has been shipped of each file, and its first bytes (hex).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Journal {
    #[serde(skip)]
    path: PathBuf,
    pub files: BTreeMap<String, Shipped>,
    /// The newest complete event off-site, as this process last found it.
    #[serde(skip)]
    pub through: Option<LastEvent>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shipped {
    pub bytes: u64,
    #[serde(default)]
    pub head: Option<String>,
}

impl Journal {
    /// The journal on disk; rebuilt from the bucket when missing or unreadable (a lost
    /// journal costs a listing, never a gap or a duplicate).
    pub async fn open(project: &Project, remote: &Remote) -> Result<(Self, bool)> {
        let path = project.dir.join(".pricescan").join("binlog-shipped.json");
        if let Some(files) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return Ok((
                Self {
                    path,
                    files,
                    through: None,
                },
                false,
            ));
        }
        let files = coverage(remote.archive_chunks().await?)
            .into_iter()
            .map(|(file, c)| {
                (
                    file,
                    Shipped {
                        bytes: c.end,
                        head: None,
                    },
                )
            })
            .collect();
        Ok((
            Self {
                path,
                files,
                through: None,
            },
            true,
        ))
    }

    fn save(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.files)
            .map_err(|e| CtlError::failure("cannot encode the shipping journal").cause(e))?;
        fsutil::write_atomic(&self.path, &json, 0o600)
    }
}

impl Remote {
    /// One object, sealed for the recipients when they are set.
    pub async fn put_sealed(&self, name: &str, data: &[u8]) -> Result<()> {
        let mut sealing = self.recipients.seal()?;
        let mut out = sealing.push(data)?.to_vec();
        out.extend_from_slice(&sealing.finish()?);
        self.bucket.put(name, Bytes::from(out)).await
    }

    /// One object's plaintext.
    /// With recipients set, an object that is not sealed is refused: it is not what was
    /// shipped (age also refuses a sealed one that was altered).
    pub async fn get_opened(&self, name: &str) -> Result<Vec<u8>> {
        use futures_util::StreamExt;
        let mut stream = self.bucket.get(name).await?;
        let mut raw = Vec::new();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| CtlError::failure(format!("cannot download {name}")).cause(e))?;
            raw.extend_from_slice(&piece);
        }
        if self.encrypted() && !raw.starts_with(b"age-encryption.org/v1") {
            return Err(CtlError::failure(format!(
                "{name} in the bucket is damaged: it is not sealed, and the archive is shipped sealed"
            )));
        }
        let whole = futures_util::stream::iter([Ok(Bytes::from(raw))]).boxed();
        let mut reader = seal::open(whole, self.identity.as_deref(), name).await?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| CtlError::failure(format!("cannot read {name} from the bucket")).cause(e))?;
        Ok(out)
    }

    /// An object as it is: what anyone with the bucket may read.
    pub async fn put_plain(&self, name: &str, data: Vec<u8>) -> Result<()> {
        self.bucket.put(name, Bytes::from(data)).await
    }

    /// The off-site archive's newest complete event, as the shipper last recorded it (None
    /// before the first round, or when nothing was shipped).
    pub async fn through(&self) -> Result<Option<LastEvent>> {
        use futures_util::StreamExt;
        let objects = self.bucket.list().await?;
        if !objects.iter().any(|o| o.name == THROUGH) {
            return Ok(None);
        }
        let mut stream = self.bucket.get(THROUGH).await?;
        let mut raw = Vec::new();
        while let Some(piece) = stream.next().await {
            raw.extend_from_slice(
                &piece.map_err(|e| CtlError::failure(format!("cannot download {THROUGH}")).cause(e))?,
            );
        }
        Ok(parse_through(&raw))
    }

    /// Removes one chunk of the binlog archive (retention).
    pub async fn delete_chunk(&self, chunk: &Chunk) -> Result<()> {
        self.bucket.delete(&chunk.name).await
    }

    /// Every chunk of the binlog archive in the bucket.
    pub async fn archive_chunks(&self) -> Result<Vec<Chunk>> {
        let objects = self.bucket.list().await?;
        Ok(objects.iter().filter_map(|o| parse_chunk(&o.name)).collect())
    }
}

fn parse_through(raw: &[u8]) -> Option<LastEvent> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let at = chrono::DateTime::parse_from_rfc3339(v["at"].as_str()?).ok()?;
    Some(LastEvent {
        end: crate::stack::pitr::Position {
            file: v["file"].as_str()?.to_string(),
            pos: v["pos"].as_u64()?,
        },
        at: at.with_timezone(&chrono::Utc),
    })
}

/// Bytes `[at, at + len)` of an archived file, read in the archiver's container.
async fn read_range(engine: &Engine, archiver: &str, file: &str, at: u64, len: u64) -> Result<Vec<u8>> {
    let script = format!("tail -c +{} {ARCHIVE_DIR}/{file} | head -c {len}", at + 1);
    let mut exec = engine.exec_stream(archiver, &["sh", "-c", &script]).await?;
    let mut out = Vec::with_capacity(len as usize);
    while let Some(chunk) = exec.next_stdout().await? {
        out.extend_from_slice(&chunk);
    }
    match exec.exit_code(engine).await? {
        0 => Ok(out),
        n => Err(
            CtlError::failure(format!("cannot read {file} from the binlog archive (exit {n})"))
                .cause(exec.stderr.trim().to_string()),
        ),
    }
}

/// What one round shipped, and how the archive stood.
#[derive(Debug, Default, Clone)]
pub struct Round {
    pub bytes: u64,
    pub chunks: u64,
    /// Bytes archived locally and not yet off-site, after the round.
    pub behind: u64,
    /// Bytes of MySQL's binary log not archived locally (None: MySQL did not say).
    pub local_lag: Option<u64>,
    /// The gaps the archiver recorded.
    pub gaps: Vec<String>,
    /// The newest complete event off-site after the round.
    pub through: Option<LastEvent>,
}

/// Ships what the archive holds beyond the journal. Stops at the first failure: what was
/// shipped is recorded, and the next round goes on from there.
pub async fn ship_once(
    engine: &Engine,
    archiver: &str,
    mysql: Option<&str>,
    remote: &Remote,
    journal: &mut Journal,
) -> Result<Round> {
    let archive = binlog::list(engine, archiver).await?;
    let mut round = Round {
        local_lag: match mysql {
            Some(mysql) => binlog::lag(engine, mysql, &archive).await,
            None => None,
        },
        gaps: archive.gaps.clone(),
        ..Round::default()
    };
    for f in &archive.files {
        ship_file(engine, archiver, remote, journal, f, &mut round).await?;
    }
    round.behind = behind(&archive, journal);
    round.through = mark_through(engine, archiver, remote, journal, &archive).await;
    Ok(round)
}

/// Finds the newest complete event shipped, decoding only what was shipped since the last
/// round, and records it in the bucket when it moved. Best effort: the chunks are what
/// count, and the next round tries again.
async fn mark_through(
    engine: &Engine,
    archiver: &str,
    remote: &Remote,
    journal: &mut Journal,
    archive: &Archive,
) -> Option<LastEvent> {
    let newest = archive
        .files
        .iter()
        .rev()
        .find_map(|f| Some((&f.name, journal.files.get(&f.name)?.bytes)).filter(|(_, n)| *n > 0))?;
    let (file, shipped) = newest;
    let known = journal.through.clone().filter(|t| &t.end.file == file);
    if known.as_ref().is_some_and(|t| t.end.pos >= shipped) {
        return known;
    }
    let start = known.as_ref().map_or(4, |t| t.end.pos);
    let found = event_before(engine, archiver, ARCHIVE_DIR, (file, start), shipped)
        .await
        .ok()
        .flatten()
        .or(known);
    if found.is_some() && found != journal.through {
        let through = found.clone()?;
        let json = serde_json::json!({
            "file": through.end.file, "pos": through.end.pos, "at": through.at.to_rfc3339(),
        });
        if remote
            .put_plain(THROUGH, json.to_string().into_bytes())
            .await
            .is_ok()
        {
            journal.through = found.clone();
        }
    }
    found.or(journal.through.clone())
}

fn behind(archive: &Archive, journal: &Journal) -> u64 {
    archive
        .files
        .iter()
        .map(|f| {
            f.size
                .saturating_sub(journal.files.get(&f.name).map_or(0, |s| s.bytes))
        })
        .sum()
}

async fn ship_file(
    engine: &Engine,
    archiver: &str,
    remote: &Remote,
    journal: &mut Journal,
    f: &ArchivedFile,
    round: &mut Round,
) -> Result<()> {
    let mut at = journal.files.get(&f.name).map_or(0, |s| s.bytes);
    if at >= f.size {
        return Ok(());
    }
    check_same_file(engine, archiver, remote, journal, f).await?;
    while at < f.size {
        let bytes = read_range(engine, archiver, &f.name, at, (f.size - at).min(MAX_CHUNK)).await?;
        if bytes.is_empty() {
            break; // the archiver is fetching it again from its start: the next round
        }
        remote
            .put_sealed(&chunk_name(&f.name, at, bytes.len() as u64), &bytes)
            .await?;
        let entry = journal.files.entry(f.name.clone()).or_default();
        if at == 0 {
            entry.head = Some(head_of(&bytes));
        }
        at += bytes.len() as u64;
        entry.bytes = at;
        journal.save()?;
        round.bytes += bytes.len() as u64;
        round.chunks += 1;
    }
    Ok(())
}

/// A file shipped in part must be the same file here: a new server names its binary log
/// from 1 again, and its events must never be joined to the old server's.
async fn check_same_file(
    engine: &Engine,
    archiver: &str,
    remote: &Remote,
    journal: &mut Journal,
    f: &ArchivedFile,
) -> Result<()> {
    let Some(shipped) = journal.files.get(&f.name).cloned().filter(|s| s.bytes > 0) else {
        return Ok(());
    };
    let here = hex::encode(read_range(engine, archiver, &f.name, 0, HEAD).await?);
    let there = match shipped.head {
        Some(head) => head,
        None => {
            let first = chunk_name_at_zero(remote, &f.name).await?;
            let bytes = remote.get_opened(&first).await?;
            head_of(&bytes)
        }
    };
    if !there.starts_with(&here) && !here.starts_with(&there) {
        return Err(CtlError::failure(format!(
            "{} here is not the {} in the bucket: this is a new server, whose binary log would be joined to the old one's",
            f.name, f.name
        ))
        .hint("point BACKUP_REMOTE_URL at a new prefix for this server (the old archive stays where it is for restores)"));
    }
    if let Some(entry) = journal.files.get_mut(&f.name) {
        entry.head = Some(there);
    }
    Ok(())
}

async fn chunk_name_at_zero(remote: &Remote, file: &str) -> Result<String> {
    remote
        .archive_chunks()
        .await?
        .into_iter()
        .find(|c| c.file == file && c.offset == 0)
        .map(|c| c.name)
        .ok_or_else(|| CtlError::failure(format!("the bucket has no start of {file}")))
}

/// Pulls the off-site archive from `from`'s file on into `PULLED_DIR` of the archiver's
/// container, each file joined from its chunks; a missing file or chunk is refused, naming
/// it. Returns the files pulled, in order.
pub async fn pull(
    engine: &Engine,
    archiver: &str,
    remote: &Remote,
    coordinates: &crate::backup::coordinates::Coordinates,
    scratch: &std::path::Path,
) -> Result<Vec<String>> {
    let start = coordinates.position();
    let from = &start;
    let first = from.sequence().unwrap_or(0);
    let covered: Vec<(String, Covered)> = coverage(remote.archive_chunks().await?)
        .into_iter()
        .filter(|(f, _)| sequence(f).is_some_and(|n| n >= first))
        .collect();
    check_pullable(&covered, from)?;
    let prepare = format!("rm -rf {PULLED_DIR} && mkdir -p {PULLED_DIR}");
    let out = engine.exec(archiver, &["sh", "-c", &prepare]).await?;
    if out.exit_code != 0 {
        return Err(CtlError::failure("cannot prepare the archive for pulled files").cause(out.stderr.trim()));
    }
    if let Some(first) = covered.first().and_then(|(_, c)| c.chunks.first()) {
        let head = head_of(&remote.get_opened(&first.name).await?);
        if !coordinates.same_file(&head) {
            return Err(CtlError::failure(format!(
                "{} in the bucket is not the binary log the backup was taken with (another server wrote it); nothing was changed",
                start.file
            ))
            .hint("point BACKUP_REMOTE_URL at the prefix the old server shipped to"));
        }
    }
    let mut pulled = Vec::new();
    for (file, c) in &covered {
        let joined = scratch.join(file);
        join_chunks(remote, c, &joined).await?;
        upload_file(engine, archiver, &joined, file, scratch).await?;
        let _ = std::fs::remove_file(&joined);
        pulled.push(file.clone());
    }
    Ok(pulled)
}

fn check_pullable(covered: &[(String, Covered)], from: &crate::stack::pitr::Position) -> Result<()> {
    let gap = |what: String| {
        CtlError::failure(format!(
            "the off-site binlog archive has a gap: {what}; nothing was changed"
        ))
        .hint("restore to a time before the gap, or from a backup taken after it")
    };
    match covered.first() {
        Some((f, _)) if *f == from.file => {}
        _ => {
            return Err(gap(format!(
                "{} (where the backup starts) is not in the bucket",
                from.file
            )));
        }
    }
    for pair in covered.windows(2) {
        if sequence(&pair[1].0) != sequence(&pair[0].0).map(|n| n + 1) {
            return Err(gap(format!("nothing between {} and {}", pair[0].0, pair[1].0)));
        }
    }
    match covered.iter().find(|(_, c)| c.hole.is_some()) {
        Some((f, c)) => Err(gap(format!("{f} lacks the bytes from {}", c.hole.unwrap_or(0)))),
        None => Ok(()),
    }
}

/// Writes the file joined from its chunks to `dest` (chunks may overlap; their bytes agree).
async fn join_chunks(remote: &Remote, covered: &Covered, dest: &std::path::Path) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::fs::File::create(dest)
        .await
        .map_err(|e| CtlError::failure(format!("cannot create {}", dest.display())).cause(e))?;
    let mut have = 0u64;
    for c in &covered.chunks {
        let bytes = remote.get_opened(&c.name).await?;
        if bytes.len() as u64 != c.len {
            return Err(CtlError::failure(format!(
                "{} in the bucket is damaged: {} bytes, its name says {}",
                c.name,
                bytes.len(),
                c.len
            )));
        }
        let skip = have.saturating_sub(c.offset) as usize;
        if skip < bytes.len() {
            out.write_all(&bytes[skip..])
                .await
                .map_err(|e| CtlError::failure(format!("cannot write {}", dest.display())).cause(e))?;
            have = c.offset + c.len;
        }
    }
    out.sync_all()
        .await
        .map_err(|e| CtlError::failure(format!("cannot write {}", dest.display())).cause(e))
}

/// Copies one joined file into `PULLED_DIR` through the archive API, as a streamed tar.
async fn upload_file(
    engine: &Engine,
    archiver: &str,
    path: &std::path::Path,
    name: &str,
    scratch: &std::path::Path,
) -> Result<()> {
    let tar_path = scratch.join(format!("{name}.tar"));
    let io = |e: std::io::Error| CtlError::failure(format!("cannot pack {name}")).cause(e);
    {
        let mut builder = tar::Builder::new(std::fs::File::create(&tar_path).map_err(io)?);
        builder.append_path_with_name(path, name).map_err(io)?;
        builder.into_inner().map_err(io)?.sync_all().map_err(io)?;
    }
    let file = tokio::fs::File::open(&tar_path).await.map_err(io)?;
    let sent = engine
        .upload_stream(archiver, PULLED_DIR, tokio_util::io::ReaderStream::new(file))
        .await;
    let _ = std::fs::remove_file(&tar_path);
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(file: &str, offset: u64, len: u64) -> Chunk {
        parse_chunk(&chunk_name(file, offset, len)).unwrap()
    }

    #[test]
    fn names_round_trip() {
        let c = chunk("mysql-bin.000002", 4096, 100);
        assert_eq!(
            (c.file.as_str(), c.offset, c.len),
            ("mysql-bin.000002", 4096, 100)
        );
        assert_eq!(
            c.name,
            "binlog/mysql-bin.000002/00000000000000004096-000000000100"
        );
        assert!(parse_chunk("20261207T000000Z-nightly/manifest.json").is_none());
        assert!(parse_chunk("binlog/mysql-bin.index/0-1").is_none());
    }

    #[test]
    fn a_pull_needs_every_file_and_byte_from_the_backup_on() {
        let from = crate::stack::pitr::Position {
            file: "m.000002".into(),
            pos: 4,
        };
        let whole = |f: &str| (f.to_string(), Covered::default());
        assert!(check_pullable(&[whole("m.000002"), whole("m.000003")], &from).is_ok());
        let e = check_pullable(&[whole("m.000003")], &from).unwrap_err();
        assert!(
            e.what.contains("m.000002 (where the backup starts)"),
            "{}",
            e.what
        );
        let e = check_pullable(&[whole("m.000002"), whole("m.000004")], &from).unwrap_err();
        assert!(
            e.what.contains("nothing between m.000002 and m.000004"),
            "{}",
            e.what
        );
        let holed = Covered {
            hole: Some(10),
            ..Covered::default()
        };
        let e = check_pullable(&[("m.000002".into(), holed)], &from).unwrap_err();
        assert!(e.what.contains("m.000002 lacks the bytes from 10"), "{}", e.what);
    }

    #[test]
    fn coverage_joins_overlaps_and_finds_holes() {
        let all = vec![
            chunk("m.000001", 0, 100),
            chunk("m.000001", 100, 50),
            chunk("m.000001", 120, 80),
            chunk("m.000002", 0, 10),
            chunk("m.000002", 20, 10),
        ];
        let c = coverage(all);
        assert_eq!((c["m.000001"].end, c["m.000001"].hole), (200, None));
        assert_eq!((c["m.000002"].end, c["m.000002"].hole), (10, Some(10)));
        assert_eq!(c["m.000002"].chunks.len(), 1);
    }
}
