//! The seam (DESIGN §11): containers on one engine (`compose`, the default) or services of a
//! swarm (`swarm`). Commands speak to a `Stack`; each operation picks its target's
//! implementation here, once, so the two stand side by side: `host` and `swarm`.

use super::context::{Engines, LogTarget, Prepare, Stack, TargetKind};
use super::host::{lifecycle as host, resources};
use super::status::{Resources, StackStatus};
use super::swarm::{self, cluster};
use crate::deploy::release::API_SERVICE;
use crate::engine::{Engine, LogSource};
use crate::error::{CtlError, ExitStatus, Result};
use std::time::Duration;

/// What `status` found, in its target's terms.
pub enum Report {
    Host(StackStatus),
    Swarm(swarm::status::SwarmStatus),
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
                resources::ensure(self.engine, self.project, self.printer).await
            }
            TargetKind::Swarm => cluster::prepare(self, prepare).await,
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
            TargetKind::Swarm => cluster::start(self, selected, no_wait, timeout).await,
        }
    }

    pub async fn stop(&self, selected: &[String], timeout: Option<Duration>) -> Result<ExitStatus> {
        match self.kind {
            TargetKind::Compose => {
                host::stop(self.engine, self.project, self.printer, selected, timeout).await
            }
            TargetKind::Swarm => cluster::stop(self, selected, timeout).await,
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
    pub async fn monitor_rows(&self, selected: &[String]) -> Result<StackStatus> {
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
            TargetKind::Swarm => cluster::scale(self, wanted, force, timeout).await,
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
                crate::deploy::images::pull(self.printer, self.engine, image)
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
                Ok(
                    crate::deploy::converge::current_container(&containers, API_SERVICE)
                        .filter(|c| c.is_running())
                        .is_some_and(|c| Some(&c.image_id) == wanted.as_ref()),
                )
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

    /// Moves the API to the new release; see `deploy::rollout` and `swarm::deploy`.
    pub async fn switch(
        &self,
        plan: &crate::deploy::rollout::Plan<'_>,
    ) -> Result<crate::deploy::rollout::Outcome> {
        match self.kind {
            TargetKind::Compose => crate::deploy::rollout::switch(plan).await,
            TargetKind::Swarm => swarm::deploy::switch(plan).await,
        }
    }

    /// Cleans what a crashed command left behind; only a lock holder may.
    pub async fn sweep(&self) -> Result<()> {
        match self.kind {
            TargetKind::Compose => super::debris::sweep(self.engine, self.project, self.printer).await,
            TargetKind::Swarm => cluster::sweep(self).await,
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
        TargetKind::Compose => Ok(crate::deploy::release::serving(
            &engine.project_containers(project).await?,
        )),
        TargetKind::Swarm => cluster::serving(engine, project).await,
    }
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
            let current = crate::deploy::converge::current_container(&containers, service);
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
        TargetKind::Swarm => cluster::log_sources(engine, project, service).await,
    }
}
