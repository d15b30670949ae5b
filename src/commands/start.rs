//! `start`: networks and volumes, then every selected service (and what it depends on) in
//! dependency order, independent services concurrently, each waited for as needed.

use super::Context;
use crate::cli::StartArgs;
use crate::error::{ExitStatus, Result};
use crate::ops::converge::{Converger, Failure, Mode};
use crate::ops::wait::Goal;
use crate::ops::{self, release, resources};
use crate::stack::Project;
use crate::stack::compose::Condition;
use futures_util::future::join_all;
use std::collections::BTreeMap;

pub async fn run(ctx: &mut Context, args: StartArgs) -> Result<ExitStatus> {
    let mut project = ctx.project()?;
    ops::require_setup(&project)?;
    let selected = project.select(&args.services.services)?;
    let waves = project.start_waves(&selected)?;
    let engine = ctx.engine().await?;
    let _lock = ctx.lock(&engine, &project, "start", args.lock.wait).await?;
    for created in resources::ensure(&engine, &project, &ctx.printer).await? {
        ctx.printer.info(&created);
    }
    let containers = engine.project_containers(&project.name).await?;
    // Keep the release that serves, whichever checkout deployed it (the engine records it).
    release::adopt_serving(&mut project, &containers);
    let goals = goals(&project, &waves.concat(), args.no_wait);
    let converger = Converger {
        engine: &engine,
        project: &project,
        board: &ctx.printer.service_board(&waves.concat()),
        timeout: args.timeout,
        drain: ops::api_drain(&project),
        containers,
    };
    let failures = run_waves(&converger, &waves, &goals, Mode::Start).await?;
    ops::converge::report(&ctx.printer, &failures, waves.concat().len())
}

/// Runs each wave concurrently; a service whose dependency failed is not started.
pub async fn run_waves(
    converger: &Converger<'_>,
    waves: &[Vec<String>],
    goals: &BTreeMap<String, Option<Goal>>,
    mode: Mode,
) -> Result<Vec<Failure>> {
    let mut failures: Vec<Failure> = Vec::new();
    for wave in waves {
        let (blocked, runnable): (Vec<&String>, Vec<&String>) = wave.iter().partition(|s| {
            let deps = &converger.project.service(s).depends_on;
            deps.keys().any(|d| failures.iter().any(|f| &f.service == d))
        });
        for service in blocked {
            let reason = "not started: a dependency failed".to_string();
            converger.board.done(service, false, &reason);
            failures.push(Failure {
                service: service.clone(),
                reason,
                health: None,
                logs: Vec::new(),
            });
        }
        let results = join_all(runnable.iter().map(|s| converger.converge(s, mode, goals[*s]))).await;
        for result in results {
            if let Err(failure) = result? {
                failures.push(failure);
            }
        }
    }
    Ok(failures)
}

/// What to wait for per service: what its dependents' conditions require, and health for
/// every service unless --no-wait.
pub fn goals(project: &Project, services: &[String], no_wait: bool) -> BTreeMap<String, Option<Goal>> {
    let mut goals: BTreeMap<String, Option<Goal>> = services
        .iter()
        .map(|s| (s.clone(), (!no_wait).then_some(Goal::Ready)))
        .collect();
    for service in services {
        for (dep, d) in &project.service(service).depends_on {
            let need = match d.condition {
                Condition::ServiceHealthy => Some(Goal::Ready),
                Condition::ServiceCompletedSuccessfully => Some(Goal::Completed),
                Condition::ServiceStarted => None,
            };
            if let (Some(need), Some(slot)) = (need, goals.get_mut(dep)) {
                *slot = Some(need);
            }
        }
    }
    goals
}
