//! The state of the stack in one pass: containers, health, resources, drift, endpoint
//! probes, last backup and release. Every engine call and probe runs concurrently.

use crate::deploy::converge::current_container;
use crate::engine::{ContainerDetail, ContainerInfo, Engine, PublishedPort, Sample, labels};
use crate::error::Result;
use crate::stack::Project;
use futures_util::future::join_all;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// A probe that takes longer than this has failed; status must stay well under a second.
const PROBE_TIMEOUT: Duration = Duration::from_millis(600);

#[derive(Debug, Clone, Serialize)]
pub struct StackStatus {
    pub project: String,
    pub healthy: bool,
    pub services: Vec<ServiceStatus>,
    pub endpoints: Vec<Endpoint>,
    pub last_backup: Option<Backup>,
    pub release: Option<String>,
    /// The binlog archive, when point-in-time recovery is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binlog_archive: Option<ArchiveState>,
}

/// How the binlog archive stands against MySQL (DESIGN §13).
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveState {
    pub files: usize,
    /// Bytes of MySQL's binary log not archived yet; None when it cannot be compared.
    pub lag_bytes: Option<u64>,
    pub gap: Option<String>,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub container: Option<String>,
    /// running, exited, created, restarting... or missing when no container exists.
    pub state: String,
    /// healthy, unhealthy, starting, or none when the service has no health check.
    pub health: String,
    pub image: String,
    pub version: Option<String>,
    pub uptime_s: Option<u64>,
    pub restarts: u64,
    pub ports: Vec<PublishedPort>,
    /// CPU use averaged since the container started, in percent of one core. (`monitor`
    /// shows live rates: the engine gives one sample per container per second.)
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub drift: bool,
    pub drift_reason: Option<String>,
    pub healthy: bool,
    /// The swarm node that runs this task (swarm target only; on one host, absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeRef>,
}

impl ServiceStatus {
    /// A row with nothing running to read: the state says why.
    pub fn without_container(service: &str, image: String, state: &str, healthy: bool) -> Self {
        ServiceStatus {
            service: service.to_string(),
            container: None,
            state: state.into(),
            health: "none".into(),
            version: None,
            image,
            uptime_s: None,
            restarts: 0,
            ports: Vec::new(),
            cpu_percent: None,
            memory_bytes: None,
            memory_limit_bytes: None,
            drift: false,
            drift_reason: None,
            healthy,
            node: None,
        }
    }
}

/// A swarm node, named as operators see it: ID (hostnames can repeat) and hostname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    pub id: String,
    pub hostname: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    pub name: String,
    pub url: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    pub id: String,
    pub age_s: u64,
}

/// Whether to read CPU and memory. The engine samples every container on one timer and
/// sleeps a second between rounds, so a sample costs up to a second: status skips it unless
/// asked (`--stats`), and `monitor` streams it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resources {
    Skip,
    Sample,
}

/// Longest wait for a sample: one engine round plus slack.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn collect(
    engine: &Engine,
    project: &Project,
    selected: &[String],
    resources: Resources,
) -> Result<StackStatus> {
    let (containers, endpoints) = tokio::join!(engine.project_containers(&project.name), probe_all(project));
    let containers = containers?;
    // Drift is measured against the release that serves, not the compose file's image.
    let mut project = project.clone();
    crate::deploy::release::adopt_serving(&mut project, &containers);
    let project = &project;
    let rows = join_all(
        selected
            .iter()
            .map(|s| service_status(engine, project, s, current_container(&containers, s), resources)),
    );
    let (rows, binlog_archive) = tokio::join!(rows, archive_state(engine, project, &containers));
    let services: Vec<ServiceStatus> = rows.into_iter().collect::<Result<_>>()?;
    let release = containers
        .iter()
        .filter(|c| c.is_running())
        .find_map(|c| c.labels.get(labels::RELEASE).cloned());
    Ok(StackStatus {
        project: project.name.clone(),
        healthy: services.iter().all(|s| s.healthy),
        services,
        endpoints,
        last_backup: last_backup(project),
        release,
        binlog_archive,
    })
}

/// The archive's files, gap and lag, read within the probes' time: status stays fast.
async fn archive_state(
    engine: &Engine,
    project: &Project,
    containers: &[ContainerInfo],
) -> Option<ArchiveState> {
    use crate::backup::binlog;
    if !crate::stack::pitr::enabled(&project.env) {
        return None;
    }
    let problem = |p: &str| ArchiveState {
        files: 0,
        lag_bytes: None,
        gap: None,
        problem: Some(p.to_string()),
    };
    let Some(archiver) = running(containers, crate::stack::pitr::ARCHIVER_SERVICE) else {
        return Some(problem("pricescan-binlog is not running: nothing is archived"));
    };
    let read = async {
        let archive = binlog::list(engine, &archiver.id).await.ok()?;
        let lag = match running(containers, crate::backup::catalog::MYSQL_SERVICE) {
            Some(mysql) => binlog::lag(engine, &mysql.id, &archive).await,
            None => None,
        };
        Some(ArchiveState {
            files: archive.files.len(),
            lag_bytes: lag,
            gap: archive.gaps.last().cloned(),
            problem: None,
        })
    };
    match tokio::time::timeout(SAMPLE_TIMEOUT, read).await {
        Ok(Some(state)) => Some(state),
        Ok(None) => Some(problem("cannot read the binlog archive")),
        Err(_) => Some(problem("the binlog archive did not answer in time")),
    }
}

fn running<'c>(containers: &'c [ContainerInfo], service: &str) -> Option<&'c ContainerInfo> {
    current_container(containers, service).filter(|c| c.is_running())
}

async fn service_status(
    engine: &Engine,
    project: &Project,
    service: &str,
    container: Option<&ContainerInfo>,
    resources: Resources,
) -> Result<ServiceStatus> {
    let image = project.service(service).image.clone().unwrap_or_default();
    let Some(c) = container else {
        return Ok(ServiceStatus::without_container(service, image, "missing", false));
    };
    // One sample only: the engine answers a second one for the same container no sooner than
    // a second later, and status must answer well under a second.
    let sampled = async {
        match c.is_running() && resources == Resources::Sample {
            true => tokio::time::timeout(SAMPLE_TIMEOUT, engine.sample(&c.id))
                .await
                .ok()
                .transpose(),
            false => Ok(None),
        }
    };
    let (detail, sample, image_id) = tokio::join!(engine.inspect(&c.id), sampled, engine.image_id(&image));
    let detail = detail?;
    // A container that went away between the listing and the sample is simply not running.
    let sample = sample.unwrap_or(None);
    let drift_reason = drift(project, service, c, image_id?.as_deref());
    Ok(row(service, image, c, &detail, sample, drift_reason))
}

fn row(
    service: &str,
    image: String,
    c: &ContainerInfo,
    d: &ContainerDetail,
    sample: Option<Sample>,
    drift_reason: Option<String>,
) -> ServiceStatus {
    let uptime = d
        .started_at
        .filter(|_| d.running)
        .map(|t| (chrono::Utc::now() - t).num_seconds().max(0) as u64);
    let version = d
        .labels
        .get("org.opencontainers.image.version")
        .cloned()
        .or_else(|| image.rsplit_once(':').map(|(_, tag)| tag.to_string()));
    ServiceStatus {
        service: service.to_string(),
        container: Some(c.name.clone()),
        state: d.status.clone(),
        health: d.health.clone().unwrap_or_else(|| "none".into()),
        image,
        version,
        uptime_s: uptime,
        restarts: d.restarts,
        ports: c.ports.clone(),
        cpu_percent: sample.zip(uptime).map(|(s, up)| average_cpu(s.cpu_total, up)),
        memory_bytes: sample.map(|s| s.memory_used),
        memory_limit_bytes: sample.map(|s| s.memory_limit),
        drift: drift_reason.is_some(),
        drift_reason,
        healthy: d.is_ready(),
        node: None,
    }
}

/// CPU time over wall time since the container started, in percent of one core.
fn average_cpu(cpu_ns: u64, uptime_s: u64) -> f64 {
    let pct = cpu_ns as f64 / (uptime_s.max(1) as f64 * 1e9) * 100.0;
    (pct * 10.0).round() / 10.0
}

fn drift(project: &Project, service: &str, c: &ContainerInfo, image_id: Option<&str>) -> Option<String> {
    let hash = project.config_hash(service).ok();
    if hash.as_ref() != c.labels.get(labels::CONFIG_HASH) {
        return Some("configuration changed".into());
    }
    match image_id {
        Some(id) if id != c.image_id => Some("image changed".into()),
        None => Some("image missing".into()),
        _ => None,
    }
}

/// The HTTP endpoints an operator cares about, from the published ports in the model.
/// The URL of the API's health through Nginx, when the stack publishes Nginx.
pub fn api_probe_url(project: &Project) -> Option<String> {
    endpoints(project)
        .into_iter()
        .find(|(name, _)| name == "api via nginx")
        .map(|(_, url)| url)
}

/// `http://127.0.0.1:PORT`: where the stack's Nginx answers HTTP on this host.
pub fn nginx_base_url(project: &Project) -> Option<String> {
    api_probe_url(project).map(|u| u.trim_end_matches("/health").to_string())
}

fn endpoints(project: &Project) -> Vec<(String, String)> {
    let active = project.active_services();
    let url = |service: &str, target: u16, path: &str| -> Option<String> {
        if !active.iter().any(|s| s == service) {
            return None;
        }
        let port = project
            .service(service)
            .ports
            .iter()
            .find(|p| p.target == target)?;
        let host = match port.host_ip.as_deref() {
            None | Some("0.0.0.0") | Some("") => "127.0.0.1",
            Some("::") => "[::1]",
            Some(ip) => ip,
        };
        Some(format!("http://{host}:{}{path}", port.published?))
    };
    [
        ("api via nginx", url("pricescan-nginx", 80, "/health")),
        ("api on :8000", url("pricescan-nginx", 8000, "/health")),
        ("prometheus", url("pricescan-prometheus", 9090, "/-/healthy")),
        ("grafana", url("pricescan-grafana", 3000, "/api/health")),
        ("alertmanager", url("pricescan-alertmanager", 9093, "/-/healthy")),
    ]
    .into_iter()
    .filter_map(|(name, url)| Some((name.to_string(), url?)))
    .collect()
}

async fn probe_all(project: &Project) -> Vec<Endpoint> {
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .unwrap_or_default();
    join_all(endpoints(project).into_iter().map(|(name, url)| {
        let client = client.clone();
        async move {
            let start = Instant::now();
            let result = client.get(&url).send().await;
            let latency_ms = (start.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
            match result {
                Ok(r) => Endpoint {
                    ok: r.status().is_success(),
                    status: Some(r.status().as_u16()),
                    error: None,
                    name,
                    url,
                    latency_ms,
                },
                Err(e) => {
                    let error = if e.is_timeout() {
                        "timed out".to_string()
                    } else {
                        "connection failed".to_string()
                    };
                    Endpoint {
                        ok: false,
                        status: None,
                        error: Some(error),
                        name,
                        url,
                        latency_ms,
                    }
                }
            }
        }
    }))
    .await
}

/// The newest finished backup (`<UTC time>-<reason>` directories; `.partial` ones are not).
fn last_backup(project: &Project) -> Option<Backup> {
    let dir = project
        .env
        .get("BACKUP_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "./backups".into());
    let dir = crate::stack::resolve_path(&project.dir, Path::new(&dir));
    let newest = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| {
            let stamp = n.split('-').next()?;
            let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
            Some((t, n))
        })
        .max()?;
    let age = (chrono::Utc::now().naive_utc() - newest.0).num_seconds().max(0) as u64;
    Some(Backup {
        id: newest.1,
        age_s: age,
    })
}
