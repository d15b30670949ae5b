use clap::Parser;
use pricescan_ctl::cli::Cli;
use pricescan_ctl::error::{CtlError, ExitStatus};
use pricescan_ctl::output::Printer;
use pricescan_ctl::sys::{signals, undo};
use std::process::ExitCode;

fn main() -> ExitCode {
    pricescan_ctl::output::install_panic_hook();
    // clap exits 2 itself on a bad flag or an unknown command (DESIGN §4).
    let cli = Cli::parse();
    // One thread: the work is waiting on the engine, and handing log lines between threads
    // cost more than it saved (a futex and an eventfd write per line).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            Printer::silent().error(&CtlError::failure("cannot start the async runtime").cause(e));
            return ExitCode::from(ExitStatus::Failure.code() as u8);
        }
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(run(cli))));
    match outcome {
        Ok(status) => ExitCode::from(status.code() as u8),
        Err(_) => after_panic(runtime),
    }
}

/// The hook has said what went wrong; what the command had begun is still undone.
fn after_panic(runtime: tokio::runtime::Runtime) -> ExitCode {
    drop(runtime);
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
        rt.block_on(undo::run_all(&Printer::silent()));
    }
    ExitCode::from(ExitStatus::Internal.code() as u8)
}

/// Runs the command; a signal drops it where it stands. Either way, whatever it left to
/// undo (cleanup registry) is undone before the exit, still under the command's lock.
async fn run(cli: Cli) -> ExitStatus {
    if let Err(e) = signals::install() {
        Printer::silent().error(&CtlError::failure("cannot install signal handlers").cause(e));
        return ExitStatus::Failure;
    }
    let printer = pricescan_ctl::commands::printer_for(&cli.global);
    if cli.command.handles_signals() {
        let (printer, result) = pricescan_ctl::commands::run(cli, printer).await;
        return finish(&printer, result).await;
    }
    let outcome = tokio::select! {
        // The command first: a result that is ready is not thrown away for a late signal.
        biased;
        done = pricescan_ctl::commands::run(cli, printer.clone()) => Some(done),
        signal = signals::received() => {
            printer.warn(&format!("{} received; cleaning up", signal.name()));
            None
        }
    };
    let Some((printer, result)) = outcome else {
        let cleaned = undo::run_all(&printer).await;
        let signal = signals::first().unwrap_or(signals::Signal::Interrupt);
        let what = match cleaned {
            true => "stopped; what it had begun was undone",
            false => "stopped; some of its work could not be undone (see above)",
        };
        printer.error(&signals::interrupted(what));
        return signal.exit_status();
    };
    finish(&printer, result).await
}

/// Undoes what the command left registered, then reports its result.
async fn finish(printer: &Printer, result: Result<ExitStatus, CtlError>) -> ExitStatus {
    undo::run_all(printer).await;
    match result {
        Ok(status) => status,
        Err(e) => {
            printer.error(&e);
            e.status
        }
    }
}
