//! Releases of the API: records appended to `.pricescan/releases.jsonl`, and the current
//! release's image, which overrides the compose file's so that `start`, `status` and
//! `config` agree with what was deployed.

use crate::error::{Context as _, Result};
use crate::fsutil;
use crate::stack::Project;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const API_SERVICE: &str = "pricescan-api";
/// Releases whose containers and images are kept for rollback.
pub const KEEP_RELEASES: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Release {
    pub id: String,
    pub kind: String,
    pub image: String,
    pub digest: Option<String>,
    pub previous: Option<String>,
    /// The image that served before, so a rollback works even for the first release.
    #[serde(default)]
    pub previous_image: Option<String>,
    pub user: String,
    pub host: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    /// succeeded, rolled_back or failed.
    pub result: String,
    pub backup: Option<String>,
    pub message: Option<String>,
}

pub fn path(project: &Project) -> PathBuf {
    project.dir.join(".pricescan").join("releases.jsonl")
}

/// Every record, oldest first; unreadable lines are skipped (the file is append-only).
pub fn history(project: &Project) -> Vec<Release> {
    std::fs::read_to_string(path(project))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn current(project: &Project) -> Option<Release> {
    history(project)
        .into_iter()
        .rev()
        .find(|r| r.result == "succeeded")
}

/// Appends one record; the file is rewritten atomically so a crash never leaves half a line.
pub fn append(project: &Project, release: &Release) -> Result<()> {
    let file = path(project);
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&serde_json::to_string(release).context(|| "cannot encode the release".into())?);
    text.push('\n');
    fsutil::write_atomic(&file, text.as_bytes(), 0o600)
}

/// The deployed image replaces the compose file's for the API.
pub fn apply_current(project: &mut Project) {
    if let (Some(release), Some(service)) = (current(project), project.file.services.get_mut(API_SERVICE)) {
        service.image = Some(release.image);
    }
}

pub fn new_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!("r{}", now.format("%Y%m%dT%H%M%SZ"))
}
