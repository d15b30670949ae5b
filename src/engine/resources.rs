//! Networks, volumes and images: created with Compose's names and labels. Volumes are never
//! removed here; an image only when no container uses it.

use super::client::Engine;
use super::errors::engine_error;
use super::labels;
use crate::error::Result;
use bollard::errors::Error;
use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;

/// What `ensure_*` found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Exists,
    /// It exists but another project (or no project) owns it; it is left alone.
    Foreign(String),
}

/// An image as `cleanup` weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    pub id: String,
    pub tags: Vec<String>,
    pub size: u64,
}

/// One line of a pull's progress.
#[derive(Debug, Clone, Default)]
pub struct PullEvent {
    pub layer: Option<String>,
    pub status: String,
    pub current: u64,
    pub total: u64,
}

fn not_found(e: &Error) -> bool {
    matches!(e, Error::DockerResponseServerError { status_code: 404, .. })
}

fn conflict(e: &Error) -> bool {
    matches!(e, Error::DockerResponseServerError { status_code: 409, .. })
}

fn ownership(found: Option<&HashMap<String, String>>, project: &str) -> Ensured {
    match found.and_then(|l| l.get(labels::PROJECT)) {
        Some(p) if p == project => Ensured::Exists,
        Some(p) => Ensured::Foreign(format!("belongs to project {p}")),
        None => Ensured::Foreign("was not created by Compose or pricescan-ctl".into()),
    }
}

impl Engine {
    pub async fn ensure_network(
        &self,
        name: &str,
        project: &str,
        key: &str,
        internal: bool,
        driver: Option<&str>,
    ) -> Result<Ensured> {
        match self.docker.inspect_network(name, None).await {
            Ok(net) => return Ok(ownership(net.labels.as_ref(), project)),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(engine_error(&format!("cannot inspect network {name}"), e)),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(driver.unwrap_or("bridge").to_string()),
            internal: Some(internal),
            labels: Some(labels::network(project, key)),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(Ensured::Created),
            Err(e) if conflict(&e) => Ok(Ensured::Exists),
            Err(e) => Err(engine_error(&format!("cannot create network {name}"), e)),
        }
    }

    pub async fn ensure_volume(
        &self,
        name: &str,
        project: &str,
        key: &str,
        driver: Option<&str>,
    ) -> Result<Ensured> {
        match self.docker.inspect_volume(name).await {
            Ok(vol) => return Ok(ownership(Some(&vol.labels), project)),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(engine_error(&format!("cannot inspect volume {name}"), e)),
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: driver.map(str::to_string),
            labels: Some(labels::volume(project, key)),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| Ensured::Created)
            .map_err(|e| engine_error(&format!("cannot create volume {name}"), e))
    }

    pub async fn image_exists(&self, reference: &str) -> Result<bool> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(engine_error(&format!("cannot inspect image {reference}"), e)),
        }
    }

    /// The image `reference` names, if it exists.
    pub async fn image_item(&self, reference: &str) -> Result<Option<ImageItem>> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageItem {
                id: i.id.unwrap_or_default(),
                tags: i.repo_tags.unwrap_or_default(),
                size: i.size.unwrap_or(0).max(0) as u64,
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(engine_error(&format!("cannot inspect image {reference}"), e)),
        }
    }

    /// Untagged images that no other image builds on (`docker image prune`'s set): older
    /// builds whose tag moved on.
    pub async fn dangling_images(&self) -> Result<Vec<ImageItem>> {
        let filters = HashMap::from([("dangling".to_string(), vec!["true".to_string()])]);
        let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(|e| engine_error("cannot list images", e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageItem {
                id: i.id,
                tags: Vec::new(),
                size: i.size.max(0) as u64,
            })
            .collect())
    }

    /// Pulls `reference`, yielding per-layer progress. The stream ends with an error item
    /// if the pull fails.
    pub fn pull_image(&self, reference: &str) -> impl Stream<Item = Result<PullEvent>> + use<> {
        let options = CreateImageOptionsBuilder::default().from_image(reference).build();
        let what = format!("cannot pull image {reference}");
        self.docker
            .create_image(Some(options), None, None)
            .map(move |item| {
                let info = item.map_err(|e| engine_error(&what, e))?;
                let detail = info.progress_detail.unwrap_or_default();
                Ok(PullEvent {
                    layer: info.id,
                    status: info.status.unwrap_or_default(),
                    current: detail.current.unwrap_or(0).max(0) as u64,
                    total: detail.total.unwrap_or(0).max(0) as u64,
                })
            })
    }
}

impl Engine {
    pub async fn volume_exists(&self, name: &str) -> Result<bool> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(engine_error(&format!("cannot inspect volume {name}"), e)),
        }
    }

    /// An external network must exist already; Compose does not create it either.
    pub async fn require_network(&self, name: &str) -> Result<Ensured> {
        match self.docker.inspect_network(name, None).await {
            Ok(_) => Ok(Ensured::Exists),
            Err(e) => Err(engine_error(&format!("external network {name} is missing"), e)
                .hint("create it first: it is marked external in the compose file")),
        }
    }

    pub async fn require_volume(&self, name: &str) -> Result<Ensured> {
        match self.volume_exists(name).await? {
            true => Ok(Ensured::Exists),
            false => Err(
                crate::error::CtlError::usage(format!("external volume {name} is missing"))
                    .hint("create it first: it is marked external in the compose file"),
            ),
        }
    }
}

impl Engine {
    /// Removes an image that no container uses any more; an image still in use is kept.
    pub async fn remove_image_if_unused(&self, reference: &str) -> Result<bool> {
        match self
            .docker
            .remove_image(
                reference,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) || not_found(&e) => Ok(false),
            Err(e) => Err(engine_error(&format!("cannot remove image {reference}"), e)),
        }
    }
}
