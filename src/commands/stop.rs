//! `stop`: graceful stop of the selected services, dependents first. Volumes (and on swarm
//! the services, secrets and configs) stay, so `start` brings the same data back.

use crate::cli::StopArgs;
use crate::commands::context::Context;
use crate::error::{ExitStatus, Result};

pub async fn run(ctx: &mut Context, args: StopArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.services.services)?;
    let engine = ctx.engine().await?;
    let _lock = ctx.lock(&engine, &project, "stop", args.lock.wait).await?;
    ctx.stack(&engine, &project)?.stop(&selected, args.timeout).await
}
