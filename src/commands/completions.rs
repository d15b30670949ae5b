//! `completions SHELL` and `man`: generated from the clap tree, so they never drift.

use crate::cli::{Cli, CompletionsArgs};
use crate::commands::context::Context;
use crate::error::{Context as _, ExitStatus, Result};
use clap::CommandFactory;

pub fn completions(ctx: &Context, args: CompletionsArgs) -> Result<ExitStatus> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics on a write error such as a closed pipe.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "pricescan-ctl", &mut script);
    ctx.printer
        .raw(|out| out.write_all(&script))
        .context(|| "cannot write the completions".to_string())?;
    Ok(ExitStatus::Success)
}

pub fn man(ctx: &Context) -> Result<ExitStatus> {
    let man = clap_mangen::Man::new(Cli::command());
    ctx.printer
        .raw(|out| man.render(out))
        .context(|| "cannot write the man page".to_string())?;
    Ok(ExitStatus::Success)
}
