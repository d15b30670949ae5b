//! What a crash (SIGKILL, power loss) left behind, cleaned by the next command that takes
//! the lock, which says so (DESIGN §8). Holding the lock means no other operation is under
//! way, so a `.partial` backup directory is debris; a one-off container is debris only when
//! the process that created it is gone (a read-only `verify --deep` takes no lock).

use super::backup::backup_root;
use super::backups;
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
    Ok(())
}
