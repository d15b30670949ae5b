//! The operation lock shared by backup, restore and deploy: an flock on
//! `.pricescan/operation.lock`. The kernel drops it when its holder dies, so a stale lock
//! from a killed process is taken over with nothing to clean up.

use crate::error::{CtlError, ExitStatus, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

pub struct OperationLock {
    _lock: Flock<File>,
}

/// Takes the lock for `operation`, waiting up to `wait`; exit 75 naming the holder if it
/// stays busy.
pub async fn acquire(state_dir: &Path, operation: &str, wait: Option<Duration>) -> Result<OperationLock> {
    std::fs::create_dir_all(state_dir)
        .map_err(|e| CtlError::failure(format!("cannot create {}", state_dir.display())).cause(e))?;
    let path = state_dir.join("operation.lock");
    let deadline = Instant::now() + wait.unwrap_or_default();
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| CtlError::failure(format!("cannot open {}", path.display())).cause(e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                let holder = format!(
                    "{operation} (pid {}, {} on {}) since {}",
                    std::process::id(),
                    std::env::var("USER").unwrap_or_else(|_| "?".into()),
                    nix::unistd::gethostname()
                        .map(|h| h.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
                );
                let _ = lock
                    .set_len(0)
                    .and_then(|_| lock.rewind())
                    .and_then(|_| lock.write_all(holder.as_bytes()));
                return Ok(OperationLock { _lock: lock });
            }
            Err((mut file, _)) if Instant::now() < deadline => {
                drop(file.rewind());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = if holder.trim().is_empty() {
                    "another pricescan-ctl operation".into()
                } else {
                    holder
                };
                return Err(CtlError::new(
                    ExitStatus::Locked,
                    format!("{operation}: the operation lock is held by {}", holder.trim()),
                )
                .hint("try again later, or pass --wait DUR to wait for it"));
            }
        }
    }
}
