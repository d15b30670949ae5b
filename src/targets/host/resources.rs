//! The project's networks and volumes, with Compose's names and labels.

use crate::engine::{Engine, Ensured};
use crate::error::Result;
use crate::output::Printer;
use crate::stack::Project;
use futures_util::future::join_all;

/// Ensures every network and volume the active services use. Returns what was created.
pub async fn ensure(engine: &Engine, project: &Project, printer: &Printer) -> Result<Vec<String>> {
    let networks = project.used_networks().into_iter().map(|key| async move {
        let net = project.file.networks.get(&key).cloned().unwrap_or_default();
        let name = project.network_name(&key);
        let result = match net.external {
            true => engine.require_network(&name).await,
            false => {
                engine
                    .ensure_network(&name, &project.name, &key, net.internal, net.driver.as_deref())
                    .await
            }
        };
        ("network", name, result)
    });
    let volumes = project.used_volumes().into_iter().map(|key| async move {
        let vol = project.file.volumes.get(&key).cloned().unwrap_or_default();
        let name = project.volume_name(&key);
        let result = match vol.external {
            true => engine.require_volume(&name).await,
            false => {
                engine
                    .ensure_volume(&name, &project.name, &key, vol.driver.as_deref())
                    .await
            }
        };
        ("volume", name, result)
    });
    let (nets, vols) = futures_util::join!(join_all(networks), join_all(volumes));
    let mut created = Vec::new();
    for (kind, name, result) in nets.into_iter().chain(vols) {
        match result? {
            Ensured::Created => created.push(format!("created {kind} {name}")),
            Ensured::Exists => printer.debug(&format!("{kind} {name} exists")),
            Ensured::Foreign(why) => {
                printer.warn(&format!("{kind} {name} exists but {why}; using it as it is"))
            }
        }
    }
    Ok(created)
}
