//! The stack as swarm services (DESIGN §11): each compose service translated the way
//! `docker stack deploy` does, plus what a cluster without a shared disk and without IPVS
//! needs. Config files travel as swarm configs (as secrets when they hold one), secret
//! variables as `*_FILE` secrets, every service is `dnsrr`, only Nginx publishes (host
//! mode), and MySQL and Redis are pinned to the data node.

use super::compose::{Healthcheck, Logging, MountType, RestartPolicy, Ulimit, UpdateConfig};
use super::paths::resolve_path;
use super::project::Project;
use crate::error::ConfigError;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The label `docker stack deploy` puts on everything of a stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";
/// The node label that marks the project's data node: `node.labels.<this>==true`. One per
/// project, so that stacks sharing a swarm never move each other's MySQL.
pub fn data_node_label(project: &str) -> String {
    format!("io.pricescan.data.{project}")
}
/// Services whose data lives in a node-local volume, so they run on the data node only,
/// one task each. The binlog archive is data too.
pub const DATA_SERVICES: [&str; 3] = ["pricescan-mysql", "pricescan-redis", "pricescan-binlog"];
/// The only service that publishes a port on swarm.
pub const EDGE_SERVICE: &str = "pricescan-nginx";
const API_SERVICE: &str = "pricescan-api";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Config,
    Secret,
}

/// A swarm config or secret. Both are immutable, so the name carries a hash of the content:
/// a changed file is a new object, and the old one goes once no service uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct FileObject {
    pub kind: FileKind,
    pub name: String,
    /// An absolute path in the container, or a file name under /run/secrets.
    pub target: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for FileObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secret contents never reach Debug output.
        f.debug_struct("FileObject")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("target", &self.target)
            .field("bytes", &self.data.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeMount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublishedPort {
    pub published: u16,
    pub target: u16,
    pub protocol: String,
}

/// Everything a swarm service spec needs, in the model's terms.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub service: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub files: Vec<FileObject>,
    pub volumes: Vec<VolumeMount>,
    pub tmpfs: Vec<String>,
    /// Network name and aliases (the short service name first).
    pub networks: Vec<(String, Vec<String>)>,
    pub healthcheck: Option<Healthcheck>,
    pub replicas: u64,
    pub constraints: Vec<String>,
    pub cpus_limit: Option<f64>,
    pub memory_limit: Option<u64>,
    pub cpus_reserved: Option<f64>,
    pub memory_reserved: Option<u64>,
    pub update: UpdateConfig,
    pub rollback: UpdateConfig,
    pub restart: RestartPolicy,
    pub ports: Vec<PublishedPort>,
    pub stop_grace_period: Option<Duration>,
    pub stop_signal: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub init: Option<bool>,
    pub read_only: bool,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub logging: Option<Logging>,
}

/// `<project>_<service>`, as `docker stack deploy` names it.
pub fn service_name(project: &str, service: &str) -> String {
    format!("{project}_{service}")
}

/// Compose keys that Swarm ignores, named so the operator is not surprised.
pub fn ignored_keys(project: &Project, service: &str) -> Vec<String> {
    let raw = project.raw.get("services").and_then(|s| s.get(service));
    ["depends_on", "container_name", "restart", "links"]
        .iter()
        .filter(|k| raw.and_then(|r| r.get(**k)).is_some())
        .map(|k| format!("services.{service}.{k} is ignored on swarm"))
        .filter(|w| !w.ends_with(".restart is ignored on swarm"))
        .collect()
}

/// The swarm service for `service`: files are read from the project directory.
pub fn plan(project: &Project, service: &str, replicas: Option<u64>) -> Result<ServicePlan, ConfigError> {
    let svc = project.service(service);
    let at = |msg: String| ConfigError::new(format!("services.{service}: {msg}"));
    let image = svc.image.clone().ok_or_else(|| {
        at("swarm runs images only: set image: (a build cannot reach the other nodes)".into())
    })?;
    let secret_vars = secret_variables(project);
    let mut files = Vec::new();
    let env = swarm_env(project, service, &secret_vars, &mut files)?;
    let (volumes, tmpfs) = mounts(project, service, &secret_vars, &mut files)?;
    let deploy = svc.deploy.clone().unwrap_or_default();
    let is_data = DATA_SERVICES.contains(&service);
    let mut constraints = deploy.placement.constraints.clone();
    if is_data {
        constraints.push(format!("node.labels.{}==true", data_node_label(&project.name)));
    }
    let ports = published_ports(project, service);
    let mut labels = svc.labels.clone();
    labels.insert(NAMESPACE_LABEL.into(), project.name.clone());
    let limits = deploy.resources.limits.clone().unwrap_or_default();
    let reserved = deploy.resources.reservations.clone().unwrap_or_default();
    Ok(ServicePlan {
        service: service.to_string(),
        name: service_name(&project.name, service),
        image,
        labels,
        command: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        env,
        files,
        volumes,
        tmpfs,
        networks: networks(project, service),
        healthcheck: svc.healthcheck.clone().filter(|h| !h.disable),
        replicas: if is_data {
            1
        } else {
            replicas.or(deploy.replicas).unwrap_or(1)
        },
        constraints,
        cpus_limit: limits.cpus.or(svc.cpus),
        memory_limit: limits
            .memory
            .map(|m| m.bytes)
            .or(svc.mem_limit.as_ref().map(|m| m.bytes)),
        cpus_reserved: reserved.cpus,
        memory_reserved: reserved.memory.map(|m| m.bytes),
        update: deploy
            .update_config
            .clone()
            .unwrap_or_else(|| default_update(service, svc.healthcheck.as_ref())),
        rollback: deploy.rollback_config.clone().unwrap_or_default(),
        restart: deploy.restart_policy.clone().unwrap_or_else(default_restart),
        ports,
        stop_grace_period: svc.stop_grace_period.as_ref().map(|d| d.value),
        stop_signal: svc.stop_signal.clone(),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        init: svc.init,
        read_only: svc.read_only,
        ulimits: svc.ulimits.clone(),
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        logging: svc.logging.clone(),
    })
}

/// Named volumes as `<project>_<volume>` (created on the node that runs the task),
/// anonymous ones as tmpfs, and bind-mounted files as configs or secrets into `files`.
fn mounts(
    project: &Project,
    service: &str,
    secret_vars: &BTreeMap<String, String>,
    files: &mut Vec<FileObject>,
) -> Result<(Vec<VolumeMount>, Vec<String>), ConfigError> {
    let svc = project.service(service);
    let mut volumes = Vec::new();
    let mut tmpfs = svc.tmpfs.clone();
    for mount in &svc.volumes {
        match (mount.kind, &mount.source) {
            (MountType::Volume, Some(source)) => volumes.push(VolumeMount {
                source: project.volume_name(source),
                target: mount.target.clone(),
                read_only: mount.read_only,
            }),
            (MountType::Volume, None) | (MountType::Tmpfs, _) => tmpfs.push(mount.target.clone()),
            (MountType::Bind, Some(source)) => {
                files.extend(mounted_files(project, source, &mount.target, secret_vars)?)
            }
            (MountType::Bind, None) => {}
        }
    }
    Ok((volumes, tmpfs))
}

/// Only Nginx publishes on swarm, and never on loopback (swarm cannot bind an address).
fn published_ports(project: &Project, service: &str) -> Vec<PublishedPort> {
    if service != EDGE_SERVICE {
        return Vec::new();
    }
    project
        .service(service)
        .ports
        .iter()
        .filter(|p| !p.host_ip.as_deref().is_some_and(is_loopback))
        .filter_map(|p| {
            p.published.map(|published| PublishedPort {
                published,
                target: p.target,
                protocol: p.protocol.clone(),
            })
        })
        .collect()
}

fn is_loopback(ip: &str) -> bool {
    ip.starts_with("127.") || ip == "::1" || ip == "localhost"
}

/// The API rolls start-first and rolls back on failure, watched for as long as its health
/// check needs to declare a task unhealthy. Stateful services stop first: two MySQL tasks
/// must never share a data directory.
fn default_update(service: &str, health: Option<&Healthcheck>) -> UpdateConfig {
    if service != API_SERVICE {
        return UpdateConfig {
            order: Some("stop-first".into()),
            ..UpdateConfig::default()
        };
    }
    let monitor = health.map(|h| {
        let interval = h.interval.as_ref().map_or(Duration::from_secs(30), |d| d.value);
        // Saturating: a huge interval in the file must not overflow here.
        interval
            .saturating_mul(h.retries.unwrap_or(3))
            .saturating_add(h.start_period.as_ref().map_or(Duration::ZERO, |d| d.value))
    });
    UpdateConfig {
        parallelism: Some(1),
        order: Some("start-first".into()),
        failure_action: Some("rollback".into()),
        monitor: monitor.map(|m| super::compose::ComposeDuration {
            text: humantime::format_duration(m).to_string(),
            value: m,
        }),
        ..UpdateConfig::default()
    }
}

fn default_restart() -> RestartPolicy {
    RestartPolicy {
        condition: Some("any".into()),
        delay: Some(super::compose::ComposeDuration {
            text: "5s".into(),
            value: Duration::from_secs(5),
        }),
        ..RestartPolicy::default()
    }
}

fn networks(project: &Project, service: &str) -> Vec<(String, Vec<String>)> {
    let svc = project.service(service);
    project
        .service_networks(service)
        .into_iter()
        .map(|key| {
            let mut aliases = vec![service.to_string()];
            if let Some(n) = svc.networks.get(&key) {
                aliases.extend(n.aliases.iter().cloned());
            }
            (project.network_name(&key), aliases)
        })
        .collect()
}

/// Secret variables of `.env.prod` with a value: name → value.
fn secret_variables(project: &Project) -> BTreeMap<String, String> {
    project
        .env
        .entries
        .iter()
        .filter(|e| crate::error::is_secret_key(&e.key))
        .filter_map(|e| project.env.get(&e.key).map(|v| (e.key.clone(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The official images read `X_FILE` for a secret `X` (Grafana: `X__FILE`).
fn file_variable(key: &str) -> String {
    if key.starts_with("GF_") {
        format!("{key}__FILE")
    } else {
        format!("{key}_FILE")
    }
}

fn swarm_env(
    project: &Project,
    service: &str,
    secret_vars: &BTreeMap<String, String>,
    files: &mut Vec<FileObject>,
) -> Result<Vec<String>, ConfigError> {
    let mut env = Vec::new();
    for (key, value) in project.container_env(service)? {
        let exact = secret_vars.iter().find(|(_, v)| **v == value);
        if let Some((var, secret)) = exact {
            files.push(FileObject {
                kind: FileKind::Secret,
                name: object_name(&project.name, var, secret.as_bytes()),
                target: var.clone(),
                data: secret.as_bytes().to_vec(),
            });
            env.push(format!("{}=/run/secrets/{var}", file_variable(&key)));
            continue;
        }
        if let Some((var, _)) = secret_vars.iter().find(|(_, v)| value.contains(v.as_str())) {
            return Err(ConfigError::new(format!(
                "services.{service}.environment.{key} holds the secret {var} inside a longer value"
            ))
            .hint("on swarm secrets reach a service as files only: pass the secret alone, read from a *_FILE variable"));
        }
        env.push(format!("{key}={value}"));
    }
    Ok(env)
}

/// Each file under a bind-mounted host path becomes a config mounted at the same place, or
/// a secret when it holds a secret value.
fn mounted_files(
    project: &Project,
    source: &str,
    target: &str,
    secret_vars: &BTreeMap<String, String>,
) -> Result<Vec<FileObject>, ConfigError> {
    let root = resolve_path(&project.dir, Path::new(source));
    if !root.starts_with(&project.dir) {
        return Err(ConfigError::new(format!(
            "{source} is outside the project directory; swarm has no bind mounts"
        ))
        .hint("keep the files under the project directory: they travel as swarm configs"));
    }
    let mut out = Vec::new();
    for (relative, data) in read_tree(&root)? {
        let data = swarm_file(&relative, data);
        let holds_secret = secret_vars.values().any(|v| memchr_bytes(&data, v.as_bytes()));
        let rel_to_project = root.join(&relative);
        let rel_to_project = rel_to_project
            .strip_prefix(&project.dir)
            .unwrap_or(&rel_to_project);
        let file_name = relative.rsplit('/').next().unwrap_or(&relative);
        let mut hasher = Sha256::new();
        hasher.update(rel_to_project.to_string_lossy().as_bytes());
        hasher.update(&data);
        out.push(FileObject {
            kind: if holds_secret {
                FileKind::Secret
            } else {
                FileKind::Config
            },
            name: object_name(&project.name, file_name, &hasher.finalize()),
            target: if relative.is_empty() {
                target.to_string()
            } else {
                format!("{}/{relative}", target.trim_end_matches('/'))
            },
            data,
        });
    }
    Ok(out)
}

fn memchr_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Regular files under `root` (or `root` itself), by path relative to it, sorted.
fn read_tree(root: &Path) -> Result<Vec<(String, Vec<u8>)>, ConfigError> {
    let cannot = |e: std::io::Error| ConfigError::new(format!("cannot read {}: {e}", root.display()));
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cannot(e)),
    };
    if meta.is_file() {
        return Ok(vec![(String::new(), std::fs::read(root).map_err(cannot)?)]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(cannot)? {
            let path = entry.map_err(cannot)?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .to_string();
                out.push((rel, std::fs::read(&path).map_err(cannot)?));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Nginx on swarm: the upstream is every healthy API task, found again through Docker's DNS
/// (`tasks.pricescan-api`) every second, since tasks come and go on any node. A variable in
/// `proxy_pass` is what makes Nginx resolve at run time; failed GETs still move to the next
/// address (`proxy_next_upstream`).
fn swarm_file(relative: &str, data: Vec<u8>) -> Vec<u8> {
    match relative {
        "upstream.inc" => SWARM_UPSTREAM.as_bytes().to_vec(),
        // A lost node's tasks stay in DNS until the manager notices (seconds): a short
        // connect timeout moves a request on to a live task before the client gives up.
        "proxy.inc" => String::from_utf8_lossy(&data)
            .replace(
                "proxy_pass http://pricescan_api;",
                "proxy_pass http://$pricescan_api;",
            )
            .replace("proxy_connect_timeout 5s;", "proxy_connect_timeout 1s;")
            .into_bytes(),
        _ => data,
    }
}

pub const SWARM_UPSTREAM: &str = "# Swarm target: written by pricescan-ctl. Every API task, re-resolved each second.\n\
resolver 127.0.0.11 valid=1s ipv6=off;\n\
resolver_timeout 2s;\n\
map $host $pricescan_api {\n    default tasks.pricescan-api:8000;\n}\n";

/// `<project>_<what>-<hash>`, within swarm's 64-character limit.
fn object_name(project: &str, what: &str, content: &[u8]) -> String {
    let hash = hex::encode(Sha256::digest(content));
    let what: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let head = format!("{project}_{what}");
    let head: String = head.chars().take(64 - 13).collect();
    format!("{head}-{}", &hash[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Environment;

    /// The embedded compose file with a full .env.prod, its files in a temporary directory.
    fn project(dir: &Path) -> Project {
        let env = "SECRET_KEY=s3cretkey-aaaaaaaa\nJWT_SECRET_KEY=jwtkey-bbbbbbbbbb\n\
                   DB_PASSWORD=dbpass-cccccccccc\nMYSQL_ROOT_PASSWORD=rootpass-dddddddd\n\
                   REDIS_PASSWORD=redispass-eeeeeeee\nGRAFANA_ADMIN_PASSWORD=grafana-ffffffff\n\
                   COMPOSE_PROFILES=\n";
        std::fs::create_dir_all(dir.join("config/redis")).unwrap();
        std::fs::write(
            dir.join("config/redis/redis.conf"),
            "requirepass redispass-eeeeeeee\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("config/nginx")).unwrap();
        std::fs::write(
            dir.join("config/nginx/upstream.inc"),
            "upstream pricescan_api {}\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("config/nginx/proxy.inc"),
            "proxy_pass http://pricescan_api;\n",
        )
        .unwrap();
        let env = Environment::parse(&dir.join(".env.prod"), env).unwrap();
        let compose = crate::stack::embedded::COMPOSE;
        Project::from_text(
            compose,
            dir.join("c.yml"),
            true,
            dir.to_path_buf(),
            env,
            Some("shop"),
        )
        .unwrap()
    }

    #[test]
    fn secrets_travel_as_files_and_the_data_stays_on_the_data_node() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path());
        let api = plan(&p, "pricescan-api", Some(3)).unwrap();
        assert_eq!(api.name, "shop_pricescan-api");
        assert_eq!(api.replicas, 3);
        assert!(
            api.env
                .contains(&"DB_PASSWORD_FILE=/run/secrets/DB_PASSWORD".to_string()),
            "{:?}",
            api.env
        );
        assert!(!api.env.iter().any(|e| e.contains("dbpass-")), "{:?}", api.env);
        assert!(
            api.files
                .iter()
                .any(|f| f.kind == FileKind::Secret && f.target == "DB_PASSWORD")
        );
        assert!(api.ports.is_empty(), "the API publishes nothing on swarm");
        assert_eq!(api.update.order.as_deref(), Some("start-first"));
        assert_eq!(api.update.failure_action.as_deref(), Some("rollback"));
        let mysql = plan(&p, "pricescan-mysql", Some(3)).unwrap();
        assert_eq!(mysql.replicas, 1, "MySQL never runs two tasks");
        assert!(
            mysql
                .constraints
                .contains(&"node.labels.io.pricescan.data.shop==true".to_string())
        );
        assert_eq!(mysql.volumes[0].source, "shop_mysql-data");
        let redis = plan(&p, "pricescan-redis", None).unwrap();
        let conf = redis
            .files
            .iter()
            .find(|f| f.target.ends_with("redis.conf"))
            .unwrap();
        assert_eq!(
            conf.kind,
            FileKind::Secret,
            "a file holding a secret is a swarm secret"
        );
        let nginx = plan(&p, EDGE_SERVICE, None).unwrap();
        let published: Vec<u16> = nginx.ports.iter().map(|p| p.target).collect();
        assert_eq!(published, vec![80, 443], "no loopback port on swarm");
        let upstream = nginx
            .files
            .iter()
            .find(|f| f.target.ends_with("upstream.inc"))
            .unwrap();
        assert_eq!(upstream.data, SWARM_UPSTREAM.as_bytes());
        assert!(
            ignored_keys(&p, EDGE_SERVICE)
                .iter()
                .any(|w| w.contains("depends_on"))
        );
    }

    #[test]
    fn object_names_fit_and_follow_content() {
        let a = object_name("shop", "gunicorn.conf.py", b"one");
        let b = object_name("shop", "gunicorn.conf.py", b"two");
        assert!(a.starts_with("shop_gunicorn.conf.py-"), "{a}");
        assert_ne!(a, b);
        let long = object_name(&"p".repeat(80), "x", b"");
        assert!(long.len() <= 64, "{long}");
    }

    #[test]
    fn nginx_follows_the_api_tasks_on_swarm() {
        let proxy = swarm_file(
            "proxy.inc",
            b"location / {\n proxy_pass http://pricescan_api;\n}".to_vec(),
        );
        assert!(
            String::from_utf8(proxy)
                .unwrap()
                .contains("proxy_pass http://$pricescan_api;")
        );
        let upstream = String::from_utf8(swarm_file("upstream.inc", b"upstream x {}".to_vec())).unwrap();
        assert!(upstream.contains("tasks.pricescan-api:8000"), "{upstream}");
        assert!(upstream.contains("resolver 127.0.0.11"), "{upstream}");
    }

    #[test]
    fn secrets_are_files_and_grafana_reads_double_underscore() {
        assert_eq!(file_variable("DB_PASSWORD"), "DB_PASSWORD_FILE");
        assert_eq!(
            file_variable("GF_SECURITY_ADMIN_PASSWORD"),
            "GF_SECURITY_ADMIN_PASSWORD__FILE"
        );
        let f = FileObject {
            kind: FileKind::Secret,
            name: "n".into(),
            target: "t".into(),
            data: b"hunter2".to_vec(),
        };
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
