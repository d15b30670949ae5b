//! `start`: every selected service (and what it depends on) on the stack's target, waited
//! for until healthy.

use crate::cli::StartArgs;
use crate::commands::context::Context;
use crate::error::{ExitStatus, Result};
use crate::stack::templates;

pub async fn run(ctx: &mut Context, args: StartArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    templates::require_setup(&project)?;
    let selected = project.select(&args.services.services)?;
    let waves = project.start_waves(&selected)?;
    let engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, "start")?;
    let _lock = ctx.lock(&engine, &project, "start", args.lock.wait).await?;
    ctx.stack(&engine, &project)?
        .start(&waves.concat(), args.no_wait, args.timeout)
        .await
}
