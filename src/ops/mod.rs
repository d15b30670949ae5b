//! Operations shared by several commands: converging a service to its configuration,
//! waiting for health, moving Nginx's upstream, and the project's networks and volumes.
//! Commands orchestrate these; only the engine module talks to Docker.

pub mod backup;
pub mod backups;
pub mod buildctx;
pub mod converge;
pub mod debris;
pub mod deploy;
pub mod doctor;
pub mod events;
pub mod host;
pub mod images;
pub mod lock;
pub mod loglines;
pub mod monitor;
pub mod nginx;
pub mod offsite;
pub mod reclaim;
pub mod release;
pub mod resources;
pub mod restore;
pub mod shadow;
pub mod sqlcount;
pub mod status;
pub mod swarm;
pub mod target;
pub mod wait;

use crate::error::{CtlError, Result};
use crate::stack::Project;
use crate::stack::templates::CONFIG_DIR;

/// The label that marks a stateless service restarted start-first behind Nginx.
pub const UPDATE_LABEL: &str = "io.pricescan.update";

pub fn is_start_first(project: &Project, service: &str) -> bool {
    project
        .service(service)
        .labels
        .get(UPDATE_LABEL)
        .is_some_and(|v| v == "start-first")
}

/// How long the old API container drains after traffic has moved (API_DRAIN, default 10s).
pub fn api_drain(project: &Project) -> std::time::Duration {
    project
        .env
        .get("API_DRAIN")
        .and_then(|d| humantime::parse_duration(&d).ok())
        .unwrap_or(std::time::Duration::from_secs(10))
}

/// Commands that run the stack need what `setup` creates.
pub fn require_setup(project: &Project) -> Result<()> {
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
