//! A release of the API on swarm (DESIGN §11): the service's spec, rebuilt from the model with
//! the new image and release labels, is handed to the swarm as a rolling update (start-first,
//! health-gated, `failure_action: rollback`). The swarm does the work; this follows its
//! `UpdateStatus` with one live line per task. Nginx follows the tasks through DNS and is
//! never touched. Interrupted, timed out or paused, the update is rolled back server-side,
//! so the swarm always ends in a state the release record can name.

use crate::deploy::release::{self, API_SERVICE};
use crate::deploy::rollout::{Leftover, Outcome, Plan};
use crate::engine::{ServiceInfo, TaskInfo};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::ServiceBoard;
use crate::stack::swarm;
use crate::targets::context::{Stack, TargetKind};
use crate::targets::swarm::cluster::{ensure_objects, object_ids, wanted_objects};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(250);
const FAILURE_LOG_LINES: u64 = 30;
/// How long a rollback that pricescan-ctl asked for may take.
const ROLLBACK_LIMIT: Duration = Duration::from_secs(300);

/// How the swarm's update ended.
enum Ended {
    Completed,
    /// The swarm rolled back by itself (a task failed its health check or exited).
    RolledBack(String),
    /// Paused (failure_action pause), or still running at the deadline: ours to roll back.
    Stalled(String),
    RollbackPaused(String),
}

pub async fn switch(plan: &Plan<'_>) -> Result<Outcome> {
    let engine = plan.engine;
    engine.require_manager().await?;
    let name = swarm::service_name(&plan.project.name, API_SERVICE);
    let services = engine.stack_services(&plan.project.name).await?;
    let current = services
        .iter()
        .find(|s| s.name == name && s.replicas > 0)
        .ok_or_else(|| {
            CtlError::failure("deploy needs the API service running")
                .hint("start the stack first: `pricescan-ctl start`")
        })?;
    refuse_unfinished(current)?;
    let mut project = plan.project.clone();
    release::pin(&mut project, &plan.release, &plan.image);
    let stack = Stack {
        engine,
        project: &project,
        printer: plan.printer,
        kind: TargetKind::Swarm,
    };
    ensure_objects(&stack, &wanted_objects(&project)?).await?;
    let ids = object_ids(engine, &project.name).await?;
    let spec = swarm::plan(&project, API_SERVICE, Some(current.replicas))?;
    let since = chrono::Utc::now() - chrono::Duration::seconds(2);
    let started = Instant::now();
    plan.printer.info(&format!(
        "rolling {name} to {} ({} tasks, start-first)",
        plan.image, current.replicas
    ));
    engine.apply_service(&spec, &ids).await?;
    let board = board(plan, current.replicas);
    let ended = tokio::select! {
        r = follow(plan, &board, &name, since, plan.timeout) => r?,
        _ = crate::sys::signals::received() => {
            plan.printer.warn("interrupted: rolling the API back to the release before");
            let back = crate::sys::undo::despite_signals("roll the API service back", roll_back(plan, &name), plan.printer).await;
            back?;
            return Ok(Outcome::Interrupted);
        }
    };
    let took = started.elapsed().as_secs_f64();
    match ended {
        Ended::Completed => {
            plan.printer
                .info(&format!("[{took:>5.1}s] every task runs {}", plan.image));
            Ok(Outcome::Switched(Leftover::Nothing))
        }
        Ended::RolledBack(why) => Ok(Outcome::RolledBack(failed(plan, &name, &why).await)),
        Ended::Stalled(why) => {
            plan.printer.warn(&format!("{why}; rolling back"));
            roll_back(plan, &name).await?;
            Ok(Outcome::RolledBack(failed(plan, &name, &why).await))
        }
        Ended::RollbackPaused(why) => Err(rollback_failed(&name, &why)),
    }
}

/// A deploy on top of an update that has not finished would stack two rollbacks' worth of
/// previous specs; the operator decides first.
fn refuse_unfinished(service: &ServiceInfo) -> Result<()> {
    let state = service.update_state.as_deref().unwrap_or("");
    let how = match state {
        "updating" | "rollback_started" => {
            "wait for it to finish (`docker service ps NAME`), or roll it back: `docker service rollback NAME`"
        }
        "paused" => {
            "resume it with `docker service update --force NAME`, or roll it back: `docker service rollback NAME`"
        }
        "rollback_paused" => {
            "fix the cause (`docker service ps --no-trunc NAME`), then `docker service update --force NAME`"
        }
        _ => return Ok(()),
    };
    Err(CtlError::failure(format!(
        "{} has an update that is {state}: {}",
        service.name,
        service.update_message.clone().unwrap_or_default()
    ))
    .hint(how.replace("NAME", &service.name)))
}

fn board(plan: &Plan<'_>, replicas: u64) -> ServiceBoard {
    let slots: Vec<String> = (1..=replicas).map(|s| format!("{API_SERVICE}.{s}")).collect();
    plan.printer.service_board(&slots)
}

/// Follows the update until the swarm says how it ended, or `timeout` passes.
async fn follow(
    plan: &Plan<'_>,
    board: &ServiceBoard,
    name: &str,
    since: chrono::DateTime<chrono::Utc>,
    timeout: Duration,
) -> Result<Ended> {
    let started = Instant::now();
    let hosts = node_names(plan).await?;
    loop {
        let services = plan.engine.stack_services(&plan.project.name).await?;
        let tasks = plan.engine.stack_tasks(&plan.project.name).await?;
        let Some(service) = services.into_iter().find(|s| s.name == name) else {
            return Err(CtlError::failure(format!(
                "service {name} disappeared during the deploy"
            )));
        };
        show_tasks(board, &tasks, &service.id, &hosts);
        let why = service.update_message.clone().unwrap_or_default();
        let ours = super::tasks::began_since(&service, since);
        match service.update_state.as_deref() {
            Some("completed") if ours => return Ok(Ended::Completed),
            Some("rollback_completed") if ours => return Ok(Ended::RolledBack(why)),
            Some("paused") if ours => return Ok(Ended::Stalled(format!("the update paused: {why}"))),
            Some("rollback_paused") if ours => return Ok(Ended::RollbackPaused(why)),
            _ => {}
        }
        if started.elapsed() > timeout {
            return Ok(Ended::Stalled(format!(
                "the update did not finish within {}",
                humantime::format_duration(timeout)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Node ID → a name to show: hostnames repeat, so with the ID's first characters.
async fn node_names(plan: &Plan<'_>) -> Result<HashMap<String, String>> {
    Ok(plan
        .engine
        .nodes()
        .await?
        .into_iter()
        .map(|n| {
            let shown = format!("{} ({})", n.hostname, &n.id[..n.id.len().min(8)]);
            (n.id, shown)
        })
        .collect())
}

/// One line per slot: the newest task meant to run there, its image, state and node.
fn show_tasks(board: &ServiceBoard, tasks: &[TaskInfo], service_id: &str, hosts: &HashMap<String, String>) {
    let mut newest: HashMap<u64, &TaskInfo> = HashMap::new();
    for t in tasks.iter().filter(|t| t.service_id == service_id) {
        let Some(slot) = t.slot else { continue };
        let entry = newest.entry(slot).or_insert(t);
        if (t.desired_state == "running", &t.timestamp) > (entry.desired_state == "running", &entry.timestamp)
        {
            *entry = t;
        }
    }
    for (slot, t) in newest {
        let node = hosts.get(&t.node_id).map_or("-", String::as_str);
        let mut line = format!("{} {} on {node}", t.image, t.state);
        if let Some(e) = t.error.as_deref().filter(|e| !e.is_empty()) {
            line.push_str(&format!(": {e}"));
        }
        board.update(&format!("{API_SERVICE}.{slot}"), &line);
    }
}

/// Asks the swarm for a rollback to the previous spec and waits for it to complete.
async fn roll_back(plan: &Plan<'_>, name: &str) -> Result<()> {
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    plan.engine.rollback_service(name).await?;
    let started = Instant::now();
    loop {
        let services = plan.engine.stack_services(&plan.project.name).await?;
        let service = services.iter().find(|s| s.name == name);
        match service.and_then(|s| s.update_state.as_deref().map(|st| (s, st))) {
            Some((s, "rollback_completed")) if super::tasks::began_since(s, since) => return Ok(()),
            Some((s, "rollback_paused")) => {
                return Err(rollback_failed(
                    name,
                    &s.update_message.clone().unwrap_or_default(),
                ));
            }
            _ => {}
        }
        if started.elapsed() > ROLLBACK_LIMIT {
            return Err(rollback_failed(name, "the rollback did not finish in time"));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn rollback_failed(name: &str, why: &str) -> CtlError {
    CtlError::new(
        ExitStatus::RollbackFailed,
        format!("the new release failed and rolling {name} back did not complete"),
    )
    .cause(why)
    .hint(format!(
        "`docker service ps --no-trunc {name}` shows the tasks; `pricescan-ctl deploy rollback` redeploys the last good release"
    ))
}

/// The failed task's reason and last log lines, shown; the error for the record and exit 4.
async fn failed(plan: &Plan<'_>, name: &str, why: &str) -> CtlError {
    let tasks = plan
        .engine
        .stack_tasks(&plan.project.name)
        .await
        .unwrap_or_default();
    let services = plan
        .engine
        .stack_services(&plan.project.name)
        .await
        .unwrap_or_default();
    let id = services.iter().find(|s| s.name == name).map(|s| s.id.clone());
    let bad = tasks
        .iter()
        .filter(|t| Some(&t.service_id) == id.as_ref() && t.image == plan.image)
        .max_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let reason = bad
        .map(|t| t.error.clone().unwrap_or_else(|| t.message.clone()))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| why.to_string());
    let logs = match bad {
        Some(t) => plan
            .engine
            .task_log_tail(&t.id, FAILURE_LOG_LINES)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    plan.printer.service_failure(API_SERVICE, &reason, None, &logs);
    CtlError::failure(format!("the new release did not become healthy: {reason}")).cause(why)
}
