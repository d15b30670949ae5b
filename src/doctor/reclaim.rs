//! What `cleanup` may free (DESIGN §12): images of releases older than the kept ones,
//! dangling images, one-off containers of this project that exited or never started, and
//! partial backup directories. Never a volume, the serving image, an image any container
//! uses, the compose file's images, or the image of a release `deploy rollback` can return to.

use crate::backup::catalog::{self, backup_root};
use crate::deploy::release::{self, KEEP_RELEASES};
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::stack::Project;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// release image, dangling image, one-off container, partial backup
    pub kind: &'static str,
    pub name: String,
    pub bytes: u64,
    #[serde(skip)]
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Image(String),
    Container(String),
    Dir(PathBuf),
}

/// Everything that may go now. `partials`: whether partial backup directories are debris
/// (only while holding the lock, or when nobody does).
pub async fn plan(engine: &Engine, project: &Project, partials: bool) -> Result<Vec<Item>> {
    let (old, dangling, oneoffs) = tokio::join!(
        old_release_images(engine, project),
        engine.dangling_images(),
        engine.oneoff_containers(&project.name)
    );
    let mut items = old?;
    items.extend(dangling?.into_iter().map(|i| Item {
        kind: "dangling image",
        name: short(&i.id),
        bytes: i.size,
        target: Target::Image(i.id),
    }));
    let lock_name = format!("{}-lock", project.name);
    items.extend(
        oneoffs?
            .into_iter()
            .filter(|c| c.name != lock_name && matches!(c.state.as_str(), "exited" | "created" | "dead"))
            .map(|c| Item {
                kind: "one-off container",
                name: format!("{} ({})", c.name, c.state),
                bytes: 0,
                target: Target::Container(c.id),
            }),
    );
    if partials {
        for b in catalog::list(&backup_root(project))?
            .into_iter()
            .filter(|b| b.partial)
        {
            items.push(Item {
                kind: "partial backup",
                name: b.path.display().to_string(),
                bytes: b.size,
                target: Target::Dir(b.path),
            });
        }
    }
    Ok(items)
}

/// Images of succeeded releases beyond the last KEEP_RELEASES, unless something still needs
/// them: a kept release (rollback target), any container, or the compose file.
async fn old_release_images(engine: &Engine, project: &Project) -> Result<Vec<Item>> {
    let history = release::history(project)?.releases;
    let succeeded: Vec<&release::Release> = history.iter().filter(|r| r.result == "succeeded").collect();
    let kept: BTreeSet<&str> = succeeded
        .iter()
        .rev()
        .take(KEEP_RELEASES)
        .map(|r| r.image.as_str())
        .collect();
    let containers = engine.project_containers(&project.name).await?;
    let in_use: BTreeSet<&str> = containers.iter().map(|c| c.image_id.as_str()).collect();
    let declared: BTreeSet<String> = project
        .active_services()
        .iter()
        .filter_map(|s| project.service(s).image.clone())
        .collect();
    let mut seen = BTreeSet::new();
    let mut items = Vec::new();
    for r in succeeded.iter().rev().skip(KEEP_RELEASES) {
        let image = r.image.as_str();
        if kept.contains(image) || declared.contains(image) || !seen.insert(image) {
            continue;
        }
        let Some(found) = engine.image_item(image).await? else {
            continue;
        };
        // Every container's image, the serving one's included, stays.
        if in_use.contains(found.id.as_str()) {
            continue;
        }
        items.push(Item {
            kind: "release image",
            name: format!("{image} (release {})", r.id),
            bytes: found.size,
            target: Target::Image(image.to_string()),
        });
    }
    Ok(items)
}

fn short(id: &str) -> String {
    let hex = id.trim_start_matches("sha256:");
    hex[..hex.len().min(12)].to_string()
}

/// Removes one item; false when the engine kept it because something started using it.
pub async fn remove(engine: &Engine, item: &Item) -> Result<bool> {
    match &item.target {
        Target::Image(reference) => engine.remove_image_if_unused(reference).await,
        Target::Container(id) => engine.remove(id).await.map(|_| true),
        Target::Dir(path) => std::fs::remove_dir_all(path)
            .map(|_| true)
            .map_err(|e| CtlError::failure(format!("cannot remove {}", path.display())).cause(e)),
    }
}
