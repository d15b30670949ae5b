//! Reading the compose file: interpolation over the YAML tree, YAML and key-path errors that
//! name the line, and the project's name.

use super::environment::Environment;
use super::interpolate::{self, InterpolationError};
use crate::error::ConfigError;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::Path;

pub(super) fn cycle_error(cycle: Vec<String>) -> ConfigError {
    ConfigError::new(format!("dependency cycle: {}", cycle.join(" -> ")))
        .hint("remove one of these depends_on entries")
}

pub(super) fn yaml_error(file: &str, e: &serde_yaml_ng::Error) -> ConfigError {
    let location = match e.location() {
        Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
        None => file.to_string(),
    };
    let message = e.to_string();
    // The library appends " at line X column Y"; the location already says it.
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    ConfigError::new(format!("invalid YAML: {message}")).at(location)
}

pub(super) fn key_path(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(format!("[{index}]")),
            _ => None,
        })
        .collect()
}

pub(super) fn display_path(path: &str) -> String {
    if path == "." {
        "(top level)".into()
    } else {
        path.to_string()
    }
}

/// Interpolates every scalar value (not keys), tracking the key path for errors.
pub(super) fn interpolate_tree(
    value: Value,
    path: &mut Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
) -> Result<Value, (Vec<String>, String)> {
    Ok(match value {
        Value::String(s) if interpolate::has_substitution(&s) => {
            let r = interpolate::interpolate(&s, lookup)
                .map_err(|e| (path.clone(), interpolation_message(path, &s, &e)))?;
            unset.extend(r.unset);
            Value::String(r.value)
        }
        Value::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                path.push(format!("[{i}]"));
                out.push(interpolate_tree(item, path, lookup, unset)?);
                path.pop();
            }
            Value::Sequence(out)
        }
        Value::Mapping(map) => {
            let mut out = serde_yaml_ng::Mapping::new();
            for (k, v) in map {
                path.push(key_text(&k));
                let v = interpolate_tree(v, path, lookup, unset)?;
                path.pop();
                out.insert(k, v);
            }
            Value::Mapping(out)
        }
        other => other,
    })
}

pub(super) fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

pub(super) fn interpolation_message(path: &[String], text: &str, e: &InterpolationError) -> String {
    let joined = path.iter().fold(String::new(), |mut acc, seg| {
        if !acc.is_empty() && !seg.starts_with('[') {
            acc.push('.');
        }
        acc.push_str(seg);
        acc
    });
    // A value under a secret's key, or a list entry that assigns one, is never quoted.
    let assigned = text.split_once('=').map(|(key, _)| key.trim());
    let secret = path
        .iter()
        .map(String::as_str)
        .chain(assigned)
        .any(crate::error::is_secret_key);
    match secret {
        true => format!(
            "{joined}: {} (the value is not shown: it may be a secret)",
            e.without_text()
        ),
        false => format!("{joined}: {e}"),
    }
}

/// `-p`, then COMPOSE_PROJECT_NAME, then the file's `name:`, then the directory name.
pub(super) fn project_name(
    flag: Option<&str>,
    env: &Environment,
    file: Option<&str>,
    dir: &Path,
) -> Result<String, ConfigError> {
    let explicit = flag
        .map(str::to_string)
        .or_else(|| env.get("COMPOSE_PROJECT_NAME"))
        .or(file.map(str::to_string));
    if let Some(name) = explicit {
        let valid = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err(ConfigError::new(format!("invalid project name {name:?}"))
                .hint("use lowercase letters, digits, - and _, starting with a letter or digit"));
        }
        return Ok(name);
    }
    let base = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("pricescan")
        .to_ascii_lowercase();
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Ok(if cleaned.is_empty() {
        "pricescan".into()
    } else {
        cleaned
    })
}
