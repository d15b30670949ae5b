//! Swarm calls beside the container calls: the engine's swarm role, nodes, overlay
//! networks, configs and secrets, services and their tasks.

use super::client::Engine;
use super::containers::is_status;
use super::errors::engine_error;
use super::swarm_spec::{health_config, namespace_labels, replicated, service_spec};
use crate::error::{CtlError, ExitStatus, Result};
use crate::stack::swarm::{FileKind, FileObject, NAMESPACE_LABEL, ServicePlan};
use bollard::models::{
    ConfigSpec, LocalNodeState, NetworkCreateRequest, NodeSpec, SecretSpec, ServiceSpec,
    ServiceUpdateStatusStateEnum, SwarmInitRequest,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListConfigsOptionsBuilder, ListNodesOptions, ListSecretsOptionsBuilder,
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateNodeOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use std::collections::HashMap;

/// What this engine is in a swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmRole {
    NotInSwarm,
    Worker,
    Manager { node_id: String },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeInfo {
    pub id: String,
    pub hostname: String,
    /// ready, down, unknown, disconnected.
    pub state: String,
    /// active, pause, drain.
    pub availability: String,
    pub role: String,
    pub addr: String,
    #[serde(skip)]
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    pub replicas: u64,
    pub image: String,
    pub labels: HashMap<String, String>,
    /// updating, paused, completed, rollback_started, rollback_paused, rollback_completed.
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    /// When the current or last update began (RFC 3339).
    pub update_started: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TaskInfo {
    pub id: String,
    pub service_id: String,
    pub slot: Option<u64>,
    pub node_id: String,
    pub state: String,
    pub desired_state: String,
    pub message: String,
    pub error: Option<String>,
    pub container_id: Option<String>,
    pub timestamp: String,
    /// The image the task was created from, without its digest.
    pub image: String,
}

fn namespace_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{NAMESPACE_LABEL}={project}")])])
}

impl Engine {
    pub async fn swarm_role(&self) -> Result<SwarmRole> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| engine_error("cannot read engine info", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let active = swarm.local_node_state == Some(LocalNodeState::ACTIVE);
        Ok(match (active, swarm.control_available.unwrap_or(false)) {
            (false, _) => SwarmRole::NotInSwarm,
            (true, false) => SwarmRole::Worker,
            (true, true) => SwarmRole::Manager {
                node_id: swarm.node_id.unwrap_or_default(),
            },
        })
    }

    /// A one-node swarm on this engine (`setup --init`).
    pub async fn init_swarm(&self, advertise_addr: Option<&str>) -> Result<String> {
        let request = SwarmInitRequest {
            listen_addr: Some("0.0.0.0:2377".into()),
            advertise_addr: advertise_addr.map(str::to_string),
            ..Default::default()
        };
        self.docker
            .init_swarm(request)
            .await
            .map_err(|e| engine_error("cannot initialise a swarm on this engine", e))
    }

    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let nodes = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|e| engine_error("cannot list the swarm's nodes", e))?;
        Ok(nodes
            .into_iter()
            .map(|n| {
                let spec = n.spec.unwrap_or_default();
                let status = n.status.unwrap_or_default();
                NodeInfo {
                    id: n.id.unwrap_or_default(),
                    hostname: n.description.and_then(|d| d.hostname).unwrap_or_default(),
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                    availability: spec.availability.map(|a| a.to_string()).unwrap_or_default(),
                    role: spec.role.map(|r| r.to_string()).unwrap_or_default(),
                    addr: status.addr.unwrap_or_default(),
                    labels: spec.labels.unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Sets `key=value` on `node_id` and removes `key` from every other node.
    pub async fn label_only(&self, node_id: &str, key: &str, value: &str) -> Result<bool> {
        let mut changed = false;
        for node in self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|e| engine_error("cannot list the swarm's nodes", e))?
        {
            let id = node.id.clone().unwrap_or_default();
            let mut spec = node.spec.clone().unwrap_or_default();
            let mut labels = spec.labels.clone().unwrap_or_default();
            let want = (id == node_id).then(|| value.to_string());
            if labels.get(key) == want.as_ref() {
                continue;
            }
            match want {
                Some(v) => labels.insert(key.to_string(), v),
                None => labels.remove(key),
            };
            spec.labels = Some(labels);
            let version = node.version.and_then(|v| v.index).unwrap_or(0);
            let options = UpdateNodeOptionsBuilder::default()
                .version(version as i64)
                .build();
            self.docker
                .update_node(&id, NodeSpec { ..spec }, options)
                .await
                .map_err(|e| engine_error(&format!("cannot label node {id}"), e))?;
            changed = true;
        }
        Ok(changed)
    }

    /// An attachable overlay network of the stack; false when it was there.
    pub async fn ensure_overlay(&self, name: &str, project: &str, internal: bool) -> Result<bool> {
        match self.docker.inspect_network(name, None).await {
            Ok(net) if net.driver.as_deref() == Some("overlay") => return Ok(false),
            Ok(_) => {
                return Err(CtlError::failure(format!(
                    "network {name} exists but is not an overlay network"
                ))
                .hint(format!(
                    "remove it (`docker network rm {name}`) and run setup again"
                )));
            }
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(engine_error(&format!("cannot inspect network {name}"), e)),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            internal: Some(internal),
            labels: Some(namespace_labels(project)),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(engine_error(&format!("cannot create network {name}"), e)),
        }
    }

    /// Names and ids of the stack's configs or secrets.
    pub async fn file_objects(&self, kind: FileKind, project: &str) -> Result<Vec<(String, String)>> {
        let filters = namespace_filter(project);
        let pairs = match kind {
            FileKind::Config => self
                .docker
                .list_configs(Some(
                    ListConfigsOptionsBuilder::default().filters(&filters).build(),
                ))
                .await
                .map_err(|e| engine_error("cannot list swarm configs", e))?
                .into_iter()
                .map(|c| {
                    (
                        c.spec.and_then(|s| s.name).unwrap_or_default(),
                        c.id.unwrap_or_default(),
                    )
                })
                .collect(),
            FileKind::Secret => self
                .docker
                .list_secrets(Some(
                    ListSecretsOptionsBuilder::default().filters(&filters).build(),
                ))
                .await
                .map_err(|e| engine_error("cannot list swarm secrets", e))?
                .into_iter()
                .map(|c| {
                    (
                        c.spec.and_then(|s| s.name).unwrap_or_default(),
                        c.id.unwrap_or_default(),
                    )
                })
                .collect(),
        };
        Ok(pairs)
    }

    /// Creates a config or secret; false when one of that name exists (names carry the
    /// content's hash, so it holds the same bytes).
    pub async fn create_file_object(&self, object: &FileObject, project: &str) -> Result<bool> {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(&object.data);
        let labels = Some(namespace_labels(project));
        let name = Some(object.name.clone());
        let created = match object.kind {
            FileKind::Config => {
                self.docker
                    .create_config(ConfigSpec {
                        name,
                        labels,
                        data: Some(data),
                        ..Default::default()
                    })
                    .await
            }
            FileKind::Secret => {
                self.docker
                    .create_secret(SecretSpec {
                        name,
                        labels,
                        data: Some(data),
                        ..Default::default()
                    })
                    .await
            }
        };
        match created {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(engine_error(&format!("cannot create {}", object.name), e)),
        }
    }

    /// Removes a config or secret; false when a service still uses it.
    pub async fn remove_file_object(&self, kind: FileKind, id: &str) -> Result<bool> {
        let removed = match kind {
            FileKind::Config => self.docker.delete_config(id).await,
            FileKind::Secret => self.docker.delete_secret(id).await,
        };
        match removed {
            Ok(()) => Ok(true),
            Err(e) if is_status(&e, 400) || is_status(&e, 409) || is_status(&e, 404) => Ok(false),
            Err(e) => Err(engine_error(&format!("cannot remove {id}"), e)),
        }
    }

    pub async fn stack_services(&self, project: &str) -> Result<Vec<ServiceInfo>> {
        let filters = namespace_filter(project);
        let services = self
            .docker
            .list_services(Some(
                ListServicesOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(|e| engine_error("cannot list the stack's services", e))?;
        Ok(services.into_iter().map(service_info).collect())
    }

    pub async fn stack_tasks(&self, project: &str) -> Result<Vec<TaskInfo>> {
        let filters = namespace_filter(project);
        let tasks = self
            .docker
            .list_tasks(Some(ListTasksOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(|e| engine_error("cannot list the stack's tasks", e))?;
        Ok(tasks
            .into_iter()
            .map(|t| {
                let status = t.status.unwrap_or_default();
                TaskInfo {
                    id: t.id.unwrap_or_default(),
                    service_id: t.service_id.unwrap_or_default(),
                    slot: t.slot.map(|s| s.max(0) as u64),
                    node_id: t.node_id.unwrap_or_default(),
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                    desired_state: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                    message: status.message.unwrap_or_default(),
                    error: status.err,
                    container_id: status.container_status.and_then(|c| c.container_id),
                    timestamp: status.timestamp.unwrap_or_default(),
                    image: t
                        .spec
                        .and_then(|s| s.container_spec)
                        .and_then(|c| c.image)
                        .map(|i| i.split('@').next().unwrap_or_default().to_string())
                        .unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Creates the service, or updates it to `plan` (keeping its version); true when created.
    pub async fn apply_service(
        &self,
        plan: &ServicePlan,
        file_ids: &HashMap<String, String>,
    ) -> Result<bool> {
        let spec = service_spec(plan, file_ids);
        match self
            .docker
            .inspect_service(&plan.name, None::<InspectServiceOptions>)
            .await
        {
            Ok(current) => {
                let version = current.version.and_then(|v| v.index).unwrap_or(0);
                let options = UpdateServiceOptionsBuilder::default()
                    .version(version as i32)
                    .build();
                self.docker
                    .update_service(&plan.name, spec, options, None)
                    .await
                    .map_err(|e| engine_error(&format!("cannot update service {}", plan.name), e))?;
                Ok(false)
            }
            Err(e) if is_status(&e, 404) => {
                self.docker
                    .create_service(spec, None)
                    .await
                    .map_err(|e| engine_error(&format!("cannot create service {}", plan.name), e))?;
                Ok(true)
            }
            Err(e) => Err(engine_error(&format!("cannot inspect service {}", plan.name), e)),
        }
    }

    /// A service's version (for the next update) and its spec as the engine reads it back.
    async fn service_spec(&self, name: &str) -> Result<(u64, ServiceSpec)> {
        let current = self
            .docker
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
            .map_err(|e| engine_error(&format!("cannot inspect service {name}"), e))?;
        let version = current.version.and_then(|v| v.index).unwrap_or(0);
        Ok((version, current.spec.unwrap_or_default()))
    }

    /// Sets a service's replicas and nothing else. The health check comes from `plan`:
    /// bollard reads the engine's `Healthcheck` key as `HealthCheck` and would drop it.
    pub async fn scale_service(&self, plan: &ServicePlan, replicas: u64) -> Result<()> {
        let name = plan.name.as_str();
        let (version, mut spec) = self.service_spec(name).await?;
        spec.mode = Some(replicated(replicas));
        if let Some(c) = spec
            .task_template
            .as_mut()
            .and_then(|t| t.container_spec.as_mut())
        {
            c.health_check = plan.healthcheck.as_ref().map(health_config);
        }
        let options = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .build();
        self.docker
            .update_service(name, spec, options, None)
            .await
            .map_err(|e| engine_error(&format!("cannot scale service {name}"), e))?;
        Ok(())
    }

    /// A server-side rollback to the service's previous spec (`docker service rollback`).
    pub async fn rollback_service(&self, name: &str) -> Result<()> {
        let (version, spec) = self.service_spec(name).await?;
        // The engine ignores the spec sent with a rollback and takes its PreviousSpec.
        let options = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .rollback("previous")
            .build();
        self.docker
            .update_service(name, spec, options, None)
            .await
            .map_err(|e| engine_error(&format!("cannot roll back service {name}"), e))?;
        Ok(())
    }

    /// Fails with exit 2 unless this engine manages a swarm.
    pub async fn require_manager(&self) -> Result<String> {
        match self.swarm_role().await? {
            SwarmRole::Manager { node_id } => Ok(node_id),
            SwarmRole::NotInSwarm => Err(CtlError::new(
                ExitStatus::Usage,
                format!("the engine at {} is not in a swarm", self.info.host),
            )
            .hint("run `pricescan-ctl setup --target swarm --init` for a one-node swarm, or join it to one (`docker swarm join`)")),
            SwarmRole::Worker => Err(CtlError::new(
                ExitStatus::Usage,
                format!("the engine at {} is a swarm worker, not a manager", self.info.host),
            )
            .hint("point --docker-host (or DOCKER_HOST) at a manager node; `docker node ls` there lists them")),
        }
    }
}

fn service_info(s: bollard::models::Service) -> ServiceInfo {
    let spec = s.spec.unwrap_or_default();
    let replicas = spec
        .mode
        .and_then(|m| m.replicated)
        .and_then(|r| r.replicas)
        .unwrap_or(0)
        .max(0) as u64;
    let image = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image)
        .unwrap_or_default();
    let update = s.update_status;
    ServiceInfo {
        id: s.id.unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        replicas,
        image: image.split('@').next().unwrap_or_default().to_string(),
        labels: spec.labels.unwrap_or_default(),
        update_state: update
            .as_ref()
            .and_then(|u| u.state)
            .filter(|s| *s != ServiceUpdateStatusStateEnum::EMPTY)
            .map(|s| s.to_string()),
        update_message: update.as_ref().and_then(|u| u.message.clone()),
        update_started: update.and_then(|u| u.started_at),
    }
}
