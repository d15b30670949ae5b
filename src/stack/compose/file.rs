//! The compose file and its services, and the file written back as compose text. Values
//! that interpolation turned into strings ("3", "true") are accepted where numbers and
//! booleans are expected, as Compose does.

use super::fields::*;
use super::syntax::*;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;

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
