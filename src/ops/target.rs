//! Where the stack runs (DESIGN §11): containers on one engine (`compose`, the default) or
//! services of a swarm (`swarm`). Commands speak to a `Stack`; each operation picks its
//! target's implementation here, once, so the two stand side by side: `ops::host` and
//! `ops::swarm`.

use super::status::Resources;
use super::{host, swarm};
use crate::engine::{Engine, LogSource};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::Printer;
use crate::stack::Project;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    Compose,
    Swarm,
}

impl TargetKind {
    /// The flag, else `STACK_TARGET` of `.env.prod` (or the process environment), else compose.
    pub fn resolve(flag: Option<TargetKind>, project: &Project) -> Result<TargetKind> {
        if let Some(kind) = flag {
            return Ok(kind);
        }
        match project.env.get("STACK_TARGET").as_deref().map(str::trim) {
            None | Some("") | Some("compose") => Ok(TargetKind::Compose),
            Some("swarm") => Ok(TargetKind::Swarm),
            Some(other) => Err(CtlError::usage(format!(
                "STACK_TARGET={other} at {}: expected compose or swarm",
                project.env.location_of("STACK_TARGET")
            ))),
        }
    }
}

/// The stack on its target, with what every operation needs.
pub struct Stack<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub printer: &'a Printer,
    pub kind: TargetKind,
}

/// What `status` found, in its target's terms.
pub enum Report {
    Host(super::status::StackStatus),
    Swarm(swarm::status::SwarmStatus),
}

/// What `setup` asks of the target beyond the files.
pub struct Prepare<'a> {
    pub init: bool,
    pub data_node: Option<&'a str>,
}

impl Stack<'_> {
    /// Setup's engine side: networks and volumes, or the swarm's networks, secrets, configs
    /// and data-node label. Returns what changed.
    pub async fn prepare(&self, prepare: &Prepare<'_>) -> Result<Vec<String>> {
        match self.kind {
            TargetKind::Compose => {
                if prepare.init || prepare.data_node.is_some() {
                    return Err(CtlError::usage("--init and --data-node are for the swarm target")
                        .hint("add --target swarm (or set STACK_TARGET=swarm in .env.prod)"));
                }
                super::resources::ensure(self.engine, self.project, self.printer).await
            }
            TargetKind::Swarm => swarm::prepare(self, prepare).await,
        }
    }

    pub async fn start(&self, selected: &[String], no_wait: bool, timeout: Duration) -> Result<ExitStatus> {
        match self.kind {
            TargetKind::Compose => {
                host::start(
                    self.engine,
                    self.project,
                    self.printer,
                    selected,
                    no_wait,
                    timeout,
                )
                .await
            }
            TargetKind::Swarm => swarm::start(self, selected, no_wait, timeout).await,
        }
    }

    pub async fn stop(&self, selected: &[String], timeout: Option<Duration>) -> Result<ExitStatus> {
        match self.kind {
            TargetKind::Compose => {
                host::stop(self.engine, self.project, self.printer, selected, timeout).await
            }
            TargetKind::Swarm => swarm::stop(self, selected, timeout).await,
        }
    }

    pub async fn status(&self, selected: &[String], resources: Resources) -> Result<Report> {
        Ok(match self.kind {
            TargetKind::Compose => {
                Report::Host(super::status::collect(self.engine, self.project, selected, resources).await?)
            }
            TargetKind::Swarm => Report::Swarm(swarm::status::collect(self, selected).await?),
        })
    }

    /// `scale SERVICE=N`: swarm only; one host runs one API container, rolled by deploys.
    pub async fn scale(
        &self,
        wanted: &[(String, u64)],
        force: bool,
        timeout: Duration,
    ) -> Result<ExitStatus> {
        match self.kind {
            TargetKind::Compose => Err(CtlError::usage("scale needs the swarm target")
                .hint("on one host the API runs one container that deploy and restart roll; see `setup --target swarm`")),
            TargetKind::Swarm => swarm::scale(self, wanted, force, timeout).await,
        }
    }
}

/// One log to read: where from, the prefix its lines get (the service; on swarm the
/// service and task slot, so every task's lines are told apart), and its name for notes.
pub struct LogTarget {
    pub source: LogSource,
    pub label: String,
    pub name: String,
}

/// The log sources of `service`: with `all_running`, every running container or task (a
/// follower wants each); without, the one a reader means (the current container, or every
/// task of the service). When nothing runs, the latest one, whose last lines are wanted.
pub async fn log_sources(
    engine: &Engine,
    project: &str,
    kind: TargetKind,
    service: &str,
    all_running: bool,
) -> Result<Vec<LogTarget>> {
    match kind {
        TargetKind::Compose => {
            let containers = engine.project_containers(project).await?;
            let current = super::converge::current_container(&containers, service);
            let running = containers
                .iter()
                .filter(|c| c.service == service && c.is_running());
            let chosen: Vec<_> = match all_running {
                true => running.collect(),
                false => current.into_iter().collect(),
            };
            Ok(chosen
                .into_iter()
                .map(|c| LogTarget {
                    source: LogSource::Container(c.id.clone()),
                    label: service.to_string(),
                    name: c.name.clone(),
                })
                .collect())
        }
        TargetKind::Swarm => swarm::log_sources(engine, project, service).await,
    }
}
