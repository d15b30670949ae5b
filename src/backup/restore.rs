//! Restoring a backup without leaving production worse than it was found (DESIGN §8).
//! A pre-restore backup comes first. Then, while the old data keeps serving reads and Nginx
//! refuses writes, MySQL's dump streams into a shadow schema and is checked there (`shadow`);
//! a failure here only drops the shadow. The API stops only for the swap (and for Redis,
//! whose RDB goes back while it is stopped). From the swap on, any failure or signal puts
//! the pre-restore backup back and starts the API again. A marker file names the phase and
//! the backup, so that if this process is killed outright the next command that takes the
//! lock undoes the staging or puts the backup back.

use super::replay::Replay;
use super::shadow;
use crate::backup::catalog::{self, MYSQL_SERVICE, Manifest, OnDisk, Part, RDB_FILE, REDIS_SERVICE};
use crate::backup::take;
use crate::deploy::converge::{current_container, running_container};
use crate::deploy::nginx;
use crate::deploy::wait::{self, Goal};
use crate::engine::{ContainerInfo, Engine};
use crate::error::{CtlError, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::sys::signals;
use crate::sys::undo;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_SERVICE: &str = "pricescan-api";
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long an interrupted loader may take to finish what the engine had already handed it.
const LOADER_GONE: Duration = Duration::from_secs(120);

/// The exec that is loading data, once started: a put-back waits for it to end first.
#[derive(Clone, Default)]
struct Loader(Arc<Mutex<Option<String>>>);

impl Loader {
    fn set(&self, exec: &str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(exec.to_string());
    }
    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Written once data is about to be touched, removed once it is consistent again.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    pub target: String,
    pub safety: String,
    pub mysql: bool,
    pub redis: bool,
    /// API containers that were stopped and must run again.
    pub api: Vec<String>,
    pub started_at: String,
    /// Staging: only the shadow schema and read-only mode need undoing. Swapping: the live
    /// data may be half-replaced, and the pre-restore backup goes back.
    #[serde(default)]
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Staging,
    #[default]
    Swapping,
}

pub fn marker_path(project: &Project) -> PathBuf {
    project.dir.join(".pricescan").join("restore-in-progress.json")
}

fn write_marker(project: &Project, marker: &Marker) -> Result<()> {
    let json = serde_json::to_vec_pretty(marker)
        .map_err(|e| CtlError::failure("cannot encode the restore marker").cause(e))?;
    crate::sys::fsutil::write_atomic(&marker_path(project), &json, 0o600)
}

fn clear_marker(project: &Project) {
    let _ = std::fs::remove_file(marker_path(project));
}

pub fn read_marker(project: &Project) -> Option<Marker> {
    let bytes = std::fs::read(marker_path(project)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn parts_of(marker: &Marker) -> Vec<Part> {
    let mut parts = Vec::new();
    if marker.mysql {
        parts.push(Part::Mysql);
    }
    if marker.redis {
        parts.push(Part::Redis);
    }
    parts
}

pub struct Restorer<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub printer: &'a Printer,
    /// No API runs meanwhile (swarm stops its tasks first): Nginx's read-only mode and the
    /// API's pause have nothing to do.
    pub api_held: bool,
    /// Point-in-time recovery: the binlog events replayed into the shadow after the dump.
    pub replay: Option<&'a Replay>,
}

impl Restorer<'_> {
    /// Restores `target`; returns the pre-restore backup's id. On failure or a signal after
    /// the data was touched, the data from before is back and the API runs when this returns.
    pub async fn restore(&self, target: &OnDisk, parts: &[Part]) -> Result<String> {
        let containers = self.engine.project_containers(&self.project.name).await?;
        let api: Vec<String> = containers
            .iter()
            .filter(|c| c.service == API_SERVICE && c.is_running())
            .map(|c| c.id.clone())
            .collect();
        // The marker first: from the moment writes are refused, a crash must be undone.
        let mut marker = Marker {
            target: target.id.clone(),
            safety: String::new(),
            mysql: parts.contains(&Part::Mysql),
            redis: parts.contains(&Part::Redis),
            api: api.clone(),
            started_at: chrono::Utc::now().to_rfc3339(),
            phase: Phase::Staging,
        };
        write_marker(self.project, &marker)?;
        // Writes are refused before the pre-restore backup, so that it holds every write the
        // API accepted: putting it back after a failed swap then loses nothing.
        let nginx = nginx::running_nginx(&containers);
        if let Err(e) = self.writes(nginx, false).await {
            clear_marker(self.project);
            return Err(e);
        }
        let safety = tokio::select! {
            r = take::take(self.engine, self.project, "pre-restore", parts, self.printer, None) => r,
            _ = signals::received() => Err(signals::interrupted("during the pre-restore backup")),
        };
        let safety = match safety {
            Ok(safety) => safety,
            Err(e) => return Err(self.unstage_after(e, &Loader::default()).await),
        };
        self.printer.info(&format!("pre-restore backup: {}", safety.id));
        marker.safety = safety.id.clone();
        write_marker(self.project, &marker)?;
        let loader = Loader::default();
        let mut expected = target.manifest.clone().expect("restored backups have a manifest");
        if marker.mysql {
            let staged = tokio::select! {
                r = self.stage(&containers, target, &loader) => r,
                _ = signals::received() => Err(signals::interrupted(format!("while staging {}", target.id))),
            };
            match staged {
                Ok(counts) => expected.row_counts = counts,
                Err(e) => return Err(self.unstage_after(e, &loader).await),
            }
        }
        marker.phase = Phase::Swapping;
        write_marker(self.project, &marker)?;
        let outcome = tokio::select! {
            r = self.swap_in(&containers, &api, target, &expected, parts, &loader) => r,
            _ = signals::received() => Err(signals::interrupted(format!("while restoring {}", target.id))),
        };
        let Err(e) = outcome else {
            clear_marker(self.project);
            return Ok(safety.id);
        };
        self.printer.warn(&format!(
            "restore of {} did not complete ({}); putting back pre-restore backup {}",
            target.id, e.what, safety.id
        ));
        let what = format!("put back pre-restore backup {} and start the API", safety.id);
        let back = undo::despite_signals(&what, self.put_back(&marker, loader.get()), self.printer).await;
        Err(match back {
            Ok(()) => e.cause(format!(
                "the data from before is back (pre-restore backup {}) and the API runs",
                safety.id
            )),
            Err(b) => e
                .cause(format!(
                    "putting back pre-restore backup {} failed too: {}",
                    safety.id, b.what
                ))
                .hint(format!("run `pricescan-ctl restore {} --yes`", safety.id)),
        })
    }

    /// Nginx's write mode: refused (503) while data is replaced, accepted otherwise.
    async fn writes(&self, nginx: Option<&ContainerInfo>, accepted: bool) -> Result<()> {
        if self.api_held {
            return Ok(());
        }
        nginx::set_read_only(self.engine, self.project, nginx, !accepted).await?;
        if !accepted {
            self.printer
                .info("read-only: writes get 503 until the restore is done");
        }
        Ok(())
    }

    /// Phase one, while the old data keeps serving reads: Nginx refuses writes (503) so that
    /// none is lost in the swap, and the dump goes into the shadow schema, whose row counts
    /// must match the manifest.
    /// Returns the row counts the swapped-in data must have.
    async fn stage(
        &self,
        containers: &[ContainerInfo],
        b: &OnDisk,
        loader: &Loader,
    ) -> Result<std::collections::BTreeMap<String, u64>> {
        let manifest = b.manifest.as_ref().expect("restored backups have a manifest");
        let db = manifest.database.clone().unwrap_or_default();
        shadow::check_database(&db)?;
        let mysql = running_container(containers, MYSQL_SERVICE)?;
        self.printer.info(&format!(
            "loading {} into the shadow schema {}",
            b.id,
            shadow::schema(&db)
        ));
        let clock = std::time::Instant::now();
        let mut started = |exec: &str| loader.set(exec);
        shadow::load(self.engine, &mysql.id, b, &mut started).await?;
        self.printer
            .debug(&format!("loading took {:.2}s", clock.elapsed().as_secs_f64()));
        check_rows(self.engine, containers, manifest, &shadow::schema(&db)).await?;
        let Some(replay) = self.replay else {
            return Ok(manifest.row_counts.clone());
        };
        self.printer.info(&format!(
            "replaying the binary log from {} to {} ({} file{})",
            replay.start,
            replay
                .stop_datetime
                .as_deref()
                .map_or_else(|| replay.stop.to_string(), |t| format!("{t} UTC")),
            replay.files.len(),
            if replay.files.len() == 1 { "" } else { "s" }
        ));
        let mut started = |exec: &str| loader.set(exec);
        let clock = std::time::Instant::now();
        replay
            .run(self.engine, &mysql.id, &db, &shadow::schema(&db), &mut started)
            .await?;
        self.printer
            .info(&format!("replayed in {:.2}s", clock.elapsed().as_secs_f64()));
        shadow::row_counts(self.engine, &mysql.id, &shadow::schema(&db)).await
    }

    /// After a failed or interrupted staging: the shadow goes and writes are accepted again.
    /// The live data was never touched.
    async fn unstage_after(&self, e: CtlError, loader: &Loader) -> CtlError {
        let undo = self.discard(loader.get());
        match undo::despite_signals(
            "drop the shadow schema and accept writes again",
            undo,
            self.printer,
        )
        .await
        {
            Ok(()) => {
                clear_marker(self.project);
                e.cause("nothing was changed: the live data was never touched, and writes are accepted again")
            }
            Err(d) => e.cause(format!("cleaning up the shadow schema failed: {}", d.what)),
        }
    }

    /// Drops the shadow schema (once its loader is gone) and turns read-only mode off.
    async fn discard(&self, loader: Option<String>) -> Result<()> {
        let containers = self.engine.project_containers(&self.project.name).await?;
        if let Ok(mysql) = running_container(&containers, MYSQL_SERVICE) {
            self.settle_loader(&mysql.id, loader).await?;
            shadow::discard(self.engine, &mysql.id).await?;
        }
        self.writes(nginx::running_nginx(&containers), true).await?;
        Ok(())
    }

    /// Phase two, the only time the API stops: the shadow's tables are swapped in, Redis'
    /// RDB goes back, the API starts, the row counts are checked, writes are accepted again.
    async fn swap_in(
        &self,
        containers: &[ContainerInfo],
        api: &[String],
        b: &OnDisk,
        expected: &Manifest,
        parts: &[Part],
        loader: &Loader,
    ) -> Result<()> {
        // Paused, not stopped: requests wait for the swap (it takes a moment) and then get
        // the restored data, instead of failing while the API restarts. Redis' RDB can only
        // go back into a stopped Redis, so a Redis restore stops the API as before.
        let redis = parts.contains(&Part::Redis);
        for id in api {
            match redis {
                true => self.engine.stop(id, None).await?,
                false => self.engine.pause(id).await?,
            }
        }
        if !api.is_empty() {
            self.printer.info(if redis {
                "stopped the API"
            } else {
                "paused the API for the swap"
            });
        }
        let clock = std::time::Instant::now();
        let swapped = async {
            if parts.contains(&Part::Mysql) {
                let mysql = running_container(containers, MYSQL_SERVICE)?;
                let mut started = |exec: &str| loader.set(exec);
                shadow::swap(self.engine, &mysql.id, &mut started).await?;
            }
            if parts.contains(&Part::Redis) {
                let only_redis = [Part::Redis];
                load(self.engine, self.project, containers, b, &only_redis, loader).await?;
            }
            Ok::<_, CtlError>(())
        }
        .await;
        start_api(self.engine, &self.project.name, api, redis).await?;
        self.printer.info(&format!(
            "the API serves again (it was {} for {:.2}s)",
            if redis { "stopped" } else { "paused" },
            clock.elapsed().as_secs_f64()
        ));
        swapped?;
        if parts.contains(&Part::Mysql) {
            let db = expected.database.clone().unwrap_or_default();
            check_rows(self.engine, containers, expected, &db).await?;
        }
        self.writes(nginx::running_nginx(containers), true).await?;
        Ok(())
    }

    /// Ends the other MySQL sessions, then waits for the exec that was loading or swapping to
    /// end: nothing cut off may go on writing while data is put back or dropped.
    async fn settle_loader(&self, mysql: &str, loader: Option<String>) -> Result<()> {
        shadow::end_sessions(self.engine, mysql).await?;
        match loader {
            Some(exec) => self.engine.wait_exec_gone(&exec, LOADER_GONE).await,
            None => Ok(()),
        }
    }

    /// Puts the pre-restore backup named by `marker` back, starts the API it stopped, and
    /// clears whatever staging left (the shadow schema, read-only mode).
    pub async fn put_back(&self, marker: &Marker, loader: Option<String>) -> Result<()> {
        if marker.phase == Phase::Staging {
            self.discard(loader).await?;
            clear_marker(self.project);
            return Ok(());
        }
        let safety = catalog::find(self.project, Some(&marker.safety))?;
        let parts = parts_of(marker);
        let containers = self.engine.project_containers(&self.project.name).await?;
        if marker.mysql {
            let mysql = running_container(&containers, MYSQL_SERVICE)?;
            self.settle_loader(&mysql.id, loader).await?;
        }
        let loaded = load(
            self.engine,
            self.project,
            &containers,
            &safety,
            &parts,
            &Loader::default(),
        )
        .await;
        start_api(self.engine, &self.project.name, &marker.api, true).await?;
        loaded?;
        if marker.mysql {
            let manifest = safety.manifest.as_ref().expect("found backups have a manifest");
            let db = manifest.database.clone().unwrap_or_default();
            check_rows(self.engine, &containers, manifest, &db).await?;
        }
        // Leftover schemas go and writes are accepted again.
        self.discard(None).await?;
        clear_marker(self.project);
        Ok(())
    }
}

/// Thaws or starts the API containers again. Started ones may come back on new addresses,
/// so Nginx looks them up again (`restarted`).
async fn start_api(engine: &Engine, project: &str, api: &[String], restarted: bool) -> Result<()> {
    for id in api {
        engine.unpause(id).await?;
        engine.start(id).await?;
        healthy_again(engine, id).await?;
    }
    if restarted && !api.is_empty() {
        let fresh = engine.project_containers(project).await?;
        crate::deploy::nginx::refresh(engine, crate::deploy::nginx::running_nginx(&fresh)).await?;
    }
    Ok(())
}

async fn load(
    engine: &Engine,
    project: &Project,
    containers: &[ContainerInfo],
    b: &OnDisk,
    parts: &[Part],
    loader: &Loader,
) -> Result<()> {
    if parts.contains(&Part::Mysql) {
        let c = running_container(containers, MYSQL_SERVICE)?;
        let out = engine.exec(&c.id, &["sh", "-c", DROP_SCRIPT]).await?;
        if out.exit_code != 0 {
            return Err(CtlError::failure("cannot drop the database before loading").cause(out.stderr.trim()));
        }
        let decoder = catalog::dump_reader(b).await?;
        let script = crate::backup::root_sql::ROOT_CLIENT_EXEC;
        let mut started = |exec: &str| loader.set(exec);
        let (code, _, stderr) = engine
            .exec_with_input_as(&c.id, &["sh", "-c", script], decoder, |_| {}, &mut started)
            .await?;
        if code != 0 {
            return Err(CtlError::failure("loading the dump into MySQL failed").cause(stderr.trim()));
        }
    }
    if parts.contains(&Part::Redis) {
        restore_redis(engine, project, containers, &b.path.join(RDB_FILE)).await?;
    }
    Ok(())
}

/// Ends every other root session first: a loader whose client was killed (SIGKILL, a lost
/// connection) may still be feeding statements, and they must not land in the fresh schema.
/// The API logs in as its own user and is not touched. Then the database goes, so that
/// tables made after the backup go too.
const DROP_SCRIPT: &str = concat!(
    "export MYSQL_PWD=",
    crate::backup::root_sql::root_password!(),
    "\nq() { mysql -uroot -h127.0.0.1 -N -B -e \"$1\"; }\n",
    r#"for id in $(q "SELECT ID FROM information_schema.PROCESSLIST WHERE USER='root' AND ID<>CONNECTION_ID() AND COMMAND<>'Daemon'"); do
  q "KILL $id" 2>/dev/null || true
done
q "DROP DATABASE IF EXISTS \`$MYSQL_DATABASE\`""#
);

/// Redis reads its data only at start: stop it, replace the RDB (and drop the AOF, which
/// would win over it), start it again.
async fn restore_redis(
    engine: &Engine,
    project: &Project,
    containers: &[ContainerInfo],
    rdb: &std::path::Path,
) -> Result<()> {
    let c = current_container(containers, REDIS_SERVICE)
        .ok_or_else(|| CtlError::failure("Redis has no container"))?;
    let image = project.service(REDIS_SERVICE).image.clone().unwrap_or_default();
    let volume = project
        .service(REDIS_SERVICE)
        .volumes
        .iter()
        .find(|m| m.target == "/data")
        .and_then(|m| m.source.clone())
        .map(|v| project.volume_name(&v))
        .ok_or_else(|| CtlError::failure("Redis has no /data volume"))?;
    engine.stop(&c.id, None).await?;
    let code = engine
        .run_oneoff(
            &project.name,
            &image,
            &["sh", "-c", "rm -rf /data/appendonlydir /data/dump.rdb"],
            &volume,
            "/data",
        )
        .await?;
    if code != 0 {
        return Err(CtlError::failure("cannot clear Redis' old data files"));
    }
    // With appendonly on, Redis 7 loads only its AOF: the RDB also becomes the AOF's base,
    // with an empty increment and a manifest, and dump.rdb serves appendonly off.
    let size = std::fs::metadata(rdb)
        .map_err(|e| CtlError::failure("cannot read the RDB").cause(e))?
        .len();
    let manifest =
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
    let mut tar = futures_util::stream::empty().boxed();
    for name in ["dump.rdb", "appendonlydir/appendonly.aof.1.base.rdb"] {
        let file = tokio::fs::File::open(rdb)
            .await
            .map_err(|e| CtlError::failure("cannot open the RDB").cause(e))?;
        tar = tar
            .chain(tar_entry(
                name,
                size,
                b'0',
                tokio_util::io::ReaderStream::new(file).boxed(),
            ))
            .boxed();
    }
    let small = |name: &'static str, text: &'static str| {
        tar_entry(
            name,
            text.len() as u64,
            b'0',
            futures_util::stream::once(async move { Ok(Bytes::from_static(text.as_bytes())) }).boxed(),
        )
    };
    let tar = futures_util::stream::once(async { Ok(Bytes::from(tar_header("appendonlydir/", 0, b'5'))) })
        .chain(tar)
        .chain(small("appendonlydir/appendonly.aof.1.incr.aof", ""))
        .chain(small("appendonlydir/appendonly.aof.manifest", manifest))
        .chain(futures_util::stream::once(async {
            Ok(Bytes::from(vec![0u8; 1024]))
        }));
    engine.upload_stream(&c.id, "/data", tar).await?;
    engine.start(&c.id).await?;
    match wait::until(engine, &c.id, Goal::Ready, READY_TIMEOUT, &mut |_| {}).await? {
        Ok(_) => Ok(()),
        Err(not_ready) => Err(CtlError::failure(format!(
            "Redis did not come back: {}",
            not_ready.reason
        ))),
    }
}

type ByteStream = futures_util::stream::BoxStream<'static, std::io::Result<Bytes>>;

/// One tar member: header, content, padding to 512 bytes.
fn tar_entry(name: &'static str, size: u64, kind: u8, body: ByteStream) -> ByteStream {
    let padding = ((512 - size % 512) % 512) as usize;
    futures_util::stream::once(async move { Ok(Bytes::from(tar_header(name, size, kind))) })
        .chain(body)
        .chain(futures_util::stream::once(async move {
            Ok(Bytes::from(vec![0u8; padding]))
        }))
        .boxed()
}

/// A ustar header. Ownership is left to the image: the Redis entrypoint chowns /data.
fn tar_header(name: &str, size: u64, kind: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let field = |h: &mut Vec<u8>, at: usize, len: usize, value: String| {
        h[at..at + value.len().min(len)].copy_from_slice(&value.as_bytes()[..value.len().min(len)])
    };
    field(
        &mut h,
        100,
        8,
        if kind == b'5' { "0000755\0" } else { "0000644\0" }.into(),
    );
    field(&mut h, 108, 8, "0000000\0".into());
    field(&mut h, 116, 8, "0000000\0".into());
    field(&mut h, 124, 12, format!("{size:011o}\0"));
    field(
        &mut h,
        136,
        12,
        format!("{:011o}\0", chrono::Utc::now().timestamp()),
    );
    h[156] = kind;
    field(&mut h, 257, 6, "ustar\0".into());
    field(&mut h, 263, 2, "00".into());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    field(&mut h, 148, 8, format!("{sum:06o}\0 "));
    h
}

/// Waits for the API to be healthy. A paused container fails its health checks, so
/// "unhealthy" right after a pause is not final: only an exit or the deadline is.
async fn healthy_again(engine: &Engine, id: &str) -> Result<()> {
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    loop {
        let d = engine.inspect(id).await?;
        if d.is_ready() {
            return Ok(());
        }
        if !d.running && d.status != "created" && d.status != "restarting" {
            return Err(CtlError::failure(format!(
                "the API did not come back: it is {}",
                d.status
            )));
        }
        if std::time::Instant::now() >= deadline {
            return Err(crate::engine::deadline_error(
                "waiting for the API to be healthy again",
                READY_TIMEOUT,
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every table's row count in schema `db` against the manifest.
async fn check_rows(
    engine: &Engine,
    containers: &[ContainerInfo],
    manifest: &Manifest,
    db: &str,
) -> Result<()> {
    let c = running_container(containers, MYSQL_SERVICE)?;
    let mut wrong = Vec::new();
    for (table, expected) in &manifest.row_counts {
        let script = crate::backup::root_sql::query(&format!("SELECT COUNT(*) FROM `{db}`.`{table}`"));
        let out = engine.exec(&c.id, &["sh", "-c", &script]).await?;
        let got: Option<u64> = out.stdout.trim().parse().ok();
        if got != Some(*expected) {
            wrong.push(format!(
                "{table}: {} rows, the manifest says {expected}",
                got.map_or("?".into(), |g| g.to_string())
            ));
        }
    }
    match wrong.is_empty() {
        true => Ok(()),
        false => {
            let mut err = CtlError::failure("the restored row counts do not match the backup");
            for w in wrong {
                err = err.cause(w);
            }
            Err(err)
        }
    }
}
