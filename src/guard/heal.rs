//! The guard's actions, taken under the operation lock (DESIGN §14): a young release is rolled
//! back, the API is replaced start-first behind Nginx, a stateful service is restarted or
//! recreated from the model. Each says what it did, for the incident's timeline.

use crate::deploy::converge::{Converger, Mode};
use crate::deploy::release::{self, API_SERVICE, Release};
use crate::deploy::rollout::Plan;
use crate::deploy::wait::Goal;
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::stack::{Project, rollout};
use crate::targets::Stack;
use std::time::Duration;

/// Replaces or restarts the service as `restart` does; says which.
pub async fn restart(stack: &Stack<'_>, service: &str, timeout: Duration) -> Result<String> {
    let engine = stack.engine;
    let mut project = stack.project.clone();
    let containers = engine.project_containers(&project.name).await?;
    release::adopt_serving(&mut project, &containers);
    let board = stack.printer.service_board(&[service.to_string()]);
    let converger = Converger {
        engine,
        project: &project,
        board: &board,
        timeout,
        drain: rollout::api_drain(&project),
        containers,
    };
    match converger
        .converge(service, Mode::Restart, Some(Goal::Ready))
        .await?
    {
        Ok(_) if rollout::is_start_first(&project, service) => {
            Ok("replaced start-first behind Nginx (the new container took over, the old one drained)".into())
        }
        Ok(_) => Ok("restarted".into()),
        Err(f) => Err(CtlError::failure(format!(
            "{service} did not come back: {}",
            f.reason
        ))),
    }
}

/// The serving API release, when it was deployed less than `window` ago: restarting it
/// would only bring the fault back, so it is rolled back instead (GUARD_ROLLBACK_WINDOW).
pub async fn young_release(engine: &Engine, project: &Project, window: Duration) -> Result<Option<Release>> {
    let containers = engine.project_containers(&project.name).await?;
    let Some((serving, _)) = release::serving(&containers) else {
        return Ok(None);
    };
    let history = release::history(project)?;
    let young = |r: &&Release| {
        r.finished()
            .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
            .is_some_and(|age| age < window)
    };
    Ok(history
        .releases
        .iter()
        .rev()
        .find(|r| r.id == serving && r.result == "succeeded")
        .filter(young)
        .cloned())
}

/// Rolls the young release back to the one before it, as `deploy rollback` does: start-first
/// behind Nginx, recorded in the release history as a rollback by the guard.
pub async fn roll_back(stack: &Stack<'_>, young: &Release, timeout: Duration) -> Result<String> {
    let history = release::history(stack.project)?;
    let target = history
        .rollback_target(None)
        .filter(|t| t.image != young.image)
        .ok_or_else(|| {
            CtlError::failure(format!(
                "release {} has no earlier release to roll back to",
                young.id
            ))
        })?;
    let mut project = stack.project.clone();
    release::pin(&mut project, &young.id, &young.image);
    let now = chrono::Utc::now();
    let id = release::new_id(now);
    let (engine, printer) = (stack.engine, stack.printer);
    let mut record = Release::begin(
        (engine, &project),
        id,
        "rollback",
        target.image.clone(),
        Some(young.id.clone()),
        now,
    )
    .await?;
    record.user = format!("guard ({})", record.user);
    let plan = Plan {
        engine,
        project: &project,
        printer,
        image: target.image.clone(),
        release: record.id.clone(),
        timeout,
        drain: rollout::api_drain(&project),
    };
    let target_stack = Stack {
        project: &project,
        ..*stack
    };
    let switched = target_stack.switch(&plan).await;
    let leftover = crate::deploy::rollout::record(&mut record, &project, "rollback", switched, now)?;
    let history = release::history(&project)?;
    for w in crate::deploy::rollout::settle(&plan, leftover, &history.releases).await {
        printer.warn(&format!("{w}; release {} serves", record.id));
    }
    Ok(format!(
        "rolled back release {} ({}), deployed within GUARD_ROLLBACK_WINDOW, to {} as release {}",
        young.id, young.image, target.image, record.id
    ))
}

/// Whether the service's container runs and is healthy.
pub async fn ready(engine: &Engine, project: &Project, service: &str) -> Result<bool> {
    for c in engine.project_containers(&project.name).await? {
        if c.service == service && c.is_running() && !c.is_oneoff() {
            return Ok(engine.inspect(&c.id).await?.is_ready());
        }
    }
    Ok(false)
}

/// Whether the guard rolls back rather than restarts: only the API has releases.
pub fn may_roll_back(service: &str) -> bool {
    service == API_SERVICE
}
