//! `scale SERVICE=N`: the number of tasks of a service on the swarm target.

use crate::cli::ScaleArgs;
use crate::commands::context::Context;
use crate::error::{CtlError, ExitStatus, Result};

pub async fn run(ctx: &mut Context, args: ScaleArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let mut wanted = Vec::new();
    for target in &args.targets {
        let (service, count) = target
            .split_once('=')
            .ok_or_else(|| CtlError::usage(format!("{target}: expected SERVICE=N, e.g. api=3")))?;
        let count: u64 = count
            .trim()
            .parse()
            .map_err(|_| CtlError::usage(format!("{target}: {count} is not a number of tasks")))?;
        let service = project.select(&[service.trim().to_string()])?.remove(0);
        wanted.push((service, count));
    }
    let engine = ctx.engine().await?;
    let _lock = ctx.lock(&engine, &project, "scale", args.lock.wait).await?;
    ctx.stack(&engine, &project)?
        .scale(&wanted, args.force, args.timeout)
        .await
}
