//! Every check, in a fixed order whatever order they finish in.

use super::finding::Finding;
use super::{backups, engine, exposure, files, pitr, tls};
use crate::engine::Engine;
use crate::stack::Project;

/// Every check, in a fixed order whatever order they finish in. The project's containers
/// are listed once, for the checks that read them.
pub async fn examine(engine: &Engine, project: &Project) -> Vec<Finding> {
    let (containers, backups) = tokio::join!(
        engine.project_containers(&project.name),
        backups::check(engine, project),
    );
    let (mut all, engine_checks) = match containers {
        Ok(c) => {
            let (engine_checks, pitr) = tokio::join!(
                engine::check(engine, project, &c),
                pitr::check(engine, project, &c)
            );
            let mut all = exposure::check(&c);
            all.extend(pitr);
            (all, engine_checks)
        }
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
