//! Loading a project: the compose file (on disk, or the embedded copy), `.env.prod`,
//! interpolation of every YAML value, the typed model, profiles and validation.

use super::compose::{ComposeFile, MountType, Service};
use super::embedded;
use super::environment::Environment;
use super::graph;
use super::names;
use super::parse::{cycle_error, display_path, interpolate_tree, key_path, project_name, yaml_error};
use super::paths::resolve_path;
use crate::error::ConfigError;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const DEFAULT_NETWORK: &str = "default";

/// What the global flags say about where the project is.
#[derive(Debug, Clone)]
pub struct ProjectOptions {
    pub file: PathBuf,
    pub env_file: PathBuf,
    pub project_dir: Option<PathBuf>,
    pub project_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    pub compose_path: PathBuf,
    /// False when the compose file came from the binary because none is on disk.
    pub compose_on_disk: bool,
    pub env: Environment,
    pub file: ComposeFile,
    /// The compose file as written, before interpolation: where a value came from.
    pub raw: Value,
    pub profiles: Vec<String>,
    pub warnings: Vec<String>,
}

impl Project {
    pub fn load(opts: &ProjectOptions) -> Result<Self, ConfigError> {
        let cwd =
            std::env::current_dir().map_err(|e| ConfigError::new(format!("no current directory: {e}")))?;
        let dir = opts
            .project_dir
            .as_deref()
            .map_or(cwd.clone(), |d| resolve_path(&cwd, d));
        let compose_path = resolve_path(&dir, &opts.file);
        let env = Environment::load(&resolve_path(&dir, &opts.env_file))?;
        let (text, compose_on_disk) = match std::fs::read_to_string(&compose_path) {
            Ok(text) => (text, true),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && opts.file == Path::new(embedded::COMPOSE_FILE_NAME) =>
            {
                (embedded::COMPOSE.to_string(), false)
            }
            Err(e) => {
                return Err(ConfigError::new(format!("cannot read the compose file: {e}"))
                    .at(compose_path.display().to_string())
                    .hint("pass -f FILE or --project-dir DIR, or run `pricescan-ctl setup` to write the default one"));
            }
        };
        let env_missing = (!env.exists).then(|| env.path.display().to_string());
        let name = opts.project_name.as_deref();
        Self::from_text(&text, compose_path, compose_on_disk, dir, env, name).map_err(|e| match env_missing {
            Some(path) if e.hint.is_none() => e.hint(format!(
                "{path} does not exist: run `pricescan-ctl setup` to create it"
            )),
            _ => e,
        })
    }

    pub fn from_text(
        text: &str,
        compose_path: PathBuf,
        compose_on_disk: bool,
        dir: PathBuf,
        env: Environment,
        name_flag: Option<&str>,
    ) -> Result<Self, ConfigError> {
        // An error may quote an interpolated value; the printer does not know the secrets yet.
        let secrets = env.secret_values();
        Self::build(text, compose_path, compose_on_disk, dir, env, name_flag).map_err(|e| e.masked(&secrets))
    }

    fn build(
        text: &str,
        compose_path: PathBuf,
        compose_on_disk: bool,
        dir: PathBuf,
        env: Environment,
        name_flag: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let shown = compose_path.display().to_string();
        let raw: Value = serde_yaml_ng::from_str(text).map_err(|e| yaml_error(&shown, &e))?;
        if !matches!(raw, Value::Mapping(_)) {
            return Err(
                ConfigError::new("the compose file must be a YAML mapping with a services: key").at(&shown),
            );
        }
        let mut unset = BTreeSet::new();
        let lookup = |k: &str| env.get(k);
        let at_key = |path: &[String]| match super::yaml_lines::line_of(text, path) {
            Some(line) => format!("{shown}:{line}"),
            None => shown.clone(),
        };
        let value = interpolate_tree(raw.clone(), &mut Vec::new(), &lookup, &mut unset)
            .map_err(|(path, e)| ConfigError::new(e).at(at_key(&path)))?;
        let file: ComposeFile = serde_path_to_error::deserialize(value).map_err(|e| {
            let message = format!("{}: {}", display_path(&e.path().to_string()), e.inner());
            ConfigError::new(message).at(at_key(&key_path(e.path())))
        })?;
        let mut warnings: Vec<String> = unset
            .into_iter()
            .map(|v| format!("the {v} variable is not set; using an empty string"))
            .collect();
        let name = project_name(name_flag, &env, file.name.as_deref(), &dir)?;
        let profiles = active_profiles(&env);
        let project = Self {
            name,
            dir,
            compose_path,
            compose_on_disk,
            env,
            file,
            raw,
            profiles,
            warnings: Vec::new(),
        };
        let invalid = |e: ConfigError| {
            // Validation names the key path first ("services.api.logging: ...").
            let path: Vec<String> = e
                .message
                .split(": ")
                .next()
                .unwrap_or_default()
                .split('.')
                .map(str::to_string)
                .collect();
            let location = at_key(&path);
            e.at(location)
        };
        warnings.extend(project.validate().map_err(invalid)?);
        let file = project.with_absolute_binds();
        Ok(Self {
            warnings,
            file,
            ..project
        })
    }

    /// Services enabled by the active profiles, in name order.
    pub fn active_services(&self) -> Vec<String> {
        self.file
            .services
            .iter()
            .filter(|(_, s)| self.is_active(s))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub(super) fn is_active(&self, service: &Service) -> bool {
        service.profiles.is_empty()
            || self
                .profiles
                .iter()
                .any(|p| p == "*" || service.profiles.contains(p))
    }

    /// A service the caller knows exists (it was selected, or checked with `require`).
    pub fn service(&self, name: &str) -> &Service {
        &self.file.services[name]
    }

    /// Checks that the compose file defines the services an operation works on (exit 2
    /// rather than a panic when, say, the API is missing).
    pub fn require(&self, names: &[&str]) -> Result<(), ConfigError> {
        match names.iter().find(|n| !self.file.services.contains_key(**n)) {
            None => Ok(()),
            Some(missing) => Err(ConfigError::new(format!(
                "{} defines no service {missing}, which this command needs",
                self.compose_path.display()
            ))
            .hint("restore the service in the compose file, or run `pricescan-ctl setup --force compose`")),
        }
    }

    /// Resolves names typed by an operator; none means every active service.
    pub fn select(&self, names: &[String]) -> Result<Vec<String>, ConfigError> {
        let active = self.active_services();
        if names.is_empty() {
            return Ok(active);
        }
        let all: Vec<String> = self.file.services.keys().cloned().collect();
        let mut out = Vec::new();
        for input in names {
            let name = names::resolve(input, &all).map_err(|m| {
                ConfigError::new(m).hint("`pricescan-ctl config --services` lists the services")
            })?;
            if !active.iter().any(|a| a == name) {
                let profiles = self.service(name).profiles.join(", ");
                return Err(
                    ConfigError::new(format!("service {name} is not enabled")).hint(format!(
                        "add one of its profiles ({profiles}) to COMPOSE_PROFILES in {}",
                        self.env.path.display()
                    )),
                );
            }
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    /// Each active service with the active services it depends on.
    pub fn dependency_graph(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.active_services()
            .into_iter()
            .map(|name| {
                let deps = self.service(&name).depends_on.keys().cloned().collect();
                (name, deps)
            })
            .collect()
    }

    /// Start order of `selected` and their dependencies, in waves of independent services.
    pub fn start_waves(&self, selected: &[String]) -> Result<Vec<Vec<String>>, ConfigError> {
        let graph = self.dependency_graph();
        let wanted = graph::with_dependencies(&graph, selected);
        let sub = graph.into_iter().filter(|(k, _)| wanted.contains(k)).collect();
        graph::start_waves(&sub).map_err(cycle_error)
    }

    /// Compose's resource names, so that docker-compose sees the same objects.
    pub fn network_name(&self, key: &str) -> String {
        let net = self.file.networks.get(key);
        net.and_then(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    pub fn volume_name(&self, key: &str) -> String {
        let vol = self.file.volumes.get(key);
        vol.and_then(|v| v.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// Networks a service joins; Compose's `default` network when it names none.
    pub fn service_networks(&self, service: &str) -> Vec<String> {
        let nets: Vec<String> = self.service(service).networks.keys().cloned().collect();
        if nets.is_empty() {
            vec![DEFAULT_NETWORK.to_string()]
        } else {
            nets
        }
    }

    /// Networks used by the active services, by their key in the compose file.
    pub fn used_networks(&self) -> BTreeSet<String> {
        self.active_services()
            .iter()
            .flat_map(|s| self.service_networks(s))
            .collect()
    }

    /// Named volumes used by the active services, by their key in the compose file.
    pub fn used_volumes(&self) -> BTreeSet<String> {
        self.active_services()
            .iter()
            .flat_map(|s| self.service(s).volumes.iter())
            .filter(|m| m.kind == MountType::Volume)
            .filter_map(|m| m.source.clone())
            .collect()
    }

    /// The variable an operator sets to change a service's image (`MYSQL_IMAGE` for
    /// `${MYSQL_IMAGE:-mysql:8.0}`), if the image is a variable.
    pub fn image_variable(&self, service: &str) -> Option<String> {
        let raw = self.raw.get("services")?.get(service)?.get("image")?.as_str()?;
        let start = raw.find('$')? + 1;
        let name: String = raw[start..]
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty()).then_some(name)
    }

    /// The environment a service's container gets: `env_file` entries, then `environment`
    /// (which wins); a key with no value takes the process environment's, or is left out.
    pub fn container_env(&self, service: &str) -> Result<BTreeMap<String, String>, ConfigError> {
        let svc = self.service(service);
        let mut env = BTreeMap::new();
        for file in &svc.env_file {
            let path = resolve_path(&self.dir, Path::new(&file.path));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let parsed = Environment::parse(&path, &text)?;
                    env.extend(parsed.entries.into_iter().map(|e| (e.key, e.value)));
                }
                Err(_) if !file.required => {}
                Err(e) => {
                    return Err(ConfigError::new(format!(
                        "services.{service}.env_file: cannot read {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        for (key, value) in &svc.environment {
            match value.clone().or_else(|| std::env::var(key).ok()) {
                Some(v) => env.insert(key.clone(), v),
                None => env.remove(key),
            };
        }
        Ok(env)
    }

    /// A digest of everything that shapes a service's container: when it changes, the
    /// container is recreated (and `status` shows drift until then).
    pub fn config_hash(&self, service: &str) -> Result<String, ConfigError> {
        use sha2::{Digest, Sha256};
        let svc = self.service(service);
        let networks: Vec<String> = self
            .service_networks(service)
            .iter()
            .map(|n| self.network_name(n))
            .collect();
        let volumes: Vec<String> = svc.volumes.iter().filter_map(|m| m.source.clone()).collect();
        let doc = serde_json::json!({
            "service": svc,
            "environment": self.container_env(service)?,
            "networks": networks,
            "volumes": volumes.iter().map(|v| if self.file.volumes.contains_key(v) { self.volume_name(v) } else { v.clone() }).collect::<Vec<_>>(),
        });
        Ok(hex::encode(Sha256::digest(doc.to_string().as_bytes())))
    }

    /// The model with every bind source absolute, as `docker compose config` shows it and
    /// as the engine needs it.
    fn with_absolute_binds(&self) -> ComposeFile {
        let mut file = self.file.clone();
        let mounts = file.services.values_mut().flat_map(|s| s.volumes.iter_mut());
        for mount in mounts.filter(|m| m.kind == MountType::Bind) {
            if let Some(source) = mount.source.as_mut() {
                *source = self.host_path(source).display().to_string();
            }
        }
        file
    }

    /// Host path of a bind mount source, relative paths against the project directory.
    fn host_path(&self, source: &str) -> PathBuf {
        match source.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from(source), |h| PathBuf::from(h).join(rest)),
            None => resolve_path(&self.dir, Path::new(source)),
        }
    }
}

/// COMPOSE_PROFILES, plus `pitr` when BACKUP_PITR is on: one switch for point-in-time
/// recovery, which the archiver service (profile `pitr`) and the backups both follow.
fn active_profiles(env: &Environment) -> Vec<String> {
    let mut profiles: Vec<String> = env
        .get("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if crate::stack::pitr::enabled(env) && !profiles.iter().any(|p| p == crate::stack::pitr::PROFILE) {
        profiles.push(crate::stack::pitr::PROFILE.to_string());
    }
    profiles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, env: &str) -> Result<Project, ConfigError> {
        let env = Environment::parse(Path::new(".env.test"), env).unwrap();
        Project::from_text(yaml, "test.yml".into(), true, "/srv/demo".into(), env, None)
    }

    const STACK: &str = "
name: demo
services:
  demo-api:
    image: ${API_IMAGE:-api:latest}
    depends_on: {demo-db: {condition: service_healthy}}
    networks: [backend]
  demo-db:
    image: db
    volumes: [data:/var/lib/db]
    networks: [backend]
  demo-grafana:
    image: grafana
    profiles: [monitoring]
networks: {backend: {internal: true}}
volumes: {data: {}}
";

    #[test]
    fn loads_interpolates_and_names_resources() {
        let p = load(
            &STACK.replace(
                "[monitoring]\n",
                "[monitoring]\n    volumes: ['./conf:/etc/conf:ro']\n",
            ),
            "API_IMAGE=local/api:v1\n",
        )
        .unwrap();
        let mount = &p.service("demo-grafana").volumes[0];
        assert_eq!(mount.source.as_deref(), Some("/srv/demo/conf"));
        assert_eq!(p.name, "demo");
        assert_eq!(p.service("demo-api").image.as_deref(), Some("local/api:v1"));
        assert_eq!(p.network_name("backend"), "demo_backend");
        assert_eq!(p.volume_name("data"), "demo_data");
        assert_eq!(
            p.start_waves(&["demo-api".into()]).unwrap(),
            vec![vec!["demo-db".to_string()], vec!["demo-api".to_string()]]
        );
    }

    #[test]
    fn image_variable_is_found_in_the_raw_file() {
        let p = load(STACK, "").unwrap();
        assert_eq!(p.image_variable("demo-api").as_deref(), Some("API_IMAGE"));
        assert_eq!(p.image_variable("demo-db"), None);
    }

    #[test]
    fn config_hash_follows_the_configuration() {
        let a = load(STACK, "API_IMAGE=one\n").unwrap();
        let b = load(STACK, "API_IMAGE=two\n").unwrap();
        assert_eq!(
            a.config_hash("demo-api").unwrap(),
            a.config_hash("demo-api").unwrap()
        );
        assert_ne!(
            a.config_hash("demo-api").unwrap(),
            b.config_hash("demo-api").unwrap()
        );
        assert_eq!(
            a.config_hash("demo-db").unwrap(),
            b.config_hash("demo-db").unwrap()
        );
    }

    #[test]
    fn profiles_select_services() {
        let p = load(STACK, "").unwrap();
        assert_eq!(p.active_services(), vec!["demo-api", "demo-db"]);
        let p = load(STACK, "COMPOSE_PROFILES=monitoring\n").unwrap();
        assert_eq!(p.active_services(), vec!["demo-api", "demo-db", "demo-grafana"]);
        let err = load(STACK, "").unwrap().select(&["grafana".into()]).unwrap_err();
        assert!(err.message.contains("not enabled"), "{err}");
    }

    #[test]
    fn selection_by_short_name_with_suggestion() {
        let p = load(STACK, "").unwrap();
        assert_eq!(
            p.select(&["api".into(), "demo-api".into()]).unwrap(),
            vec!["demo-api"]
        );
        let err = p.select(&["dbb".into()]).unwrap_err();
        assert!(err.message.contains("did you mean demo-db?"), "{err}");
    }

    #[test]
    fn errors_name_file_and_key_path() {
        let err = load("services:\n  a:\n    image: ${IMG:?set IMG}\n", "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yml:3: services.a.image: required variable IMG is missing a value: set IMG"
        );
        let err = load("services:\n  a:\n    image: x\n    ports: ['80:abc']\n", "").unwrap_err();
        assert!(
            err.to_string().starts_with("test.yml:4: services.a.ports: "),
            "{err}"
        );
        let err = load("services:\n  a:\n    image: x\n  b: {image: [\n", "").unwrap_err();
        assert!(
            err.location.as_deref().unwrap().starts_with("test.yml:5:"),
            "{err}"
        );
        let err = load("services:\n  a:\n    image: x\n   ports: []\n", "").unwrap_err();
        assert_eq!(err.location.as_deref(), Some("test.yml:4:4"), "{err}");
        let err = load("services:\n  a:\n    image: x\n    imagee: y\n", "").unwrap_err();
        assert!(
            err.message.contains("services.a.imagee: unsupported key"),
            "{err}"
        );
    }

    #[test]
    fn cycles_and_dangling_references_are_rejected() {
        let err = load(
            "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
            "",
        )
        .unwrap_err();
        assert_eq!(err.message, "dependency cycle: a -> b -> a");
        let err = load("services:\n  a: {image: x, depends_on: [zz]}\n", "").unwrap_err();
        assert!(err.message.contains("undefined service zz"), "{err}");
        let err = load("services:\n  a: {image: x, volumes: ['nope:/x']}\n", "").unwrap_err();
        assert!(err.message.contains("volume nope is not defined"), "{err}");
    }

    #[test]
    fn unset_variables_warn() {
        let p = load("services:\n  a: {image: \"x${TAG}\"}\n", "").unwrap();
        assert_eq!(
            p.warnings,
            vec!["the TAG variable is not set; using an empty string"]
        );
    }

    #[test]
    fn project_name_precedence() {
        let env = Environment::parse(Path::new("e"), "").unwrap();
        assert_eq!(
            project_name(Some("flag"), &env, Some("file"), Path::new("/x/dir")).unwrap(),
            "flag"
        );
        assert_eq!(
            project_name(None, &env, Some("file"), Path::new("/x/dir")).unwrap(),
            "file"
        );
        assert_eq!(
            project_name(None, &env, None, Path::new("/x/My.Dir")).unwrap(),
            "mydir"
        );
        assert!(project_name(Some("Bad Name"), &env, None, Path::new("/x")).is_err());
    }
}
