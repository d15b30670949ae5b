//! The typed Compose model. Short and long syntaxes are normalised into one form while
//! deserialising, so the rest of the program sees a single shape for each field. Values
//! that interpolation turned into strings ("3", "true") are accepted where numbers and
//! booleans are expected, as Compose does.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// The file as compose text that loads back to itself: a literal `$` is written `$$`, as
/// `docker-compose config` writes it, so that loading it again does not interpolate it.
pub fn to_compose_text(file: &ComposeFile) -> Result<String, serde_yaml_ng::Error> {
    let mut value = serde_yaml_ng::to_value(file)?;
    escape_dollars(&mut value);
    serde_yaml_ng::to_string(&value)
}

fn escape_dollars(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Sequence(items) => items.iter_mut().for_each(escape_dollars),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| escape_dollars(v)),
        Value::Tagged(tagged) => escape_dollars(&mut tagged.value),
        _ => {}
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ComposeFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default, deserialize_with = "null_as_default_map")]
    pub networks: BTreeMap<String, Network>,
    #[serde(default, deserialize_with = "null_as_default_map")]
    pub volumes: BTreeMap<String, Volume>,
    /// `x-*` extensions, and anything unknown, which validation rejects by name.
    #[serde(flatten, skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "build")]
    pub build: Option<Build>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "depends_on"
    )]
    pub depends_on: BTreeMap<String, Dependency>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "command"
    )]
    pub command: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "command"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "key_values"
    )]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "env_files"
    )]
    pub env_file: Vec<EnvFileRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "ports")]
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "mounts")]
    pub volumes: Vec<Mount>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "service_networks"
    )]
    pub networks: BTreeMap<String, ServiceNetwork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "labels"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "duration"
    )]
    pub stop_grace_period: Option<ComposeDuration>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "ulimits"
    )]
    pub ulimits: BTreeMap<String, Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "byte_size"
    )]
    pub mem_limit: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "float")]
    pub cpus: Option<f64>,
    #[serde(default, skip_serializing_if = "is_false", deserialize_with = "boolean")]
    pub read_only: bool,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_boolean"
    )]
    pub init: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "string_or_list"
    )]
    pub tmpfs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(flatten, skip_serializing)]
    pub extra: BTreeMap<String, Value>,
}

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

/// A Compose duration ("1m30s", "10s", "500ms"), kept with its text for `config` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ComposeDuration {
    pub text: String,
    #[serde(skip)]
    pub value: Duration,
}

impl<'de> Deserialize<'de> for ComposeDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)?;
        let value = parse_duration(&text).map_err(de::Error::custom)?;
        Ok(Self { text, value })
    }
}

/// A byte size ("512m", "1g", 1048576), kept with its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ByteSize {
    pub text: String,
    #[serde(skip)]
    pub bytes: u64,
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)?;
        let bytes = parse_bytes(&text).map_err(de::Error::custom)?;
        Ok(Self { text, bytes })
    }
}

pub use super::units::{parse_bytes, parse_duration};

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

fn tcp() -> String {
    "tcp".to_string()
}

/// A scalar as text: numbers and booleans are written as YAML would.
fn scalar_string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("expected a single value, found {}", kind(&other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn parse_scalar<T: std::str::FromStr>(v: Value, what: &str) -> Result<T, String> {
    let text = scalar_string(v)?;
    text.trim()
        .parse()
        .map_err(|_| format!("expected {what}, found {text:?}"))
}

fn parse_bool(v: Value) -> Result<bool, String> {
    match scalar_string(v)?.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" | "" => Ok(false),
        other => Err(format!("expected true or false, found {other:?}")),
    }
}

fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    parse_bool(Value::deserialize(d)?).map_err(de::Error::custom)
}

fn opt_boolean<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    boolean(d).map(Some)
}

fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a whole number")
        .map(Some)
        .map_err(de::Error::custom)
}

fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a whole number")
        .map(Some)
        .map_err(de::Error::custom)
}

fn float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a number")
        .map(Some)
        .map_err(de::Error::custom)
}

fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    parse_scalar(Value::deserialize(d)?, "a port number (1-65535)").map_err(de::Error::custom)
}

fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let text = scalar_string(Value::deserialize(d)?).map_err(de::Error::custom)?;
    parse_published(&text).map_err(de::Error::custom)
}

fn parse_published(text: &str) -> Result<Option<u16>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("invalid published port {text:?} (expected 1-65535)"))
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ComposeDuration>, D::Error> {
    ComposeDuration::deserialize(d).map(Some)
}

fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteSize>, D::Error> {
    ByteSize::deserialize(d).map(Some)
}

fn null_as_default_map<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    let map: BTreeMap<String, Option<T>> = BTreeMap::deserialize(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| scalar_string(v).map_err(de::Error::custom))
            .collect(),
        other => Ok(vec![scalar_string(other).map_err(de::Error::custom)?]),
    }
}

/// `["A=1", "B"]` or `{A: 1, B: null}`. A missing value stays None ("take it from the shell").
fn key_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    let mut out = BTreeMap::new();
    match Value::deserialize(d)? {
        Value::Sequence(items) => {
            for item in items {
                let text = scalar_string(item).map_err(de::Error::custom)?;
                match text.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(text, None),
                };
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = scalar_string(k).map_err(de::Error::custom)?;
                let value = match v {
                    Value::Null => None,
                    v => Some(scalar_string(v).map_err(de::Error::custom)?),
                };
                out.insert(key, value);
            }
        }
        Value::Null => {}
        other => {
            return Err(de::Error::custom(format!(
                "expected a list or a mapping, found {}",
                kind(&other)
            )));
        }
    }
    Ok(out)
}

fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(key_values(d)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| scalar_string(v).map_err(de::Error::custom))
            .collect::<Result<_, _>>()
            .map(Some),
        other => {
            let text = scalar_string(other).map_err(de::Error::custom)?;
            shlex::split(&text)
                .map(Some)
                .ok_or_else(|| de::Error::custom(format!("cannot split command {text:?}: unbalanced quotes")))
        }
    }
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Sequence(items) => items
            .into_iter()
            .map(|v| scalar_string(v).map_err(de::Error::custom))
            .collect(),
        other => Ok(vec![
            "CMD-SHELL".into(),
            scalar_string(other).map_err(de::Error::custom)?,
        ]),
    }
}

fn build<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Build>, D::Error> {
    match Value::deserialize(d)? {
        Value::String(context) => Ok(Some(Build {
            context,
            dockerfile: None,
            args: BTreeMap::new(),
        })),
        other => Build::deserialize(other).map(Some).map_err(de::Error::custom),
    }
}

fn depends_on<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Dependency>, D::Error> {
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

fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFileRef>, D::Error> {
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

fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Port>, D::Error> {
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

fn mounts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Mount>, D::Error> {
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

fn service_networks<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, ServiceNetwork>, D::Error> {
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

fn ulimits<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Ulimit>, D::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn port_short_syntax() {
        let p = parse_port("127.0.0.1:8000:80").unwrap();
        assert_eq!(
            (p.host_ip.as_deref(), p.published, p.target),
            (Some("127.0.0.1"), Some(8000), 80)
        );
        let p = parse_port("80:8080/udp").unwrap();
        assert_eq!(
            (p.host_ip, p.published, p.target, p.protocol.as_str()),
            (None, Some(80), 8080, "udp")
        );
        let p = parse_port("9090").unwrap();
        assert_eq!((p.published, p.target), (None, 9090));
        let p = parse_port("[::1]:443:443").unwrap();
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        let p = parse_port("127.0.0.1::80").unwrap();
        assert_eq!((p.published, p.target), (None, 80));
        assert!(parse_port("80:http").is_err());
        assert!(parse_port("99999:80").is_err());
    }

    #[test]
    fn mount_short_syntax() {
        let m = parse_mount("mysql-data:/var/lib/mysql").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref()),
            (MountType::Volume, Some("mysql-data"))
        );
        let m = parse_mount("./config/nginx:/etc/nginx/conf.d:ro").unwrap();
        assert_eq!((m.kind, m.read_only), (MountType::Bind, true));
        let m = parse_mount("/data").unwrap();
        assert_eq!((m.kind, m.source), (MountType::Volume, None));
        assert!(parse_mount("a:relative").is_err());
    }

    #[test]
    fn lists_and_maps_normalise() {
        let s = service(
            "environment: [A=1, B]\nlabels: {x: 1}\ndepends_on: [db]\nnetworks: [front]\n\
             command: gunicorn -c 'my conf.py' app:app\nhealthcheck: {test: curl -f localhost, retries: '3'}\n",
        );
        assert_eq!(s.environment.get("A"), Some(&Some("1".into())));
        assert_eq!(s.environment.get("B"), Some(&None));
        assert_eq!(s.labels.get("x").map(String::as_str), Some("1"));
        assert_eq!(s.depends_on["db"].condition, Condition::ServiceStarted);
        assert!(s.networks.contains_key("front"));
        assert_eq!(
            s.command.unwrap(),
            vec!["gunicorn", "-c", "my conf.py", "app:app"]
        );
        let hc = s.healthcheck.unwrap();
        assert_eq!(hc.test, vec!["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(hc.retries, Some(3));
    }

    #[test]
    fn depends_on_conditions() {
        let s = service(
            "depends_on:\n  db: {condition: service_healthy}\n  init: {condition: service_completed_successfully}\n",
        );
        assert_eq!(s.depends_on["db"].condition, Condition::ServiceHealthy);
        assert_eq!(
            s.depends_on["init"].condition,
            Condition::ServiceCompletedSuccessfully
        );
        assert!(serde_yaml_ng::from_str::<Service>("depends_on: {db: {condition: nope}}").is_err());
    }
}
