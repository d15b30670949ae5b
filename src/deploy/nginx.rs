//! Moving Nginx's upstream to another API container without dropping a request: the
//! include file is written atomically in the mounted directory, checked with `nginx -t`,
//! and applied with a graceful `nginx -s reload`.

use crate::engine::{ContainerInfo, Engine};
use crate::error::{CtlError, Result};
use crate::stack::Project;
use crate::stack::templates::CONFIG_DIR;
use crate::sys::fsutil;
use std::path::PathBuf;

pub const NGINX_SERVICE: &str = "pricescan-nginx";
pub const UPSTREAM_FILE: &str = "nginx/upstream.inc";
/// `nginx -t` and `nginx -s reload` answer in milliseconds; seconds mean a hung Nginx.
const NGINX_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn upstream_path(project: &Project) -> PathBuf {
    project.dir.join(CONFIG_DIR).join(UPSTREAM_FILE)
}

pub const WRITES_FILE: &str = "nginx/writes.inc";

pub fn writes_path(project: &Project) -> PathBuf {
    project.dir.join(CONFIG_DIR).join(WRITES_FILE)
}

/// Nginx's write mode: normally nothing; read-only refuses every method that may change
/// data with 503 and a Retry-After, so that no write lands in data about to be replaced.
pub fn writes_config(read_only: bool) -> String {
    let head = "# Owned by pricescan-ctl (restore): rewritten atomically, checked with nginx -t,\n\
                # then nginx -s reload. Do not edit.\n";
    match read_only {
        false => format!("{head}# Read-write.\n"),
        true => format!(
            "{head}# Read-only while a restore reloads the data.\n\
             if ($request_method !~ ^(GET|HEAD|OPTIONS)$) {{\n    \
             add_header Retry-After 60 always;\n    return 503;\n}}\n"
        ),
    }
}

/// Turns read-only mode on or off in a running Nginx; checked and graceful like the upstream.
pub async fn set_read_only(
    engine: &Engine,
    project: &Project,
    nginx: Option<&ContainerInfo>,
    read_only: bool,
) -> Result<bool> {
    write_and_reload(engine, nginx, &writes_path(project), writes_config(read_only)).await
}

pub fn upstream_config(server: &str) -> String {
    format!(
        "# Owned by pricescan-ctl (start, restart, deploy): rewritten atomically, checked with\n\
         # nginx -t, then nginx -s reload. Do not edit.\n\
         upstream pricescan_api {{\n    server {server}:8000 max_fails=0;\n    keepalive 32;\n}}\n"
    )
}

/// The container the upstream points at now, if the file names one.
pub fn current_upstream(project: &Project) -> Option<String> {
    let text = std::fs::read_to_string(upstream_path(project)).ok()?;
    let line = text.lines().map(str::trim).find(|l| l.starts_with("server "))?;
    line.trim_start_matches("server ")
        .split(':')
        .next()
        .map(str::to_string)
}

/// The running Nginx container of the project, if any.
pub fn running_nginx(containers: &[ContainerInfo]) -> Option<&ContainerInfo> {
    containers
        .iter()
        .find(|c| c.service == NGINX_SERVICE && c.state == "running")
}

/// Points the upstream at `server` and reloads a running Nginx. On a failed check the old
/// file is put back, so Nginx keeps serving what it served. During a rollout `server` is the
/// new container's name (the service name would resolve to the old one too); at rest it is
/// the service name.
pub async fn point_upstream(
    engine: &Engine,
    project: &Project,
    nginx: Option<&ContainerInfo>,
    server: &str,
) -> Result<bool> {
    write_and_reload(engine, nginx, &upstream_path(project), upstream_config(server)).await
}

/// Writes an owned include file atomically and reloads; false when it already said that.
async fn write_and_reload(
    engine: &Engine,
    nginx: Option<&ContainerInfo>,
    path: &std::path::Path,
    wanted: String,
) -> Result<bool> {
    let previous = std::fs::read_to_string(path).ok();
    if previous.as_deref() == Some(wanted.as_str()) {
        return Ok(false);
    }
    fsutil::write_atomic(path, wanted.as_bytes(), 0o644)?;
    reload_or_restore(engine, nginx, path, previous).await
}

/// Makes a running Nginx resolve its upstream again. Nginx resolves names only when it
/// loads its configuration, and a container that was started again may have a new address.
pub async fn refresh(engine: &Engine, nginx: Option<&ContainerInfo>) -> Result<()> {
    match nginx {
        Some(n) => reload(engine, &n.id).await,
        None => Ok(()),
    }
}

async fn reload_or_restore(
    engine: &Engine,
    nginx: Option<&ContainerInfo>,
    path: &std::path::Path,
    previous: Option<String>,
) -> Result<bool> {
    let Some(nginx) = nginx else { return Ok(true) };
    if let Err(e) = reload(engine, &nginx.id).await {
        if let Some(old) = previous {
            fsutil::write_atomic(path, old.as_bytes(), 0o644)?;
        }
        return Err(e);
    }
    Ok(true)
}

/// `nginx -t`, then a graceful `nginx -s reload`.
pub async fn reload(engine: &Engine, nginx_id: &str) -> Result<()> {
    let test = engine
        .exec_within(nginx_id, &["nginx", "-t", "-q"], NGINX_DEADLINE)
        .await?;
    if test.exit_code != 0 {
        return Err(
            CtlError::failure("nginx rejected the new configuration; it keeps serving the old one")
                .cause(test.stderr.trim()),
        );
    }
    let reload = engine
        .exec_within(nginx_id, &["nginx", "-s", "reload"], NGINX_DEADLINE)
        .await?;
    if reload.exit_code != 0 {
        return Err(CtlError::failure("nginx could not reload").cause(reload.stderr.trim()));
    }
    Ok(())
}
