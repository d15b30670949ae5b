//! The project's variables: `.env.prod` under the process environment, as in Compose.

use super::dotenv::{self, Entry};
use super::secrets;
use crate::error::ConfigError;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Environment {
    pub path: PathBuf,
    /// False when the file does not exist yet (before `setup`).
    pub exists: bool,
    pub entries: Vec<Entry>,
}

fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

impl Environment {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.to_path_buf(),
                    exists: false,
                    entries: Vec::new(),
                });
            }
            Err(e) => {
                return Err(ConfigError::new(format!("cannot read: {e}")).at(path.display().to_string()));
            }
        };
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let entries = dotenv::parse(text, &process_env).map_err(|e| {
            ConfigError::new(e.message)
                .at(format!("{}:{}", path.display(), e.line))
                .hint("each line must be KEY=value; quote values that contain spaces or #")
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            exists: true,
            entries,
        })
    }

    /// The value Compose would use: the process environment first, then the file.
    pub fn get(&self, key: &str) -> Option<String> {
        process_env(key).or_else(|| self.file_value(key).map(str::to_string))
    }

    /// A duration setting (`30s`, `10m`, `90d`), `default` when unset or empty. Shorter than
    /// `at_least`, or not a duration, is a usage error naming where the value is set.
    pub fn duration(
        &self,
        key: &str,
        default: std::time::Duration,
        at_least: std::time::Duration,
    ) -> Result<std::time::Duration, crate::error::CtlError> {
        let Some(text) = self.get(key).filter(|v| !v.trim().is_empty()) else {
            return Ok(default);
        };
        let bad = |why: String| {
            // The process environment's location already names the key.
            let at = match self.location_of(key) {
                at if at.starts_with(key) => at,
                at => format!("{at}: {key}"),
            };
            crate::error::CtlError::usage(format!("{at}: {why}")).hint("for example 30s, 10m or 90d")
        };
        match super::units::parse_human_duration(text.trim()) {
            Ok(d) if d >= at_least => Ok(d),
            Ok(_) => Err(bad(format!(
                "must be at least {}",
                humantime::format_duration(at_least)
            ))),
            Err(e) => Err(bad(e)),
        }
    }

    /// Any other setting: `default` when unset or empty, else `parse`'s value, or a usage
    /// error naming where the value is set and showing `example`.
    pub fn parsed<T>(
        &self,
        key: &str,
        default: T,
        parse: impl Fn(&str) -> Result<T, String>,
        example: &str,
    ) -> Result<T, crate::error::CtlError> {
        let Some(text) = self.get(key).filter(|v| !v.trim().is_empty()) else {
            return Ok(default);
        };
        parse(text.trim()).map_err(|why| {
            let at = match self.location_of(key) {
                at if at.starts_with(key) => at,
                at => format!("{at}: {key}"),
            };
            crate::error::CtlError::usage(format!("{at}: {why}")).hint(format!("for example {example}"))
        })
    }

    pub fn file_value(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
    }

    /// Where `key`'s value comes from, for messages: `file:line`, or the process environment
    /// when that overrides the file or the file lacks it.
    pub fn location_of(&self, key: &str) -> String {
        match self.line_of(key) {
            Some(line) if process_env(key).is_none() => format!("{}:{line}", self.path.display()),
            _ => format!("{key} (from the process environment)"),
        }
    }

    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.line)
    }

    /// Every secret value in effect, for masking output.
    pub fn secret_values(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| crate::error::is_secret_key(&e.key))
            .filter_map(|e| self.get(&e.key))
            .filter(|v| !v.is_empty())
            .flat_map(|v| {
                let parts = super::secrets::secret_parts(&v);
                std::iter::once(v).chain(parts)
            })
            .collect()
    }

    /// Refuses to go on while any variable is a placeholder or an empty secret.
    pub fn check_placeholders(&self) -> Result<(), ConfigError> {
        for entry in &self.entries {
            let value = self.get(&entry.key).unwrap_or_default();
            if let Some(problem) = secrets::secret_problem(&entry.key, &value) {
                return Err(ConfigError::new(format!("{} {problem}", entry.key))
                    .at(format!("{}:{}", self.path.display(), entry.line))
                    .hint(format!(
                        "set a real value for {} in {} (pricescan-ctl setup fills secrets with random values)",
                        entry.key,
                        self.path.display()
                    )));
            }
        }
        Ok(())
    }
}
