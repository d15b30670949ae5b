//! The labels Docker Compose writes, so that `docker compose -p NAME ps` and pricescan-ctl
//! see the same objects (DESIGN §2). Extra labels of our own use the `io.pricescan.` prefix.

use std::collections::HashMap;

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const VERSION: &str = "com.docker.compose.version";
pub const RELEASE: &str = "io.pricescan.release";
pub const MANAGED_BY: &str = "io.pricescan.managed-by";

/// The Compose version our labels claim compatibility with.
pub const COMPOSE_VERSION: &str = "1.29.2";

pub fn network(project: &str, key: &str) -> HashMap<String, String> {
    common(project, [(NETWORK, key)])
}

pub fn volume(project: &str, key: &str) -> HashMap<String, String> {
    common(project, [(VOLUME, key)])
}

fn common<const N: usize>(project: &str, extra: [(&str, &str); N]) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = [
        (PROJECT, project),
        (VERSION, COMPOSE_VERSION),
        (MANAGED_BY, "pricescan-ctl"),
    ]
    .iter()
    .chain(extra.iter())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.retain(|_, v| !v.is_empty());
    labels
}
