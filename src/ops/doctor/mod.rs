//! `doctor` (DESIGN §12): the old guide's security and maintenance sections as checks of this
//! server. Every group runs concurrently; each finding is ok, warn or fail, with the fix.

mod backups;
mod engine;
mod exposure;
mod files;
mod tls;

use crate::engine::Engine;
use crate::stack::Project;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            status: Level::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Level::Warn,
            fix: Some(fix.into()),
            ..Self::ok(check, message)
        }
    }

    pub fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Level::Fail,
            ..Self::warn(check, message, fix)
        }
    }
}

/// Every check, in a fixed order whatever order they finish in.
pub async fn examine(engine: &Engine, project: &Project) -> Vec<Finding> {
    let (exposure, engine_checks, backups, tls) = tokio::join!(
        exposure::check(engine, project),
        engine::check(engine, project),
        backups::check(engine, project),
        async { tls::check(project) },
    );
    let mut all = exposure;
    all.extend(files::check(project));
    all.extend(tls);
    all.extend(backups);
    all.extend(engine_checks);
    all
}
