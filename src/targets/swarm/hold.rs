//! What a restore needs on swarm beyond the data node: no API task may write while the data
//! is replaced. Nginx's configuration is an immutable swarm config there, so instead of
//! read-only mode the API service goes to zero tasks for the restore and back afterwards.
//! The count to go back to is written down first, so that if this process is killed the next
//! command that takes the lock brings the API back.

use super::tasks::{running, wait_running};
use crate::deploy::release::API_SERVICE;
use crate::error::{Context as _, Result};
use crate::stack::swarm;
use crate::targets::context::Stack;
use std::path::PathBuf;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(300);

fn held_path(stack: &Stack<'_>) -> PathBuf {
    stack.project.dir.join(".pricescan").join("swarm-api-held")
}

/// Stops every API task; returns how many ran.
pub async fn hold_api(stack: &Stack<'_>) -> Result<u64> {
    let name = swarm::service_name(&stack.project.name, API_SERVICE);
    let services = stack.engine.stack_services(&stack.project.name).await?;
    let tasks = stack.engine.stack_tasks(&stack.project.name).await?;
    let Some(api) = services.iter().find(|s| s.name == name) else {
        return Ok(0);
    };
    let replicas = api.replicas.max(running(&tasks, &api.id) as u64);
    if replicas == 0 {
        return Ok(0);
    }
    crate::sys::fsutil::write_atomic(&held_path(stack), replicas.to_string().as_bytes(), 0o600)?;
    stack.printer.info(&format!(
        "stopping the API's {replicas} tasks: no write may land while the data is replaced"
    ));
    set_api(stack, 0).await?;
    wait_stopped(stack, &api.id).await?;
    Ok(replicas)
}

/// Until every API container has stopped: a task told to shut down still runs (and may
/// still write) while it drains.
async fn wait_stopped(stack: &Stack<'_>, service_id: &str) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let tasks = stack.engine.stack_tasks(&stack.project.name).await?;
        let live = tasks
            .iter()
            .filter(|t| t.service_id == service_id)
            .filter(|t| !TERMINAL.contains(&t.state.as_str()))
            .count();
        if live == 0 {
            return Ok(());
        }
        if started.elapsed() > SETTLE {
            return Err(crate::error::CtlError::failure(format!(
                "{live} API tasks did not stop within {}",
                humantime::format_duration(SETTLE)
            ))
            .hint("`docker service ps NAME` on a manager shows them; nothing was restored"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Task states after which its container no longer runs.
const TERMINAL: [&str; 7] = [
    "shutdown", "complete", "failed", "rejected", "orphaned", "remove", "new",
];

/// Brings the API back to `replicas` tasks and forgets the note.
pub async fn release_api(stack: &Stack<'_>, replicas: u64) -> Result<()> {
    if replicas > 0 {
        set_api(stack, replicas).await?;
        stack
            .printer
            .info(&format!("the API runs again ({replicas} tasks)"));
    }
    match std::fs::remove_file(held_path(stack)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).context(|| "cannot remove .pricescan/swarm-api-held".into())
        }
        _ => Ok(()),
    }
}

/// After a crash: the API back to the count a killed restore wrote down.
pub async fn release_if_held(stack: &Stack<'_>) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(held_path(stack)) else {
        return Ok(());
    };
    let replicas = text.trim().parse().unwrap_or(1);
    stack.printer.warn(&format!(
        "a restore stopped the API and was killed; starting its {replicas} tasks again"
    ));
    release_api(stack, replicas).await
}

async fn set_api(stack: &Stack<'_>, replicas: u64) -> Result<()> {
    let plan = swarm::plan(stack.project, API_SERVICE, None)?;
    stack.engine.scale_service(&plan, replicas).await?;
    let board = stack.printer.service_board(&[API_SERVICE.to_string()]);
    let wanted = [(API_SERVICE.to_string(), plan.name.clone(), replicas)];
    wait_running(stack, &board, &wanted, SETTLE).await.map(|_| ())
}
