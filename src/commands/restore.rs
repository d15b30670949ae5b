//! `restore ID`: checks the backup, asks for confirmation, takes the lock, and hands over to
//! `backup::restore`, which never leaves production worse than it found it.

use crate::backup::catalog::{self, OnDisk};
use crate::backup::catalog::{DUMP_FILE, Part, RDB_FILE, parts};
use crate::backup::offsite;
use crate::backup::restore::Restorer;
use crate::cli::RestoreArgs;
use crate::commands::context::Context;
use crate::error::{CtlError, ExitStatus, Result};
use crate::notify::Event;
use crate::notify::events;
use crate::output::Printer;
use crate::stack::Project;
use std::io::IsTerminal;

pub async fn run(ctx: &mut Context, args: RestoreArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, "restore")?;
    let (b, lock) = match catalog::find(&project, Some(&args.id)) {
        Ok(b) => {
            check(&b)?;
            (b, None)
        }
        Err(missing) => {
            let Some(remote) = offsite::open(&project)? else {
                return Err(missing);
            };
            let lock = ctx.lock(&engine, &project, "restore", args.lock.wait).await?;
            (pull(ctx, &project, &remote, &args.id).await?, Some(lock))
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
    let stack = ctx.stack(&engine, &project)?;
    // On swarm: the data node's engine, and no API task running meanwhile.
    let data = stack.data_engine().await?;
    let held = stack.hold_api().await?;
    let restorer = Restorer {
        engine: &data,
        project: &project,
        printer: &ctx.printer,
        api_held: held.is_some(),
    };
    let restored = restorer.restore(&b, &wanted).await;
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
    tell(ctx, &project, &b.id, &result).await;
    let safety = result?;
    ctx.printer.info(&format!(
        "restored {} ({} table row counts match the manifest); the data from before is in {safety}",
        b.id,
        manifest.row_counts.len()
    ));
    Ok(ExitStatus::Success)
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
