//! `completions SHELL` and `man`: generated from the clap tree, so they never drift.

use crate::cli::{Cli, CompletionsArgs};
use crate::commands::context::Context;
use crate::error::{Context as _, ExitStatus, Result};
use clap::CommandFactory;

pub fn completions(_ctx: &Context, args: CompletionsArgs) -> Result<ExitStatus> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "pricescan-ctl", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}

pub fn man(_ctx: &Context) -> Result<ExitStatus> {
    let man = clap_mangen::Man::new(Cli::command());
    man.render(&mut std::io::stdout())
        .context(|| "cannot write the man page".to_string())?;
    Ok(ExitStatus::Success)
}
