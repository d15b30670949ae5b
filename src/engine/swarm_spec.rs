//! A swarm service's spec built from the model's `ServicePlan`: the task template with its
//! mounts, secrets and configs, health check, resources, placement, and update and rollback
//! policies, as `docker stack deploy` would write them.

use crate::stack::swarm::{FileKind, NAMESPACE_LABEL, ServicePlan};
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec,
    EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountType as DockerMount, MountVolumeOptions,
    NetworkAttachmentConfig, ResourceObject, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecLogDriver,
    TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use std::collections::HashMap;

fn nanos(d: &Option<crate::stack::compose::ComposeDuration>) -> Option<i64> {
    d.as_ref().map(|d| d.value.as_nanos() as i64)
}

pub(super) fn service_spec(plan: &ServicePlan, file_ids: &HashMap<String, String>) -> ServiceSpec {
    let labels: HashMap<String, String> = plan.labels.clone().into_iter().collect();
    ServiceSpec {
        name: Some(plan.name.clone()),
        labels: Some(labels.clone()),
        task_template: Some(task_spec(plan, file_ids, labels)),
        mode: Some(replicated(plan.replicas)),
        update_config: Some(update_config(&plan.update)),
        rollback_config: Some(rollback_config(&plan.rollback)),
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: Some(plan.ports.iter().map(port).collect()),
        }),
    }
}

fn port(p: &crate::stack::swarm::PublishedPort) -> EndpointPortConfig {
    EndpointPortConfig {
        target_port: Some(p.target as i64),
        published_port: Some(p.published as i64),
        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
        protocol: Some(match p.protocol.as_str() {
            "udp" => EndpointPortConfigProtocolEnum::UDP,
            _ => EndpointPortConfigProtocolEnum::TCP,
        }),
        ..Default::default()
    }
}

fn task_spec(
    plan: &ServicePlan,
    file_ids: &HashMap<String, String>,
    labels: HashMap<String, String>,
) -> TaskSpec {
    TaskSpec {
        container_spec: Some(container_spec(plan, file_ids, labels)),
        resources: Some(TaskSpecResources {
            limits: Some(Limit {
                nano_cpus: plan.cpus_limit.map(|c| (c * 1e9) as i64),
                memory_bytes: plan.memory_limit.map(|m| m as i64),
                ..Default::default()
            }),
            reservations: Some(ResourceObject {
                nano_cpus: plan.cpus_reserved.map(|c| (c * 1e9) as i64),
                memory_bytes: plan.memory_reserved.map(|m| m as i64),
                ..Default::default()
            }),
            ..Default::default()
        }),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(match plan.restart.condition.as_deref() {
                Some("none") => TaskSpecRestartPolicyConditionEnum::NONE,
                Some("on-failure") => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
                _ => TaskSpecRestartPolicyConditionEnum::ANY,
            }),
            delay: nanos(&plan.restart.delay),
            max_attempts: plan.restart.max_attempts.map(|m| m as i64),
            window: nanos(&plan.restart.window),
        }),
        placement: Some(TaskSpecPlacement {
            constraints: Some(plan.constraints.clone()),
            ..Default::default()
        }),
        networks: Some(
            plan.networks
                .iter()
                .map(|(target, aliases)| NetworkAttachmentConfig {
                    target: Some(target.clone()),
                    aliases: Some(aliases.clone()),
                    ..Default::default()
                })
                .collect(),
        ),
        log_driver: plan.logging.as_ref().and_then(|l| {
            l.driver.as_ref().map(|d| TaskSpecLogDriver {
                name: Some(d.clone()),
                options: Some(l.options.clone().into_iter().collect()),
            })
        }),
        ..Default::default()
    }
}

/// The service's secrets and configs, by name and id, each at its target path.
fn file_refs(
    plan: &ServicePlan,
    file_ids: &HashMap<String, String>,
) -> (
    Vec<TaskSpecContainerSpecSecrets>,
    Vec<TaskSpecContainerSpecConfigs>,
) {
    let file = |name: &str| file_ids.get(name).cloned();
    let secrets = plan
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Secret)
        .map(|f| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(f.target.clone()),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(0o444),
            }),
            secret_id: file(&f.name),
            secret_name: Some(f.name.clone()),
        })
        .collect();
    let configs = plan
        .files
        .iter()
        .filter(|f| f.kind == FileKind::Config)
        .map(|f| TaskSpecContainerSpecConfigs {
            file: Some(TaskSpecContainerSpecFile1 {
                name: Some(f.target.clone()),
                uid: Some("0".into()),
                gid: Some("0".into()),
                mode: Some(0o444),
            }),
            config_id: file(&f.name),
            config_name: Some(f.name.clone()),
            ..Default::default()
        })
        .collect();
    (secrets, configs)
}

/// Named volumes (labelled with the stack, created on the node that runs the task) and tmpfs.
fn task_mounts(plan: &ServicePlan, namespace: &str) -> Vec<Mount> {
    plan.volumes
        .iter()
        .map(|v| Mount {
            target: Some(v.target.clone()),
            source: Some(v.source.clone()),
            typ: Some(DockerMount::VOLUME),
            read_only: Some(v.read_only),
            volume_options: Some(MountVolumeOptions {
                labels: Some(namespace_labels(namespace)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .chain(plan.tmpfs.iter().map(|t| Mount {
            target: Some(t.clone()),
            typ: Some(DockerMount::TMPFS),
            ..Default::default()
        }))
        .collect()
}

fn container_spec(
    plan: &ServicePlan,
    file_ids: &HashMap<String, String>,
    labels: HashMap<String, String>,
) -> TaskSpecContainerSpec {
    let (secrets, configs) = file_refs(plan, file_ids);
    let mounts = task_mounts(plan, &labels[NAMESPACE_LABEL]);
    // Compose's labels too: on the node that runs it, a task's container is found as the
    // project's service (backups run there), like a container on one host.
    let mut labels = labels;
    labels.insert(super::labels::PROJECT.into(), labels[NAMESPACE_LABEL].clone());
    labels.insert(super::labels::SERVICE.into(), plan.service.clone());
    TaskSpecContainerSpec {
        image: Some(plan.image.clone()),
        labels: Some(labels),
        command: plan.entrypoint.clone(),
        args: plan.command.clone(),
        env: Some(plan.env.clone()),
        dir: plan.working_dir.clone(),
        user: plan.user.clone(),
        init: plan.init,
        read_only: Some(plan.read_only),
        mounts: Some(mounts),
        stop_signal: plan.stop_signal.clone(),
        stop_grace_period: plan.stop_grace_period.map(|d| d.as_nanos() as i64),
        health_check: plan.healthcheck.as_ref().map(health_config),
        secrets: Some(secrets),
        configs: Some(configs),
        capability_add: (!plan.cap_add.is_empty()).then(|| plan.cap_add.clone()),
        capability_drop: (!plan.cap_drop.is_empty()).then(|| plan.cap_drop.clone()),
        ulimits: Some(super::spec::ulimits(&plan.ulimits)),
        ..Default::default()
    }
}

pub(super) fn health_config(h: &crate::stack::compose::Healthcheck) -> HealthConfig {
    HealthConfig {
        test: Some(h.test.clone()),
        interval: nanos(&h.interval),
        timeout: nanos(&h.timeout),
        start_period: nanos(&h.start_period),
        retries: h.retries.map(i64::from),
        ..Default::default()
    }
}

fn update_config(u: &crate::stack::compose::UpdateConfig) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(u.parallelism.unwrap_or(1) as i64),
        delay: nanos(&u.delay),
        failure_action: Some(match u.failure_action.as_deref() {
            Some("rollback") => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
            Some("continue") => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            _ => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
        }),
        monitor: nanos(&u.monitor),
        max_failure_ratio: u.max_failure_ratio,
        order: Some(match u.order.as_deref() {
            Some("start-first") => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
            _ => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
        }),
    }
}

fn rollback_config(u: &crate::stack::compose::UpdateConfig) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: Some(u.parallelism.unwrap_or(1) as i64),
        delay: nanos(&u.delay),
        failure_action: Some(match u.failure_action.as_deref() {
            Some("continue") => ServiceSpecRollbackConfigFailureActionEnum::CONTINUE,
            _ => ServiceSpecRollbackConfigFailureActionEnum::PAUSE,
        }),
        monitor: nanos(&u.monitor),
        max_failure_ratio: u.max_failure_ratio,
        order: Some(match u.order.as_deref() {
            Some("start-first") => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
            _ => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
        }),
    }
}

pub(super) fn replicated(replicas: u64) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(replicas as i64),
        }),
        ..Default::default()
    }
}

pub(super) fn namespace_labels(project: &str) -> HashMap<String, String> {
    HashMap::from([(NAMESPACE_LABEL.to_string(), project.to_string())])
}
