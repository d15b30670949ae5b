//! The operation lock of the stack (DESIGN §8): every command that changes the stack holds
//! it. It lives in the engine, not in the checkout (see `engine::lock`), so two checkouts of
//! the same project, and an operator and a remote CI job, exclude each other. A holder that
//! died on this host is detected by its pid and start time, and taken over.

use crate::engine::{Engine, LockRecord, LockScope, labels};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::Printer;
use crate::sys::undo::{self, Pending};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(250);
const PREFIX: &str = "io.pricescan.owner.";

/// Who runs an operation: enough to tell whether that process still lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    pub operation: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot: a reused pid has another one.
    pub pid_start: Option<u64>,
    pub since: String,
}

impl Owner {
    /// This process, running `operation`.
    pub fn me(operation: &str) -> Self {
        let pid = std::process::id();
        Self {
            operation: operation.to_string(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| format!("uid {}", nix::unistd::getuid())),
            host: hostname(),
            pid,
            pid_start: process_start(pid),
            since: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        }
    }

    pub fn labels(&self) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (format!("{PREFIX}operation"), self.operation.clone()),
            (format!("{PREFIX}user"), self.user.clone()),
            (format!("{PREFIX}host"), self.host.clone()),
            (format!("{PREFIX}pid"), self.pid.to_string()),
            (format!("{PREFIX}since"), self.since.clone()),
        ]);
        if let Some(start) = self.pid_start {
            l.insert(format!("{PREFIX}pid-start"), start.to_string());
        }
        l
    }

    pub fn from_labels(l: &HashMap<String, String>) -> Option<Self> {
        let get = |k: &str| l.get(&format!("{PREFIX}{k}")).cloned();
        Some(Self {
            operation: get("operation").unwrap_or_else(|| "?".into()),
            user: get("user").unwrap_or_else(|| "?".into()),
            host: get("host")?,
            pid: get("pid")?.parse().ok()?,
            pid_start: get("pid-start").and_then(|s| s.parse().ok()),
            since: get("since").unwrap_or_default(),
        })
    }

    /// True only when it certainly ran on this host and is gone; a holder elsewhere cannot
    /// be checked from here.
    pub fn is_dead_here(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(start) => self.pid_start.is_some_and(|s| s != start),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} by {} on {} (pid {}) since {}",
            self.operation, self.user, self.host, self.pid, self.since
        )
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Field 22 of /proc/PID/stat; None when there is no such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn container_name(project: &str) -> String {
    format!("{project}-lock")
}

/// A held lock. It is released on the way out by the clean-up path, after every other
/// undo step, so that nothing else starts while this command is still putting things back.
pub struct OperationLock {
    _release: Pending,
}

impl OperationLock {
    /// Frees it now, for a process that goes on (the guard); others free it on exit.
    pub async fn release(self, printer: &Printer) -> Result<()> {
        self._release.run_now(printer).await
    }
}

/// Takes the lock for `operation`, waiting up to `wait`; exit 75 naming the holder if it
/// stays busy.
pub async fn acquire(
    engine: &Engine,
    scope: LockScope,
    project: &str,
    operation: &str,
    wait: Option<Duration>,
    printer: &Printer,
) -> Result<OperationLock> {
    acquire_named(
        engine,
        scope,
        project,
        &container_name(project),
        operation,
        wait,
        printer,
    )
    .await
}

/// A lock of its own for a long-lived process that must run once per stack (the binlog
/// shipper), beside the operation lock rather than holding it.
pub async fn acquire_role(
    engine: &Engine,
    scope: LockScope,
    project: &str,
    role: &str,
    printer: &Printer,
) -> Result<OperationLock> {
    let name = format!("{project}-{role}-lock");
    acquire_named(engine, scope, project, &name, role, None, printer).await
}

async fn acquire_named(
    engine: &Engine,
    scope: LockScope,
    project: &str,
    name: &str,
    operation: &str,
    wait: Option<Duration>,
    printer: &Printer,
) -> Result<OperationLock> {
    let deadline = crate::deploy::wait::deadline(wait.unwrap_or_default());
    let name = name.to_string();
    let mut labels = Owner::me(operation).labels();
    labels.insert(labels::PROJECT.into(), project.to_string());
    loop {
        if let Some(id) = engine.create_lock(scope, &name, labels.clone()).await? {
            let engine = engine.clone();
            let mine = LockRecord {
                id,
                labels: HashMap::new(),
                scope,
            };
            let release = undo::routine("release the operation lock", move |_| {
                async move { engine.remove_lock(&mine).await }.boxed()
            });
            return Ok(OperationLock { _release: release });
        }
        let Some(held) = engine.find_lock(scope, &name).await? else {
            continue; // released between our two calls
        };
        let holder = Owner::from_labels(&held.labels);
        if let Some(dead) = holder.as_ref().filter(|h| h.is_dead_here()) {
            printer.warn(&format!(
                "taking over the operation lock from {}: that process is gone",
                dead.describe()
            ));
            engine.remove_lock(&held).await?;
            continue;
        }
        if Instant::now() >= deadline {
            return Err(busy(operation, holder.as_ref(), &held));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn busy(operation: &str, holder: Option<&Owner>, held: &LockRecord) -> CtlError {
    let who = holder.map_or_else(
        || format!("an unknown holder (lock container {})", short(&held.id)),
        Owner::describe,
    );
    CtlError::new(
        ExitStatus::Locked,
        format!("{operation}: the operation lock is held by {who}"),
    )
    .hint("try again later, or pass --wait DUR to wait for it; `pricescan-ctl lock status` shows the holder")
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The current holder: None when the lock is free; Some(None) for a lock without owner labels.
pub async fn holder(
    engine: &Engine,
    scope: LockScope,
    project: &str,
) -> Result<Option<(LockRecord, Option<Owner>)>> {
    let held = engine.find_lock(scope, &container_name(project)).await?;
    Ok(held.map(|h| {
        let owner = Owner::from_labels(&h.labels);
        (h, owner)
    }))
}

/// Frees the lock whatever holds it (`lock release --force`); returns who held it.
pub async fn force_release(
    engine: &Engine,
    scope: LockScope,
    project: &str,
) -> Result<Option<Option<Owner>>> {
    let Some((held, owner)) = holder(engine, scope, project).await? else {
        return Ok(None);
    };
    engine.remove_lock(&held).await?;
    Ok(Some(owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_round_trips_through_labels() {
        let me = Owner::me("backup");
        assert_eq!(Owner::from_labels(&me.labels()), Some(me.clone()));
        assert!(!me.is_dead_here(), "this process is alive");
    }

    #[test]
    fn a_gone_or_reused_pid_is_dead_and_another_host_is_unknown() {
        let mut gone = Owner::me("deploy");
        gone.pid = u32::MAX - 1;
        assert!(gone.is_dead_here());
        let mut reused = Owner::me("deploy");
        reused.pid_start = reused.pid_start.map(|s| s + 1);
        assert!(reused.is_dead_here());
        let mut elsewhere = gone.clone();
        elsewhere.host = format!("{}-elsewhere", elsewhere.host);
        assert!(!elsewhere.is_dead_here());
    }
}
