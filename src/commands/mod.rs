//! One module per command. Each orchestrates the stack model, the engine and the printer;
//! none prints directly.

mod backup;
mod cleanup;
mod completions;
mod config;
mod deploy;
mod doctor;
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

use crate::cli::{Cli, Command, GlobalArgs};
use crate::engine::Engine;
use crate::error::{ExitStatus, Result};
use crate::output::Printer;
use crate::stack::{Project, ProjectOptions};

/// What every command gets: the global flags and the printer.
pub struct Context {
    pub global: GlobalArgs,
    pub printer: Printer,
}

/// The printer the global flags ask for. Clones share what they learn of the secrets, so
/// the one `main` keeps for the clean-up masks them too.
pub fn printer_for(global: &GlobalArgs) -> Printer {
    Printer::new(global.format(), global.quiet, global.verbose, global.color())
}

impl Context {
    pub fn new(global: GlobalArgs, printer: Printer) -> Self {
        Self { global, printer }
    }

    pub fn project_options(&self) -> ProjectOptions {
        ProjectOptions {
            file: self.global.file.clone(),
            env_file: self.global.env_file.clone(),
            project_dir: self.global.project_dir.clone(),
            project_name: self.global.project_name.clone(),
        }
    }

    /// Loads the project, shows its warnings, and teaches the printer its secrets.
    pub fn project(&mut self) -> Result<Project> {
        let project = Project::load(&self.project_options())?;
        for warning in &project.warnings {
            self.printer.warn(warning);
        }
        self.printer.with_secrets(project.env.secret_values());
        // The panic hook's own test: a real panic in the real binary, with secrets known.
        if let Some(message) = std::env::var_os("PRICESCAN_CTL_TEST_PANIC") {
            panic!("{}", message.to_string_lossy());
        }
        Ok(project)
    }

    pub async fn engine(&self) -> Result<Engine> {
        let mut engine = Engine::connect(self.global.docker_host.as_deref()).await?;
        engine.set_owner(crate::ops::lock::Owner::me("one-off").labels());
        self.printer.debug(&format!(
            "engine {} (API {}) at {}",
            engine.info.version, engine.info.api_version, engine.info.host
        ));
        Ok(engine)
    }
}

impl Context {
    /// The stack on its target (`--target`, else STACK_TARGET).
    pub fn stack<'a>(
        &'a self,
        engine: &'a Engine,
        project: &'a Project,
    ) -> Result<crate::ops::target::Stack<'a>> {
        Ok(crate::ops::target::Stack {
            engine,
            project,
            printer: &self.printer,
            kind: crate::ops::target::TargetKind::resolve(self.global.target, project)?,
        })
    }

    /// Takes the stack's operation lock (exit 75 naming the holder), then cleans up what a
    /// crashed command left behind, which only a lock holder may do.
    pub async fn lock(
        &self,
        engine: &Engine,
        project: &Project,
        operation: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<crate::ops::lock::OperationLock> {
        let scope = self.stack(engine, project)?.kind.lock_scope();
        let lock =
            crate::ops::lock::acquire(engine, scope, &project.name, operation, wait, &self.printer).await?;
        self.stack(engine, project)?.sweep().await?;
        Ok(lock)
    }
}

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

impl Context {
    fn refuse_on_swarm(&self, what: &str) -> Result<()> {
        let Ok(project) = Project::load(&self.project_options()) else {
            return Ok(());
        };
        match crate::ops::target::TargetKind::resolve(self.global.target, &project)? {
            crate::ops::target::TargetKind::Swarm => Err(crate::error::CtlError::usage(format!(
                "`{what}` does not run on the swarm target yet"
            ))
            .hint("on swarm: every command but restart; use the docker CLI on a manager for the rest (`docker service logs`)")),
            crate::ops::target::TargetKind::Compose => Ok(()),
        }
    }
}

impl Context {
    /// On the compose target, `what` writes files that the containers mount (the stack
    /// files, Nginx's upstream): against a remote engine they would land on this machine and
    /// never reach the containers, so it stops with exit 2 before writing anything.
    pub fn require_files_reach(&self, engine: &Engine, what: &str) -> Result<()> {
        let kind = match self.global.target {
            Some(kind) => kind,
            None => Project::load(&self.project_options())
                .ok()
                .and_then(|p| crate::ops::target::TargetKind::resolve(None, &p).ok())
                .unwrap_or(crate::ops::target::TargetKind::Compose),
        };
        if kind == crate::ops::target::TargetKind::Swarm || !engine.is_remote() {
            return Ok(());
        }
        Err(crate::error::CtlError::usage(format!(
            "`{what}` on the compose target writes files that the containers mount, so it must run on the server itself; the engine at {} is on another machine",
            engine.info.host
        ))
        .hint("run it there (`ssh SERVER pricescan-ctl ...`); read-only commands such as status and logs work from here"))
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
        Command::Scale(args) => scale::run(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Monitor(args) => monitor::run(ctx, args).await,
        Command::Backup(args) => backup::run(ctx, args).await,
        Command::Restore(args) => restore::run(ctx, args).await,
        Command::Deploy(args) => deploy::run(ctx, args).await,
        Command::Lock(args) => lock::run(ctx, args).await,
        Command::Notify(args) => notify::run(ctx, args).await,
        Command::Doctor => doctor::run(ctx).await,
        Command::Cleanup(args) => cleanup::run(ctx, args).await,
    }
}
