//! The connection to one engine: connecting with a deadline, negotiating the API version,
//! and what the engine says about itself.

use super::errors::{self, engine_error};
use crate::error::{CtlError, ExitStatus, Result};
use bollard::Docker;
use std::time::Duration;

/// How long to wait for the engine to answer before declaring it unreachable (exit 69).
/// A missing socket or a refused connection fails at once; this bounds only an engine that
/// accepts and then says nothing. A busy engine on a loaded host (two cores running a dozen
/// stacks) has taken over 2 s to answer `/version`, so the bound is generous.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Oldest engine that pricescan-ctl supports (DESIGN §3 setup).
pub const MIN_ENGINE: (u32, u32) = (20, 10);

/// A connected engine and what it said about itself.
#[derive(Clone)]
pub struct Engine {
    pub(super) docker: Docker,
    pub info: EngineInfo,
    /// Labels naming this process, put on every one-off container it creates, so that a
    /// later command can tell debris (its creator is gone) from work in progress.
    pub(super) owner: std::collections::HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct EngineInfo {
    pub host: String,
    pub version: String,
    pub api_version: String,
    pub cpus: u64,
    pub memory_bytes: u64,
}

impl Engine {
    /// Connects to `host` (or the local socket), negotiates the API version and reads the
    /// engine's version. Unreachable engines fail fast with exit 69 and a hint.
    pub async fn connect(host: Option<&str>) -> Result<Self> {
        let shown = host.unwrap_or("unix:///var/run/docker.sock").to_string();
        let unreachable = |cause: String| {
            CtlError::new(
                ExitStatus::EngineUnreachable,
                format!("cannot reach the Docker engine at {shown}"),
            )
            .cause(cause)
            .hint(errors::connect_hint(&shown))
        };
        let docker = match host {
            Some(h) if !h.is_empty() => Docker::connect_with_host(h),
            _ => Docker::connect_with_local_defaults(),
        }
        .map_err(|e| unreachable(e.to_string()))?;
        let connect = async {
            let docker = docker.negotiate_version().await?;
            let version = docker.version().await?;
            Ok::<_, bollard::errors::Error>((docker, version))
        };
        let (docker, version) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(|e| {
                unreachable(errors::socket_problem(&shown).unwrap_or_else(|| errors::describe(&e)))
            })?;
        let info = EngineInfo {
            host: shown,
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            ..EngineInfo::default()
        };
        Ok(Self {
            docker,
            info,
            owner: Default::default(),
        })
    }

    /// True when the engine runs on another machine (ssh://, tcp://): files written here
    /// are not files its containers can mount.
    pub fn is_remote(&self) -> bool {
        ["ssh://", "tcp://", "http://", "https://"]
            .iter()
            .any(|s| self.info.host.starts_with(s))
    }

    /// Stamps one-off containers created from now on with `labels` (see `owner`).
    pub fn set_owner(&mut self, labels: std::collections::HashMap<String, String>) {
        self.owner = labels;
    }

    /// True when the engine is at least `MIN_ENGINE`.
    pub fn version_supported(&self) -> bool {
        parse_version(&self.info.version) >= MIN_ENGINE
    }

    /// Whether the engine answers `/_ping` within `CONNECT_TIMEOUT`.
    pub async fn ping(&self) -> bool {
        matches!(
            tokio::time::timeout(CONNECT_TIMEOUT, self.docker.ping()).await,
            Ok(Ok(_))
        )
    }

    /// The engine's data root (images, containers, volumes), as its host sees it.
    pub async fn data_root(&self) -> Result<String> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| engine_error("cannot read engine info", e))?;
        Ok(info.docker_root_dir.unwrap_or_default())
    }

    /// CPU count and memory of the engine's host.
    pub async fn host_resources(&mut self) -> Result<(u64, u64)> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| engine_error("cannot read engine info", e))?;
        self.info.cpus = info.ncpu.unwrap_or(0).max(0) as u64;
        self.info.memory_bytes = info.mem_total.unwrap_or(0).max(0) as u64;
        Ok((self.info.cpus, self.info.memory_bytes))
    }
}

/// "20.10.24+dfsg1" → (20, 10); anything unreadable → (0, 0).
pub fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split(|c: char| !c.is_ascii_digit()).filter(|p| !p.is_empty());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_versions() {
        assert_eq!(parse_version("20.10.24+dfsg1"), (20, 10));
        assert_eq!(parse_version("28.2.2"), (28, 2));
        assert_eq!(parse_version(""), (0, 0));
        assert!(parse_version("19.03.1") < MIN_ENGINE);
        assert!(parse_version("24.0.0") >= MIN_ENGINE);
    }
}
