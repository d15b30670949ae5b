//! One module per command. Each orchestrates the stack model, the engine and the printer;
//! none prints directly.

mod backup;
mod cleanup;
mod completions;
mod config;
mod context;
mod deploy;
mod doctor;
mod guard;
mod incidents;
mod loadtest;
mod lock;
mod logs;
mod monitor;
mod notify;
mod restart;
mod restore;
mod scale;
mod setup;
mod start;
mod status;
mod stop;

use crate::cli::{Cli, Command};
use crate::error::{ExitStatus, Result};
use crate::output::Printer;
use context::Context;

pub use context::printer_for;

pub async fn run(cli: Cli, printer: Printer) -> (Printer, Result<ExitStatus>) {
    let mut ctx = Context::new(cli.global, printer);
    let result = dispatch(&mut ctx, cli.command).await;
    (ctx.printer, result)
}

/// Commands that the swarm target does not run yet: on swarm they stop with exit 2 before
/// touching anything, instead of looking for containers that are not there.
fn compose_only(command: &Command) -> Option<&'static str> {
    match command {
        Command::Restart(_) => Some("restart"),
        _ => None,
    }
}

async fn dispatch(ctx: &mut Context, command: Command) -> Result<ExitStatus> {
    if let Some(what) = compose_only(&command) {
        ctx.refuse_on_swarm(what)?;
    }
    match command {
        Command::Setup(args) => setup::run(ctx, args).await,
        Command::Config(args) => config::run(ctx, args),
        Command::Completions(args) => completions::completions(ctx, args),
        Command::Man => completions::man(ctx),
        Command::Start(args) => start::run(ctx, args).await,
        Command::Stop(args) => stop::run(ctx, args).await,
        Command::Restart(args) => restart::run(ctx, args).await,
        Command::Status(args) => status::run(ctx, args).await,
        Command::Loadtest(args) => loadtest::run(ctx, args).await,
        Command::Scale(args) => scale::run(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Monitor(args) => monitor::run(ctx, args).await,
        Command::Backup(args) => backup::run(ctx, args).await,
        Command::Restore(args) => restore::run(ctx, args).await,
        Command::Deploy(args) => deploy::run(ctx, args).await,
        Command::Lock(args) => lock::run(ctx, args).await,
        Command::Notify(args) => notify::run(ctx, args).await,
        Command::Guard(args) => guard::run(ctx, args).await,
        Command::Incidents(args) => incidents::run(ctx, args),
        Command::Doctor => doctor::run(ctx).await,
        Command::Cleanup(args) => cleanup::run(ctx, args).await,
    }
}
