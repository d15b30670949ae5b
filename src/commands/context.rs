//! What every command gets: the global flags, the printer, and the ways to the project,
//! the engine, the stack on its target and the operation lock.

use crate::cli::GlobalArgs;
use crate::engine::Engine;
use crate::error::Result;
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
        engine.set_owner(crate::targets::lock::Owner::me("one-off").labels());
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
    ) -> Result<crate::targets::Stack<'a>> {
        Ok(crate::targets::Stack {
            engine,
            project,
            printer: &self.printer,
            kind: crate::targets::TargetKind::resolve(self.global.target.map(Into::into), project)?,
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
    ) -> Result<crate::targets::lock::OperationLock> {
        let scope = self.stack(engine, project)?.kind.lock_scope();
        let lock =
            crate::targets::lock::acquire(engine, scope, &project.name, operation, wait, &self.printer)
                .await?;
        self.stack(engine, project)?.sweep().await?;
        Ok(lock)
    }
}

impl Context {
    pub(super) fn refuse_on_swarm(&self, what: &str) -> Result<()> {
        let Ok(project) = Project::load(&self.project_options()) else {
            return Ok(());
        };
        match crate::targets::TargetKind::resolve(self.global.target.map(Into::into), &project)? {
            crate::targets::TargetKind::Swarm => Err(crate::error::CtlError::usage(format!(
                "`{what}` does not run on the swarm target yet"
            ))
            .hint("on swarm: every command but restart; use the docker CLI on a manager for the rest (`docker service logs`)")),
            crate::targets::TargetKind::Compose => Ok(()),
        }
    }
}

impl Context {
    /// On the compose target, `what` writes files that the containers mount (the stack
    /// files, Nginx's upstream): against a remote engine they would land on this machine and
    /// never reach the containers, so it stops with exit 2 before writing anything.
    pub fn require_files_reach(&self, engine: &Engine, what: &str) -> Result<()> {
        let kind = match self.global.target {
            Some(kind) => kind.into(),
            None => Project::load(&self.project_options())
                .ok()
                .and_then(|p| crate::targets::TargetKind::resolve(None, &p).ok())
                .unwrap_or(crate::targets::TargetKind::Compose),
        };
        if kind == crate::targets::TargetKind::Swarm || !engine.is_remote() {
            return Ok(());
        }
        Err(crate::error::CtlError::usage(format!(
            "`{what}` on the compose target writes files that the containers mount, so it must run on the server itself; the engine at {} is on another machine",
            engine.info.host
        ))
        .hint("run it there (`ssh SERVER pricescan-ctl ...`); read-only commands such as status and logs work from here"))
    }
}
