//! Config templates (nginx, Prometheus, Grafana, MySQL, Redis, Gunicorn, Logstash, cron,
//! systemd) rendered with the same interpolation as the compose file. A file under the
//! project's templates/ wins over the binary's copy of the same path.

use super::embedded::TEMPLATES;
use super::interpolate;
use super::project::Project;
use crate::error::ConfigError;
use crate::error::CtlError;
use include_dir::Dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const TEMPLATE_DIR: &str = "templates";
pub const CONFIG_DIR: &str = "config";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Path relative to templates/ (and to config/ once rendered).
    pub path: PathBuf,
    pub text: String,
    pub on_disk: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub path: PathBuf,
    pub content: String,
}

/// The binary's templates, by relative path.
pub fn embedded() -> BTreeMap<PathBuf, &'static str> {
    fn walk(dir: &'static Dir<'static>, out: &mut BTreeMap<PathBuf, &'static str>) {
        for file in dir.files() {
            if let Some(text) = file.contents_utf8() {
                out.insert(file.path().to_path_buf(), text);
            }
        }
        for sub in dir.dirs() {
            walk(sub, out);
        }
    }
    let mut out = BTreeMap::new();
    walk(&TEMPLATES, &mut out);
    out
}

/// Every template: those on disk, plus the binary's copies of paths the disk lacks.
pub fn load(project_dir: &Path) -> Result<Vec<Template>, ConfigError> {
    let root = project_dir.join(TEMPLATE_DIR);
    let mut all: BTreeMap<PathBuf, Template> = embedded()
        .into_iter()
        .map(|(path, text)| {
            (
                path.clone(),
                Template {
                    path,
                    text: text.to_string(),
                    on_disk: false,
                },
            )
        })
        .collect();
    for path in files_under(&root)? {
        let rel = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConfigError::new(format!("cannot read template: {e}")).at(path.display().to_string())
        })?;
        all.insert(
            rel.clone(),
            Template {
                path: rel,
                text,
                on_disk: true,
            },
        );
    }
    Ok(all.into_values().collect())
}

fn files_under(root: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(
                    ConfigError::new(format!("cannot list templates: {e}")).at(dir.display().to_string())
                );
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path)
            } else {
                out.push(path)
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Renders every template. `builtins` supplies values the environment does not hold
/// (the project directory, the binary's path); the environment wins over them.
pub fn render(
    project: &Project,
    templates: &[Template],
    builtins: &BTreeMap<String, String>,
) -> Result<(Vec<Rendered>, Vec<String>), ConfigError> {
    // The project's name is a fact (`-p` wins over .env.prod, as in Compose), not a default.
    let lookup = |k: &str| {
        (k == "COMPOSE_PROJECT_NAME")
            .then(|| project.name.clone())
            .or_else(|| project.env.get(k))
            .or_else(|| builtins.get(k).cloned())
    };
    let mut warnings = Vec::new();
    let mut out = Vec::with_capacity(templates.len());
    for t in templates {
        let shown = Path::new(TEMPLATE_DIR).join(&t.path).display().to_string();
        let r = interpolate::interpolate(&t.text, &lookup)
            .map_err(|e| ConfigError::new(e.to_string()).at(&shown))?;
        warnings.extend(
            r.unset
                .into_iter()
                .map(|v| format!("{shown}: the {v} variable is not set; using an empty string")),
        );
        out.push(Rendered {
            path: t.path.clone(),
            content: r.value,
        });
    }
    Ok((out, warnings))
}

/// Commands that run the stack need what `setup` creates.
pub fn require_setup(project: &Project) -> std::result::Result<(), CtlError> {
    if !project.env.exists {
        return Err(
            CtlError::usage(format!("{} does not exist", project.env.path.display()))
                .hint("run `pricescan-ctl setup` first"),
        );
    }
    if !project.dir.join(CONFIG_DIR).is_dir() {
        return Err(
            CtlError::usage(format!("{}/ is missing", project.dir.join(CONFIG_DIR).display()))
                .hint("run `pricescan-ctl setup` first: it renders the config files the containers mount"),
        );
    }
    project.env.check_placeholders()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Environment;

    fn project(env: &str) -> Project {
        let env = Environment::parse(Path::new(".env.prod"), env).unwrap();
        let compose = "services:\n  a: {image: x}\n";
        Project::from_text(compose, "c.yml".into(), true, "/srv/p".into(), env, None).unwrap()
    }

    fn builtins() -> BTreeMap<String, String> {
        [
            ("PROJECT_DIR", "/srv/p"),
            ("PRICESCAN_CTL", "/usr/local/bin/pricescan-ctl"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn every_embedded_template_renders_without_unset_variables() {
        let p = project("REDIS_PASSWORD=s3cr3t-value\nNGINX_TLS=off\n");
        let templates: Vec<Template> = embedded()
            .into_iter()
            .map(|(path, text)| Template {
                path,
                text: text.to_string(),
                on_disk: false,
            })
            .collect();
        assert!(templates.len() >= 12, "templates: {}", templates.len());
        let (rendered, warnings) = render(&p, &templates, &builtins()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let redis = rendered
            .iter()
            .find(|r| r.path == Path::new("redis/redis.conf"))
            .unwrap();
        assert!(redis.content.contains("requirepass s3cr3t-value"));
        let nginx = rendered
            .iter()
            .find(|r| r.path == Path::new("nginx/pricescan.conf"))
            .unwrap();
        assert!(nginx.content.contains("$remote_addr") && nginx.content.contains("tls-off.inc"));
        let cron = rendered
            .iter()
            .find(|r| r.path == Path::new("cron/pricescan-backup"))
            .unwrap();
        assert!(
            cron.content
                .contains("cd /srv/p && /usr/local/bin/pricescan-ctl --quiet backup")
        );
    }

    #[test]
    fn mysql_config_has_no_setting_removed_in_mysql_8() {
        let cnf = embedded()[Path::new("mysql/conf.d/pricescan.cnf")];
        let settings: Vec<&str> = cnf.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        assert!(
            !settings.iter().any(|l| l.contains("query_cache")),
            "{settings:?}"
        );
    }

    #[test]
    fn a_missing_required_variable_names_the_template() {
        let p = project("");
        let t = Template {
            path: "redis/redis.conf".into(),
            text: "requirepass ${REDIS_PASSWORD:?set it}".into(),
            on_disk: true,
        };
        let err = render(&p, &[t], &BTreeMap::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "templates/redis/redis.conf: required variable REDIS_PASSWORD is missing a value: set it"
        );
    }
}
