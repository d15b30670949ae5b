//! Incident reports (DESIGN §14): `.pricescan/incidents/<id>.json`, with a Markdown rendering
//! beside it. Written whole (atomically) after each step, so a killed guard leaves the last
//! step on disk. A damaged file is reported and skipped, never fatal.

use crate::error::{CtlError, Result};
use crate::sys::fsutil;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How many log lines around the detection an incident keeps.
pub const LOG_LINES: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Incident {
    pub id: String,
    pub service: String,
    /// What was detected: `unhealthy for 30s`, ...
    pub detected: String,
    pub opened_at: DateTime<Utc>,
    /// open, resolved, gave_up or failed.
    pub outcome: String,
    pub closed_at: Option<DateTime<Utc>>,
    /// From the first failed check to serving again.
    pub recovery_seconds: Option<f64>,
    pub release: Option<String>,
    pub timeline: Vec<Step>,
    pub status_before: Vec<String>,
    pub status_after: Vec<String>,
    pub events: Vec<String>,
    pub logs: Vec<String>,
    /// On swarm: the task the swarm replaced, so that no restart records it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// When requests were answered again, if seen before the heal ended (a start-first
    /// replacement serves before its old container has drained).
    #[serde(skip)]
    pub served_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub what: String,
    pub took_seconds: Option<f64>,
}

pub fn dir(project_dir: &Path) -> PathBuf {
    project_dir.join(".pricescan").join("incidents")
}

impl Incident {
    pub fn open(service: &str, detected: String, now: DateTime<Utc>) -> Self {
        Self {
            id: format!("{}-{service}", now.format("%Y%m%dT%H%M%SZ")),
            service: service.to_string(),
            detected: detected.clone(),
            opened_at: now,
            outcome: "open".into(),
            closed_at: None,
            recovery_seconds: None,
            release: None,
            timeline: vec![Step {
                at: now,
                what: format!("detected: {detected}"),
                took_seconds: None,
            }],
            status_before: Vec::new(),
            status_after: Vec::new(),
            events: Vec::new(),
            logs: Vec::new(),
            task: None,
            served_at: None,
        }
    }

    /// Requests are answered again at `at`: the time to recover ends there.
    pub fn served(&mut self, at: DateTime<Utc>) {
        self.served_at = Some(at);
        self.timeline.push(Step {
            at,
            what: "serving again: the API answers through Nginx".into(),
            took_seconds: None,
        });
    }

    pub fn step(&mut self, what: impl Into<String>, took: Option<std::time::Duration>) {
        self.timeline.push(Step {
            at: Utc::now(),
            what: what.into(),
            took_seconds: took.map(|d| (d.as_secs_f64() * 100.0).round() / 100.0),
        });
    }

    /// Closes it: `outcome`, and the time to recover counted from `failing_since`.
    pub fn close(&mut self, outcome: &str, failing_since: DateTime<Utc>) {
        let now = Utc::now();
        self.outcome = outcome.to_string();
        self.closed_at = Some(now);
        if outcome == "resolved" {
            let ms = (self.served_at.unwrap_or(now) - failing_since)
                .num_milliseconds()
                .max(0);
            self.recovery_seconds = Some(ms as f64 / 1000.0);
        }
        self.step(outcome.replace('_', " "), None);
    }

    /// The JSON and the Markdown beside it, each written whole.
    pub fn save(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CtlError::failure(format!("cannot create {}", dir.display())).cause(e))?;
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| CtlError::failure("cannot encode the incident").cause(e))?;
        fsutil::write_atomic(&dir.join(format!("{}.json", self.id)), &json, 0o600)?;
        fsutil::write_atomic(
            &dir.join(format!("{}.md", self.id)),
            self.markdown().as_bytes(),
            0o600,
        )
    }

    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# Incident {}: {} ({})\n\n- detected: {}\n- opened: {}\n",
            self.id,
            self.service,
            self.outcome.replace('_', " "),
            self.detected,
            self.opened_at.to_rfc3339()
        );
        if let Some(r) = &self.release {
            md.push_str(&format!("- release serving: {r}\n"));
        }
        if let Some(s) = self.recovery_seconds {
            md.push_str(&format!("- time to recover: {s:.1} s\n"));
        }
        md.push_str("\n## Timeline\n\n");
        for s in &self.timeline {
            let took = s.took_seconds.map_or(String::new(), |t| format!(" ({t:.1} s)"));
            md.push_str(&format!("- {} {}{took}\n", s.at.format("%H:%M:%S%.3f"), s.what));
        }
        for (title, lines) in [
            ("Status before", &self.status_before),
            ("Status after", &self.status_after),
            ("Engine events", &self.events),
            ("Logs around the detection", &self.logs),
        ] {
            md.push_str(&format!("\n## {title}\n\n```\n{}\n```\n", lines.join("\n")));
        }
        md
    }
}

/// Every incident, oldest first, and a line for each file that could not be read.
pub fn list(dir: &Path) -> (Vec<Incident>, Vec<String>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (found, problems);
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Incident>(&b).ok())
        {
            Some(i) => found.push(i),
            None => problems.push(format!("{} is damaged and was skipped", path.display())),
        }
    }
    found.sort_by(|a, b| a.opened_at.cmp(&b.opened_at).then(a.id.cmp(&b.id)));
    (found, problems)
}

/// Removes the incidents closed longer ago than `keep`; returns their ids.
pub fn prune(dir: &Path, keep: chrono::Duration, now: DateTime<Utc>) -> Vec<String> {
    let (all, _) = list(dir);
    let mut gone = Vec::new();
    for i in all
        .into_iter()
        .filter(|i| i.closed_at.is_some_and(|c| now - c > keep))
    {
        for ext in ["json", "md"] {
            let _ = std::fs::remove_file(dir.join(format!("{}.{ext}", i.id)));
        }
        gone.push(i.id);
    }
    gone
}

/// `pricescan_guard.prom` in METRICS_TEXTFILE_DIR: the guard's state and the incidents.
pub fn metrics(project: &crate::stack::Project, up: bool) {
    let (all, _) = list(&dir(&project.dir));
    let mut set = vec![("pricescan_guard_up".to_string(), u8::from(up).to_string())];
    let mut counts = std::collections::BTreeMap::<(String, String), u64>::new();
    for i in &all {
        *counts.entry((i.service.clone(), i.outcome.clone())).or_default() += 1;
    }
    for ((service, outcome), n) in counts {
        set.push((
            format!("pricescan_incidents_total{{service=\"{service}\",outcome=\"{outcome}\"}}"),
            n.to_string(),
        ));
    }
    if let Some(s) = all.iter().rev().find_map(|i| i.recovery_seconds) {
        set.push(("pricescan_incident_last_recovery_seconds".into(), s.to_string()));
    }
    let set: Vec<(&str, String)> = set.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    crate::backup::metrics::update_file(project, "pricescan_guard.prom", &set);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_round_trips_renders_and_is_pruned_after_its_keep() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Utc::now() - chrono::Duration::days(100);
        let mut i = Incident::open("api", "unhealthy for 30s".into(), t0);
        i.step(
            "replaced start-first",
            Some(std::time::Duration::from_millis(4200)),
        );
        i.close("resolved", t0 - chrono::Duration::seconds(40));
        i.save(dir.path()).unwrap();
        std::fs::write(dir.path().join("broken.json"), b"{not json").unwrap();
        let (all, problems) = list(dir.path());
        assert_eq!(all, vec![i.clone()]);
        assert!(problems[0].contains("broken.json"), "{problems:?}");
        let md = std::fs::read_to_string(dir.path().join(format!("{}.md", i.id))).unwrap();
        assert!(
            md.contains("replaced start-first (4.2 s)") && md.contains("time to recover"),
            "{md}"
        );
        let keep = chrono::Duration::days(90);
        assert!(prune(dir.path(), keep, Utc::now() + chrono::Duration::days(89)).is_empty());
        assert_eq!(
            prune(dir.path(), keep, Utc::now() + chrono::Duration::days(91)),
            vec![i.id.clone()]
        );
        assert!(!dir.path().join(format!("{}.md", i.id)).exists());
    }
}
