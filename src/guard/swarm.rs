//! The guard on the swarm target (DESIGN §14). The swarm replaces failed and unhealthy tasks
//! itself, so the guard heals nothing there: it records each replacement as an incident and
//! tells it. It reads the stack's tasks every GUARD_PROBE_INTERVAL; a task failed during an
//! operation (a deploy's rollback) is the operation's.

use super::incident::{self, Incident};
use crate::engine::{Engine, LockScope, TaskInfo};
use crate::notify::Event as Notice;
use crate::output::Printer;
use crate::stack::Project;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// States of a task the swarm gave up on and replaced.
const REPLACED: [&str; 3] = ["failed", "rejected", "orphaned"];

/// A task the swarm replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Replacement {
    pub task: String,
    pub service: String,
    pub slot: Option<u64>,
    pub node: String,
    pub state: String,
    pub why: String,
    pub at: DateTime<Utc>,
}

/// The tasks replaced after `after` and not recorded yet. `names` maps service ids to the
/// compose service names.
pub fn replaced(
    tasks: &[TaskInfo],
    names: &HashMap<String, String>,
    known: &HashSet<String>,
    after: DateTime<Utc>,
) -> Vec<Replacement> {
    let mut found: Vec<Replacement> = tasks
        .iter()
        .filter(|t| REPLACED.contains(&t.state.as_str()) && !known.contains(&t.id))
        .filter_map(|t| {
            let at = DateTime::parse_from_rfc3339(&t.timestamp)
                .ok()?
                .with_timezone(&Utc);
            (at > after).then(|| Replacement {
                task: t.id.clone(),
                service: names.get(&t.service_id).cloned().unwrap_or_default(),
                slot: t.slot,
                node: t.node_id.clone(),
                state: t.state.clone(),
                why: t.error.clone().unwrap_or_else(|| t.message.clone()),
                at,
            })
        })
        .collect();
    found.sort_by(|a, b| a.at.cmp(&b.at).then(a.task.cmp(&b.task)));
    found
}

/// Whether the slot of `r` runs a task again.
pub fn slot_runs(tasks: &[TaskInfo], service_id: &str, r: &Replacement) -> bool {
    tasks.iter().any(|t| {
        t.service_id == service_id && t.slot == r.slot && t.state == "running" && t.desired_state == "running"
    })
}

/// What the swarm guard has seen: the tasks recorded or waiting, and the newest time.
struct Seen {
    known: HashSet<String>,
    after: DateTime<Utc>,
    pending: Vec<(Replacement, std::time::Instant)>,
    wait_back: Duration,
}

pub struct SwarmGuard<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub printer: &'a Printer,
    pub scope: LockScope,
    pub every: Duration,
}

impl SwarmGuard<'_> {
    /// Records replacements until a signal. Tasks replaced while no guard ran are recorded
    /// on start (after the newest incident), and none twice.
    pub async fn run(&self, wait_back: Duration) {
        let dir = incident::dir(&self.project.dir);
        let (all, _) = incident::list(&dir);
        let mut seen = Seen {
            known: all.iter().filter_map(|i| i.task.clone()).collect(),
            after: all.iter().map(|i| i.opened_at).max().unwrap_or_else(Utc::now),
            pending: Vec::new(),
            wait_back,
        };
        loop {
            if let Err(e) = self.look(&mut seen).await {
                self.printer
                    .warn(&format!("cannot read the stack's tasks: {}", e.summary()));
            }
            tokio::select! {
                biased;
                _ = crate::sys::signals::received() => return,
                _ = tokio::time::sleep(self.every) => {}
            }
        }
    }

    /// One look: a new replacement waits (up to `wait_back`) for its slot to run again, then
    /// is recorded, resolved or not.
    async fn look(&self, seen: &mut Seen) -> crate::error::Result<()> {
        let (engine, name) = (self.engine, &self.project.name);
        let services = engine.stack_services(name).await?;
        let tasks = engine.stack_tasks(name).await?;
        let prefix = format!("{name}_");
        let names: HashMap<String, String> = services
            .iter()
            .map(|s| (s.id.clone(), s.name.trim_start_matches(&prefix).to_string()))
            .collect();
        let held = matches!(
            crate::targets::lock::holder(engine, self.scope, name).await,
            Ok(Some(_))
        );
        for r in replaced(&tasks, &names, &seen.known, seen.after) {
            seen.known.insert(r.task.clone());
            seen.after = seen.after.max(r.at);
            if !held {
                seen.pending.push((r, std::time::Instant::now()));
            }
        }
        let mut waiting = Vec::new();
        for (r, since) in std::mem::take(&mut seen.pending) {
            let id = names
                .iter()
                .find(|(_, n)| **n == r.service)
                .map(|(id, _)| id.clone());
            let back = id.is_some_and(|id| slot_runs(&tasks, &id, &r));
            match back || since.elapsed() >= seen.wait_back {
                true => self.record(&r, back).await,
                false => waiting.push((r, since)),
            }
        }
        seen.pending = waiting;
        Ok(())
    }

    async fn record(&self, r: &Replacement, back: bool) {
        let slot = r.slot.map_or(String::new(), |s| format!(".{s}"));
        let detected = format!(
            "task {}{slot} on node {} {}: {}",
            r.service, r.node, r.state, r.why
        );
        let mut inc = Incident::open(&r.service, detected, r.at);
        inc.task = Some(r.task.clone());
        let secrets = self.project.env.secret_values();
        inc.logs = self
            .engine
            .task_log_tail(&r.task, incident::LOG_LINES as u64)
            .await
            .unwrap_or_default()
            .iter()
            .map(|l| crate::error::mask_text(&crate::error::mask_assignments(l), &secrets))
            .collect();
        inc.step(
            "the swarm replaces it; on swarm the guard records and does not act",
            None,
        );
        let outcome = if back { "resolved" } else { "failed" };
        match back {
            true => inc.step("verified: its slot runs a task again", None),
            false => inc.step("its slot runs no task yet", None),
        }
        inc.close(outcome, r.at);
        if let Err(e) = inc.save(&incident::dir(&self.project.dir)) {
            self.printer
                .warn(&format!("cannot write incident {}: {}", inc.id, e.summary()));
        }
        self.printer
            .info(&format!("incident {} ({outcome}): {}", inc.id, inc.detected));
        incident::metrics(self.project, true);
        let summary = format!("the swarm replaced a task of {}: {}", r.service, r.why);
        let details = vec![format!("incident: pricescan-ctl incidents show {}", inc.id)];
        let notice = Notice::new("incident.opened", &self.project.name, true, summary, details);
        crate::notify::events::emit(self.project, self.printer, notice).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: &str, at: &str) -> TaskInfo {
        TaskInfo {
            id: id.into(),
            service_id: "s1".into(),
            slot: Some(2),
            node_id: "n1".into(),
            state: state.into(),
            desired_state: "shutdown".into(),
            message: "started".into(),
            error: Some("task: non-zero exit (137)".into()),
            container_id: None,
            timestamp: at.into(),
            image: "api:v1".into(),
        }
    }

    #[test]
    fn failed_tasks_after_the_mark_are_replacements_once() {
        let names = HashMap::from([("s1".to_string(), "pricescan-api".to_string())]);
        let after = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tasks = [
            task("old", "failed", "2026-12-07T09:59:00Z"),
            task("done", "shutdown", "2026-12-07T10:01:00Z"),
            task("t2", "failed", "2026-12-07T10:02:00Z"),
            task("t1", "orphaned", "2026-12-07T10:01:00Z"),
        ];
        let found = replaced(&tasks, &names, &HashSet::new(), after);
        let ids: Vec<&str> = found.iter().map(|r| r.task.as_str()).collect();
        assert_eq!(ids, ["t1", "t2"]);
        assert_eq!(found[1].service, "pricescan-api");
        assert_eq!(found[1].why, "task: non-zero exit (137)");
        let known = HashSet::from(["t1".to_string()]);
        assert_eq!(replaced(&tasks, &names, &known, after).len(), 1);
    }
}
