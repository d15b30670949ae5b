//! The backup store on disk, the one module that knows its layout: file names, the
//! manifest, the root directory, listing and finding backups, verifying them (hashes, zstd
//! stream and footer, RDB magic) and the retention policy's inputs. Only directories with a
//! valid manifest are ever considered for removal. Taking a backup (`backup`) and restoring
//! one (`restore`) build on it; it depends on neither.

use crate::backup::retention::{Candidate, Policy};
use crate::error::{CtlError, Result};
use crate::stack::{Project, resolve_path};
use crate::sys::fsutil;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const MYSQL_SERVICE: &str = "pricescan-mysql";
pub const REDIS_SERVICE: &str = "pricescan-redis";
pub const DUMP_FILE: &str = "mysql.sql.zst";
pub const RDB_FILE: &str = "redis.rdb";
pub const MANIFEST: &str = "manifest.json";
pub const SUMS: &str = "SHA256SUMS";
pub const FOOTER: &str = "-- Dump completed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Mysql,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub reason: String,
    pub project: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub tool_version: String,
    pub database: Option<String>,
    pub mysql_version: Option<String>,
    pub redis_version: Option<String>,
    pub images: BTreeMap<String, String>,
    pub dump_flags: Vec<String>,
    pub files: Vec<FileEntry>,
    pub row_counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub verified_at: Option<String>,
    /// The last `verify --deep` that loaded the dump into a throwaway MySQL and passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_verified_at: Option<String>,
    /// The dump's place in the binary log, where point-in-time recovery rolls forward from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binlog: Option<crate::backup::coordinates::Coordinates>,
}

/// Why a backup was taken, as its manifest and its ID's suffix say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Nightly,
    PreDeploy,
    Manual,
    PreRestore,
}

impl Reason {
    pub fn word(self) -> &'static str {
        match self {
            Reason::Nightly => "nightly",
            Reason::PreDeploy => "pre-deploy",
            Reason::Manual => "manual",
            Reason::PreRestore => "pre-restore",
        }
    }
}

/// The parts to back up or restore: `only` one, or both.
pub fn parts(only: Option<Part>) -> Vec<Part> {
    match only {
        Some(part) => vec![part],
        None => vec![Part::Mysql, Part::Redis],
    }
}

/// BACKUP_DIR from .env.prod, relative to the project directory.
pub fn backup_root(project: &Project) -> PathBuf {
    let dir = project
        .env
        .get("BACKUP_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "./backups".into());
    resolve_path(&project.dir, Path::new(&dir))
}

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(manifest)
        .map_err(|e| CtlError::failure("cannot encode the manifest").cause(e))?;
    fsutil::write_atomic(&dir.join(MANIFEST), &json, 0o600)
}

/// A backup directory being written as `.<ID>.partial/`. Removed unless committed: on an
/// error, a panic or an interrupt (the future is dropped), nothing half-written stays behind.
pub struct PartialGuard {
    path: PathBuf,
    committed: bool,
}

impl PartialGuard {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            committed: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the directory and renames it to `final_dir`, its name as a backup.
    pub fn commit(mut self, final_dir: &Path) -> Result<()> {
        fsutil::sync_dir(&self.path)?;
        std::fs::rename(&self.path, final_dir).map_err(|e| {
            CtlError::failure(format!("cannot rename the backup to {}", final_dir.display())).cause(e)
        })?;
        self.committed = true;
        if let Some(root) = final_dir.parent() {
            fsutil::sync_dir(root)?;
        }
        Ok(())
    }
}

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[derive(Debug, Clone)]
pub struct OnDisk {
    pub id: String,
    pub path: PathBuf,
    /// None for a leftover `.partial` directory or one whose manifest does not parse.
    pub manifest: Option<Manifest>,
    pub partial: bool,
    pub size: u64,
}

/// Backups and leftovers under `root`, oldest first.
pub fn list(root: &Path) -> Result<Vec<OnDisk>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CtlError::failure(format!("cannot list {}", root.display())).cause(e)),
    };
    let mut out: Vec<OnDisk> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let partial = name.starts_with('.') && name.ends_with(".partial");
            let id = name
                .trim_start_matches('.')
                .trim_end_matches(".partial")
                .to_string();
            let manifest = (!partial)
                .then(|| std::fs::read(e.path().join(MANIFEST)).ok())
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<Manifest>(&bytes).ok())
                .filter(|m| m.id == id && m.status == "complete");
            let size = std::fs::read_dir(e.path())
                .map(|d| {
                    d.flatten()
                        .filter_map(|f| f.metadata().ok())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0);
            OnDisk {
                id,
                path: e.path(),
                manifest,
                partial,
                size,
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// A complete backup by id, or the newest one; exit 2 when there is none.
pub fn find(project: &crate::stack::Project, id: Option<&str>) -> Result<OnDisk> {
    let all = list(&backup_root(project))?;
    let complete = all.into_iter().filter(|b| b.manifest.is_some());
    let found = match id {
        Some(id) => complete.into_iter().find(|b| b.id == id),
        None => complete.max_by(|a, b| a.id.cmp(&b.id)),
    };
    found.ok_or_else(|| {
        CtlError::usage(format!("no backup {}", id.unwrap_or("exists yet")))
            .hint("`pricescan-ctl backup list` shows the backups")
    })
}

pub fn policy(env: &crate::stack::Environment) -> Policy {
    policy_from(env, "BACKUP_KEEP_", Policy::default())
}

/// The counts `PREFIX{LAST,DAILY,WEEKLY,MONTHLY,PRE_DEPLOY}`, each falling back to `default`'s.
pub fn policy_from(env: &crate::stack::Environment, prefix: &str, default: Policy) -> Policy {
    let n = |key: &str, fallback: usize| {
        env.get(&format!("{prefix}{key}"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(fallback)
    };
    Policy {
        last: n("LAST", default.last),
        daily: n("DAILY", default.daily),
        weekly: n("WEEKLY", default.weekly),
        monthly: n("MONTHLY", default.monthly),
        pre_deploy: n("PRE_DEPLOY", default.pre_deploy),
    }
}

pub fn candidates(backups: &[OnDisk]) -> Vec<Candidate> {
    backups
        .iter()
        .filter_map(|b| {
            let m = b.manifest.as_ref()?;
            let time = chrono::DateTime::parse_from_rfc3339(&m.started_at)
                .ok()?
                .with_timezone(&chrono::Utc);
            Some(Candidate {
                id: b.id.clone(),
                time,
                pre_deploy: m.reason == "pre-deploy",
                verified: m.verified_at.is_some(),
            })
        })
        .collect()
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hash.finalize()));
        }
        hash.update(&buf[..n]);
    }
}

/// Everything wrong with a backup; empty when it is sound. Reads every byte once or twice,
/// in constant memory.
pub fn problems(b: &OnDisk) -> Vec<String> {
    let Some(m) = &b.manifest else {
        return vec!["no valid manifest.json".into()];
    };
    let mut found = Vec::new();
    let sums = std::fs::read_to_string(b.path.join(SUMS)).unwrap_or_default();
    for f in &m.files {
        let path = b.path.join(&f.name);
        match (std::fs::metadata(&path), sha256_file(&path)) {
            (Ok(meta), Ok(hash)) => {
                if meta.len() != f.size {
                    found.push(format!(
                        "{}: size {} but the manifest says {}",
                        f.name,
                        meta.len(),
                        f.size
                    ));
                }
                if hash != f.sha256 || !sums.contains(&format!("{hash}  {}", f.name)) {
                    found.push(format!(
                        "{}: SHA-256 does not match SHA256SUMS and the manifest",
                        f.name
                    ));
                }
            }
            _ => found.push(format!("{}: missing or unreadable", f.name)),
        }
    }
    if m.files.iter().any(|f| f.name == DUMP_FILE)
        && let Err(e) = check_dump(&b.path.join(DUMP_FILE))
    {
        found.push(format!("{DUMP_FILE}: {e}"));
    }
    if m.files.iter().any(|f| f.name == RDB_FILE) {
        let mut magic = [0u8; 5];
        let ok = std::fs::File::open(b.path.join(RDB_FILE))
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok();
        if !ok || &magic != b"REDIS" {
            found.push(format!("{RDB_FILE}: not a Redis RDB file"));
        }
    }
    found
}

/// Decodes the whole zstd stream (frame checksums included) and checks the dump's footer.
fn check_dump(path: &Path) -> std::result::Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = zstd::stream::read::Decoder::new(file).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = decoder
            .read(&mut buf)
            .map_err(|e| format!("the compressed stream is damaged ({e})"))?;
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[n.saturating_sub(256)..n]);
        tail.drain(..tail.len().saturating_sub(256));
    }
    match String::from_utf8_lossy(&tail).contains(FOOTER) {
        true => Ok(()),
        false => Err(format!("the dump does not end with \"{FOOTER}\"")),
    }
}

/// The backup's MySQL dump as SQL, decoded as it is read: constant memory whatever its size.
pub async fn dump_reader(b: &OnDisk) -> Result<impl tokio::io::AsyncRead + Unpin + use<>> {
    let file = tokio::fs::File::open(b.path.join(DUMP_FILE))
        .await
        .map_err(|e| CtlError::failure(format!("cannot open the dump of {}", b.id)).cause(e))?;
    let buffered = tokio::io::BufReader::with_capacity(1 << 20, file);
    Ok(async_compression::tokio::bufread::ZstdDecoder::new(buffered))
}

/// Records a successful verification in the manifest (atomically).
pub fn mark_verified(b: &OnDisk, deep: bool) -> Result<()> {
    let Some(mut m) = b.manifest.clone() else {
        return Ok(());
    };
    let now = chrono::Utc::now().to_rfc3339();
    if deep {
        m.deep_verified_at = Some(now.clone());
    }
    m.verified_at = Some(now);
    write_manifest(&b.path, &m)
}

/// `verify --deep`: loads the dump into a throwaway MySQL of the same image, with no
/// network, and compares every table's row count with the manifest. The container is
/// removed whatever happens.
pub async fn deep_check(engine: &crate::engine::Engine, project: &str, b: &OnDisk) -> Result<Vec<String>> {
    let Some(m) = &b.manifest else {
        return Ok(vec!["no valid manifest.json".into()]);
    };
    let Some(image) = m.images.get(MYSQL_SERVICE) else {
        return Ok(vec!["the backup holds no MySQL dump".into()]);
    };
    let env = vec![
        format!("MYSQL_ROOT_PASSWORD={}", crate::stack::envfile::generate_secret()),
        format!(
            "MYSQL_DATABASE={}",
            m.database.clone().unwrap_or_else(|| "pricescan".into())
        ),
    ];
    let id = engine.create_isolated(project, image, env).await?;
    let undo = engine.remove_on_exit(&id, "verify");
    let result = load_and_count(engine, &id, b, m).await;
    let _ = undo.run_now(&crate::output::Printer::silent()).await;
    result
}

async fn load_and_count(
    engine: &crate::engine::Engine,
    id: &str,
    b: &OnDisk,
    m: &Manifest,
) -> Result<Vec<String>> {
    // Over TCP: the image's first-start server listens on the socket only, so TCP answers
    // once initialisation is over.
    let login = crate::backup::root_sql::ROOT_CLIENT;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let probe = engine
            .exec(id, &["sh", "-c", &format!("{login} -e 'SELECT 1'")])
            .await?;
        if probe.exit_code == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(
                CtlError::failure("the verify container's MySQL did not start").cause(probe.stderr.trim())
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let decoder = dump_reader(b).await?;
    let (code, _, stderr) = engine
        .exec_with_input(
            id,
            &["sh", "-c", &login.replace(" mysql ", " exec mysql ")],
            decoder,
            |_| {},
        )
        .await?;
    if code != 0 {
        return Ok(vec![format!("the dump does not load: {}", stderr.trim())]);
    }
    let db = m.database.clone().unwrap_or_default();
    let mut found = Vec::new();
    for (table, expected) in &m.row_counts {
        let q = format!("{login} -N -B -e 'SELECT COUNT(*) FROM `{db}`.`{table}`'");
        let out = engine.exec(id, &["sh", "-c", &q]).await?;
        if out.stdout.trim().parse::<u64>().ok() != Some(*expected) {
            found.push(format!(
                "{table}: {} rows after loading, the manifest says {expected}",
                out.stdout.trim()
            ));
        }
    }
    Ok(found)
}
