//! What a crash (SIGKILL, power loss) left behind, cleaned by the next command that takes
//! the lock, which says so (DESIGN §8). Holding the lock means no other operation is under
//! way, so a `.partial` backup directory is debris; a one-off container is debris only when
//! the process that created it is gone (a read-only `verify --deep` takes no lock). A restore
//! killed after touching data left its marker: its pre-restore backup is put back. A deploy
//! or restart killed mid-rollout left two API containers running: the one Nginx's upstream
//! names serves (the switch happened), else the older one (it did not); the other is settled.
//! A deploy killed in its analysis window left a release that traffic reached but nothing
//! judged: the older one, known good and still ready, serves again, as a signal would have
//! had it.

use crate::backup::catalog;
use crate::backup::catalog::backup_root;
use crate::deploy::nginx;
use crate::deploy::release::{self, API_SERVICE, Release};
use crate::engine::{ContainerInfo, Engine, labels};
use crate::error::{Context as _, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::targets::lock::Owner;

/// Everything a crashed command left on one host.
pub async fn sweep(engine: &Engine, project: &Project, printer: &Printer) -> Result<()> {
    leftovers(engine, project, printer).await?;
    settle_api(engine, project, printer).await?;
    unfinished_restore(engine, project, printer, false).await
}

/// Partial backup directories, and one-off containers whose creator is gone.
pub async fn leftovers(engine: &Engine, project: &Project, printer: &Printer) -> Result<()> {
    for leftover in catalog::list(&backup_root(project))?.iter().filter(|b| b.partial) {
        std::fs::remove_dir_all(&leftover.path)
            .context(|| format!("cannot remove {}", leftover.path.display()))?;
        printer.warn(&format!(
            "removed {}: an interrupted backup left it",
            leftover.path.display()
        ));
    }
    let lock_name = format!("{}-lock", project.name);
    for c in engine.oneoff_containers(&project.name).await? {
        let dead = Owner::from_labels(&c.labels).is_some_and(|o| o.is_dead_here());
        if c.name != lock_name && dead {
            engine.remove(&c.id).await?;
            printer.warn(&format!(
                "removed the one-off container {}: the command that created it is gone",
                c.name
            ));
        }
    }
    Ok(())
}

/// A restore killed after touching data: its pre-restore backup goes back, through `data`,
/// the engine that runs MySQL and Redis.
pub async fn unfinished_restore(
    data: &Engine,
    project: &Project,
    printer: &Printer,
    api_held: bool,
) -> Result<()> {
    if let Some(marker) = crate::backup::restore::read_marker(project) {
        let doing = match marker.phase {
            crate::backup::restore::Phase::Staging => {
                "dropping its shadow schema and accepting writes again (the live data was never touched)"
                    .to_string()
            }
            crate::backup::restore::Phase::Swapping => {
                format!("putting back its pre-restore backup {}", marker.safety)
            }
        };
        printer.warn(&format!(
            "a restore of {} was stopped half-way (started {}); {doing}",
            marker.target, marker.started_at
        ));
        let restorer = crate::backup::restore::Restorer {
            engine: data,
            project,
            printer,
            api_held,
            replay: None,
        };
        let what = format!("put back pre-restore backup {}", marker.safety);
        crate::sys::undo::despite_signals(&what, restorer.put_back(&marker, None), printer)
            .await
            .map_err(|e| {
                e.hint(format!(
                    "nothing else was done; run `pricescan-ctl restore {} --yes` to put the data back",
                    marker.safety
                ))
            })?;
        printer.warn(&format!(
            "pre-restore backup {} is back and the API runs",
            marker.safety
        ));
    }
    Ok(())
}

async fn settle_api(engine: &Engine, project: &Project, printer: &Printer) -> Result<()> {
    let containers = engine.project_containers(&project.name).await?;
    let running: Vec<&ContainerInfo> = containers
        .iter()
        .filter(|c| c.service == API_SERVICE && c.is_running())
        .collect();
    if running.len() < 2 {
        return Ok(());
    }
    let named = nginx::current_upstream(project);
    let oldest = running.iter().min_by_key(|c| c.number).copied();
    let unjudged = running
        .iter()
        .find(|c| Some(&c.name) == named.as_ref() && is_unjudged(project, c, oldest))
        .copied();
    let switched = running
        .iter()
        .find(|c| Some(&c.name) == named.as_ref() && unjudged.is_none())
        .copied();
    let Some(serving) = switched.or(oldest) else {
        return Ok(());
    };
    // Nginx names the one that serves first: the service name would still resolve to both,
    // and requests would reach a container being stopped.
    let proxy = nginx::running_nginx(&containers);
    nginx::point_upstream(engine, project, proxy, &serving.name).await?;
    if switched.is_some() || unjudged.is_some() {
        finish_drain(project, printer).await;
    }
    for c in running.iter().filter(|c| c.id != serving.id) {
        engine.stop(&c.id, None).await?;
        // Before the switch the newer one never served, and an unjudged one must not: it
        // goes. After a switch, the older one is kept stopped for rollback, as a finished
        // deploy keeps it.
        if switched.is_none() {
            engine.remove(&c.id).await?;
        }
        let why = match unjudged {
            Some(_) => "its deploy was killed before the analysis of its traffic ended; the previous release",
            None => "an interrupted rollout left it running beside",
        };
        printer.warn(&format!(
            "{} {}: {why} {}, which serves",
            if switched.is_some() { "stopped" } else { "removed" },
            c.name,
            serving.name
        ));
    }
    nginx::point_upstream(engine, project, proxy, API_SERVICE).await?;
    match (switched, unjudged) {
        (Some(_), _) => record_if_missing(project, serving, printer, "succeeded")?,
        (None, Some(c)) => record_if_missing(project, c, printer, "rolled_back")?,
        _ => {}
    }
    Ok(())
}

/// Traffic reached `c`, a release of its own that no record names: its deploy died before
/// the analysis gave a verdict.
fn is_unjudged(project: &Project, c: &ContainerInfo, oldest: Option<&ContainerInfo>) -> bool {
    let Some(id) = c.labels.get(labels::RELEASE) else {
        return false;
    };
    let older = oldest.filter(|o| o.id != c.id);
    let other_release = older.is_some_and(|o| o.labels.get(labels::RELEASE) != Some(id));
    other_release && release::history(project).is_ok_and(|h| !h.releases.iter().any(|r| &r.id == id))
}

/// The killed rollout had moved traffic when the upstream file was written; the old
/// container may still answer requests Nginx sent before that, so it gets what is left of
/// API_DRAIN before it stops, as a finished rollout would have given it.
async fn finish_drain(project: &Project, printer: &Printer) {
    let since_switch = std::fs::metadata(nginx::upstream_path(project))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    let left = crate::stack::rollout::api_drain(project).saturating_sub(since_switch);
    if left.is_zero() {
        return;
    }
    printer.info(&format!(
        "letting the old API container drain for {:.1}s more before it stops",
        left.as_secs_f64()
    ));
    let what = "draining the old API container before it stops";
    crate::sys::undo::despite_signals(what, tokio::time::sleep(left), printer).await;
}

/// A release that traffic reached must be in the history, even when its deploy died before
/// writing the record: as succeeded when it serves, as rolled back when it was unjudged.
fn record_if_missing(
    project: &Project,
    serving: &ContainerInfo,
    printer: &Printer,
    result: &str,
) -> Result<()> {
    let (Some(id), Some(image)) = (
        serving.labels.get(labels::RELEASE),
        serving.labels.get(release::RELEASE_IMAGE_LABEL),
    ) else {
        return Ok(());
    };
    if release::history(project)?.releases.iter().any(|r| &r.id == id) {
        return Ok(());
    }
    let now = chrono::Utc::now().to_rfc3339();
    let owner = Owner::me("recovery");
    release::append(
        project,
        &Release {
            id: id.clone(),
            kind: "deploy".into(),
            image: image.clone(),
            digest: Some(serving.image_id.clone()),
            previous: None,
            previous_image: None,
            user: owner.user,
            host: owner.host,
            started_at: now.clone(),
            finished_at: now,
            duration_s: 0.0,
            result: result.into(),
            backup: None,
            message: Some(match result {
                "succeeded" => "recorded after the deploy that moved traffic to it was killed".into(),
                _ => "its deploy was killed during the analysis; the previous release serves again".into(),
            }),
            analysis: None,
        },
    )?;
    let state = if result == "succeeded" {
        "serves"
    } else {
        "was switched back"
    };
    printer.warn(&format!(
        "recorded release {id} ({image}), which {state}: its deploy was killed before it could"
    ));
    Ok(())
}
