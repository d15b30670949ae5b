//! A zero-downtime release of the API: the new container starts beside the old one, must
//! pass its health check and an HTTP probe from Nginx, then Nginx moves to it with a
//! checked, graceful reload; the old one drains and is stopped but kept for rollback. Any
//! failure before the switch leaves the old container serving and removes the new one.

use crate::deploy::converge::current_container;
use crate::deploy::nginx;
use crate::deploy::release::{API_SERVICE, KEEP_RELEASES, Release};
use crate::deploy::wait::{self, Goal};
use crate::engine::{self, ContainerInfo, Engine, labels};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::Printer;
use crate::stack::Project;
use std::time::{Duration, Instant};

/// Lines of the new container's log shown when it fails.
const FAILURE_LOG_LINES: usize = 30;

pub struct Plan<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub printer: &'a Printer,
    pub image: String,
    pub release: String,
    pub timeout: Duration,
    pub drain: Duration,
}

/// How the switch ended, for the release record and the exit code.
pub enum Outcome {
    /// The new release takes the traffic from here on, whatever happens to what is left.
    Switched(Leftover),
    /// The new release failed and the old one serves: exit 4.
    RolledBack(CtlError),
    /// A signal arrived before the switch; the old one serves: exit 130/143.
    Interrupted,
}

/// What a switch leaves to settle once the release is recorded.
pub enum Leftover {
    /// The old container, to drain and stop (one host), still ready until then.
    Container(Box<Sides>),
    /// Nothing: the swarm retired the old tasks itself.
    Nothing,
}

/// Both sides of a switch on one host: the old container still runs and is ready, so going
/// back is a reload of Nginx.
pub struct Sides {
    pub old: ContainerInfo,
    pub new_id: String,
    pub new_name: String,
    /// When Nginx moved, in nanoseconds since the epoch.
    pub switched_at: i64,
}

fn step(printer: &Printer, started: Instant, text: &str) {
    printer.info(&format!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64()));
}

/// Starts the new release beside the old one and moves Nginx to it once it is healthy.
pub async fn switch(plan: &Plan<'_>) -> Result<Outcome> {
    let started = Instant::now();
    let containers = plan.engine.project_containers(&plan.project.name).await?;
    let old = current_container(&containers, API_SERVICE)
        .filter(|c| c.is_running())
        .cloned();
    let nginx = nginx::running_nginx(&containers).cloned();
    let (Some(old), Some(nginx)) = (old, nginx) else {
        return Err(CtlError::failure("deploy needs the API and Nginx running")
            .hint("start the stack first: `pricescan-ctl start`"));
    };
    let mut project = plan.project.clone();
    crate::deploy::release::pin(&mut project, &plan.release, &plan.image);
    let spec = engine::spec::plan(&project, API_SERVICE, next_number(&containers), &[])?;
    step(
        plan.printer,
        started,
        &format!("starting {} ({}) beside {}", spec.name, plan.image, old.name),
    );
    let new_id = plan.engine.create(&spec).await?;
    // Until traffic moves, undoing means removing the new container; a signal that drops
    // this future still gets that done on the way out.
    let undo = plan.engine.remove_on_exit(&new_id, &spec.name);
    let ready = tokio::select! {
        r = healthy(plan, &new_id, &spec.name, &nginx) => Some(r),
        _ = crate::sys::signals::received() => None,
    };
    let failure = match ready {
        None => {
            undo.run_now(plan.printer).await?;
            step(
                plan.printer,
                started,
                &format!("interrupted: removed {}, {} keeps serving", spec.name, old.name),
            );
            return Ok(Outcome::Interrupted);
        }
        Some(Err(e)) => Some(e),
        Some(Ok(())) => {
            step(plan.printer, started, "healthy; moving Nginx to it");
            nginx::point_upstream(plan.engine, &project, Some(&nginx), &spec.name)
                .await
                .err()
        }
    };
    if let Some(e) = failure {
        undo.run_now(plan.printer).await.map_err(|r| {
            CtlError::new(
                ExitStatus::RollbackFailed,
                "the new release failed and could not be removed",
            )
            .cause(&e.what)
            .cause(r.what)
            .hint(format!(
                "{} still serves through Nginx; remove {} by hand",
                old.name, spec.name
            ))
        })?;
        step(
            plan.printer,
            started,
            &format!("rolled back: removed {}, {} keeps serving", spec.name, old.name),
        );
        return Ok(Outcome::RolledBack(e));
    }
    undo.disarm();
    let switched_at = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    step(plan.printer, started, &format!("{} serves", spec.name));
    Ok(Outcome::Switched(Leftover::Container(Box::new(Sides {
        old,
        new_id,
        new_name: spec.name,
        switched_at,
    }))))
}

/// The number of the next API container: one above every one there is.
fn next_number(containers: &[ContainerInfo]) -> u32 {
    containers
        .iter()
        .filter(|c| c.service == API_SERVICE)
        .map(|c| c.number)
        .max()
        .unwrap_or(0)
        + 1
}

/// After the switch is recorded: what the switch left is retired, and old releases go.
/// Failures here are warnings on a release that serves.
pub async fn settle(plan: &Plan<'_>, leftover: Leftover, history: &[Release]) -> Vec<String> {
    let Leftover::Container(sides) = leftover else {
        return Vec::new();
    };
    let mut warnings = retire(plan, &sides.old).await;
    if let Err(e) = clean_old(plan.engine, plan.project, history).await {
        warnings.push(format!("could not remove old releases: {}", e.what));
    }
    warnings
}

/// After the switch: the old container drains (to the end, signal or not), is stopped and
/// kept for rollback, and the upstream names the service again. Failures here are warnings
/// on a release that serves.
async fn retire(plan: &Plan<'_>, old: &ContainerInfo) -> Vec<String> {
    let mut warnings = Vec::new();
    step(
        plan.printer,
        Instant::now(),
        &format!(
            "draining {} for {}",
            old.name,
            humantime::format_duration(plan.drain)
        ),
    );
    // A signal does not cut the drain short: requests in flight on the old container would
    // fail. The release is committed; finishing it is the clean-up.
    let what = format!("draining {} before it stops", old.name);
    if let Err(e) = drain_then_stop(plan, &old.id, &what).await {
        warnings.push(format!("could not stop {}: {}", old.name, e.what));
    }
    let containers = plan
        .engine
        .project_containers(&plan.project.name)
        .await
        .unwrap_or_default();
    // At rest the upstream names the service again (only the new container answers to it now).
    if let Err(e) = nginx::point_upstream(
        plan.engine,
        plan.project,
        nginx::running_nginx(&containers),
        API_SERVICE,
    )
    .await
    {
        warnings.push(format!(
            "could not point Nginx back at the service name: {}",
            e.what
        ));
    }
    warnings
}

/// After a failed analysis, or a signal in its window: Nginx goes back to the old container
/// at once; the new one drains, is stopped and removed, and the upstream names the
/// service again.
pub async fn switch_back(plan: &Plan<'_>, sides: &Sides) -> Result<()> {
    let started = Instant::now();
    let containers = plan.engine.project_containers(&plan.project.name).await?;
    let nginx = nginx::running_nginx(&containers);
    nginx::point_upstream(plan.engine, plan.project, nginx, &sides.old.name).await?;
    step(
        plan.printer,
        started,
        &format!("switched back: {} serves", sides.old.name),
    );
    let what = format!("draining {} before it is removed", sides.new_name);
    drain_then_stop(plan, &sides.new_id, &what).await?;
    plan.engine.remove(&sides.new_id).await?;
    step(plan.printer, started, &format!("removed {}", sides.new_name));
    if let Err(e) = nginx::point_upstream(plan.engine, plan.project, nginx, API_SERVICE).await {
        plan.printer.warn(&format!(
            "could not point Nginx back at the service name: {}",
            e.what
        ));
    }
    Ok(())
}

/// Requests Nginx already sent to `id` finish (API_DRAIN, despite signals), then it stops
/// within the API's stop grace period.
async fn drain_then_stop(plan: &Plan<'_>, id: &str, what: &str) -> Result<()> {
    crate::sys::undo::despite_signals(what, tokio::time::sleep(plan.drain), plan.printer).await;
    let grace = plan
        .project
        .service(API_SERVICE)
        .stop_grace_period
        .as_ref()
        .map(|d| d.value);
    plan.engine.stop(id, grace).await
}

/// Health check, then /health probed from Nginx's container (the path requests will take).
async fn healthy(plan: &Plan<'_>, id: &str, name: &str, nginx: &ContainerInfo) -> Result<()> {
    plan.engine.start(id).await?;
    let waited = wait::until(plan.engine, id, Goal::Ready, plan.timeout, &mut |_| {}).await?;
    if let Err(not_ready) = waited {
        return Err(failure_report(plan, id, &not_ready.reason, not_ready.detail.last_health_output).await);
    }
    let url = format!("http://{name}:8000/health");
    let probe = plan
        .engine
        .exec(
            &nginx.id,
            &["curl", "-fsS", "-o", "/dev/null", "--max-time", "5", &url],
        )
        .await?;
    if probe.exit_code != 0 {
        let reason = format!("Nginx cannot reach {url}: {}", probe.stderr.trim());
        return Err(failure_report(plan, id, &reason, None).await);
    }
    Ok(())
}

async fn failure_report(plan: &Plan<'_>, id: &str, reason: &str, health: Option<String>) -> CtlError {
    let logs = plan
        .engine
        .log_tail(id, FAILURE_LOG_LINES)
        .await
        .unwrap_or_default();
    plan.printer
        .service_failure(API_SERVICE, reason, health.as_deref(), &logs);
    CtlError::failure(format!("the new release did not become healthy: {reason}"))
}

/// Stopped API containers and images of releases older than the last KEEP_RELEASES go.
async fn clean_old(engine: &Engine, project: &Project, history: &[Release]) -> Result<()> {
    let keep: Vec<&str> = history
        .iter()
        .rev()
        .filter(|r| r.result == "succeeded")
        .take(KEEP_RELEASES)
        .map(|r| r.id.as_str())
        .collect();
    let containers = engine.project_containers(&project.name).await?;
    for c in containers
        .iter()
        .filter(|c| c.service == API_SERVICE && !c.is_running())
    {
        if c.labels
            .get(labels::RELEASE)
            .is_some_and(|r| !keep.contains(&r.as_str()))
        {
            engine.remove(&c.id).await?;
        }
    }
    let kept_images: Vec<&str> = history
        .iter()
        .filter(|r| keep.contains(&r.id.as_str()))
        .map(|r| r.image.as_str())
        .collect();
    // Only images a deploy built itself (tagged with their release id) are ours to remove.
    let ours = |r: &&Release| r.image.contains(&r.id);
    for r in history
        .iter()
        .filter(ours)
        .filter(|r| !keep.contains(&r.id.as_str()) && !kept_images.contains(&r.image.as_str()))
    {
        engine.remove_image_if_unused(&r.image).await?;
    }
    Ok(())
}

/// Appends the switch's outcome to the history. Traffic that moved is recorded as
/// succeeded before anything else; any other outcome is the caller's error.
pub fn record(
    record: &mut Release,
    project: &Project,
    kind: &str,
    outcome: Result<Outcome>,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<Leftover> {
    let mut finish = |result: &str, message: Option<String>| {
        let finished = chrono::Utc::now();
        record.finished_at = finished.to_rfc3339();
        record.duration_s = ((finished - started).num_milliseconds() as f64) / 1000.0;
        record.result = result.to_string();
        record.message = message;
        crate::deploy::release::append(project, record)
    };
    match outcome {
        Ok(Outcome::Switched(leftover)) => {
            finish("succeeded", None)?;
            Ok(leftover)
        }
        Ok(Outcome::RolledBack(e)) => {
            finish("rolled_back", Some(e.what.clone()))?;
            let what = format!(
                "{kind} of {} failed and was rolled back; the previous release is serving",
                record.image
            );
            Err(CtlError::new(ExitStatus::RolledBack, what).cause(&e.what))
        }
        Ok(Outcome::Interrupted) => {
            finish("rolled_back", Some("interrupted".into()))?;
            Err(crate::sys::signals::interrupted(
                "the previous release is serving",
            ))
        }
        Err(e) => {
            finish("failed", Some(e.what.clone()))?;
            Err(e)
        }
    }
}
