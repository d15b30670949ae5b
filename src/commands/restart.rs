//! `restart`: applies configuration changes (unlike `docker compose restart`). The API is
//! replaced start-first behind Nginx with no failed request; stateful services stop first,
//! and their running dependents are told how long they were without them.

use crate::cli::RestartArgs;
use crate::commands::context::Context;
use crate::deploy::converge::{Converger, Failure, Mode};
use crate::deploy::release;
use crate::deploy::wait::Goal;
use crate::error::{ExitStatus, Result};
use crate::stack::graph;
use crate::stack::{rollout, templates};
use crate::targets::host::resources;
use std::time::Instant;

pub async fn run(ctx: &mut Context, args: RestartArgs) -> Result<ExitStatus> {
    let mut project = ctx.project()?;
    templates::require_setup(&project)?;
    let selected = project.select(&args.services.services)?;
    let waves = project.start_waves(&selected)?;
    let engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, "restart")?;
    let _lock = ctx.lock(&engine, &project, "restart", args.lock.wait).await?;
    resources::ensure(&engine, &project, &ctx.printer).await?;
    let containers = engine.project_containers(&project.name).await?;
    release::adopt_serving(&mut project, &containers);
    let board = ctx.printer.service_board(&selected);
    let converger = Converger {
        engine: &engine,
        project: &project,
        board: &board,
        timeout: args.timeout,
        drain: rollout::api_drain(&project),
        containers: containers.clone(),
    };
    let graph = project.dependency_graph();
    let mut failures: Vec<Failure> = Vec::new();
    let mut notes = Vec::new();
    // One service at a time, in dependency order: a restart is about keeping things up.
    for service in waves.concat().iter().filter(|s| selected.contains(s)) {
        let began = Instant::now();
        match converger
            .converge(service, Mode::Restart, Some(Goal::Ready))
            .await?
        {
            Ok(_) => {}
            Err(f) => {
                failures.push(f);
                continue;
            }
        }
        if !rollout::is_start_first(&project, service) {
            let running: Vec<String> = graph::dependents(&graph, service)
                .into_iter()
                .filter(|d| containers.iter().any(|c| &c.service == d && c.is_running()))
                .collect();
            if !running.is_empty() {
                let secs = began.elapsed().as_secs_f64();
                notes.push(format!(
                    "{} went without {service} for about {secs:.1}s",
                    running.join(", ")
                ));
            }
        }
    }
    drop(board);
    for note in notes {
        ctx.printer.info(&format!("note: {note}"));
    }
    crate::deploy::converge::report(&ctx.printer, &failures, selected.len())
}
