//! The engine and what runs on it: its version, log rotation on every container, drift from
//! the configuration, strangers on the stack's networks, and a stale operation lock.

use super::finding::Finding;
use crate::engine::{ContainerInfo, Engine, LockScope, labels};
use crate::stack::Project;
use crate::targets::{lock, status};
use futures_util::future::join_all;

pub async fn check(engine: &Engine, project: &Project, containers: &[ContainerInfo]) -> Vec<Finding> {
    let (rotation, drift, strangers, lock) = tokio::join!(
        rotation(engine, project, containers),
        drift(engine, project),
        strangers(engine, project),
        stale_lock(engine, project),
    );
    let mut found = vec![version(engine), rotation];
    found.extend(drift);
    found.extend(strangers);
    found.push(lock);
    found
}

fn version(engine: &Engine) -> Finding {
    let what = format!(
        "Docker {} at {}, API {} in use",
        engine.info.version, engine.info.host, engine.info.api_version
    );
    match engine.version_supported() {
        true => Finding::ok("engine", what),
        false => Finding::fail(
            "engine",
            format!("{what}: older than 20.10"),
            "upgrade Docker to 20.10 or newer",
        ),
    }
}

/// json-file logs grow without end unless max-size is set (`local` rotates by default).
pub fn rotates(driver: &str, options: &std::collections::HashMap<String, String>) -> bool {
    match driver {
        "json-file" => options
            .get("max-size")
            .is_some_and(|s| !s.is_empty() && s != "-1"),
        _ => true,
    }
}

const ROTATION_FIX: &str = "give those services `logging: {driver: json-file, options: {max-size: 10m, max-file: \"3\"}}` in the compose file, then `pricescan-ctl start`";

/// Fails where a running container's logs grow without limit; warns where rotation comes
/// only from the engine's defaults (daemon.json), which the next server may not have.
async fn rotation(engine: &Engine, project: &Project, containers: &[ContainerInfo]) -> Finding {
    let running: Vec<&ContainerInfo> = containers.iter().filter(|c| c.is_running()).collect();
    let details = join_all(running.iter().map(|c| engine.inspect(&c.id))).await;
    let mut unrotated = Vec::new();
    let mut by_default = Vec::new();
    for (c, d) in running.iter().zip(details) {
        let Ok(d) = d else { continue };
        if !rotates(&d.log_driver, &d.log_options) {
            unrotated.push(format!("{} ({})", c.service, d.log_driver));
        } else if !declares_rotation(project, &c.service) {
            by_default.push(c.service.clone());
        }
    }
    if !unrotated.is_empty() {
        return Finding::fail(
            "logs",
            format!("logs grow without limit: {}", unrotated.join(", ")),
            ROTATION_FIX,
        );
    }
    if !by_default.is_empty() {
        return Finding::warn(
            "logs",
            format!(
                "only the engine's defaults rotate the logs of {}",
                by_default.join(", ")
            ),
            ROTATION_FIX,
        );
    }
    Finding::ok(
        "logs",
        format!("log rotation is on for all {} running containers", running.len()),
    )
}

/// Whether the compose file itself rotates the service's logs.
fn declares_rotation(project: &Project, service: &str) -> bool {
    let Some(logging) = project.service(service).logging.as_ref() else {
        return false;
    };
    let options = logging
        .options
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let driver = logging.driver.as_deref().unwrap_or("json-file");
    rotates(driver, &options)
}

async fn drift(engine: &Engine, project: &Project) -> Vec<Finding> {
    let selected = project.active_services();
    let status = match status::collect(engine, project, &selected, status::Resources::Skip).await {
        Ok(s) => s,
        Err(e) => return vec![Finding::warn("drift", e.what, "`pricescan-ctl status`")],
    };
    let drifted: Vec<Finding> = status
        .services
        .iter()
        .filter(|s| s.drift)
        .map(|s| {
            Finding::warn(
                "drift",
                format!(
                    "{} runs an outdated container: {}",
                    s.service,
                    s.drift_reason
                        .as_deref()
                        .unwrap_or("it differs from the configuration")
                ),
                format!("`pricescan-ctl restart {}` applies the configuration", s.service),
            )
        })
        .collect();
    match drifted.is_empty() {
        true => vec![Finding::ok("drift", "every container matches the configuration")],
        false => drifted,
    }
}

/// Containers on the stack's networks that the stack did not create: they can reach MySQL.
async fn strangers(engine: &Engine, project: &Project) -> Vec<Finding> {
    let networks: Vec<String> = project
        .used_networks()
        .iter()
        .map(|n| project.network_name(n))
        .collect();
    let lists = join_all(networks.iter().map(|n| engine.network_containers(n))).await;
    let mut found = Vec::new();
    for (network, list) in networks.iter().zip(lists) {
        for c in list.unwrap_or_default() {
            if c.labels.get(labels::PROJECT) != Some(&project.name) {
                found.push(Finding::warn(
                    "drift",
                    format!("{}, not part of the stack, is attached to {network}", c.name),
                    format!(
                        "`docker network disconnect {network} {}` unless it belongs there",
                        c.name
                    ),
                ));
            }
        }
    }
    if found.is_empty() {
        found.push(Finding::ok(
            "drift",
            format!("only the stack's containers are on {}", networks.join(", ")),
        ));
    }
    found
}

async fn stale_lock(engine: &Engine, project: &Project) -> Finding {
    match lock::holder(engine, LockScope::Engine, &project.name).await {
        Ok(None) => Finding::ok("lock", "no operation holds the lock"),
        Ok(Some((_, Some(owner)))) if owner.is_dead_here() => Finding::warn(
            "lock",
            format!("a stale lock: {}, and that process is gone", owner.describe()),
            "the next command that takes the lock takes it over; `pricescan-ctl lock release --force` frees it now",
        ),
        Ok(Some((_, Some(owner)))) => Finding::ok("lock", format!("in progress: {}", owner.describe())),
        Ok(Some((_, None))) => Finding::warn(
            "lock",
            "the lock names no holder",
            "`pricescan-ctl lock release --force`",
        ),
        Err(e) => Finding::warn("lock", e.what, "`pricescan-ctl lock`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn json_file_needs_max_size() {
        let opts = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert!(!rotates("json-file", &opts(&[])));
        assert!(rotates("json-file", &opts(&[("max-size", "10m")])));
        assert!(rotates("local", &opts(&[])));
        assert!(rotates("journald", &opts(&[])));
    }
}
