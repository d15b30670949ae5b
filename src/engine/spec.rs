//! Turning a service of the stack model into a container creation request, with
//! everything the compose file says and the labels Compose writes.

use super::labels;
use crate::error::ConfigError;
use crate::stack::Project;
use crate::stack::compose::{MountType, Service};
use crate::stack::names;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, HostConfigLogConfig, Mount,
    MountType as DockerMount, NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use std::collections::HashMap;

/// Everything needed to create one container of a service.
pub struct ContainerPlan {
    pub name: String,
    pub service: String,
    pub(super) body: ContainerCreateBody,
    /// Networks beyond the first, joined after creation (engines before API 1.44 accept only
    /// one network in the create call).
    pub(super) extra_networks: Vec<(String, EndpointSettings)>,
}

/// Compose's container name: `<project>-<service>-<number>`.
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

fn nanos(d: &Option<crate::stack::compose::ComposeDuration>) -> Option<i64> {
    d.as_ref().map(|d| d.value.as_nanos() as i64)
}

/// Compose's `ulimits:` in the engine's terms (containers and swarm services alike).
pub(super) fn ulimits(
    limits: &std::collections::BTreeMap<String, crate::stack::compose::Ulimit>,
) -> Vec<ResourcesUlimits> {
    limits
        .iter()
        .map(|(name, u)| ResourcesUlimits {
            name: Some(name.clone()),
            soft: Some(u.soft),
            hard: Some(u.hard),
        })
        .collect()
}

pub fn plan(
    project: &Project,
    service: &str,
    number: u32,
    extra_labels: &[(&str, String)],
) -> Result<ContainerPlan, ConfigError> {
    let svc = project.service(service);
    let name = container_name(&project.name, service, number);
    let env = project.container_env(service)?;
    let mut all_labels: HashMap<String, String> = svc.labels.clone().into_iter().collect();
    let files = project.compose_path.display().to_string();
    for (k, v) in [
        (labels::PROJECT, project.name.clone()),
        (labels::SERVICE, service.to_string()),
        (labels::NUMBER, number.to_string()),
        (labels::ONEOFF, "False".to_string()),
        (labels::CONFIG_HASH, project.config_hash(service)?),
        (labels::WORKING_DIR, project.dir.display().to_string()),
        (labels::CONFIG_FILES, files),
        (labels::VERSION, labels::COMPOSE_VERSION.to_string()),
        (labels::MANAGED_BY, "pricescan-ctl".to_string()),
    ] {
        all_labels.insert(k.to_string(), v);
    }
    for (k, v) in extra_labels {
        all_labels.insert(k.to_string(), v.clone());
    }
    let mut endpoints: Vec<(String, EndpointSettings)> = project
        .service_networks(service)
        .iter()
        .map(|key| {
            let mut aliases = vec![service.to_string(), names::short_name(service).to_string()];
            aliases.extend(
                svc.networks
                    .get(key)
                    .map(|n| n.aliases.clone())
                    .unwrap_or_default(),
            );
            aliases.dedup();
            (
                project.network_name(key),
                EndpointSettings {
                    aliases: Some(aliases),
                    ..Default::default()
                },
            )
        })
        .collect();
    let first = (!endpoints.is_empty()).then(|| endpoints.remove(0));
    let body = ContainerCreateBody {
        image: svc.image.clone(),
        cmd: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(all_labels),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc.stop_grace_period.as_ref().map(|d| d.value.as_secs() as i64),
        exposed_ports: Some(
            svc.ports
                .iter()
                .map(|p| format!("{}/{}", p.target, p.protocol))
                .collect(),
        ),
        healthcheck: healthcheck(svc),
        host_config: Some(host_config(project, svc)),
        networking_config: first.map(|(net, ep)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(net, ep)])),
        }),
        ..Default::default()
    };
    Ok(ContainerPlan {
        name,
        service: service.to_string(),
        body,
        extra_networks: endpoints,
    })
}

fn healthcheck(svc: &Service) -> Option<HealthConfig> {
    let hc = svc.healthcheck.as_ref()?;
    if hc.disable {
        return Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
    }
    Some(HealthConfig {
        test: (!hc.test.is_empty()).then(|| hc.test.clone()),
        interval: nanos(&hc.interval),
        timeout: nanos(&hc.timeout),
        start_period: nanos(&hc.start_period),
        start_interval: nanos(&hc.start_interval),
        retries: hc.retries.map(i64::from),
    })
}

fn host_config(project: &Project, svc: &Service) -> HostConfig {
    let limits = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.limits.clone())
        .unwrap_or_default();
    let reservations = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.reservations.clone())
        .unwrap_or_default();
    let memory = limits
        .memory
        .as_ref()
        .or(svc.mem_limit.as_ref())
        .map(|m| m.bytes as i64);
    let cpus = limits.cpus.or(svc.cpus);
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &svc.ports {
        let binding = PortBinding {
            host_ip: p.host_ip.clone(),
            host_port: p.published.map(|n| n.to_string()),
        };
        port_bindings
            .entry(format!("{}/{}", p.target, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    HostConfig {
        port_bindings: Some(port_bindings),
        mounts: Some(mounts(project, svc)),
        restart_policy: svc.restart.as_deref().map(restart_policy),
        memory,
        memory_reservation: reservations.memory.map(|m| m.bytes as i64),
        nano_cpus: cpus.map(|c| (c * 1e9) as i64),
        pids_limit: limits.pids.map(i64::from),
        ulimits: Some(ulimits(&svc.ulimits)),
        log_config: svc.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: l.driver.clone(),
            config: Some(l.options.clone().into_iter().collect()),
        }),
        readonly_rootfs: Some(svc.read_only),
        init: svc.init,
        tmpfs: (!svc.tmpfs.is_empty())
            .then(|| svc.tmpfs.iter().map(|t| (t.clone(), String::new())).collect()),
        cap_add: (!svc.cap_add.is_empty()).then(|| svc.cap_add.clone()),
        cap_drop: (!svc.cap_drop.is_empty()).then(|| svc.cap_drop.clone()),
        security_opt: (!svc.security_opt.is_empty()).then(|| svc.security_opt.clone()),
        extra_hosts: (!svc.extra_hosts.is_empty()).then(|| svc.extra_hosts.clone()),
        ..Default::default()
    }
}

fn mounts(project: &Project, svc: &Service) -> Vec<Mount> {
    svc.volumes
        .iter()
        .map(|m| {
            let (typ, source) = match m.kind {
                MountType::Volume => (
                    DockerMount::VOLUME,
                    m.source.as_ref().map(|s| project.volume_name(s)),
                ),
                MountType::Bind => (DockerMount::BIND, m.source.clone()),
                MountType::Tmpfs => (DockerMount::TMPFS, None),
            };
            Mount {
                target: Some(m.target.clone()),
                source,
                typ: Some(typ),
                read_only: Some(m.read_only),
                ..Default::default()
            }
        })
        .collect()
}

fn restart_policy(name: &str) -> RestartPolicy {
    let (policy, retries) = match name.split_once(':') {
        Some((n, r)) => (n, r.parse().ok()),
        None => (name, None),
    };
    let name = match policy {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: retries,
    }
}

impl ContainerPlan {
    /// The same container as a one-off job: its own name, `cmd` through `sh -c`, no health
    /// check, no restart, marked one-off so that `status` and `ps` leave it out.
    pub fn into_oneoff(mut self, name: String, cmd: &str) -> Self {
        self.name = name;
        self.body.entrypoint = Some(vec!["sh".into(), "-c".into()]);
        self.body.cmd = Some(vec![cmd.to_string()]);
        self.body.healthcheck = Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        });
        if let Some(labels) = self.body.labels.as_mut() {
            labels.insert(labels::ONEOFF.to_string(), "True".to_string());
        }
        if let Some(host) = self.body.host_config.as_mut() {
            host.restart_policy = None;
            host.port_bindings = None;
        }
        self
    }
}
