//! `restore ID`: checks the backup, asks for confirmation, takes the lock, and hands over to
//! `backup::restore`, which never leaves production worse than it found it.

use crate::backup::catalog::{self, OnDisk};
use crate::backup::catalog::{DUMP_FILE, Part, RDB_FILE, parts};
use crate::backup::offsite;
use crate::backup::replay::{self, Replay};
use crate::backup::restore::Restorer;
use crate::backup::{pitr_plan, pitr_source};
use crate::cli::RestoreArgs;
use crate::commands::context::Context;
use crate::deploy::converge::running_container;
use crate::error::{CtlError, ExitStatus, Result};
use crate::notify::Event;
use crate::notify::events;
use crate::output::Printer;
use crate::stack::Project;
use crate::stack::pitr::{self, Target};
use std::io::IsTerminal;

pub async fn run(ctx: &mut Context, args: RestoreArgs) -> Result<ExitStatus> {
    match pitr_target(&args)? {
        Some(target) => point_in_time(ctx, args, target).await,
        None => whole(ctx, args).await,
    }
}

/// `restore ID`: the backup as it is.
async fn whole(ctx: &mut Context, args: RestoreArgs) -> Result<ExitStatus> {
    let id = args.id.clone().unwrap_or_default();
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, "restore")?;
    let (b, lock) = match catalog::find(&project, Some(&id)) {
        Ok(b) => {
            check(&b)?;
            (b, None)
        }
        Err(missing) => {
            let Some(remote) = offsite::open(&project)? else {
                return Err(missing);
            };
            let lock = ctx.lock(&engine, &project, "restore", args.lock.wait).await?;
            (pull(ctx, &project, &remote, &id).await?, Some(lock))
        }
    };
    let manifest = b.manifest.clone().expect("find returns backups with a manifest");
    let wanted: Vec<Part> = parts(args.only.map(Into::into))
        .into_iter()
        .filter(|p| {
            manifest
                .files
                .iter()
                .any(|f| f.name == if *p == Part::Mysql { DUMP_FILE } else { RDB_FILE })
        })
        .collect();
    confirm(&ctx.printer, &project, &b, &wanted, args.yes)?;
    let _lock = match lock {
        Some(held) => held,
        None => ctx.lock(&engine, &project, "restore", args.lock.wait).await?,
    };
    let safety = execute(ctx, &project, &engine, &b, &wanted, None).await?;
    ctx.printer.info(&format!(
        "restored {} ({} table row counts match the manifest); the data from before is in {safety}",
        b.id,
        manifest.row_counts.len()
    ));
    Ok(ExitStatus::Success)
}

/// `--to TIME` or `--to-position FILE:POS`, parsed (exit 2 on a bad one).
fn pitr_target(args: &RestoreArgs) -> Result<Option<Target>> {
    let target = match (&args.to, &args.to_position) {
        (Some(t), _) => Target::Time(pitr::parse_time(t).map_err(CtlError::usage)?),
        (None, Some(p)) => Target::Position(pitr::parse_position(p).map_err(CtlError::usage)?),
        (None, None) => return Ok(None),
    };
    if args.only == Some(crate::cli::BackupPart::Redis) {
        return Err(
            CtlError::usage("a point-in-time restore rolls MySQL forward; Redis has no binary log")
                .hint("leave --only out, or use --only mysql"),
        );
    }
    Ok(Some(target))
}

/// `restore --to`: the newest backup before the target, rolled forward through the binlog
/// archive in the shadow schema, then swapped in. Everything is checked before anything
/// changes.
async fn point_in_time(ctx: &mut Context, args: RestoreArgs, target: Target) -> Result<ExitStatus> {
    if let Target::Time(t) = &target {
        ctx.printer.info(&format!(
            "restoring to {} UTC (binlog events carry whole seconds: everything up to the end of that second)",
            t.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, "restore")?;
    let remote = offsite::open(&project)?;
    let (base, remote_base) = choose_base(&project, remote.as_ref(), &target, args.id.as_deref()).await?;
    let base = &base;
    let (data, archiver, mysql) = pitr_containers(ctx, &engine, &project).await?;
    let coordinates = base
        .manifest
        .as_ref()
        .and_then(|m| m.binlog.clone())
        .expect("chosen backups have coordinates");
    let from = coordinates.position();
    // Whatever comes from the bucket is fetched under the lock, after the question.
    let local = pitr_source::local_archive_holding(&data, &archiver.id, &coordinates)
        .await?
        .is_some();
    let mut lock = None;
    if !local || remote_base {
        confirm(&ctx.printer, &project, base, &[Part::Mysql], args.yes)?;
        lock = Some(ctx.lock(&engine, &project, "restore", args.lock.wait).await?);
    }
    let planned = plan_replay(
        (&project, &ctx.printer),
        (&data, &archiver.id, mysql.as_deref()),
        remote.as_ref(),
        &coordinates,
        &target,
    );
    let replay = match planned.await {
        Ok(r) => r,
        Err(e) => {
            pitr_source::forget_pulled(&data, &archiver.id).await;
            return Err(e);
        }
    };
    ctx.printer.info(&format!(
        "rolling forward from backup {} ({from}) through {} archived file{}",
        base.id,
        replay.files.len(),
        if replay.files.len() == 1 { "" } else { "s" }
    ));
    let _lock = match lock {
        Some(held) => held,
        None => {
            confirm(&ctx.printer, &project, base, &[Part::Mysql], args.yes)?;
            ctx.lock(&engine, &project, "restore", args.lock.wait).await?
        }
    };
    let base = match (remote_base, remote.as_ref()) {
        (true, Some(r)) => pull(ctx, &project, r, &base.id).await?,
        _ => base.clone(),
    };
    let done = execute(ctx, &project, &engine, &base, &[Part::Mysql], Some(&replay)).await;
    pitr_source::forget_pulled(&data, &archiver.id).await;
    let safety = done?;
    ctx.printer.info(&format!(
        "restored MySQL to {target} (backup {} and the binary log after it); the data from before is in {safety}",
        base.id
    ));
    ctx.printer
        .info("take a backup now: a later point-in-time restore cannot replay across this one");
    Ok(ExitStatus::Success)
}

/// The replay from the local archive (live or set aside) or the bucket's pulled copy. The
/// archiver may set the live archive aside meanwhile (MySQL's binary log started over): a
/// plan that lost its files is made again from where they went.
async fn plan_replay(
    (project, printer): (&Project, &crate::output::Printer),
    (data, archiver, mysql): (&crate::engine::Engine, &str, Option<&str>),
    remote: Option<&offsite::Remote>,
    coordinates: &crate::backup::coordinates::Coordinates,
    target: &Target,
) -> Result<replay::Replay> {
    let mut again = true;
    loop {
        let dir = pitr_source::archive_dir(data, archiver, remote, coordinates, project, printer).await?;
        match replay::plan(data, archiver, &dir, mysql, coordinates, target).await {
            Err(_) if again && dir == crate::stack::pitr::ARCHIVE_DIR => again = false,
            done => return done,
        }
    }
}

/// The data engine, with the archiver's container (required) and MySQL's (when it runs).
async fn pitr_containers(
    ctx: &Context,
    engine: &crate::engine::Engine,
    project: &Project,
) -> Result<(
    crate::engine::Engine,
    crate::engine::ContainerInfo,
    Option<String>,
)> {
    let data = ctx.stack(engine, project)?.data_engine().await?;
    let containers = data.project_containers(&project.name).await?;
    let archiver = running_container(&containers, pitr::ARCHIVER_SERVICE)
        .map_err(|e| e.hint("the binlog archive is read through it: `pricescan-ctl start -s binlog`"))?
        .clone();
    let mysql = running_container(&containers, crate::backup::catalog::MYSQL_SERVICE)
        .ok()
        .map(|c| c.id.clone());
    Ok((data, archiver, mysql))
}

/// The backup to roll forward from, here or (when the server that took it is gone) in the
/// bucket; true for the latter. Checked before anything changes.
async fn choose_base(
    project: &Project,
    remote: Option<&offsite::Remote>,
    target: &Target,
    id: Option<&str>,
) -> Result<(OnDisk, bool)> {
    let (backups, remote_only) = pitr_source::candidates(project, remote).await?;
    let base = pitr_plan::choose(&backups, target, id, chrono::Utc::now())?;
    let from_remote = remote_only.contains(&base.id);
    if !from_remote {
        check(base)?;
    }
    pitr_plan::check_no_restore_between(&backups, base, target)?;
    Ok((base.clone(), from_remote))
}

/// Runs the restore under the lock the caller holds; returns the pre-restore backup's id.
async fn execute(
    ctx: &Context,
    project: &Project,
    engine: &crate::engine::Engine,
    b: &OnDisk,
    wanted: &[Part],
    replay: Option<&Replay>,
) -> Result<String> {
    let stack = ctx.stack(engine, project)?;
    // On swarm: the data node's engine, and no API task running meanwhile.
    let data = stack.data_engine().await?;
    let held = stack.hold_api().await?;
    let restorer = Restorer {
        engine: &data,
        project,
        printer: &ctx.printer,
        api_held: held.is_some(),
        replay,
    };
    let restored = restorer.restore(b, wanted).await;
    let back =
        crate::sys::undo::despite_signals("start the API again", stack.release_api(held), &ctx.printer).await;
    let result = match (restored, back) {
        (Ok(safety), Err(e)) => Err(e
            .cause(format!(
                "the restore itself succeeded (the data from before is in {safety})"
            ))
            .hint("`pricescan-ctl start -s api` starts it")),
        (Err(e), Err(b)) => Err(e
            .cause(format!("starting the API again failed too: {}", b.what))
            .hint("`pricescan-ctl start -s api` starts it")),
        (result, Ok(())) => result,
    };
    tell(ctx, project, &b.id, &result).await;
    result
}

/// restore.succeeded or restore.failed, to the notification channels.
async fn tell(ctx: &Context, project: &Project, id: &str, result: &Result<String>) {
    let event = match result {
        Ok(safety) => Event::new(
            "restore.succeeded",
            &project.name,
            false,
            format!("backup {id} was restored"),
            vec![
                format!("the data from before is in backup {safety}"),
                "next: check the site".into(),
            ],
        ),
        Err(e) if e.status.is_signal() => return,
        Err(e) => events::failed(
            "restore.failed",
            project,
            e,
            &format!(
                "`pricescan-ctl status`; the data from before the restore is kept; `pricescan-ctl restore {id}` again once the cause is fixed"
            ),
        ),
    };
    events::emit(project, &ctx.printer, event).await;
}

/// A backup that exists only off-site, pulled under the lock: decrypted and checked as it
/// streams, then checked whole, so it needs no second check.
async fn pull(ctx: &Context, project: &Project, remote: &offsite::Remote, id: &str) -> Result<OnDisk> {
    ctx.printer.info(&format!(
        "{id} is not here; pulling it from {}",
        remote.location()
    ));
    tokio::select! {
        pulled = remote.pull_verified(project, id, &ctx.printer) => pulled,
        _ = crate::sys::signals::received() => {
            Err(crate::sys::signals::interrupted(format!("while pulling {id}; nothing was changed")))
        }
    }
}

/// Hashes, zstd stream, footer and RDB magic, before anything is touched.
fn check(b: &OnDisk) -> Result<()> {
    let problems = catalog::problems(b);
    if problems.is_empty() {
        return Ok(());
    }
    let mut err = CtlError::failure(format!("backup {} failed its checks; nothing was changed", b.id));
    for p in problems {
        err = err.cause(p);
    }
    Err(err)
}

fn confirm(printer: &Printer, project: &Project, b: &OnDisk, parts: &[Part], yes: bool) -> Result<()> {
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
    let question = format!(
        "Restore {} over the {} data of project {}? A pre-restore backup is taken first.",
        b.id,
        what.join(" and "),
        project.name
    );
    match printer.confirm(&question) {
        Some(true) => Ok(()),
        _ => Err(CtlError::failure("restore cancelled; nothing was changed")),
    }
}
