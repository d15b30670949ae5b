//! `stop`: graceful stop of the selected services, dependents first. Containers and
//! volumes stay, so `start` brings the same data back.

use super::Context;
use crate::cli::StopArgs;
use crate::error::{ExitStatus, Result};
use futures_util::future::join_all;
use std::time::Instant;

pub async fn run(ctx: &mut Context, args: StopArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.services.services)?;
    let mut waves = project.start_waves(&selected)?;
    waves.reverse();
    let engine = ctx.engine().await?;
    let _lock = ctx.lock(&engine, &project, "stop", args.lock.wait).await?;
    let containers = engine.project_containers(&project.name).await?;
    let board = ctx.printer.service_board(&selected);
    for wave in waves {
        let wave: Vec<&String> = wave.iter().filter(|s| selected.contains(s)).collect();
        let stops = wave.iter().map(|service| {
            let running: Vec<_> = containers
                .iter()
                .filter(|c| &c.service == *service && c.is_running())
                .collect();
            let grace = args.timeout.or(project
                .service(service)
                .stop_grace_period
                .as_ref()
                .map(|d| d.value));
            let (engine, board) = (&engine, &board);
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
