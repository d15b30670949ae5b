//! How each service is replaced, as the model says: start-first behind Nginx (the API, by
//! its `io.pricescan.update` label) or stop-first, and how long the old API drains.

use super::project::Project;
use std::time::Duration;

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
pub fn api_drain(project: &Project) -> Duration {
    project
        .env
        .get("API_DRAIN")
        .and_then(|d| humantime::parse_duration(&d).ok())
        .unwrap_or(Duration::from_secs(10))
}
