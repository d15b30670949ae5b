//! What a crash (SIGKILL, power loss) left behind, cleaned by the next command that takes
//! the lock, which says so (DESIGN §8). Holding the lock means no other operation is under
//! way, so a `.partial` backup directory is debris; a one-off container is debris only when
//! the process that created it is gone (a read-only `verify --deep` takes no lock). A restore
//! killed after touching data left its marker: its pre-restore backup is put back.

use super::backups;
use super::backups::backup_root;
use super::lock::Owner;
use crate::engine::Engine;
use crate::error::{Context as _, Result};
use crate::output::Printer;
use crate::stack::Project;

pub async fn sweep(engine: &Engine, project: &Project, printer: &Printer) -> Result<()> {
    for leftover in backups::list(&backup_root(project))?.iter().filter(|b| b.partial) {
        std::fs::remove_dir_all(&leftover.path)
            .context(|| format!("cannot remove {}", leftover.path.display()))?;
        printer.warn(&format!(
            "removed {}: an interrupted backup left it",
            leftover.path.display()
        ));
    }
    let lock_name = format!("{}-lock", project.name);
    for c in engine.oneoff_containers(&project.name).await? {
        let dead = Owner::from_labels(&c.labels).is_some_and(|o| o.is_dead_here());
        if c.name != lock_name && dead {
            engine.remove(&c.id).await?;
            printer.warn(&format!(
                "removed the one-off container {}: the command that created it is gone",
                c.name
            ));
        }
    }
    if let Some(marker) = super::restore::read_marker(project) {
        printer.warn(&format!(
            "a restore of {} was stopped half-way (started {}); putting back its pre-restore backup {}",
            marker.target, marker.started_at, marker.safety
        ));
        let restorer = super::restore::Restorer {
            engine,
            project,
            printer,
        };
        let what = format!("put back pre-restore backup {}", marker.safety);
        crate::cleanup::despite_signals(&what, restorer.put_back(&marker, None), printer)
            .await
            .map_err(|e| {
                e.hint(format!(
                    "nothing else was done; run `pricescan-ctl restore {} --yes` to put the data back",
                    marker.safety
                ))
            })?;
        printer.warn(&format!(
            "pre-restore backup {} is back and the API runs",
            marker.safety
        ));
    }
    Ok(())
}
