//! Where a point-in-time restore reads from (DESIGN §13): the backups here and, when the
//! server that took them is gone, those in the bucket; the live binlog archive, or the
//! bucket's copy pulled beside it. A restore after losing the server works from the off-site
//! copy alone.

use crate::backup::binlog;
use crate::backup::catalog::{self, OnDisk};
use crate::backup::coordinates::{Coordinates, HEAD_BYTES};
use crate::backup::offsite::Remote;
use crate::backup::shipping::{self, PULLED_DIR};
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::stack::pitr::ARCHIVE_DIR;
use std::collections::BTreeSet;

/// The local backups and the complete off-site ones that are not here (their manifests
/// read from the bucket), oldest first; and the ids of the latter.
pub async fn candidates(
    project: &Project,
    remote: Option<&Remote>,
) -> Result<(Vec<OnDisk>, BTreeSet<String>)> {
    let mut all: Vec<OnDisk> = catalog::list(&catalog::backup_root(project))?
        .into_iter()
        .filter(|b| b.manifest.is_some())
        .collect();
    let mut remote_only = BTreeSet::new();
    if let Some(remote) = remote {
        for b in remote.backups().await?.into_iter().filter(|b| b.complete) {
            if all.iter().any(|l| l.id == b.id) {
                continue;
            }
            let manifest = remote.manifest(&b.id).await?;
            remote_only.insert(b.id.clone());
            all.push(OnDisk {
                id: b.id,
                path: Default::default(),
                manifest: Some(manifest),
                partial: false,
                size: b.size,
            });
        }
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((all, remote_only))
}

/// Whether `dir` holds every file from the backup's on, and its first file is the one the
/// backup was taken with (not a new server's of the same name).
async fn holds(engine: &Engine, archiver: &str, dir: &str, from: &Coordinates) -> Result<bool> {
    if binlog::list_in(engine, archiver, dir)
        .await?
        .span(&from.position(), None)
        .is_err()
    {
        return Ok(false);
    }
    let script = format!(
        "head -c {HEAD_BYTES} {dir}/{} | od -An -tx1 | tr -d ' \\n'",
        from.file
    );
    let head = engine.exec(archiver, &["sh", "-c", &script]).await?.stdout;
    Ok(from.same_file(head.trim()))
}

/// The archiver's directory that holds everything from `from` on: the live archive, or what
/// it set aside when MySQL's binary log started over (newest first). None: only the bucket
/// may have it.
pub async fn local_archive_holding(
    engine: &Engine,
    archiver: &str,
    from: &Coordinates,
) -> Result<Option<String>> {
    let mut dirs = vec![ARCHIVE_DIR.to_string()];
    dirs.extend(
        binlog::earlier(engine, archiver)
            .await?
            .into_iter()
            .map(|e| e.dir),
    );
    for dir in dirs {
        if holds(engine, archiver, &dir, from).await? {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// The directory to replay from: the live archive when it holds everything from `from`,
/// else the bucket's copy, pulled into `PULLED_DIR` (the caller holds the lock).
pub async fn archive_dir(
    engine: &Engine,
    archiver: &str,
    remote: Option<&Remote>,
    from: &Coordinates,
    project: &Project,
    printer: &Printer,
) -> Result<String> {
    if let Some(dir) = local_archive_holding(engine, archiver, from).await? {
        if dir != ARCHIVE_DIR {
            printer.info(&format!(
                "replaying from {dir}, the archive kept from before MySQL's binary log started over"
            ));
        }
        return Ok(dir);
    }
    let Some(remote) = remote else {
        // The live archive's own refusal names what is missing.
        binlog::list(engine, archiver)
            .await?
            .span(&from.position(), None)?;
        return Err(CtlError::failure(format!(
            "{} in the binlog archive is not the file the backup's snapshot stands in (a new server wrote it); nothing was changed",
            from.file
        ))
        .hint("restore from the off-site archive the old server shipped: set BACKUP_REMOTE_URL"));
    };
    printer.info(&format!(
        "the binlog archive here lacks {}; pulling it from {}",
        from.file,
        remote.location()
    ));
    let scratch = project.dir.join(".pricescan").join("pulled-binlog");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| CtlError::failure(format!("cannot create {}", scratch.display())).cause(e))?;
    let pulled = shipping::pull(engine, archiver, remote, from, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    printer.info(&format!("pulled {} binlog file(s) from off-site", pulled?.len()));
    Ok(PULLED_DIR.to_string())
}

/// Removes what a restore pulled, once it is done with it.
pub async fn forget_pulled(engine: &Engine, archiver: &str) {
    let _ = engine
        .exec(archiver, &["sh", "-c", &format!("rm -rf {PULLED_DIR}")])
        .await;
}
