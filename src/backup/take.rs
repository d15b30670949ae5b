//! Taking a backup: the MySQL dump streamed from an exec through zstd and SHA-256 to disk,
//! the Redis RDB after a BGSAVE, then SHA256SUMS and manifest.json, all in
//! `.<ID>.partial/`, fsynced, and renamed last. Anything that fails or is interrupted
//! leaves no directory that looks like a backup, and older backups are never touched.

use crate::backup::catalog::{
    DUMP_FILE, FOOTER, FileEntry, MYSQL_SERVICE, Manifest, Part, PartialGuard, RDB_FILE, REDIS_SERVICE, SUMS,
    backup_root, write_manifest,
};
use crate::backup::coordinates::Sniffer;
use crate::backup::offsite::{Chunk, Tee};
use crate::backup::sqlcount::RowCounter;
use crate::deploy::converge::running_container;
use crate::engine::{ContainerInfo, Engine};
use crate::error::{CtlError, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::sys::fsutil;
use async_compression::tokio::write::ZstdEncoder;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// The flags of DESIGN §5; the last is left out where the server's mysqldump lacks it.
const DUMP_FLAGS: [&str; 8] = [
    "--single-transaction",
    "--quick",
    "--routines",
    "--events",
    "--triggers",
    "--hex-blob",
    "--no-tablespaces",
    "--set-gtid-purged=OFF",
];
use crate::backup::root_sql::{ROOT_CLIENT, ROOT_PWD};
const BGSAVE_DEADLINE: Duration = Duration::from_secs(300);

/// An AsyncWrite that hashes and counts what goes through it to the file.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Hashing<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.hash.update(&buf[..n]);
            self.size += n as u64;
        }
        poll
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> CtlError {
    move |e| CtlError::failure(what).cause(e)
}

async fn sh(engine: &Engine, id: &str, script: &str) -> Result<String> {
    let out = engine.exec(id, &["sh", "-c", script]).await?;
    if out.exit_code != 0 {
        return Err(CtlError::failure(format!("a command in {id} failed")).cause(out.stderr.trim()));
    }
    Ok(out.stdout)
}

/// Starts an off-site upload of the dump as it is written, given the backup's id.
pub type StreamDump<'a> = &'a mut (dyn FnMut(&str) -> mpsc::Sender<Chunk> + Send);

/// Takes a backup; returns its manifest once the directory has its final name.
pub async fn take(
    engine: &Engine,
    project: &Project,
    reason: &str,
    parts: &[Part],
    printer: &Printer,
    stream_dump: Option<StreamDump<'_>>,
) -> Result<Manifest> {
    let needed: Vec<&str> = parts
        .iter()
        .map(|p| match p {
            Part::Mysql => MYSQL_SERVICE,
            Part::Redis => REDIS_SERVICE,
        })
        .collect();
    project.require(&needed)?;
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let root = backup_root(project);
    std::fs::create_dir_all(&root).map_err(io_err(format!("cannot create {}", root.display())))?;
    check_space(&root)?;
    let id = format!("{}-{reason}", started.format("%Y%m%dT%H%M%SZ"));
    let final_dir = root.join(&id);
    if final_dir.exists() {
        return Err(
            CtlError::failure(format!("backup {id} already exists")).hint("wait a second and try again")
        );
    }
    let partial = PartialGuard::new(root.join(format!(".{id}.partial")));
    std::fs::create_dir(partial.path())
        .map_err(io_err(format!("cannot create {}", partial.path().display())))?;
    fsutil::set_mode(partial.path(), 0o700)?;
    let containers = engine.project_containers(&project.name).await?;
    let mut manifest = new_manifest(&id, reason, project, started);
    if parts.contains(&Part::Mysql) {
        let c = running_container(&containers, MYSQL_SERVICE)?;
        let fixed = project
            .env
            .get("BACKUP_DUMP_DEADLINE")
            .and_then(|v| humantime::parse_duration(&v).ok());
        let tee = stream_dump.map(|start| start(&id));
        dump_mysql(engine, c, partial.path(), &mut manifest, printer, fixed, tee).await?;
        if let Some(b) = manifest.binlog.as_mut() {
            b.head = binlog_head(engine, c, &b.file).await;
        }
        manifest.images.insert(
            MYSQL_SERVICE.into(),
            project.service(MYSQL_SERVICE).image.clone().unwrap_or_default(),
        );
    }
    if parts.contains(&Part::Redis) {
        let c = running_container(&containers, REDIS_SERVICE)?;
        save_redis(engine, c, partial.path(), &mut manifest).await?;
        manifest.images.insert(
            REDIS_SERVICE.into(),
            project.service(REDIS_SERVICE).image.clone().unwrap_or_default(),
        );
    }
    manifest.finished_at = chrono::Utc::now().to_rfc3339();
    manifest.duration_s = (clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let sums: String = manifest
        .files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.name))
        .collect();
    fsutil::write_atomic(&partial.path().join(SUMS), sums.as_bytes(), 0o600)?;
    write_manifest(partial.path(), &manifest)?;
    partial.commit(&final_dir)?;
    Ok(manifest)
}

/// The manifest of a backup just begun; the parts fill in their files and figures.
fn new_manifest(
    id: &str,
    reason: &str,
    project: &Project,
    started: chrono::DateTime<chrono::Utc>,
) -> Manifest {
    Manifest {
        id: id.to_string(),
        reason: reason.to_string(),
        project: project.name.clone(),
        status: "complete".into(),
        started_at: started.to_rfc3339(),
        finished_at: String::new(),
        duration_s: 0.0,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        database: None,
        mysql_version: None,
        redis_version: None,
        images: BTreeMap::new(),
        dump_flags: Vec::new(),
        files: Vec::new(),
        row_counts: BTreeMap::new(),
        verified_at: None,
        deep_verified_at: None,
        binlog: None,
    }
}

/// Refuses to start when the disk cannot hold roughly the last backup again.
fn check_space(root: &Path) -> Result<()> {
    let last = crate::backup::catalog::list(root)
        .ok()
        .and_then(|l| l.into_iter().rev().find(|b| b.manifest.is_some()));
    // The last backup's size again, plus room for the manifest and a small first backup.
    let need = last.map_or(0, |b| b.size) + (64 << 20);
    let free = fsutil::free_space(root)?;
    if free < need {
        return Err(
            CtlError::failure(format!("not enough free space in {}", root.display()))
                .cause(format!(
                    "{} free, the last backup took {}",
                    crate::output::human_bytes(free),
                    crate::output::human_bytes(need)
                ))
                .hint("free some space, or run `pricescan-ctl backup prune`"),
        );
    }
    Ok(())
}

async fn dump_mysql(
    engine: &Engine,
    c: &ContainerInfo,
    dir: &Path,
    manifest: &mut Manifest,
    printer: &Printer,
    fixed_deadline: Option<Duration>,
    tee: Option<mpsc::Sender<Chunk>>,
) -> Result<()> {
    let script = dump_script(engine, c, manifest).await?;
    let path = dir.join(DUMP_FILE);
    let file = tokio::fs::File::create(&path)
        .await
        .map_err(io_err(format!("cannot create {}", path.display())))?;
    let params = [async_compression::zstd::CParameter::checksum_flag(true)];
    let mut out = ZstdEncoder::with_quality_and_params(
        Hashing {
            inner: Tee::new(file, tee),
            hash: Sha256::new(),
            size: 0,
        },
        async_compression::Level::Precise(3),
        &params,
    );
    let deadline = dump_deadline(engine, &c.id, manifest.database.as_deref(), fixed_deadline).await?;
    let mut exec = engine.exec_stream(&c.id, &["sh", "-c", &script]).await?;
    let mut counter = RowCounter::new();
    let mut coordinates = Sniffer::default();
    let mut tail: Vec<u8> = Vec::with_capacity(256);
    let mut raw = 0u64;
    let bar = printer.progress(0, "mysql dump");
    let stream = async {
        while let Some(chunk) = exec.next_stdout().await? {
            counter.feed(&chunk);
            coordinates.feed(&chunk);
            raw += chunk.len() as u64;
            tail.extend_from_slice(&chunk[chunk.len().saturating_sub(256)..]);
            tail.drain(..tail.len().saturating_sub(256));
            out.write_all(&chunk)
                .await
                .map_err(io_err(format!("cannot write {}", path.display())))?;
            bar.set_position(raw);
        }
        Ok::<_, CtlError>(())
    };
    // A hung dump must never hold the lock forever.
    tokio::time::timeout(deadline.value, stream).await.map_err(|_| {
        crate::engine::deadline_error(&format!("the MySQL dump ({})", deadline.why), deadline.value)
    })??;
    bar.finish_and_clear();
    out.shutdown()
        .await
        .map_err(io_err(format!("cannot write {}", path.display())))?;
    let code = exec.exit_code(engine).await?;
    check_dump(
        code,
        &exec.stderr,
        String::from_utf8_lossy(&tail).contains(FOOTER),
        raw,
    )?;
    let mut hashing = out.into_inner();
    hashing.inner.finish().await;
    hashing
        .inner
        .inner
        .sync_all()
        .await
        .map_err(io_err(format!("cannot sync {}", path.display())))?;
    manifest.files.push(FileEntry {
        name: DUMP_FILE.into(),
        size: hashing.size,
        sha256: hex::encode(hashing.hash.finalize()),
    });
    manifest.row_counts = counter.counts;
    record_coordinates(manifest, coordinates)
}

/// The dump's place in the binary log: a dump asked for it must have said it.
fn record_coordinates(manifest: &mut Manifest, sniffer: Sniffer) -> Result<()> {
    manifest.binlog = sniffer.finish();
    if manifest.dump_flags.iter().any(|f| f.ends_with("-data=2")) && manifest.binlog.is_none() {
        return Err(CtlError::failure(
            "the MySQL dump did not say where it stands in the binary log; no backup was written",
        )
        .hint("point-in-time recovery needs it: check that mysqldump's --master-data/--source-data works"));
    }
    Ok(())
}

/// The mysqldump command line: the flags this mysqldump knows, recorded in the manifest
/// with its version and the database. The password comes from the container's own
/// environment (on swarm, the secret file it names): it is in no argv, ours or theirs.
async fn dump_script(engine: &Engine, c: &ContainerInfo, manifest: &mut Manifest) -> Result<String> {
    let help = sh(engine, &c.id, "mysqldump --help 2>/dev/null || true").await?;
    let flags: Vec<&str> = DUMP_FLAGS
        .iter()
        .copied()
        .filter(|f| help.contains(f.trim_start_matches("--").split('=').next().unwrap_or(f)))
        .collect();
    manifest.mysql_version = sh(engine, &c.id, "mysqldump --version")
        .await
        .ok()
        .map(|v| v.trim().to_string());
    manifest.database = sh(engine, &c.id, "printf %s \"$MYSQL_DATABASE\"")
        .await
        .ok()
        .filter(|d| !d.is_empty());
    let mut flags: Vec<&str> = flags;
    // With the binary log on, the dump records its snapshot's place in it (DESIGN §13).
    // MySQL 8.0.26 renamed the flag; MariaDB knows only the old name.
    let binlog_on = sh(
        engine,
        &c.id,
        &format!("{ROOT_CLIENT} -N -B -e 'SELECT @@log_bin'"),
    )
    .await
    .is_ok_and(|v| v.trim() == "1");
    if binlog_on {
        flags.push(match help.contains("source-data") {
            true => "--source-data=2",
            false => "--master-data=2",
        });
    }
    manifest.dump_flags = flags.iter().map(|f| f.to_string()).collect();
    Ok(format!(
        "{ROOT_PWD} exec mysqldump -uroot -h127.0.0.1 {} --databases \"$MYSQL_DATABASE\"",
        flags.join(" ")
    ))
}

/// The first bytes of the binary log file the dump stands in (see `Coordinates::head`).
async fn binlog_head(engine: &Engine, c: &ContainerInfo, file: &str) -> Option<String> {
    let plain = file
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
    let script = format!(
        "dir=$(dirname \"$({ROOT_CLIENT} -N -B -e 'SELECT @@log_bin_basename')\") && head -c {} \"$dir/{file}\" | od -An -tx1 | tr -d ' \\n'",
        crate::backup::coordinates::HEAD_BYTES
    );
    let out = sh(engine, &c.id, &script).await.ok().filter(|_| plain)?;
    let head = out.trim().to_string();
    (head.len() == 2 * crate::backup::coordinates::HEAD_BYTES).then_some(head)
}

/// A dump counts only when mysqldump exited 0, said no error, wrote bytes and its footer.
fn check_dump(code: i64, stderr: &str, complete: bool, raw: u64) -> Result<()> {
    let fatal = stderr.lines().find(|l| l.to_ascii_lowercase().contains("error"));
    if code != 0 || fatal.is_some() || !complete || raw == 0 {
        let mut err = CtlError::failure("the MySQL dump is incomplete; no backup was written");
        err = err.cause(format!(
            "mysqldump exited with {code}; {raw} bytes; footer {}",
            if complete { "present" } else { "missing" }
        ));
        if let Some(line) = fatal.or(stderr.lines().last()) {
            err = err.cause(line.trim());
        }
        return Err(err);
    }
    Ok(())
}

/// The dump's deadline: BACKUP_DUMP_DEADLINE when set, else scaled to the data's size.
struct Deadline {
    value: Duration,
    why: String,
}

/// BACKUP_DUMP_DEADLINE when set; else generous: ten minutes, plus a minute for every
/// 500 MB the server says the data takes.
async fn dump_deadline(
    engine: &Engine,
    id: &str,
    db: Option<&str>,
    fixed: Option<Duration>,
) -> Result<Deadline> {
    if let Some(value) = fixed {
        return Ok(Deadline {
            value,
            why: "BACKUP_DUMP_DEADLINE".into(),
        });
    }
    let query = format!(
        "{ROOT_CLIENT} -N -B -e \"SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = '{}'\"",
        db.unwrap_or_default().replace('\'', "")
    );
    let bytes: u64 = sh(engine, id, &query).await?.trim().parse().unwrap_or(0);
    let value = Duration::from_secs(600 + 60 * bytes.div_ceil(500 << 20));
    Ok(Deadline {
        value,
        why: format!("scaled to {} of data", crate::output::human_bytes(bytes)),
    })
}

fn info_field(info: &str, key: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")).map(|v| v.trim().to_string()))
}

async fn save_redis(engine: &Engine, c: &ContainerInfo, dir: &Path, manifest: &mut Manifest) -> Result<()> {
    let cli = |cmd: &str| {
        format!(
            "REDISCLI_AUTH=\"${{REDIS_PASSWORD:-$(cat \"$REDIS_PASSWORD_FILE\")}}\" redis-cli --raw {cmd}"
        )
    };
    let info = |section: &'static str| async move {
        sh(
            engine,
            &c.id,
            &format!("REDISCLI_AUTH=\"${{REDIS_PASSWORD:-$(cat \"$REDIS_PASSWORD_FILE\")}}\" redis-cli INFO {section}"),
        )
        .await
    };
    manifest.redis_version = info_field(&info("server").await?, "redis_version");
    let before: i64 = info_field(&info("persistence").await?, "rdb_last_save_time")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + BGSAVE_DEADLINE;
    // BGSAVE is refused while a rewrite runs; wait for our turn, then for our save.
    loop {
        let reply = sh(engine, &c.id, &cli("BGSAVE")).await?;
        if reply.contains("started") || reply.contains("scheduled") {
            break;
        }
        if Instant::now() > deadline {
            return Err(CtlError::failure("Redis refused BGSAVE").cause(reply.trim()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let p = info("persistence").await?;
        let saved: i64 = info_field(&p, "rdb_last_save_time")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if info_field(&p, "rdb_bgsave_in_progress").as_deref() == Some("0") && saved > before {
            match info_field(&p, "rdb_last_bgsave_status").as_deref() {
                Some("ok") => break,
                other => {
                    return Err(CtlError::failure("Redis could not save its data")
                        .cause(format!("rdb_last_bgsave_status: {}", other.unwrap_or("?"))));
                }
            }
        }
        if Instant::now() > deadline {
            return Err(CtlError::failure("Redis did not finish BGSAVE in time"));
        }
    }
    let rdb_dir = sh(engine, &c.id, &cli("CONFIG GET dir"))
        .await?
        .lines()
        .nth(1)
        .unwrap_or("/data")
        .trim()
        .trim_matches('"')
        .to_string();
    let entry = copy_single_file(engine, &c.id, &format!("{rdb_dir}/dump.rdb"), &dir.join(RDB_FILE)).await?;
    manifest.files.push(entry);
    Ok(())
}

/// Copies one file out of a container through the archive API: a tar stream with one header
/// and the file's bytes, written to `dest` while it is hashed. Checks the RDB magic.
async fn copy_single_file(engine: &Engine, id: &str, src: &str, dest: &Path) -> Result<FileEntry> {
    let mut stream = std::pin::pin!(engine.download(id, src));
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(io_err(format!("cannot create {}", dest.display())))?;
    let (mut header, mut remaining, mut size) = (Vec::with_capacity(512), None::<u64>, 0u64);
    let mut hash = Sha256::new();
    let mut magic = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = &chunk?[..];
        if remaining.is_none() {
            let take = (512 - header.len()).min(chunk.len());
            header.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if header.len() < 512 {
                continue;
            }
            let octal = String::from_utf8_lossy(&header[124..136])
                .trim_matches(|c: char| c == '\0' || c == ' ')
                .to_string();
            remaining = Some(
                u64::from_str_radix(&octal, 8)
                    .map_err(|_| CtlError::failure(format!("bad tar header copying {src}")))?,
            );
        }
        let left = remaining.unwrap_or(0);
        let body = &chunk[..(left.min(chunk.len() as u64) as usize)];
        if magic.len() < 5 {
            magic.extend_from_slice(&body[..body.len().min(5 - magic.len())]);
        }
        hash.update(body);
        file.write_all(body)
            .await
            .map_err(io_err(format!("cannot write {}", dest.display())))?;
        size += body.len() as u64;
        remaining = Some(left - body.len() as u64);
    }
    file.sync_all()
        .await
        .map_err(io_err(format!("cannot sync {}", dest.display())))?;
    if magic != b"REDIS" || remaining != Some(0) {
        return Err(CtlError::failure(format!(
            "{src} is not a complete Redis RDB file"
        )));
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(FileEntry {
        name,
        size,
        sha256: hex::encode(hash.finalize()),
    })
}
