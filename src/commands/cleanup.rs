//! `cleanup [--dry-run] [--yes]`: the old guide's `docker image prune` and log clean-up,
//! made safe. It holds the lock while removing, so no deploy, restore or backup is under way;
//! `--dry-run` takes no lock and changes nothing. Volumes are never touched.

use crate::cli::CleanupArgs;
use crate::commands::context::Context;
use crate::doctor::reclaim::{self, Item};
use crate::engine::{Engine, LockScope};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::{Printer, human_bytes};
use crate::stack::Project;

pub async fn run(ctx: &mut Context, args: CleanupArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    ctx.stack(&engine, &project)?.host_only(
        "cleanup",
        "on swarm, free images on each node with `docker image prune` there",
    )?;
    // Partial backup directories are debris only when no backup is under way.
    let idle = crate::targets::lock::holder(&engine, LockScope::Engine, &project.name)
        .await?
        .is_none();
    let planned = reclaim::plan(&engine, &project, idle).await?;
    if args.dry_run {
        report(&ctx.printer, &planned, &[], true);
        return Ok(ExitStatus::Success);
    }
    if planned.is_empty() {
        report(&ctx.printer, &[], &[], false);
        return Ok(ExitStatus::Success);
    }
    if !args.yes {
        confirm(&ctx.printer, &planned)?;
    }
    let _lock = ctx.lock(&engine, &project, "cleanup", args.lock.wait).await?;
    let (removed, kept) = remove_all(&engine, &project, &planned).await?;
    report(&ctx.printer, &removed, &kept, false);
    Ok(ExitStatus::Success)
}

fn confirm(printer: &Printer, planned: &[Item]) -> Result<()> {
    let total: u64 = planned.iter().map(|i| i.bytes).sum();
    table(printer, planned);
    let question = format!("Remove these {} items ({})?", planned.len(), human_bytes(total));
    match printer.confirm(&question) {
        Some(true) => Ok(()),
        Some(false) => Err(CtlError::failure("cleanup cancelled; nothing was removed")),
        None => Err(
            CtlError::usage("cleanup removes images and containers and needs confirmation")
                .hint("pass --yes when running without a terminal, or --dry-run to see what would go"),
        ),
    }
}

/// Under the lock: the plan is made again (the lock's crash sweep may have removed partial
/// directories already; those count as removed) and each item goes.
async fn remove_all(engine: &Engine, project: &Project, planned: &[Item]) -> Result<(Vec<Item>, Vec<Item>)> {
    let now = reclaim::plan(engine, project, true).await?;
    let mut removed: Vec<Item> = planned
        .iter()
        .filter(|p| p.kind == "partial backup" && !now.iter().any(|n| n.name == p.name))
        .cloned()
        .collect();
    let mut kept = Vec::new();
    for item in now {
        match reclaim::remove(engine, &item).await? {
            true => removed.push(item),
            false => kept.push(item),
        }
    }
    Ok((removed, kept))
}

fn table(printer: &Printer, items: &[Item]) {
    let rows = items
        .iter()
        .map(|i| vec![i.kind.to_string(), i.name.clone(), human_bytes(i.bytes)])
        .collect();
    printer.table(&["KIND", "NAME", "SIZE"], rows);
}

fn report(printer: &Printer, done: &[Item], kept: &[Item], dry_run: bool) {
    let freed: u64 = done.iter().map(|i| i.bytes).sum();
    if printer.is_json() {
        printer.json(&serde_json::json!({
            "dry_run": dry_run,
            "removed": if dry_run { Vec::new() } else { done.to_vec() },
            "would_remove": if dry_run { done.to_vec() } else { Vec::new() },
            "kept_in_use": kept,
            "freed_bytes": if dry_run { 0 } else { freed },
            "would_free_bytes": if dry_run { freed } else { 0 },
        }));
        return;
    }
    if !done.is_empty() {
        table(printer, done);
    }
    for k in kept {
        printer.warn(&format!("kept {} {}: something started using it", k.kind, k.name));
    }
    printer.result(&match (dry_run, done.is_empty()) {
        (_, true) => "nothing to clean up; volumes are never touched".to_string(),
        (true, false) => format!(
            "would remove {} items and free {}; nothing was changed (volumes are never touched)",
            done.len(),
            human_bytes(freed)
        ),
        (false, false) => format!(
            "removed {} items, freed {} (volumes are never touched)",
            done.len(),
            human_bytes(freed)
        ),
    });
}
