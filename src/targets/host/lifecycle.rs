//! The compose target: the stack as containers on one engine, created and stopped in
//! dependency order (DESIGN §2).

use super::resources;
use crate::deploy::converge::{Converger, Failure, Mode};
use crate::deploy::release;
use crate::deploy::wait::Goal;
use crate::engine::Engine;
use crate::error::{ExitStatus, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::stack::compose::Condition;
use crate::stack::rollout;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Networks, volumes, then every wave of services, each waited for as needed.
pub async fn start(
    engine: &Engine,
    project: &Project,
    printer: &Printer,
    selected: &[String],
    no_wait: bool,
    timeout: Duration,
) -> Result<ExitStatus> {
    let mut project = project.clone();
    let waves = project.start_waves(selected)?;
    for created in resources::ensure(engine, &project, printer).await? {
        printer.info(&created);
    }
    let containers = engine.project_containers(&project.name).await?;
    // Keep the release that serves, whichever checkout deployed it (the engine records it).
    release::adopt_serving(&mut project, &containers);
    let goals = goals(&project, &waves.concat(), no_wait);
    let converger = Converger {
        engine,
        project: &project,
        board: &printer.service_board(&waves.concat()),
        timeout,
        drain: rollout::api_drain(&project),
        containers,
    };
    let failures = run_waves(&converger, &waves, &goals, Mode::Start).await?;
    crate::deploy::converge::report(printer, &failures, waves.concat().len())
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

/// Graceful stop of `selected`, dependents first; containers and volumes stay.
pub async fn stop(
    engine: &Engine,
    project: &Project,
    printer: &Printer,
    selected: &[String],
    timeout: Option<Duration>,
) -> Result<ExitStatus> {
    let mut waves = project.start_waves(selected)?;
    waves.reverse();
    let containers = engine.project_containers(&project.name).await?;
    let board = printer.service_board(selected);
    for wave in waves {
        let wave: Vec<&String> = wave.iter().filter(|s| selected.contains(s)).collect();
        let stops = wave.iter().map(|service| {
            let running: Vec<_> = containers
                .iter()
                .filter(|c| &c.service == *service && c.is_running())
                .collect();
            let grace = timeout.or(project
                .service(service)
                .stop_grace_period
                .as_ref()
                .map(|d| d.value));
            let board = &board;
            async move {
                if running.is_empty() {
                    board.done(service, true, "not running");
                    return Ok(());
                }
                board.update(service, "stopping");
                let start = Instant::now();
                for c in running {
                    engine.stop(&c.id, grace).await?;
                }
                board.done(
                    service,
                    true,
                    &format!("stopped ({:.1}s)", start.elapsed().as_secs_f64()),
                );
                Ok::<_, crate::error::CtlError>(())
            }
        });
        for result in join_all(stops).await {
            result?;
        }
    }
    Ok(ExitStatus::Success)
}
