//! The off-site half of `backup`: the copy after each backup, `push`, `pull`,
//! `list --remote`, `verify --remote`, and remote retention (DESIGN §9).

use crate::backup::catalog::{self, Manifest};
use crate::backup::metrics;
use crate::backup::offsite::{self, Remote, RemoteBackup, StreamedFile};
use crate::backup::retention;
use crate::commands::context::Context;
use crate::error::{CtlError, ExitStatus, Result};
use crate::notify::events;
use crate::output::{human_age, human_bytes};
use crate::stack::Project;
use std::time::Instant;

/// After a successful local backup: copies it off-site when configured. A failure keeps
/// the local backup and fails the command with DESIGN §9's message.
pub async fn copy_after_backup(
    ctx: &Context,
    project: &Project,
    manifest: &Manifest,
    remote: Result<Option<Remote>>,
    streamed: Option<StreamedFile>,
) -> Result<()> {
    let result = copy(ctx, project, manifest, remote, streamed).await;
    if let Err(e) = &result {
        tell_offsite_failed(ctx, project, e).await;
    }
    result
}

async fn copy(
    ctx: &Context,
    project: &Project,
    manifest: &Manifest,
    remote: Result<Option<Remote>>,
    streamed: Option<StreamedFile>,
) -> Result<()> {
    let remote = match remote {
        Ok(Some(remote)) => remote,
        Ok(None) => return Ok(()),
        Err(e) => return Err(copy_failed(project, &manifest.id, e)),
    };
    let b = catalog::find(project, Some(&manifest.id))?;
    let clock = Instant::now();
    match remote.push_with(&b, streamed, &ctx.printer).await {
        Ok(bytes) => {
            offsite_metrics(project, Some(bytes));
            ctx.printer.info(&format!(
                "backup {}: copied to {} ({}{} in {:.1}s)",
                b.id,
                remote.location(),
                human_bytes(bytes),
                if remote.encrypted() { ", encrypted" } else { "" },
                clock.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Err(e) => Err(copy_failed(project, &b.id, e)),
    }
}

/// backup.offsite_failed, to the notification channels.
async fn tell_offsite_failed(ctx: &Context, project: &Project, err: &CtlError) {
    let next =
        "fix the cause, then `pricescan-ctl backup push` copies what is missing; the local backups are kept";
    events::emit(
        project,
        &ctx.printer,
        events::failed("backup.offsite_failed", project, err, next),
    )
    .await;
}

fn copy_failed(project: &Project, id: &str, e: CtlError) -> CtlError {
    offsite_metrics(project, None);
    let mut err = CtlError::new(
        e.status,
        format!("backup {id} is complete locally, but the off-site copy failed"),
    )
    .cause(e.what);
    for c in e.causes {
        err = err.cause(c);
    }
    err.hint(e.hint.unwrap_or_else(|| {
        "fix the cause, then run `pricescan-ctl backup push` to copy what is missing".into()
    }))
}

fn offsite_metrics(project: &Project, sent: Option<u64>) {
    let now = chrono::Utc::now().timestamp().to_string();
    let mut set = vec![
        (
            "pricescan_backup_offsite_last_attempt_timestamp_seconds",
            now.clone(),
        ),
        (
            "pricescan_backup_offsite_last_success",
            if sent.is_some() { "1" } else { "0" }.to_string(),
        ),
    ];
    if let Some(bytes) = sent {
        set.push(("pricescan_backup_offsite_last_success_timestamp_seconds", now));
        set.push(("pricescan_backup_offsite_last_size_bytes", bytes.to_string()));
    }
    metrics::update(project, &set);
}

/// `backup push [ID]...`: the named backups (replacing their copies), or every local one
/// missing off-site.
pub async fn push(ctx: &Context, project: &Project, ids: Vec<String>) -> Result<ExitStatus> {
    let remote = offsite::require(project)?;
    remote.clean_leftovers(&ctx.printer).await?;
    let there: Vec<String> = complete_ids(&remote.backups().await?);
    let wanted: Vec<catalog::OnDisk> = match ids.is_empty() {
        true => catalog::list(&catalog::backup_root(project))?
            .into_iter()
            .filter(|b| b.manifest.is_some() && !there.contains(&b.id))
            .collect(),
        false => ids
            .iter()
            .map(|id| catalog::find(project, Some(id)))
            .collect::<Result<_>>()?,
    };
    let mut pushed = 0;
    for b in wanted {
        let bytes = match remote.push(&b, &ctx.printer).await {
            Ok(bytes) => bytes,
            Err(e) => {
                offsite_metrics(project, None);
                tell_offsite_failed(ctx, project, &e).await;
                return Err(e);
            }
        };
        offsite_metrics(project, Some(bytes));
        ctx.printer.info(&format!(
            "{}: {} {} ({})",
            b.id,
            if there.contains(&b.id) {
                "replaced the copy in"
            } else {
                "copied to"
            },
            remote.location(),
            human_bytes(bytes)
        ));
        pushed += 1;
    }
    if pushed == 0 {
        ctx.printer.info("push: every local backup is already off-site");
    }
    Ok(ExitStatus::Success)
}

fn complete_ids(remote: &[RemoteBackup]) -> Vec<String> {
    remote
        .iter()
        .filter(|b| b.complete)
        .map(|b| b.id.clone())
        .collect()
}

/// `backup pull ID`: downloads, decrypts and verifies it into the local store.
pub async fn pull(ctx: &Context, project: &Project, id: &str) -> Result<ExitStatus> {
    if catalog::find(project, Some(id)).is_ok() {
        ctx.printer.info(&format!("{id}: already in the local store"));
        return Ok(ExitStatus::Success);
    }
    let remote = offsite::require(project)?;
    let b = remote.pull_verified(project, id, &ctx.printer).await?;
    ctx.printer.info(&format!(
        "{id}: pulled from {} and verified ({})",
        remote.location(),
        human_bytes(b.size)
    ));
    Ok(ExitStatus::Success)
}

/// `backup list --remote`.
pub async fn list(ctx: &Context, project: &Project) -> Result<ExitStatus> {
    let remote = offsite::require(project)?;
    let all = remote.backups().await?;
    let decisions = retention::decide(&offsite::candidates(&all), offsite::policy(project));
    if ctx.printer.is_json() {
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|b| {
                serde_json::json!({
                    "id": b.id, "complete": b.complete, "size_bytes": b.size, "files": b.files,
                    "verified_at": b.verified_at.map(|t| t.to_rfc3339()),
                    "kept_because": decisions.get(&b.id),
                })
            })
            .collect();
        ctx.printer.json(&serde_json::json!(items));
        return Ok(ExitStatus::Success);
    }
    let now = chrono::Utc::now();
    let rows = all
        .iter()
        .rev()
        .map(|b| {
            let kept = match decisions.get(&b.id) {
                Some(r) if !r.is_empty() => "kept",
                Some(_) => "pruned next",
                None => "-",
            };
            vec![
                b.id.clone(),
                human_bytes(b.size),
                match b.complete {
                    true => "complete".into(),
                    false => "incomplete (an upload cut short; pruned next)".to_string(),
                },
                b.verified_at.map_or("never".into(), |t| {
                    format!("{} ago", human_age((now - t).num_seconds().max(0) as u64))
                }),
                kept.into(),
            ]
        })
        .collect();
    ctx.printer.info(&format!(
        "off-site backups in {}{}",
        remote.location(),
        if remote.encrypted() {
            " (encrypted with age)"
        } else {
            ""
        }
    ));
    ctx.printer
        .table(&["ID", "SIZE", "STATUS", "VERIFIED", "RETENTION"], rows);
    if crate::stack::pitr::enabled(&project.env)
        && let Some(w) = super::pitr::offsite_window(project).await
    {
        ctx.printer.info(&w.line(None));
    }
    Ok(ExitStatus::Success)
}

/// `backup verify [ID] --remote`: the newest complete remote backup by default.
pub async fn verify(ctx: &Context, project: &Project, id: Option<String>) -> Result<ExitStatus> {
    let remote = offsite::require(project)?;
    let ids = complete_ids(&remote.backups().await?);
    let id = match id {
        Some(id) if ids.contains(&id) => id,
        Some(id) => {
            return Err(CtlError::usage(format!("no off-site backup {id}"))
                .hint("`pricescan-ctl backup list --remote` shows them"));
        }
        None => ids.last().cloned().ok_or_else(|| {
            CtlError::usage(format!("no off-site backup exists yet in {}", remote.location()))
        })?,
    };
    let problems = remote.verify(&id, &ctx.printer).await?;
    if problems.is_empty() {
        ctx.printer.info(&format!(
            "off-site backup {id}: good (every file downloaded{}, sizes and SHA-256 match the manifest)",
            if remote.encrypted() { ", decrypted" } else { "" }
        ));
        return Ok(ExitStatus::Success);
    }
    let mut err = CtlError::failure(format!("the off-site copy of {id} is damaged"));
    for p in problems {
        err = err.cause(p);
    }
    Err(err.hint(format!(
        "replace it from the local copy with `pricescan-ctl backup push {id}`, or `backup pull` another backup"
    )))
}

/// Remote retention, after the local one: its own counts, the newest verified kept, and
/// uploads cut short removed.
pub async fn prune(ctx: &Context, project: &Project, dry_run: bool) -> Result<()> {
    let Some(remote) = offsite::open(project)? else {
        return Ok(());
    };
    if !dry_run {
        remote.clean_leftovers(&ctx.printer).await?;
    }
    let all = remote.backups().await?;
    let decisions = retention::decide(&offsite::candidates(&all), offsite::policy(project));
    for b in &all {
        let reasons = decisions.get(&b.id).cloned().unwrap_or_default();
        let why = match (b.complete, reasons.is_empty()) {
            (true, false) => {
                if dry_run {
                    ctx.printer
                        .info(&format!("keep   off-site {}  ({})", b.id, reasons.join(", ")));
                }
                continue;
            }
            (true, true) => "no retention rule keeps it",
            (false, _) => "an upload cut short",
        };
        match dry_run {
            true => ctx.printer.info(&format!("remove off-site {}  ({why})", b.id)),
            false => {
                remote.remove(&b.id).await?;
                ctx.printer.info(&format!("pruned off-site {}  ({why})", b.id));
            }
        }
    }
    Ok(())
}
