//! The operator-care signals that `doctor` computes (DESIGN §14): a backup overdue, the
//! engine's disk above 90 %, a certificate expiring, the binlog archive lagging or broken.
//! The guard reports them as incidents and never acts on them: nothing is deleted
//! automatically. A signal is reported once it is seen twice in a row (a binlog archive a
//! few bytes behind for a moment is no incident), and its report is resolved once it clears.

use super::incident::{self, Incident};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A care signal that is not ok: its check, what was seen, and the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub check: String,
    pub message: String,
    pub fix: Option<String>,
}

/// The incidents' service name for a check's reports.
pub fn service(check: &str) -> String {
    format!("doctor-{check}")
}

#[derive(Debug, Default)]
pub struct Care {
    /// The open report of each check.
    open: BTreeMap<String, Incident>,
    /// Checks seen not ok once, not yet reported.
    seen_once: BTreeSet<String>,
}

/// What one look changed.
#[derive(Debug, Default)]
pub struct Changes {
    pub opened: Vec<Incident>,
    pub resolved: Vec<Incident>,
}

impl Care {
    /// The reports a guard before this one left open: a restart does not report them twice.
    pub fn load(dir: &Path) -> Self {
        let open = incident::list(dir)
            .0
            .into_iter()
            .filter(|i| i.outcome == "reported")
            .filter_map(|i| Some((i.service.strip_prefix("doctor-")?.to_string(), i)))
            .collect();
        Self {
            open,
            ..Self::default()
        }
    }

    /// Takes one look's signals (every care finding that is not ok).
    pub fn update(&mut self, signals: &[Signal], now: DateTime<Utc>) -> Changes {
        let mut by_check = BTreeMap::<&str, Vec<&Signal>>::new();
        for s in signals {
            by_check.entry(s.check.as_str()).or_default().push(s);
        }
        let mut changes = Changes::default();
        let cleared: Vec<String> = self
            .open
            .keys()
            .filter(|c| !by_check.contains_key(c.as_str()))
            .cloned()
            .collect();
        for check in cleared {
            if let Some(mut inc) = self.open.remove(&check) {
                inc.step("the check passes again", None);
                inc.close("resolved", inc.opened_at);
                // Not a recovery the guard made: kept out of the time-to-recover metric.
                inc.recovery_seconds = None;
                changes.resolved.push(inc);
            }
        }
        self.seen_once.retain(|c| by_check.contains_key(c.as_str()));
        for (check, found) in by_check {
            if self.open.contains_key(check) || self.seen_once.insert(check.to_string()) {
                continue;
            }
            self.seen_once.remove(check);
            let inc = report(check, &found, now);
            self.open.insert(check.to_string(), inc.clone());
            changes.opened.push(inc);
        }
        changes
    }
}

fn report(check: &str, found: &[&Signal], now: DateTime<Utc>) -> Incident {
    let detected = found
        .iter()
        .map(|s| s.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut inc = Incident::open(&service(check), detected, now);
    for fix in found.iter().filter_map(|s| s.fix.as_deref()) {
        inc.step(format!("the fix, for an operator: {fix}"), None);
    }
    inc.step(
        "reported only: the guard deletes and changes nothing for this",
        None,
    );
    inc.outcome = "reported".into();
    inc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(check: &str, message: &str) -> Signal {
        Signal {
            check: check.into(),
            message: message.into(),
            fix: Some("renew it".into()),
        }
    }

    #[test]
    fn a_signal_is_reported_when_seen_twice_once_and_resolved_when_it_clears() {
        let dir = tempfile::tempdir().unwrap();
        let mut care = Care::load(dir.path());
        let now = Utc::now();
        let expiring = [signal("tls", "the certificate expires in 10 days")];
        assert!(care.update(&expiring, now).opened.is_empty(), "once is not yet");
        let opened = care.update(&expiring, now).opened;
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].service, "doctor-tls");
        assert_eq!(opened[0].outcome, "reported");
        assert!(opened[0].timeline.iter().any(|s| s.what.contains("renew it")));
        opened[0].save(dir.path()).unwrap();
        assert!(care.update(&expiring, now).opened.is_empty(), "reported once");
        // A guard started again knows it.
        let mut again = Care::load(dir.path());
        assert!(again.update(&expiring, now).opened.is_empty());
        let changes = again.update(&[], now);
        assert_eq!(changes.resolved.len(), 1);
        assert_eq!(changes.resolved[0].outcome, "resolved");
    }

    #[test]
    fn a_blip_is_no_report() {
        let mut care = Care::default();
        let now = Utc::now();
        let lag = [signal("pitr", "the binlog archive trails MySQL by 120 bytes")];
        assert!(care.update(&lag, now).opened.is_empty());
        assert!(care.update(&[], now).opened.is_empty());
        assert!(care.update(&lag, now).opened.is_empty(), "the count starts again");
    }
}
