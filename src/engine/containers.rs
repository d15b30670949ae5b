//! Containers of a project: listing, inspecting, creating, starting, stopping, removing,
//! exec, log tails and resource samples.

use super::client::Engine;
use super::errors::engine_error;
use super::labels;
use super::spec::ContainerPlan;
use crate::error::{CtlError, Result};
use bollard::errors::Error;
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// A container as listed.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub state: String,
    pub image_id: String,
    pub labels: HashMap<String, String>,
    pub ports: Vec<PublishedPort>,
    pub created: i64,
    /// Its IP address on each network it is attached to.
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishedPort {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl ContainerInfo {
    pub fn is_oneoff(&self) -> bool {
        self.labels.get(labels::ONEOFF).is_some_and(|v| v != "False")
    }

    pub fn is_running(&self) -> bool {
        self.state == "running" || self.state == "restarting"
    }
}

/// A container as inspected.
#[derive(Debug, Clone, Default)]
pub struct ContainerDetail {
    pub id: String,
    pub name: String,
    pub status: String,
    pub running: bool,
    /// healthy, unhealthy, starting; None when the container has no health check.
    pub health: Option<String>,
    pub exit_code: i64,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub restarts: u64,
    pub image_id: String,
    pub labels: HashMap<String, String>,
    pub last_health_output: Option<String>,
    /// The logging driver and its options (`max-size` is what rotates json-file logs).
    pub log_driver: String,
    pub log_options: HashMap<String, String>,
}

impl ContainerDetail {
    /// Running, and healthy if it has a health check.
    pub fn is_ready(&self) -> bool {
        self.running && self.health.as_deref().is_none_or(|h| h == "healthy")
    }
}

/// One resource sample; two of them give rates.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub cpu_total: u64,
    pub system_total: u64,
    pub online_cpus: u32,
    pub memory_used: u64,
    pub memory_limit: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub block_read: u64,
    pub block_write: u64,
}

impl Sample {
    /// CPU use between two samples, in percent of one core (as `docker stats`).
    pub fn cpu_percent_since(&self, earlier: &Sample) -> f64 {
        let cpu = self.cpu_total.saturating_sub(earlier.cpu_total) as f64;
        let system = self.system_total.saturating_sub(earlier.system_total) as f64;
        if system <= 0.0 {
            return 0.0;
        }
        cpu / system * f64::from(self.online_cpus.max(1)) * 100.0
    }
}

impl From<bollard::models::ContainerStatsResponse> for Sample {
    fn from(stats: bollard::models::ContainerStatsResponse) -> Self {
        let cpu = stats.cpu_stats.unwrap_or_default();
        let memory = stats.memory_stats.unwrap_or_default();
        // Page cache is reclaimable; `docker stats` leaves it out too.
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| s.get("total_inactive_file").or(s.get("inactive_file")).copied())
            .unwrap_or(0);
        let (rx, tx) = stats
            .networks
            .unwrap_or_default()
            .values()
            .fold((0, 0), |(rx, tx), n| {
                (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
            });
        let blkio = stats
            .blkio_stats
            .and_then(|b| b.io_service_bytes_recursive)
            .unwrap_or_default();
        let sum = |op: &str| {
            blkio
                .iter()
                .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                .map(|e| e.value.unwrap_or(0))
                .sum()
        };
        Sample {
            cpu_total: cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0),
            system_total: cpu.system_cpu_usage.unwrap_or(0),
            online_cpus: cpu.online_cpus.unwrap_or(1),
            memory_used: memory.usage.unwrap_or(0).saturating_sub(cache),
            memory_limit: memory.limit.unwrap_or(0),
            rx_bytes: rx,
            tx_bytes: tx,
            block_read: sum("read"),
            block_write: sum("write"),
        }
    }
}

/// What an exec printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

/// How long an exec may run unless its caller names another deadline.
pub const EXEC_DEADLINE: Duration = Duration::from_secs(60);
/// How long past its grace period a stop may take before the engine counts as hung.
const STOP_MARGIN: Duration = Duration::from_secs(30);

/// The error of a call that outlived its deadline, naming both.
pub fn deadline_error(what: &str, deadline: Duration) -> CtlError {
    CtlError::failure(format!(
        "{what} did not finish within its deadline of {}",
        humantime::format_duration(deadline)
    ))
    .hint("the container or the engine may be hung: check `pricescan-ctl status` and `pricescan-ctl logs`")
}

/// A command for an error line: its script, shortened (scripts carry no secrets, only
/// names of variables).
fn shown(cmd: &[&str]) -> String {
    let text = cmd.last().copied().unwrap_or_default().replace('\n', " ");
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub(super) fn is_status(e: &Error, code: u16) -> bool {
    matches!(e, Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

impl Engine {
    /// Every container of the project, one-off ones excluded, stopped ones included.
    pub async fn project_containers(&self, project: &str) -> Result<Vec<ContainerInfo>> {
        let all = self.all_project_containers(project).await?;
        Ok(all.into_iter().filter(|c| !c.is_oneoff()).collect())
    }

    /// The project's one-off containers (migrations, verifies, the lock), stopped ones included.
    pub async fn oneoff_containers(&self, project: &str) -> Result<Vec<ContainerInfo>> {
        let all = self.all_project_containers(project).await?;
        Ok(all.into_iter().filter(ContainerInfo::is_oneoff).collect())
    }

    /// Every container attached to `network`, whoever made it.
    pub async fn network_containers(&self, network: &str) -> Result<Vec<ContainerInfo>> {
        self.list(HashMap::from([(
            "network".to_string(),
            vec![network.to_string()],
        )]))
        .await
    }

    async fn all_project_containers(&self, project: &str) -> Result<Vec<ContainerInfo>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{}={project}", labels::PROJECT)],
        )]);
        self.list(filters).await
    }

    async fn list(&self, filters: HashMap<String, Vec<String>>) -> Result<Vec<ContainerInfo>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine_error("cannot list containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                ContainerInfo {
                    id: c.id.unwrap_or_default(),
                    name: c
                        .names
                        .unwrap_or_default()
                        .first()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .unwrap_or_default(),
                    service: labels.get(labels::SERVICE).cloned().unwrap_or_default(),
                    number: labels
                        .get(labels::NUMBER)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    image_id: c.image_id.unwrap_or_default(),
                    ports: c
                        .ports
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|p| {
                            Some(PublishedPort {
                                host_ip: p.ip.unwrap_or_default(),
                                host_port: p.public_port?,
                                container_port: p.private_port,
                                protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
                            })
                        })
                        .collect(),
                    created: c.created.unwrap_or(0),
                    addresses: addresses(c.network_settings),
                    labels,
                }
            })
            .collect())
    }

    pub async fn inspect(&self, id: &str) -> Result<ContainerDetail> {
        let c = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error(&format!("cannot inspect container {id}"), e))?;
        let state = c.state.unwrap_or_default();
        let health = state.health.clone().unwrap_or_default();
        let health_status = health.status.and_then(|s| match s {
            HealthStatusEnum::HEALTHY => Some("healthy"),
            HealthStatusEnum::UNHEALTHY => Some("unhealthy"),
            HealthStatusEnum::STARTING => Some("starting"),
            _ => None,
        });
        let log = c
            .host_config
            .as_ref()
            .and_then(|h| h.log_config.clone())
            .unwrap_or_default();
        let started_at = state
            .started_at
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .filter(|d| d.timestamp() > 0);
        Ok(ContainerDetail {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_string(),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false)
                && state.status != Some(ContainerStateStatusEnum::RESTARTING),
            health: health_status.map(str::to_string),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            started_at,
            restarts: c.restart_count.unwrap_or(0).max(0) as u64,
            image_id: c.image.unwrap_or_default(),
            labels: c.config.and_then(|cfg| cfg.labels).unwrap_or_default(),
            last_health_output: health
                .log
                .and_then(|log| log.last().and_then(|r| r.output.clone())),
            log_driver: log.typ.unwrap_or_default(),
            log_options: log.config.unwrap_or_default(),
        })
    }

    /// The image id a reference points at now, if the image exists.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => Ok(img.id),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(engine_error(&format!("cannot inspect image {reference}"), e)),
        }
    }

    /// Creates the container and joins it to all its networks; it is not started.
    pub async fn create(&self, plan: &ContainerPlan) -> Result<String> {
        let options = CreateContainerOptionsBuilder::default().name(&plan.name).build();
        let what = || format!("cannot create container {} for {}", plan.name, plan.service);
        let mut body = plan.body.clone();
        if let Some(l) = body
            .labels
            .as_mut()
            .filter(|l| l.get(labels::ONEOFF).is_some_and(|v| v == "True"))
        {
            l.extend(self.owner.clone());
        }
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| {
                let err = engine_error(&what(), e);
                match err
                    .causes
                    .iter()
                    .any(|c| c.contains("bind source path does not exist"))
                {
                    true => err.hint("a bind-mounted config directory is missing: run `pricescan-ctl setup`"),
                    false => err,
                }
            })?;
        for (network, endpoint) in &plan.extra_networks {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint.clone()),
            };
            if let Err(e) = self.docker.connect_network(network, request).await {
                let _ = self.remove(&created.id).await;
                return Err(engine_error(
                    &format!("cannot connect {} to network {network}", plan.name),
                    e,
                ));
            }
        }
        Ok(created.id)
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 304) => Ok(()),
            Err(e) => {
                let err = engine_error(&format!("cannot start container {id}"), e);
                match err.causes.iter().any(|c| c.contains("rlimit")) {
                    true => Err(err.hint(
                        "a ulimit is above what the Docker daemon may grant: lower it (e.g. MYSQL_NOFILE)",
                    )),
                    false => Err(err),
                }
            }
        }
    }

    /// Stops gracefully: the stop signal, then SIGKILL after `grace` (the engine's default of
    /// 10 s without one). An engine that has not answered well after that is an error.
    pub async fn stop(&self, id: &str, grace: Option<Duration>) -> Result<()> {
        let mut options = StopContainerOptionsBuilder::default();
        if let Some(g) = grace {
            options = options.t(g.as_secs().min(i32::MAX as u64) as i32);
        }
        let deadline = grace.unwrap_or(Duration::from_secs(10)) + STOP_MARGIN;
        let stop = self.docker.stop_container(id, Some(options.build()));
        match tokio::time::timeout(deadline, stop).await {
            Err(_) => Err(deadline_error(&format!("stopping {}", short(id)), deadline)),
            Ok(Ok(())) => {
                self.wait_released(id).await;
                Ok(())
            }
            Ok(Err(e)) if is_status(&e, 304) || is_status(&e, 404) => Ok(()),
            Ok(Err(e)) => Err(engine_error(&format!("cannot stop container {id}"), e)),
        }
    }

    /// The engine answers a stop once the process is gone, and releases the container's
    /// network endpoints just after; until then Docker's DNS still resolves the service name
    /// to it, and an Nginx reloaded in that window would send requests to a dead address.
    async fn wait_released(&self, id: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let Ok(c) = self.docker.inspect_container(id, None).await else {
                return;
            };
            let attached = c
                .network_settings
                .and_then(|n| n.networks)
                .unwrap_or_default()
                .values()
                .any(|n| n.endpoint_id.as_deref().is_some_and(|e| !e.is_empty()));
            if !attached {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Gives a container another name (a stopped one set aside while its successor starts).
    pub async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let options = bollard::query_parameters::RenameContainerOptionsBuilder::default()
            .name(name)
            .build();
        self.docker
            .rename_container(id, options)
            .await
            .map_err(|e| engine_error(&format!("cannot rename container {} to {name}", short(id)), e))
    }

    /// Freezes a container's processes: connections to it wait instead of failing.
    pub async fn pause(&self, id: &str) -> Result<()> {
        self.docker
            .pause_container(id)
            .await
            .map_err(|e| engine_error(&format!("cannot pause container {id}"), e))
    }

    /// Thaws a paused container; one that is not paused is left as it is.
    pub async fn unpause(&self, id: &str) -> Result<()> {
        if self.inspect(id).await?.status != "paused" {
            return Ok(());
        }
        self.docker
            .unpause_container(id)
            .await
            .map_err(|e| engine_error(&format!("cannot unpause container {id}"), e))
    }

    /// Removes a container with its anonymous volumes (a throwaway MySQL leaves one);
    /// named volumes, which hold the data, are never removed.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(engine_error(&format!("cannot remove container {id}"), e)),
        }
    }

    /// The last `lines` lines of a container's output, stdout and stderr together.
    pub async fn log_tail(&self, id: &str, lines: usize) -> Result<Vec<String>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker.logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| engine_error(&format!("cannot read logs of {id}"), e))?;
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Runs a command in a running container and collects its output, within
    /// `EXEC_DEADLINE`. No TTY, so stdout and stderr stay apart; nothing secret goes in `cmd`.
    pub async fn exec(&self, id: &str, cmd: &[&str]) -> Result<ExecOutput> {
        self.exec_within(id, cmd, EXEC_DEADLINE).await
    }

    /// `exec` with its own deadline; a command still running then is an error that names it.
    pub async fn exec_within(&self, id: &str, cmd: &[&str], deadline: Duration) -> Result<ExecOutput> {
        tokio::time::timeout(deadline, self.exec_unbounded(id, cmd))
            .await
            .map_err(|_| deadline_error(&format!("`{}` in {}", shown(cmd), short(id)), deadline))?
    }

    async fn exec_unbounded(&self, id: &str, cmd: &[&str]) -> Result<ExecOutput> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let what = || format!("cannot run {} in {id}", cmd.join(" "));
        let config = CreateExecOptions {
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(id, config)
            .await
            .map_err(|e| engine_error(&what(), e))?;
        let mut out = ExecOutput {
            exit_code: -1,
            stdout: String::new(),
            stderr: String::new(),
        };
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| engine_error(&what(), e))?
        {
            while let Some(chunk) = output.next().await {
                match chunk.map_err(|e| engine_error(&what(), e))? {
                    bollard::container::LogOutput::StdErr { message } => {
                        out.stderr.push_str(&String::from_utf8_lossy(&message))
                    }
                    other => out.stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
                }
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| engine_error(&what(), e))?;
        out.exit_code = inspect.exit_code.unwrap_or(-1);
        Ok(out)
    }

    /// One resource sample, read without waiting for the engine's own one-second window.
    pub async fn sample(&self, id: &str) -> Result<Sample> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(options));
        let stats = match stream.next().await {
            Some(s) => s.map_err(|e| engine_error(&format!("cannot read stats of {id}"), e))?,
            None => return Err(CtlError::failure(format!("no stats for container {id}"))),
        };
        Ok(Sample::from(stats))
    }
}

fn addresses(settings: Option<bollard::models::ContainerSummaryNetworkSettings>) -> Vec<String> {
    settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .into_values()
        .filter_map(|n| n.ip_address.filter(|ip| !ip.is_empty()))
        .collect()
}
