//! `lock status` and `lock release --force`: who holds the stack's operation lock, and a way
//! out when its holder cannot be checked from here (another host, a lost CI runner).

use crate::cli::{LockArgs, LockCommand};
use crate::commands::context::Context;
use crate::error::{CtlError, ExitStatus, Result};
use crate::targets::lock::{self, Owner};

pub async fn run(ctx: &mut Context, args: LockArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    let scope = ctx.stack(&engine, &project)?.kind.lock_scope();
    match args.command {
        LockCommand::Status => {
            let held = lock::holder(&engine, scope, &project.name).await?;
            let owner = held.as_ref().map(|(_, o)| o.clone());
            let dead = owner.as_ref().and_then(|o| o.as_ref().map(Owner::is_dead_here));
            if ctx.printer.is_json() {
                ctx.printer.json(&serde_json::json!({
                    "held": held.is_some(),
                    "holder": owner.flatten(),
                    "holder_gone": dead,
                }));
                return Ok(ExitStatus::Success);
            }
            let line = match (&held, owner.flatten(), dead) {
                (None, _, _) => "free".to_string(),
                (Some(_), Some(o), Some(true)) => format!(
                    "held by {} — that process is gone; the next command takes it over",
                    o.describe()
                ),
                (Some(_), Some(o), _) => format!("held by {}", o.describe()),
                (Some((h, _)), None, _) => format!("held by an unknown holder (lock object {})", h.id),
            };
            ctx.printer
                .result(&format!("operation lock of {}: {line}", project.name));
            Ok(ExitStatus::Success)
        }
        LockCommand::Release { force: false } => Err(CtlError::usage(
            "lock release frees a lock that another operation may still hold",
        )
        .hint("check `pricescan-ctl lock status` first, then pass --force")),
        LockCommand::Release { force: true } => {
            match lock::force_release(&engine, scope, &project.name).await? {
                None => ctx.printer.info("the operation lock was free"),
                Some(owner) => ctx.printer.info(&format!(
                    "released the operation lock held by {}",
                    owner.map_or("an unknown holder".into(), |o| o.describe())
                )),
            }
            Ok(ExitStatus::Success)
        }
    }
}
