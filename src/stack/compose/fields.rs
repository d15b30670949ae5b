//! The parts of a service: build, dependencies, ports, mounts, networks, health check,
//! limits, logging and `deploy:`, each with its short and long syntax normalised into
//! one form while deserialising.

use super::syntax::*;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "key_values"
    )]
    pub args: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    #[default]
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default)]
    pub condition: Condition,
    #[serde(default = "yes", deserialize_with = "boolean")]
    pub required: bool,
    #[serde(default, deserialize_with = "boolean")]
    pub restart: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvFileRef {
    pub path: String,
    #[serde(default = "yes", deserialize_with = "boolean")]
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// None lets the engine pick a host port.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_port"
    )]
    pub published: Option<u16>,
    #[serde(deserialize_with = "port")]
    pub target: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Volume,
    Bind,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// A volume name (from the top-level `volumes:`) or a host path; None for an anonymous volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "boolean")]
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(default, deserialize_with = "health_test")]
    pub test: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub interval: Option<ComposeDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub timeout: Option<ComposeDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub start_period: Option<ComposeDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub start_interval: Option<ComposeDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u32"
    )]
    pub retries: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "boolean")]
    pub disable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub options: BTreeMap<String, String>,
}

/// `deploy:`. Compose applies only `resources`; the swarm target honours the rest as
/// `docker stack deploy` does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    #[serde(default)]
    pub resources: Resources,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
    pub replicas: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_mode: Option<String>,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
}

/// `update_config` and `rollback_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
    pub parallelism: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub delay: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub monitor: Option<ComposeDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "float")]
    pub max_failure_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestartPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub delay: Option<ComposeDuration>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u64"
    )]
    pub max_attempts: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub window: Option<ComposeDuration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<ResourceSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "float")]
    pub cpus: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "byte_size"
    )]
    pub memory: Option<ByteSize>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_u32"
    )]
    pub pids: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "boolean")]
    pub internal: bool,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "boolean")]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "boolean")]
    pub external: bool,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub labels: BTreeMap<String, String>,
}

pub(super) fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(context) => Ok(Some(Build {
            context,
            dockerfile: None,
            args: BTreeMap::new(),
        })),
        other => Build::deserialize(other).map(Some).map_err(de::Error::custom),
    }
}

pub(super) fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Dependency>, D::Error> {
    let started = || Dependency {
        condition: Condition::ServiceStarted,
        required: true,
        restart: false,
    };
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| Ok((scalar_string(v).map_err(de::Error::custom)?, started())))
            .collect(),
        other => BTreeMap::<String, Dependency>::deserialize(other).map_err(de::Error::custom),
    }
}

pub(super) fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFileRef>, D::Error> {
    let one = |v: Value| match v {
        Value::Mapping(_) => EnvFileRef::deserialize(v).map_err(|e| e.to_string()),
        v => scalar_string(v).map(|path| EnvFileRef { path, required: true }),
    };
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| one(v).map_err(de::Error::custom))
            .collect(),
        v => Ok(vec![one(v).map_err(de::Error::custom)?]),
    }
}

pub(super) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
    let items: Vec<Value> = Vec::deserialize(d)?;
    items
        .into_iter()
        .map(|v| match v {
            Value::Mapping(_) => Port::deserialize(v).map_err(|e| e.to_string()),
            v => scalar_string(v).and_then(|s| parse_port(&s)),
        })
        .collect::<Result<_, _>>()
        .map_err(de::Error::custom)
}

/// `[[host_ip:]published:]target[/protocol]`, with `[v6]` host addresses.
pub fn parse_port(spec: &str) -> Result<Port, String> {
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p.to_string()),
        None => (spec, tcp()),
    };
    let (host_ip, rest) = match addr.strip_prefix('[') {
        Some(v6) => {
            let (ip, rest) = v6
                .split_once("]:")
                .ok_or_else(|| format!("invalid port {spec:?}"))?;
            (Some(ip.to_string()), rest)
        }
        None => match addr.matches(':').count() {
            2 => {
                let (ip, rest) = addr.split_once(':').unwrap_or_default();
                (Some(ip.to_string()), rest)
            }
            _ => (None, addr),
        },
    };
    let (published, target) = match rest.split_once(':') {
        Some((p, t)) => (parse_published(p)?, t),
        None => (None, rest),
    };
    let target = target
        .parse()
        .map_err(|_| format!("invalid port {spec:?}: container port {target:?} is not a number"))?;
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    Ok(Port {
        host_ip,
        published,
        target,
        protocol,
    })
}

pub(super) fn mounts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Mount>, D::Error> {
    let items: Vec<Value> = Vec::deserialize(d)?;
    items
        .into_iter()
        .map(|v| match v {
            Value::Mapping(_) => Mount::deserialize(v).map_err(|e| e.to_string()),
            v => scalar_string(v).and_then(|s| parse_mount(&s)),
        })
        .collect::<Result<_, _>>()
        .map_err(de::Error::custom)
}

/// `[source:]target[:mode]`; a source that looks like a path is a bind mount.
pub fn parse_mount(spec: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [target] => (None, *target, ""),
        [source, target] => (Some(*source), *target, ""),
        [source, target, mode] => (Some(*source), *target, *mode),
        _ => return Err(format!("invalid volume {spec:?} (expected source:target[:mode])")),
    };
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the container path must be absolute"
        ));
    }
    let is_path = |s: &str| s.starts_with('.') || s.starts_with('/') || s.starts_with('~');
    let kind = if source.is_some_and(is_path) {
        MountType::Bind
    } else {
        MountType::Volume
    };
    let read_only = mode.split(',').any(|m| m == "ro");
    Ok(Mount {
        kind,
        source: source.map(str::to_string),
        target: target.to_string(),
        read_only,
    })
}

pub(super) fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, ServiceNetwork>, D::Error> {
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| {
                Ok((
                    scalar_string(v).map_err(de::Error::custom)?,
                    ServiceNetwork::default(),
                ))
            })
            .collect(),
        other => null_as_default_map(other).map_err(de::Error::custom),
    }
}

pub(super) fn ulimits<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Ulimit>, D::Error> {
    let map: BTreeMap<String, Value> = BTreeMap::deserialize(d)?;
    map.into_iter()
        .map(|(name, v)| {
            let limit = match v {
                Value::Mapping(m) => {
                    let get = |k: &str| {
                        m.get(k)
                            .cloned()
                            .ok_or_else(|| format!("ulimit {name} needs soft and hard"))
                            .and_then(|v| parse_scalar::<i64>(v, "a number"))
                    };
                    Ulimit {
                        soft: get("soft")?,
                        hard: get("hard")?,
                    }
                }
                v => {
                    let n = parse_scalar::<i64>(v, "a number")?;
                    Ulimit { soft: n, hard: n }
                }
            };
            Ok((name, limit))
        })
        .collect::<Result<_, String>>()
        .map_err(de::Error::custom)
}
