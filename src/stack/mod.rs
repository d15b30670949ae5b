//! The stack model: the compose file, `.env.prod`, interpolation and the dependency graph.
//! Nothing here talks to Docker; the engine module turns this model into containers.

pub mod alerting;
pub mod compose;
pub mod dockerignore;
pub mod dotenv;
pub mod embedded;
pub mod envfile;
pub mod environment;
pub mod graph;
pub mod interpolate;
pub mod names;
pub mod node_engines;
pub mod notify;
pub mod offsite;
pub mod project;
pub mod retention;
pub mod secrets;
pub mod swarm;
pub mod templates;
pub mod units;
pub mod yaml_lines;

pub use environment::Environment;
pub use project::{Project, ProjectOptions};

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// A problem with the stack's configuration: always the operator's to fix (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File and, where known, `:line[:column]`.
    pub location: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error with every occurrence of a secret value masked.
    pub fn masked(self, secrets: &[String]) -> Self {
        let mask = |text: String| secrets::mask_text(&text, secrets);
        Self {
            location: self.location.map(mask),
            message: mask(self.message),
            hint: self.hint.map(mask),
        }
    }

    pub fn in_file(path: &Path) -> impl Fn(String) -> Self + '_ {
        move |message| Self::new(message).at(path.display().to_string())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// `path` made absolute against `base` when it is relative, and cleaned of `.` and `..`
/// lexically (as Compose does), so that the same directory always has the same name.
pub fn resolve_path(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_and_cleaned() {
        let base = Path::new("/srv/p");
        assert_eq!(
            resolve_path(base, Path::new("./config/x")),
            Path::new("/srv/p/config/x")
        );
        assert_eq!(resolve_path(base, Path::new("../other")), Path::new("/srv/other"));
        assert_eq!(resolve_path(base, Path::new("/abs/./y")), Path::new("/abs/y"));
    }
}
