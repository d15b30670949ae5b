//! The stack's operation lock as an engine object: a labelled container that is never
//! started. A container name is unique per engine, so creating it is an atomic test-and-set
//! that every client of the engine sees: other checkouts, and jobs reaching it remotely.
//! On a swarm the lock is a swarm config instead: its name is unique across the cluster, so
//! clients of different managers exclude each other too (DESIGN §11).

use super::client::Engine;
use super::containers::is_status;
use super::errors::engine_error;
use super::labels;
use crate::error::Result;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;
use std::collections::HashMap;

/// A tiny local image the lock container is created from: no registry, no stack image needed.
const LOCK_IMAGE_REPO: &str = "pricescan-ctl/lock";
const LOCK_IMAGE_TAG: &str = "1";

/// Where the lock lives: on this engine, or across the swarm it manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    Engine,
    Swarm,
}

/// The lock object as found in the engine.
#[derive(Debug, Clone)]
pub struct LockRecord {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub scope: LockScope,
}

impl Engine {
    /// Creates the lock `name`; None when it already exists (someone holds it).
    pub async fn create_lock(
        &self,
        scope: LockScope,
        name: &str,
        extra: HashMap<String, String>,
    ) -> Result<Option<String>> {
        match scope {
            LockScope::Engine => self.create_lock_container(name, extra).await,
            LockScope::Swarm => self.create_lock_config(name, extra).await,
        }
    }

    /// The lock `name`, if it exists.
    pub async fn find_lock(&self, scope: LockScope, name: &str) -> Result<Option<LockRecord>> {
        match scope {
            LockScope::Engine => self.find_lock_container(name).await,
            LockScope::Swarm => self.find_lock_config(name).await,
        }
    }

    pub async fn remove_lock(&self, lock: &LockRecord) -> Result<()> {
        match lock.scope {
            LockScope::Engine => self.remove(&lock.id).await,
            LockScope::Swarm => match self.docker.delete_config(&lock.id).await {
                Err(e) if !is_status(&e, 404) => Err(engine_error("cannot release the operation lock", e)),
                _ => Ok(()),
            },
        }
    }

    async fn create_lock_config(&self, name: &str, extra: HashMap<String, String>) -> Result<Option<String>> {
        let spec = bollard::models::ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(extra),
            data: Some(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "pricescan-ctl operation lock\n",
            )),
            ..Default::default()
        };
        match self.docker.create_config(spec).await {
            Ok(r) => Ok(Some(r.id)),
            Err(e) if is_status(&e, 409) => Ok(None),
            Err(e) => Err(engine_error("cannot create the operation lock", e)),
        }
    }

    async fn find_lock_config(&self, name: &str) -> Result<Option<LockRecord>> {
        match self.docker.inspect_config(name).await {
            Ok(c) => Ok(Some(LockRecord {
                id: c.id.unwrap_or_default(),
                labels: c.spec.and_then(|s| s.labels).unwrap_or_default(),
                scope: LockScope::Swarm,
            })),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(engine_error("cannot read the operation lock", e)),
        }
    }

    async fn create_lock_container(
        &self,
        name: &str,
        extra: HashMap<String, String>,
    ) -> Result<Option<String>> {
        match self.try_create_lock(name, &extra).await {
            Err(e) if is_status(&e, 404) => {
                self.import_lock_image().await?;
                self.try_create_lock(name, &extra).await
            }
            other => other,
        }
        .map_or_else(
            |e| match is_status(&e, 409) {
                true => Ok(None),
                false => Err(engine_error("cannot create the operation lock", e)),
            },
            |id| Ok(Some(id)),
        )
    }

    async fn try_create_lock(
        &self,
        name: &str,
        extra: &HashMap<String, String>,
    ) -> std::result::Result<String, bollard::errors::Error> {
        let mut all = extra.clone();
        all.insert(labels::ONEOFF.into(), "True".into());
        all.insert(labels::MANAGED_BY.into(), "pricescan-ctl".into());
        let body = ContainerCreateBody {
            image: Some(format!("{LOCK_IMAGE_REPO}:{LOCK_IMAGE_TAG}")),
            cmd: Some(vec!["/pricescan-lock".into()]),
            network_disabled: Some(true),
            labels: Some(all),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        Ok(self.docker.create_container(Some(options), body).await?.id)
    }

    async fn find_lock_container(&self, name: &str) -> Result<Option<LockRecord>> {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(LockRecord {
                id: c.id.unwrap_or_default(),
                labels: c.config.and_then(|cfg| cfg.labels).unwrap_or_default(),
                scope: LockScope::Engine,
            })),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(engine_error("cannot read the operation lock", e)),
        }
    }

    /// `docker import` of a one-file rootfs; the container made from it never runs.
    async fn import_lock_image(&self) -> Result<()> {
        let mut tar = tar::Builder::new(Vec::new());
        let text = b"pricescan-ctl operation lock: this image is never run\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "pricescan-lock", &text[..])
            .and_then(|_| tar.finish())
            .map_err(|e| crate::error::CtlError::failure("cannot build the lock image").cause(e))?;
        let bytes = tar
            .into_inner()
            .map_err(|e| crate::error::CtlError::failure("cannot build the lock image").cause(e))?;
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(LOCK_IMAGE_REPO)
            .tag(LOCK_IMAGE_TAG)
            .build();
        let mut stream =
            self.docker
                .create_image(Some(options), Some(bollard::body_full(bytes.into())), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| engine_error("cannot import the lock image", e))?;
        }
        Ok(())
    }
}
