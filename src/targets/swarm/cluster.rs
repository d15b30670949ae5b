//! The swarm target: the stack as services of a swarm (DESIGN §11). Setup prepares the
//! cluster (overlay networks, secrets, configs, the data node); start creates or updates one
//! service per compose service and waits for their tasks; stop and scale set replicas.

use super::tasks::wait_running;
use crate::engine::{Engine, LogSource, NodeInfo, ServiceInfo, TaskInfo};
use crate::error::{CtlError, ExitStatus, Result};
use crate::stack::Project;
use crate::stack::swarm::{self, DATA_SERVICES, FileKind, FileObject, data_node_label};
use crate::targets::context::{LogTarget, Prepare, Stack};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::deploy::release::{self, API_SERVICE, RELEASE_IMAGE_LABEL};

pub async fn prepare(stack: &Stack<'_>, prepare: &Prepare<'_>) -> Result<Vec<String>> {
    let engine = stack.engine;
    let mut changes = Vec::new();
    if prepare.init && engine.swarm_role().await? == crate::engine::SwarmRole::NotInSwarm {
        let node = engine.init_swarm(None).await?;
        changes.push(format!(
            "initialised a one-node swarm (this engine is manager {node})"
        ));
    }
    engine.require_manager().await?;
    let nodes = engine.nodes().await?;
    let label = data_node_label(&stack.project.name);
    let data = choose_data_node(&nodes, &label, prepare.data_node)?;
    if engine.label_only(&data.id, &label, "true").await? {
        changes.push(format!(
            "data node: {} ({}) holds MySQL and Redis",
            data.hostname, data.id
        ));
    }
    changes.extend(ensure_objects(stack, &wanted_objects(stack.project)?).await?);
    Ok(changes)
}

/// The node named by `--data-node` (full ID, unique ID prefix, or unique hostname), else the
/// node already labelled, else the only node.
fn choose_data_node<'a>(nodes: &'a [NodeInfo], label: &str, wanted: Option<&str>) -> Result<&'a NodeInfo> {
    let listing = || {
        nodes
            .iter()
            .map(|n| format!("{} ({})", n.id, n.hostname))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(wanted) = wanted else {
        let labelled: Vec<&NodeInfo> = nodes.iter().filter(|n| n.labels.contains_key(label)).collect();
        return match (labelled.as_slice(), nodes) {
            ([one], _) => Ok(one),
            (_, [only]) => Ok(only),
            _ => Err(
                CtlError::usage("this swarm has several nodes: name the one that holds the data")
                    .hint(format!("add --data-node NODE, one of: {}", listing())),
            ),
        };
    };
    let by_id: Vec<&NodeInfo> = nodes.iter().filter(|n| n.id.starts_with(wanted)).collect();
    let by_name: Vec<&NodeInfo> = nodes.iter().filter(|n| n.hostname == wanted).collect();
    match (by_id.as_slice(), by_name.as_slice()) {
        ([one], _) => Ok(one),
        ([], [one]) => Ok(one),
        ([], []) => Err(CtlError::usage(format!("no node of this swarm is {wanted}"))
            .hint(format!("nodes: {}", listing()))),
        _ => Err(
            CtlError::usage(format!("{wanted} names several nodes (hostnames can repeat)"))
                .hint(format!("use the node ID: {}", listing())),
        ),
    }
}

/// Overlay networks, then every config and secret the active services use; objects of an
/// older content that no service uses any more are removed.
pub(super) async fn ensure_objects(
    stack: &Stack<'_>,
    wanted: &BTreeMap<String, FileObject>,
) -> Result<Vec<String>> {
    let (engine, project) = (stack.engine, stack.project);
    let mut changes = Vec::new();
    for key in project.used_networks() {
        let internal = project.file.networks.get(&key).is_some_and(|n| n.internal);
        let name = project.network_name(&key);
        if engine.ensure_overlay(&name, &project.name, internal).await? {
            changes.push(format!(
                "created overlay network {name}{}",
                if internal { " (internal)" } else { "" }
            ));
        }
    }
    let mut created = (0, 0);
    for object in wanted.values() {
        if engine.create_file_object(object, &project.name).await? {
            match object.kind {
                FileKind::Config => created.0 += 1,
                FileKind::Secret => created.1 += 1,
            }
        }
    }
    if created != (0, 0) {
        changes.push(format!(
            "created {} swarm configs and {} swarm secrets",
            created.0, created.1
        ));
    }
    Ok(changes)
}

/// Every config and secret of the active services, by name.
pub(super) fn wanted_objects(project: &Project) -> Result<BTreeMap<String, FileObject>> {
    let mut objects = BTreeMap::new();
    for service in project.active_services() {
        for object in swarm::plan(project, &service, None)?.files {
            objects.insert(object.name.clone(), object);
        }
    }
    Ok(objects)
}

/// Removes the stack's configs and secrets that no current file wants and no service uses.
async fn prune_objects(
    engine: &Engine,
    project: &Project,
    wanted: &BTreeMap<String, FileObject>,
) -> Result<usize> {
    let mut removed = 0;
    for kind in [FileKind::Config, FileKind::Secret] {
        for (name, id) in engine.file_objects(kind, &project.name).await? {
            if !wanted.contains_key(&name) && engine.remove_file_object(kind, &id).await? {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

pub(super) async fn object_ids(engine: &Engine, project: &str) -> Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    for kind in [FileKind::Config, FileKind::Secret] {
        ids.extend(engine.file_objects(kind, project).await?);
    }
    Ok(ids)
}

async fn require_data_node(engine: &Engine, project: &str) -> Result<NodeInfo> {
    let nodes = engine.nodes().await?;
    nodes
        .into_iter()
        .find(|n| n.labels.contains_key(&data_node_label(project)))
        .ok_or_else(|| {
            CtlError::usage("no node of this swarm is the data node")
                .hint("run `pricescan-ctl setup --target swarm --data-node NODE`")
        })
}

pub async fn start(
    stack: &Stack<'_>,
    selected: &[String],
    no_wait: bool,
    timeout: Duration,
) -> Result<ExitStatus> {
    let (engine, printer) = (stack.engine, stack.printer);
    engine.require_manager().await?;
    require_data_node(engine, &stack.project.name).await?;
    let project = &adopt_serving(engine, stack.project).await?;
    // Read once: the files behind every config and secret, for creating and for pruning.
    let wanted = wanted_objects(project)?;
    for change in ensure_objects(stack, &wanted).await? {
        printer.info(&change);
    }
    let ids = object_ids(engine, &project.name).await?;
    let current: HashMap<String, ServiceInfo> = engine
        .stack_services(&project.name)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut plans = Vec::new();
    for service in selected {
        for warning in swarm::ignored_keys(project, service) {
            printer.warn(&warning);
        }
        let name = swarm::service_name(&project.name, service);
        // A running service keeps the replicas it was scaled to; a stopped one gets the file's.
        let kept = current.get(&name).map(|s| s.replicas).filter(|r| *r > 0);
        plans.push(swarm::plan(project, service, kept)?);
    }
    let board = printer.service_board(selected);
    for plan in &plans {
        let created = engine.apply_service(plan, &ids).await?;
        board.update(&plan.service, if created { "created" } else { "updated" });
    }
    let removed = prune_objects(engine, project, &wanted).await?;
    if removed > 0 {
        printer.info(&format!(
            "removed {removed} configs and secrets that no service uses"
        ));
    }
    if no_wait {
        plans.iter().for_each(|p| board.done(&p.service, true, "applied"));
        return Ok(ExitStatus::Success);
    }
    let wanted: Vec<(String, String, u64)> = plans
        .iter()
        .map(|p| (p.service.clone(), p.name.clone(), p.replicas))
        .collect();
    wait_running(stack, &board, &wanted, timeout).await
}

/// What a crashed command left: partial backups and one-off containers here, a restore
/// killed half-way (put back on the data node's engine), an API a restore stopped.
pub async fn sweep(stack: &Stack<'_>) -> Result<()> {
    let (engine, project, printer) = (stack.engine, stack.project, stack.printer);
    crate::targets::debris::leftovers(engine, project, printer).await?;
    if crate::backup::restore::read_marker(project).is_some() {
        let data = super::nodes::data_engine(engine, project).await?;
        crate::targets::debris::unfinished_restore(&data, project, printer, true).await?;
    }
    super::hold::release_if_held(stack).await
}

/// The model with the deployed release of the API, as its service's labels record it, so
/// that `start` from any checkout keeps what `deploy` rolled out.
async fn adopt_serving(engine: &Engine, project: &Project) -> Result<Project> {
    let mut project = project.clone();
    if let Some((id, image)) = serving(engine, &project.name).await? {
        release::pin(&mut project, &id, &image);
    }
    Ok(project)
}

/// The release the API service runs: (release id, image), from its labels.
pub async fn serving(engine: &Engine, project: &str) -> Result<Option<(String, String)>> {
    let name = swarm::service_name(project, API_SERVICE);
    let services = engine.stack_services(project).await?;
    Ok(services.into_iter().find(|s| s.name == name).and_then(|s| {
        Some((
            s.labels.get(crate::engine::labels::RELEASE)?.clone(),
            s.labels.get(RELEASE_IMAGE_LABEL)?.clone(),
        ))
    }))
}

pub async fn stop(stack: &Stack<'_>, selected: &[String], _grace: Option<Duration>) -> Result<ExitStatus> {
    let engine = stack.engine;
    engine.require_manager().await?;
    let existing = engine.stack_services(&stack.project.name).await?;
    let board = stack.printer.service_board(selected);
    let mut wanted = Vec::new();
    for service in selected {
        let name = swarm::service_name(&stack.project.name, service);
        if !existing.iter().any(|s| s.name == name) {
            board.done(service, true, "not created");
            continue;
        }
        // Replicas 0 keeps the spec, volumes, secrets and configs; the grace period is the
        // service's own stop_grace_period.
        engine
            .scale_service(&swarm::plan(stack.project, service, None)?, 0)
            .await?;
        board.update(service, "stopping");
        wanted.push((service.clone(), name, 0));
    }
    wait_running(stack, &board, &wanted, Duration::from_secs(300)).await
}

pub async fn scale(
    stack: &Stack<'_>,
    wanted: &[(String, u64)],
    force: bool,
    timeout: Duration,
) -> Result<ExitStatus> {
    let engine = stack.engine;
    engine.require_manager().await?;
    let existing = engine.stack_services(&stack.project.name).await?;
    let mut targets = Vec::new();
    for (service, replicas) in wanted {
        if DATA_SERVICES.contains(&service.as_str()) && *replicas > 1 {
            return Err(
                CtlError::usage(format!("{service} cannot run more than one task"))
                    .hint("its data is a volume on the data node; two tasks would share or split it"),
            );
        }
        if service != API_SERVICE && !force {
            return Err(CtlError::usage(format!("scaling {service} needs --force"))
                .hint("the API is the service meant to scale; others assume one task"));
        }
        let name = swarm::service_name(&stack.project.name, service);
        if !existing.iter().any(|s| s.name == name) {
            return Err(CtlError::usage(format!("service {name} does not exist"))
                .hint("run `pricescan-ctl start` first"));
        }
        targets.push((service.clone(), name, *replicas));
    }
    let board = stack
        .printer
        .service_board(&targets.iter().map(|t| t.0.clone()).collect::<Vec<_>>());
    for (service, _, replicas) in &targets {
        engine
            .scale_service(&swarm::plan(stack.project, service, None)?, *replicas)
            .await?;
        board.update(service, &format!("scaling to {replicas}"));
    }
    wait_running(stack, &board, &targets, timeout).await
}

/// Tasks of `service` meant to run, each a log source named `<service>.<slot>`; when none
/// is, the latest task.
pub async fn log_sources(engine: &Engine, project: &str, service: &str) -> Result<Vec<LogTarget>> {
    let name = swarm::service_name(project, service);
    let services = engine.stack_services(project).await?;
    let Some(id) = services.iter().find(|s| s.name == name).map(|s| s.id.clone()) else {
        return Ok(Vec::new());
    };
    let tasks: Vec<TaskInfo> = engine
        .stack_tasks(project)
        .await?
        .into_iter()
        .filter(|t| t.service_id == id)
        .collect();
    let live: Vec<&TaskInfo> = tasks.iter().filter(|t| t.desired_state == "running").collect();
    let chosen = match live.is_empty() {
        false => live,
        true => tasks
            .iter()
            .max_by(|a, b| a.timestamp.cmp(&b.timestamp))
            .into_iter()
            .collect(),
    };
    Ok(chosen
        .into_iter()
        .map(|t| LogTarget {
            source: LogSource::Task(t.id.clone()),
            label: format!("{service}.{}", t.slot.unwrap_or(0)),
            name: format!("{name}.{}", t.slot.unwrap_or(0)),
        })
        .collect())
}
