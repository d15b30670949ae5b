use clap::Parser;
use pricescan_ctl::cli::Cli;
use pricescan_ctl::error::ExitStatus;
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap exits 2 itself on a bad flag or an unknown command (DESIGN §4).
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime\n  cause: {e}");
            return ExitCode::from(ExitStatus::Failure.code() as u8);
        }
    };
    let (printer, result) = runtime.block_on(pricescan_ctl::commands::run(cli));
    let status = match result {
        Ok(status) => status,
        Err(e) => {
            printer.error(&e);
            e.status
        }
    };
    ExitCode::from(status.code() as u8)
}
