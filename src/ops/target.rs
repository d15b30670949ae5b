//! Where the stack runs (DESIGN §11): containers on one engine (`compose`, the default) or
//! services of a swarm (`swarm`). Commands speak to a `Stack`; each operation picks its
//! target's implementation here, once, so the two stand side by side: `ops::host` and
//! `ops::swarm`.

use super::release::API_SERVICE;
use super::status::Resources;
use super::{host, swarm};
use crate::engine::{Engine, LockScope, LogSource};
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

    /// Where the operation lock lives: a swarm's lock must hold for clients of every manager.
    pub fn lock_scope(self) -> LockScope {
        match self {
            TargetKind::Compose => LockScope::Engine,
            TargetKind::Swarm => LockScope::Swarm,
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

    /// What `monitor` shows each interval: one row per container, or per task with its node.
    pub async fn monitor_rows(&self, selected: &[String]) -> Result<super::status::StackStatus> {
        match self.kind {
            TargetKind::Compose => {
                super::status::collect(self.engine, self.project, selected, Resources::Skip).await
            }
            TargetKind::Swarm => Ok(swarm::status::task_rows(
                swarm::status::collect(self, selected).await?,
            )),
        }
    }

    /// The engines that run the stack's containers, for their stats and events.
    pub async fn engines(&self) -> Result<Engines> {
        let nodes = match self.kind {
            TargetKind::Compose => None,
            TargetKind::Swarm => Some(swarm::nodes::Nodes::load(self.engine, self.project).await?),
        };
        Ok(Engines {
            here: self.engine.clone(),
            nodes,
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

/// Deploys (DESIGN §6 and §11): what differs between one host and a swarm.
impl Stack<'_> {
    /// Fails with exit 2 on swarm for `what`, which needs the compose target.
    pub fn host_only(&self, what: &str, hint: &str) -> Result<()> {
        match self.kind {
            TargetKind::Compose => Ok(()),
            TargetKind::Swarm => {
                Err(CtlError::usage(format!("{what} is not available on the swarm target")).hint(hint))
            }
        }
    }

    /// The image is where the new release will run: on this engine (pulled if need be), or
    /// on every node of the swarm (there is no registry to pull from).
    pub async fn check_image(&self, image: &str) -> Result<()> {
        match self.kind {
            TargetKind::Compose => {
                if self.engine.image_exists(image).await? {
                    return Ok(());
                }
                super::images::pull(self.printer, self.engine, image)
                    .await
                    .map_err(|e| e.hint("build or load the image locally, then pass --image with its name"))
            }
            TargetKind::Swarm => {
                swarm::nodes::require_image_everywhere(self.engine, self.project, image).await
            }
        }
    }

    /// True when the API already runs `image`.
    pub async fn runs_image(&self, image: &str) -> Result<bool> {
        match self.kind {
            TargetKind::Compose => {
                let containers = self.engine.project_containers(&self.project.name).await?;
                let wanted = self.engine.image_id(image).await?;
                Ok(super::converge::current_container(&containers, API_SERVICE)
                    .filter(|c| c.is_running())
                    .is_some_and(|c| Some(&c.image_id) == wanted.as_ref()))
            }
            TargetKind::Swarm => {
                let name = crate::stack::swarm::service_name(&self.project.name, API_SERVICE);
                let services = self.engine.stack_services(&self.project.name).await?;
                Ok(services
                    .iter()
                    .any(|s| s.name == name && s.replicas > 0 && s.image == image))
            }
        }
    }

    /// Moves the API to the new release; see `ops::deploy` and `ops::swarm::deploy`.
    pub async fn switch(&self, plan: &super::deploy::Plan<'_>) -> Result<super::deploy::Outcome> {
        match self.kind {
            TargetKind::Compose => super::deploy::switch(plan).await,
            TargetKind::Swarm => swarm::deploy::switch(plan).await,
        }
    }

    /// Cleans what a crashed command left behind; only a lock holder may.
    pub async fn sweep(&self) -> Result<()> {
        match self.kind {
            TargetKind::Compose => super::debris::sweep(self.engine, self.project, self.printer).await,
            TargetKind::Swarm => swarm::sweep(self).await,
        }
    }

    /// Before a restore: on swarm the API's tasks stop (Nginx cannot be made read-only
    /// there); returns the task count to bring back, or None where the restore itself
    /// handles the API (one host: read-only mode, then a pause for the swap).
    pub async fn hold_api(&self) -> Result<Option<u64>> {
        match self.kind {
            TargetKind::Compose => Ok(None),
            TargetKind::Swarm => swarm::hold::hold_api(self).await.map(Some),
        }
    }

    pub async fn release_api(&self, held: Option<u64>) -> Result<()> {
        match held {
            None => Ok(()),
            Some(replicas) => swarm::hold::release_api(self, replicas).await,
        }
    }

    /// The engine where MySQL and Redis run, for backups and restores: this one, or the
    /// data node's (DESIGN §11).
    pub async fn data_engine(&self) -> Result<Engine> {
        match self.kind {
            TargetKind::Compose => Ok(self.engine.clone()),
            TargetKind::Swarm => swarm::nodes::data_engine(self.engine, self.project).await,
        }
    }
}

/// The release that serves, as the engine records it: (release id, image).
pub async fn serving(engine: &Engine, project: &str, kind: TargetKind) -> Result<Option<(String, String)>> {
    match kind {
        TargetKind::Compose => Ok(super::release::serving(
            &engine.project_containers(project).await?,
        )),
        TargetKind::Swarm => swarm::serving(engine, project).await,
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

/// Where each container's engine is: this one on one host; on swarm, each node's engine,
/// reached as backups reach the data node (SWARM_NODE_ENGINES, else ssh).
pub struct Engines {
    here: Engine,
    nodes: Option<swarm::nodes::Nodes>,
}

impl Engines {
    /// One key per distinct engine: "" for this one, else the node ID.
    pub fn key(&self, node: Option<&str>) -> String {
        match (node, &self.nodes) {
            (Some(id), Some(nodes)) if !nodes.is_here(id) => id.to_string(),
            _ => String::new(),
        }
    }

    /// The engine of `node` (None: the one pricescan-ctl talks to). Unreachable is exit 69.
    pub async fn of(&self, node: Option<&str>) -> Result<Engine> {
        let (Some(id), Some(nodes)) = (node, &self.nodes) else {
            return Ok(self.here.clone());
        };
        let Some(info) = nodes.all.iter().find(|n| n.id == id) else {
            return Err(CtlError::failure(format!("node {id} left the swarm")));
        };
        nodes.connect(&self.here, info).await
    }
}
