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

/// Every check, in a fixed order whatever order they finish in. The project's containers
/// are listed once, for the checks that read them.
pub async fn examine(engine: &Engine, project: &Project) -> Vec<Finding> {
    let (containers, backups) = tokio::join!(
        engine.project_containers(&project.name),
        backups::check(engine, project),
    );
    let (mut all, engine_checks) = match containers {
        Ok(c) => (exposure::check(&c), engine::check(engine, project, &c).await),
        Err(e) => (
            vec![Finding::fail("engine", e.what, "check the engine: `docker info`")],
            Vec::new(),
        ),
    };
    all.extend(files::check(project));
    all.extend(tls::check(project));
    all.extend(backups);
    all.extend(engine_checks);
    all
}
