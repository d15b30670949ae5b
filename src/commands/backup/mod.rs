//! `backup` and `backup list|verify|prune`. cron-friendly: silent with -q, one `error:`
//! line and a non-zero exit on failure, the manifest with --json.

use crate::backup::catalog;
use crate::backup::catalog::{DUMP_FILE, Reason, parts};
use crate::backup::retention;
use crate::backup::{metrics, take};
use crate::cli::{BackupArgs, BackupCommand, BackupPart, BackupReason};
use crate::commands::context::Context;
use crate::error::{Context as _, CtlError, ExitStatus, Result};
use crate::notify::events;
use crate::output::{human_age, human_bytes};
use crate::stack::Project;

mod offsite;
mod pitr;

pub async fn run(ctx: &mut Context, args: BackupArgs) -> Result<ExitStatus> {
    match args.command {
        None => take(ctx, args.only, args.reason, args.lock.wait).await,
        Some(BackupCommand::List { remote: false }) => list(ctx).await,
        Some(BackupCommand::List { remote: true }) => {
            let project = ctx.project()?;
            offsite::list(ctx, &project).await
        }
        Some(BackupCommand::Verify { id, remote: true, .. }) => {
            let project = ctx.project()?;
            offsite::verify(ctx, &project, id).await
        }
        Some(BackupCommand::Verify { id, deep, .. }) => verify(ctx, id, deep).await,
        Some(BackupCommand::Push { ids, lock }) => {
            let project = ctx.project()?;
            let engine = ctx.engine().await?;
            let _lock = ctx.lock(&engine, &project, "backup push", lock.wait).await?;
            offsite::push(ctx, &project, ids).await
        }
        Some(BackupCommand::Pull { id, lock }) => {
            let project = ctx.project()?;
            let engine = ctx.engine().await?;
            let _lock = ctx.lock(&engine, &project, "backup pull", lock.wait).await?;
            offsite::pull(ctx, &project, &id).await
        }
        Some(BackupCommand::Events { since, grep }) => pitr::events(ctx, since, grep).await,
        Some(BackupCommand::Archive { once }) => pitr::archive(ctx, once).await,
        Some(BackupCommand::Prune { dry_run, lock }) => {
            let project = ctx.project()?;
            let engine = ctx.engine().await?;
            let _lock = ctx.lock(&engine, &project, "backup prune", lock.wait).await?;
            prune(ctx, &project, dry_run)?;
            pitr::prune_archive(ctx, &project, dry_run).await?;
            offsite::prune(ctx, &project, dry_run).await?;
            pitr::prune_remote_archive(ctx, &project, dry_run).await?;
            Ok(ExitStatus::Success)
        }
    }
}

async fn take(
    ctx: &mut Context,
    only: Option<BackupPart>,
    reason: BackupReason,
    wait: Option<std::time::Duration>,
) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    let _lock = ctx.lock(&engine, &project, "backup", wait).await?;
    // On swarm, the data node's engine: the backup still lands here.
    let data = ctx.stack(&engine, &project)?.data_engine().await?;
    let attempt = chrono::Utc::now();
    // The off-site copy of the dump leaves while the dump is written.
    let remote = crate::backup::offsite::open(&project);
    let mut streamed = None;
    let target = remote.as_ref().ok().and_then(Option::as_ref);
    if let Some(r) = target
        && let Err(e) = r.clean_leftovers(&ctx.printer).await
    {
        ctx.printer
            .debug(&format!("off-site clean-up deferred: {}", e.summary()));
    }
    let mut start = |id: &str| {
        let (tx, s) = target.expect("called only with a remote").stream(id, DUMP_FILE);
        streamed = Some(s);
        tx
    };
    let stream_dump: Option<take::StreamDump> = match target {
        Some(_) => Some(&mut start),
        None => None,
    };
    let result = take::take(
        &data,
        &project,
        Reason::from(reason).word(),
        &parts(only.map(Into::into)),
        &ctx.printer,
        stream_dump,
    )
    .await;
    write_metrics(&project, attempt, result.as_ref().ok());
    if let Err(e) = &result {
        failed(ctx, &project, e, streamed.take()).await;
    }
    let manifest = result?;
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::to_value(&manifest).context(|| "cannot encode the manifest".into())?);
    } else {
        let size: u64 = manifest.files.iter().map(|f| f.size).sum();
        let rows: u64 = manifest.row_counts.values().sum();
        ctx.printer.info(&format!(
            "backup {}: {} in {:.1}s, {rows} rows in {} tables",
            manifest.id,
            human_bytes(size),
            manifest.duration_s,
            manifest.row_counts.len()
        ));
    }
    offsite::copy_after_backup(ctx, &project, &manifest, remote, streamed).await?;
    // Retention only after a successful backup and its off-site copy.
    prune(ctx, &project, false)?;
    pitr::prune_archive(ctx, &project, false).await?;
    offsite::prune(ctx, &project, false).await?;
    pitr::prune_remote_archive(ctx, &project, false).await?;
    Ok(ExitStatus::Success)
}

/// The local backup failed: what the dump had sent off-site goes, and backup.failed is told.
async fn failed(
    ctx: &Context,
    project: &Project,
    e: &CtlError,
    streamed: Option<crate::backup::offsite::StreamedFile>,
) {
    if let Some(s) = streamed {
        s.abandon(&ctx.printer).await;
    }
    let next = "`pricescan-ctl status`, then `pricescan-ctl backup` by hand; the older backups are untouched";
    events::emit(
        project,
        &ctx.printer,
        events::failed("backup.failed", project, e, next),
    )
    .await;
}

/// Prometheus textfile metrics of the local backup.
fn write_metrics(
    project: &Project,
    attempt: chrono::DateTime<chrono::Utc>,
    done: Option<&catalog::Manifest>,
) {
    let mut set = vec![(
        "pricescan_backup_last_attempt_timestamp_seconds",
        attempt.timestamp().to_string(),
    )];
    if let Some(m) = done {
        set.push((
            "pricescan_backup_last_success_timestamp_seconds",
            chrono::Utc::now().timestamp().to_string(),
        ));
        set.push(("pricescan_backup_last_duration_seconds", m.duration_s.to_string()));
        let size: u64 = m.files.iter().map(|f| f.size).sum();
        set.push(("pricescan_backup_last_size_bytes", size.to_string()));
    }
    metrics::update(project, &set);
}

async fn list(ctx: &mut Context) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let all = catalog::list(&catalog::backup_root(&project))?;
    let decisions = retention::decide(&catalog::candidates(&all), catalog::policy(&project.env));
    let now = chrono::Utc::now();
    let window = pitr::window(ctx, &project, &all).await;
    if ctx.printer.is_json() {
        // Each backup that records its binlog position can be rolled forward to `to`.
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|b| {
                let pitr = b
                    .manifest
                    .as_ref()
                    .and_then(|m| m.binlog.as_ref())
                    .and(window.as_ref());
                serde_json::json!({
                    "id": b.id, "partial": b.partial, "size_bytes": b.size,
                    "manifest": b.manifest, "kept_because": decisions.get(&b.id),
                    "point_in_time": pitr.map(pitr::Window::json),
                })
            })
            .collect();
        ctx.printer.json(&serde_json::json!(items));
        return Ok(ExitStatus::Success);
    }
    let rows = all
        .iter()
        .rev()
        .map(|b| {
            let m = b.manifest.as_ref();
            let age = m
                .and_then(|m| chrono::DateTime::parse_from_rfc3339(&m.started_at).ok())
                .map_or("-".into(), |t| {
                    human_age((now - t.with_timezone(&chrono::Utc)).num_seconds().max(0) as u64)
                });
            let status = match (b.partial, m) {
                (true, _) => "leftover .partial (interrupted; safe to delete)".to_string(),
                (false, Some(m)) => m.status.clone(),
                (false, None) => "no valid manifest".into(),
            };
            let kept = match decisions.get(&b.id) {
                Some(r) if !r.is_empty() => "kept".to_string(),
                Some(_) => "pruned next".into(),
                None => "-".into(),
            };
            vec![
                b.id.clone(),
                m.map_or("-".into(), |m| m.reason.clone()),
                age,
                human_bytes(b.size),
                status,
                m.and_then(|m| m.verified_at.clone())
                    .unwrap_or_else(|| "never".into()),
                kept,
            ]
        })
        .collect();
    ctx.printer.table(
        &["ID", "REASON", "AGE", "SIZE", "STATUS", "VERIFIED", "RETENTION"],
        rows,
    );
    for line in window.iter().flat_map(pitr::Window::lines) {
        ctx.printer.info(&line);
    }
    Ok(ExitStatus::Success)
}

async fn verify(ctx: &mut Context, id: Option<String>, deep: bool) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let b = catalog::find(&project, id.as_deref())?;
    let mut problems = catalog::problems(&b);
    if deep && problems.is_empty() {
        let engine = ctx.engine().await?;
        problems = catalog::deep_check(&engine, &project.name, &b).await?;
    }
    if problems.is_empty() {
        catalog::mark_verified(&b, deep)?;
        let what = match deep {
            true => {
                "hashes, zstd stream, dump footer, RDB magic; loaded into a throwaway MySQL with matching row counts"
            }
            false => "hashes, zstd stream, dump footer, RDB magic",
        };
        ctx.printer.info(&format!("backup {}: good ({what})", b.id));
        return Ok(ExitStatus::Success);
    }
    let mut err = CtlError::failure(format!("backup {} is damaged", b.id));
    for p in problems {
        err = err.cause(p);
    }
    Err(err.hint("restore from another backup; `pricescan-ctl backup list` shows them"))
}

fn prune(ctx: &Context, project: &Project, dry_run: bool) -> Result<ExitStatus> {
    let all = catalog::list(&catalog::backup_root(project))?;
    let decisions = retention::decide(&catalog::candidates(&all), catalog::policy(&project.env));
    for b in all.iter().filter(|b| b.manifest.is_some()) {
        let reasons = decisions.get(&b.id).cloned().unwrap_or_default();
        match (reasons.is_empty(), dry_run) {
            (false, _) => {
                if dry_run {
                    ctx.printer
                        .info(&format!("keep   {}  ({})", b.id, reasons.join(", ")));
                }
            }
            (true, true) => ctx
                .printer
                .info(&format!("remove {}  (no retention rule keeps it)", b.id)),
            (true, false) => {
                std::fs::remove_dir_all(&b.path).context(|| format!("cannot remove {}", b.path.display()))?;
                ctx.printer.info(&format!("pruned {}", b.id));
            }
        }
    }
    Ok(ExitStatus::Success)
}
