//! How each service is replaced, as the model says: start-first behind Nginx (the API, by
//! its `io.pricescan.update` label) or stop-first, how long the old API drains, and how a
//! deploy judges the new release by its traffic (DESIGN §15).

use super::project::Project;
use crate::error::CtlError;
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

/// How a deploy judges the new release by its traffic after the switch (DESIGN §15).
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSettings {
    /// DEPLOY_ANALYSIS (60 s); zero turns the analysis off.
    pub window: Duration,
    /// DEPLOY_MAX_ERROR_RATE (1 %): the 5xx ratio that fails a release, or twice the baseline's.
    pub max_error_rate: f64,
    /// DEPLOY_MAX_P95: a fixed p95 limit in place of the one derived from the baseline.
    pub max_p95: Option<Duration>,
    /// DEPLOY_MIN_REQUESTS (50): fewer requests than this judge nothing.
    pub min_requests: u64,
}

pub fn analysis_settings(project: &Project, window: Option<Duration>) -> Result<AnalysisSettings, CtlError> {
    let env = &project.env;
    let window = match window {
        Some(w) => w,
        None => env.duration("DEPLOY_ANALYSIS", Duration::from_secs(60), Duration::ZERO)?,
    };
    let max_p95 = env.parsed(
        "DEPLOY_MAX_P95",
        None,
        |v| super::units::parse_duration(v).map(Some),
        "300ms",
    )?;
    let min_requests = env.parsed(
        "DEPLOY_MIN_REQUESTS",
        50,
        |v| match v.parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!("{v:?} is not a number of requests of at least 1")),
        },
        "50",
    )?;
    Ok(AnalysisSettings {
        window,
        max_error_rate: env.parsed("DEPLOY_MAX_ERROR_RATE", 0.01, super::units::parse_ratio, "1%")?,
        max_p95,
        min_requests,
    })
}
