//! `restore ID`: checks the backup, takes a pre-restore backup, stops the API, loads MySQL
//! by streaming the dump into `mysql` (constant memory), puts Redis' RDB back while Redis is
//! stopped, starts everything again and checks the row counts against the manifest.

use super::Context;
use crate::cli::RestoreArgs;
use crate::engine::{ContainerInfo, Engine};
use crate::error::{CtlError, ExitStatus, Result};
use crate::ops::backup::{self, DUMP_FILE, MYSQL_SERVICE, Manifest, Part, RDB_FILE, REDIS_SERVICE, parts};
use crate::ops::backups::{self, OnDisk};
use crate::ops::converge::{current_container, running_container};
use crate::ops::wait::{self, Goal};
use crate::stack::Project;
use bytes::Bytes;
use futures_util::StreamExt;
use std::io::{IsTerminal, Write};
use std::time::Duration;

const API_SERVICE: &str = "pricescan-api";
const READY_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn run(ctx: &mut Context, args: RestoreArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let b = backups::find(&project, Some(&args.id))?;
    let problems = backups::problems(&b);
    if !problems.is_empty() {
        let mut err = CtlError::failure(format!("backup {} failed its checks; nothing was changed", b.id));
        for p in problems {
            err = err.cause(p);
        }
        return Err(err);
    }
    let manifest = b.manifest.clone().expect("find returns backups with a manifest");
    let wanted: Vec<Part> = parts(args.only)
        .into_iter()
        .filter(|p| {
            manifest
                .files
                .iter()
                .any(|f| f.name == if *p == Part::Mysql { DUMP_FILE } else { RDB_FILE })
        })
        .collect();
    confirm(&project, &b, &wanted, args.yes)?;
    let engine = ctx.engine().await?;
    let _lock = ctx.lock(&engine, &project, "restore", args.lock.wait).await?;
    let clock = std::time::Instant::now();
    let safety = backup::take(&engine, &project, "pre-restore", &wanted, &ctx.printer).await?;
    ctx.printer.debug(&format!(
        "pre-restore backup took {:.2}s",
        clock.elapsed().as_secs_f64()
    ));
    ctx.printer.info(&format!("pre-restore backup: {}", safety.id));
    let containers = engine.project_containers(&project.name).await?;
    let api: Vec<&ContainerInfo> = containers
        .iter()
        .filter(|c| c.service == API_SERVICE && c.is_running())
        .collect();
    for c in &api {
        engine.stop(&c.id, None).await?;
    }
    ctx.printer.info("stopped the API");
    let clock = std::time::Instant::now();
    let loaded = load(&engine, &project, &containers, &b, &wanted).await;
    ctx.printer
        .debug(&format!("loading took {:.2}s", clock.elapsed().as_secs_f64()));
    for c in &api {
        engine.start(&c.id).await?;
        let _ = wait::until(&engine, &c.id, Goal::Ready, READY_TIMEOUT, &mut |_| {}).await?;
    }
    if !api.is_empty() {
        // The API came back with new addresses; Nginx must look them up again.
        let fresh = engine.project_containers(&project.name).await?;
        crate::ops::nginx::refresh(&engine, crate::ops::nginx::running_nginx(&fresh)).await?;
    }
    ctx.printer.info("started the API");
    loaded.map_err(|e| e.hint(format!("the data from before is in backup {}", safety.id)))?;
    if wanted.contains(&Part::Mysql) {
        check_rows(&engine, &containers, &manifest).await?;
    }
    ctx.printer.info(&format!(
        "restored {} ({} table row counts match the manifest)",
        b.id,
        manifest.row_counts.len()
    ));
    Ok(ExitStatus::Success)
}

fn confirm(project: &Project, b: &OnDisk, parts: &[Part], yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            CtlError::usage("restore replaces live data and needs confirmation")
                .hint("pass --yes when running without a terminal"),
        );
    }
    let what: Vec<&str> = parts
        .iter()
        .map(|p| if *p == Part::Mysql { "MySQL" } else { "Redis" })
        .collect();
    eprint!(
        "Restore {} over the {} data of project {}? A pre-restore backup is taken first. [y/N] ",
        b.id,
        what.join(" and "),
        project.name
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    match answer.trim().eq_ignore_ascii_case("y") || answer.trim().eq_ignore_ascii_case("yes") {
        true => Ok(()),
        false => Err(CtlError::failure("restore cancelled; nothing was changed")),
    }
}

async fn load(
    engine: &Engine,
    project: &Project,
    containers: &[ContainerInfo],
    b: &OnDisk,
    parts: &[Part],
) -> Result<()> {
    if parts.contains(&Part::Mysql) {
        let c = running_container(containers, MYSQL_SERVICE)?;
        // The dump recreates the database; tables made after the backup must go too.
        let drop = "MYSQL_PWD=\"$MYSQL_ROOT_PASSWORD\" mysql -uroot -h127.0.0.1 -e \"DROP DATABASE IF EXISTS \\`$MYSQL_DATABASE\\`\"";
        let out = engine.exec(&c.id, &["sh", "-c", drop]).await?;
        if out.exit_code != 0 {
            return Err(CtlError::failure("cannot drop the database before loading").cause(out.stderr.trim()));
        }
        let file = tokio::fs::File::open(b.path.join(DUMP_FILE))
            .await
            .map_err(|e| CtlError::failure("cannot open the dump").cause(e))?;
        let decoder = async_compression::tokio::bufread::ZstdDecoder::new(
            tokio::io::BufReader::with_capacity(1 << 20, file),
        );
        let script = "MYSQL_PWD=\"$MYSQL_ROOT_PASSWORD\" exec mysql -uroot -h127.0.0.1";
        let (code, _, stderr) = engine
            .exec_with_input(&c.id, &["sh", "-c", script], decoder, |_| {})
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

async fn check_rows(engine: &Engine, containers: &[ContainerInfo], manifest: &Manifest) -> Result<()> {
    let c = running_container(containers, MYSQL_SERVICE)?;
    let db = manifest.database.clone().unwrap_or_default();
    let mut wrong = Vec::new();
    for (table, expected) in &manifest.row_counts {
        let script = format!(
            "MYSQL_PWD=\"$MYSQL_ROOT_PASSWORD\" mysql -uroot -h127.0.0.1 -N -B -e 'SELECT COUNT(*) FROM `{db}`.`{table}`'"
        );
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
