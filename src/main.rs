use clap::Parser;
use pricescan_ctl::cli::Cli;
use pricescan_ctl::error::ExitStatus;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits 2 itself on a bad flag or an unknown command (DESIGN §4).
    let cli = Cli::parse();
    // One thread: the work is waiting on the engine, and handing lines between threads
    // cost more than it saved (futex and eventfd calls per log line).
    // One thread: the work is waiting on the engine, and handing log lines between threads
    // cost more than it saved (a futex and an eventfd write per line).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime\n  cause: {e}");
            return ExitCode::from(ExitStatus::Failure.code() as u8);
        }
    };
    // deploy handles Ctrl-C itself all the way (it must put the old release back first).
    let own_interrupts = matches!(cli.command, pricescan_ctl::cli::Command::Deploy(_));
    let outcome = runtime.block_on(async {
        if own_interrupts {
            return Some(pricescan_ctl::commands::run(cli).await);
        }
        tokio::select! {
            // The command first: one that handles Ctrl-C itself (logs ends with exit 0)
            // gets to finish on the same signal.
            biased;
            done = pricescan_ctl::commands::run(cli) => Some(done),
            // Commands that must undo work on Ctrl-C (deploy, backup) handle it themselves
            // first; for the rest, stopping between engine calls leaves nothing half-done.
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let status = match outcome {
        Some((_, Ok(status))) => status,
        Some((printer, Err(e))) => {
            printer.error(&e);
            e.status
        }
        None => {
            eprintln!("error: interrupted");
            ExitStatus::Interrupted
        }
    };
    ExitCode::from(status.code() as u8)
}
