//! `status` on the swarm target: replicas per service, each task with its node and health,
//! the nodes that are down or drained, and `/health` through Nginx's published port.

use crate::engine::{NodeInfo, ServiceInfo, TaskInfo};
use crate::error::Result;
use crate::stack::swarm::{self, EDGE_SERVICE, ServicePlan, data_node_label};
use crate::targets::Stack;
use crate::targets::status::{Endpoint, NodeRef, ServiceStatus, StackStatus};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct SwarmStatus {
    pub project: String,
    pub target: &'static str,
    pub healthy: bool,
    pub services: Vec<ServiceState>,
    pub nodes: Vec<NodeState>,
    pub endpoints: Vec<Probe>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceState {
    pub service: String,
    pub name: String,
    pub image: String,
    pub replicas: Replicas,
    pub update_state: Option<String>,
    pub tasks: Vec<TaskState>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Replicas {
    pub running: u64,
    pub desired: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskState {
    pub id: String,
    pub slot: Option<u64>,
    pub node_id: String,
    pub node: String,
    pub state: String,
    /// healthy (running with a health check), starting, none (no health check), or the state.
    pub health: String,
    pub error: Option<String>,
    #[serde(skip)]
    pub container_id: Option<String>,
    /// When the task last changed state (RFC 3339), for the monitor's uptime.
    #[serde(skip)]
    pub since: String,
}

/// A node as the manager sees it, and whether it is the data node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeState {
    #[serde(flatten)]
    pub node: NodeInfo,
    pub data: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub name: String,
    pub url: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub latency_ms: f64,
}

pub async fn collect(stack: &Stack<'_>, selected: &[String]) -> Result<SwarmStatus> {
    let engine = stack.engine;
    engine.require_manager().await?;
    let (services, tasks, nodes) = tokio::try_join!(
        engine.stack_services(&stack.project.name),
        engine.stack_tasks(&stack.project.name),
        engine.nodes()
    )?;
    let states = selected
        .iter()
        .map(|service| service_state(stack, service, &services, &tasks, &nodes))
        .collect::<Vec<_>>();
    let label = data_node_label(&stack.project.name);
    let nodes: Vec<NodeState> = nodes.into_iter().map(|n| node_state(n, &label)).collect();
    let edge = swarm::plan(stack.project, EDGE_SERVICE, None).ok();
    let (mut endpoints, inside) = tokio::join!(
        probe_edge(edge.as_ref(), &states, &nodes),
        probe_inside(stack, edge.as_ref(), &states)
    );
    endpoints.extend(inside);
    let data_down = nodes.iter().any(|n| n.data && n.node.state != "ready");
    let healthy = !data_down
        && states
            .iter()
            .all(|s| s.replicas.running == s.replicas.desired && s.replicas.desired > 0)
        && endpoints.iter().all(|e| e.ok);
    Ok(SwarmStatus {
        project: stack.project.name.clone(),
        target: "swarm",
        healthy,
        services: states,
        nodes,
        endpoints,
    })
}

/// One service of the swarm: its replicas and the tasks meant to run.
fn service_state(
    stack: &Stack<'_>,
    service: &str,
    services: &[ServiceInfo],
    tasks: &[TaskInfo],
    nodes: &[NodeInfo],
) -> ServiceState {
    let hostname = |id: &str| {
        nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.hostname.clone())
            .unwrap_or_default()
    };
    let name = swarm::service_name(&stack.project.name, service);
    let info = services.iter().find(|s| s.name == name);
    let checked = stack
        .project
        .service(service)
        .healthcheck
        .as_ref()
        .is_some_and(|h| !h.disable);
    let mine: Vec<&TaskInfo> = info
        .map(|i| {
            tasks
                .iter()
                .filter(|t| t.service_id == i.id && t.desired_state == "running")
                .collect()
        })
        .unwrap_or_default();
    ServiceState {
        service: service.to_string(),
        name,
        image: info.map(|i| i.image.clone()).unwrap_or_default(),
        replicas: Replicas {
            running: mine.iter().filter(|t| t.state == "running").count() as u64,
            desired: info.map_or(1, |i| i.replicas),
        },
        update_state: info.and_then(|i| i.update_state.clone()),
        tasks: mine
            .iter()
            .map(|t| TaskState {
                id: t.id.clone(),
                slot: t.slot,
                node_id: t.node_id.clone(),
                node: hostname(&t.node_id),
                state: t.state.clone(),
                health: task_health(t, checked),
                error: t.error.clone(),
                container_id: t.container_id.clone(),
                since: t.timestamp.clone(),
            })
            .collect(),
    }
}

/// The swarm's status as `monitor` rows: one per task, named by service and slot, with its
/// node, so that each task's stats can be read on its node's engine.
pub fn task_rows(status: SwarmStatus) -> StackStatus {
    let mut rows = Vec::new();
    for s in &status.services {
        if s.tasks.is_empty() {
            rows.push(no_task_row(s));
        }
        for t in &s.tasks {
            rows.push(task_row(s, t));
        }
    }
    let endpoints = status
        .endpoints
        .into_iter()
        .map(|p| Endpoint {
            name: p.name,
            url: p.url,
            ok: p.ok,
            status: p.status,
            latency_ms: p.latency_ms,
            error: p.error,
        })
        .collect();
    StackStatus {
        project: status.project,
        healthy: status.healthy,
        services: rows,
        endpoints,
        last_backup: None,
        release: None,
        binlog_archive: None,
    }
}

fn task_row(s: &ServiceState, t: &TaskState) -> ServiceStatus {
    let running = t.state == "running";
    let uptime = chrono::DateTime::parse_from_rfc3339(&t.since)
        .ok()
        .filter(|_| running)
        .map(|at| {
            (chrono::Utc::now() - at.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0) as u64
        });
    let name = match (s.tasks.len(), t.slot) {
        (1, _) => s.service.clone(),
        (_, Some(slot)) => format!("{}.{slot}", s.service),
        (_, None) => format!("{}.{}", s.service, &t.id[..t.id.len().min(12)]),
    };
    let mut row = ServiceStatus::without_container(&name, s.image.clone(), &t.state, false);
    row.container = t.container_id.clone();
    row.health = t.health.clone();
    row.version = s.image.rsplit_once(':').map(|(_, tag)| tag.to_string());
    row.uptime_s = uptime;
    row.healthy = running && t.health != "starting";
    row.node = Some(NodeRef {
        id: t.node_id.clone(),
        hostname: t.node.clone(),
    });
    row
}

/// A service without a task (scaled to zero, or not placeable): one row says so.
fn no_task_row(s: &ServiceState) -> ServiceStatus {
    let state = match s.replicas.desired {
        0 => "scaled to 0",
        _ => "no task",
    };
    ServiceStatus::without_container(&s.service, s.image.clone(), state, s.replicas.desired == 0)
}

/// The engine reports a task with a health check as running only once it is healthy.
fn task_health(t: &TaskInfo, checked: bool) -> String {
    match (t.state.as_str(), checked) {
        ("running", true) => "healthy".into(),
        ("running", false) => "none".into(),
        ("starting", _) => "starting".into(),
        (other, _) => other.into(),
    }
}

fn node_state(n: NodeInfo, data_label: &str) -> NodeState {
    NodeState {
        data: n.labels.contains_key(data_label),
        node: n,
    }
}

/// Services that publish nothing on swarm, probed from a one-off container on the
/// manager attached to Nginx's overlay network (attachable for this).
/// (The API is probed through Nginx's published port, the path clients take.)
const INSIDE: [(&str, &str, u16, &str); 3] = [
    ("prometheus", "pricescan-prometheus", 9090, "/-/healthy"),
    ("grafana", "pricescan-grafana", 3000, "/api/health"),
    ("alertmanager", "pricescan-alertmanager", 9093, "/-/healthy"),
];

async fn probe_inside(stack: &Stack<'_>, edge: Option<&ServicePlan>, states: &[ServiceState]) -> Vec<Probe> {
    let running = |service: &str| {
        states
            .iter()
            .any(|s| s.service == service && s.replicas.running > 0)
    };
    let wanted: Vec<(&str, String)> = INSIDE
        .iter()
        .filter(|(_, service, _, _)| running(service))
        .map(|(name, service, port, path)| (*name, format!("http://{service}:{port}{path}")))
        .collect();
    let Some(edge) = edge else {
        return Vec::new();
    };
    let Some((network, _)) = edge.networks.first() else {
        return Vec::new();
    };
    if wanted.is_empty() || !running(EDGE_SERVICE) {
        return Vec::new();
    }
    let script: String = wanted
        .iter()
        .map(|(name, url)| {
            format!("printf '{name} '; curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}\\n' --max-time 3 {url} || echo; ")
        })
        .collect();
    let run = run_inside(stack, states, &edge.image, network, &script).await;
    let lines = match run {
        Ok((_, lines)) => lines,
        Err(e) => {
            return wanted
                .iter()
                .map(|(name, url)| failed(name, url, &e.what))
                .collect();
        }
    };
    wanted
        .iter()
        .map(|(name, url)| {
            let answer = lines
                .iter()
                .find_map(|l| l.trim().strip_prefix(&format!("{name} ")));
            let mut parts = answer.unwrap_or("").split_whitespace();
            let status = parts
                .next()
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| *c != 0);
            let seconds: f64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0.0);
            match status {
                Some(code) => Probe {
                    name: name.to_string(),
                    url: url.clone(),
                    ok: (200..300).contains(&code),
                    status: Some(code),
                    error: None,
                    latency_ms: seconds * 1000.0,
                },
                None => failed(name, url, "no answer from inside the overlay network"),
            }
        })
        .collect()
}

/// In the Nginx task when it runs on this engine (an exec, milliseconds), else in a
/// one-off container attached to the overlay network.
async fn run_inside(
    stack: &Stack<'_>,
    states: &[ServiceState],
    image: &str,
    network: &str,
    script: &str,
) -> Result<(i64, Vec<String>)> {
    let local = states
        .iter()
        .filter(|s| s.service == EDGE_SERVICE)
        .flat_map(|s| s.tasks.iter())
        .filter(|t| t.state == "running")
        .filter_map(|t| t.container_id.as_deref());
    for id in local {
        if let Ok(out) = stack.engine.exec(id, &["sh", "-c", script]).await {
            return Ok((out.exit_code, out.stdout.lines().map(str::to_string).collect()));
        }
    }
    stack
        .engine
        .run_attached(&stack.project.name, image, network, script)
        .await
}

fn failed(name: &str, url: &str, why: &str) -> Probe {
    Probe {
        name: name.to_string(),
        url: url.to_string(),
        ok: false,
        status: None,
        error: Some(why.to_string()),
        latency_ms: 0.0,
    }
}

/// The API's `/health` through Nginx, at each node that runs an Nginx task, on the port it
/// publishes: the path clients take.
async fn probe_edge(plan: Option<&ServicePlan>, states: &[ServiceState], nodes: &[NodeState]) -> Vec<Probe> {
    let Some(edge) = states.iter().find(|s| s.service == EDGE_SERVICE) else {
        return Vec::new();
    };
    let Some(plan) = plan else {
        return Vec::new();
    };
    let Some(port) = plan.ports.iter().find(|p| p.target == 80) else {
        return Vec::new();
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build();
    let Ok(client) = client else { return Vec::new() };
    let mut probes = Vec::new();
    for task in edge.tasks.iter().filter(|t| t.state == "running") {
        let Some(node) = nodes.iter().map(|n| &n.node).find(|n| n.id == task.node_id) else {
            continue;
        };
        let url = format!("http://{}:{}/health", node.addr, port.published);
        let started = Instant::now();
        let answer = client.get(&url).send().await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        probes.push(match answer {
            Ok(r) => Probe {
                name: format!("api via nginx on {}", node.hostname),
                url,
                ok: r.status().is_success(),
                status: Some(r.status().as_u16()),
                error: None,
                latency_ms,
            },
            Err(e) => Probe {
                name: format!("api via nginx on {}", node.hostname),
                url,
                ok: false,
                status: None,
                error: Some(e.to_string()),
                latency_ms,
            },
        });
    }
    probes
}
