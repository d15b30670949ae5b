//! Waiting for a swarm's services to run the wanted tasks, with one live line per service.

use crate::engine::{ServiceInfo, TaskInfo};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::ServiceBoard;
use crate::targets::context::Stack;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(500);

/// Running tasks of `service_id` (the engine reports a task with a health check as running
/// only once it is healthy).
pub(super) fn running(tasks: &[TaskInfo], service_id: &str) -> usize {
    tasks
        .iter()
        .filter(|t| t.service_id == service_id && t.state == "running" && t.desired_state == "running")
        .count()
}

/// Waits until each (service, name, replicas) runs exactly that many tasks and its update,
/// if any, completed, with one live line per service. A paused or rolled-back update fails
/// at once with the engine's reason; a timeout names the last task error of each service.
pub(super) async fn wait_running(
    stack: &Stack<'_>,
    board: &ServiceBoard,
    wanted: &[(String, String, u64)],
    timeout: Duration,
) -> Result<ExitStatus> {
    let started = Instant::now();
    // An update that ended badly before this command is history, not this command's failure.
    let since = chrono::Utc::now() - chrono::Duration::seconds(2);
    let mut pending: Vec<&(String, String, u64)> = wanted.iter().collect();
    loop {
        let services = stack.engine.stack_services(&stack.project.name).await?;
        let tasks = stack.engine.stack_tasks(&stack.project.name).await?;
        let mut stuck = Vec::new();
        pending.retain(|entry| {
            let (service, name, replicas) = entry;
            let Some(info) = services.iter().find(|s| &s.name == name) else {
                return true;
            };
            let up = running(&tasks, &info.id) as u64;
            match info.update_state.as_deref() {
                Some("updating") | Some("rollback_started") => {
                    board.update(service, &format!("updating: {up}/{replicas} tasks running"));
                    return true;
                }
                Some(state @ ("paused" | "rollback_paused" | "rollback_completed"))
                    if began_since(info, since) =>
                {
                    let why = info.update_message.clone().unwrap_or_default();
                    board.done(service, false, &format!("update {state}: {why}"));
                    stuck.push(format!("{service}: update {state}: {why}"));
                    return false;
                }
                _ => {}
            }
            if up == *replicas {
                let what = match replicas {
                    0 => "stopped".to_string(),
                    n => format!("{n}/{n} tasks running"),
                };
                board.done(
                    service,
                    true,
                    &format!("{what} ({:.1}s)", started.elapsed().as_secs_f64()),
                );
                return false;
            }
            board.update(service, &format!("{up}/{replicas} tasks running"));
            true
        });
        if !stuck.is_empty() {
            let error = stuck
                .iter()
                .fold(CtlError::failure("a service update did not complete"), |e, s| {
                    e.cause(s)
                });
            return Err(error.hint("`docker service ps --no-trunc NAME` shows why; `docker service update --rollback NAME` goes back"));
        }
        if pending.is_empty() {
            return Ok(ExitStatus::Success);
        }
        if started.elapsed() > timeout {
            return Err(short_services(&services, &tasks, &pending, board, timeout));
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(super) fn began_since(info: &ServiceInfo, since: chrono::DateTime<chrono::Utc>) -> bool {
    info.update_started
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t >= since)
}

fn short_services(
    services: &[ServiceInfo],
    tasks: &[TaskInfo],
    pending: &[&(String, String, u64)],
    board: &ServiceBoard,
    timeout: Duration,
) -> CtlError {
    let mut error = CtlError::failure(format!(
        "{} did not reach the desired task count within {}",
        pending
            .iter()
            .map(|p| p.0.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        humantime::format_duration(timeout)
    ));
    for (service, name, _) in pending {
        let id = services
            .iter()
            .find(|s| &s.name == name)
            .map(|s| s.id.as_str())
            .unwrap_or("");
        let last = tasks
            .iter()
            .filter(|t| t.service_id == id)
            .max_by(|a, b| a.timestamp.cmp(&b.timestamp));
        let why = last
            .map(|t| {
                format!(
                    "{}: {}",
                    t.state,
                    t.error.clone().unwrap_or_else(|| t.message.clone())
                )
            })
            .unwrap_or_else(|| {
                "no task was scheduled (placement constraints, or no node has the image)".into()
            });
        board.done(service, false, &why);
        error = error.cause(format!("{service}: {why}"));
    }
    error.hint("`docker service ps --no-trunc NAME` on a manager shows every task's history")
}
