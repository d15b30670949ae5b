//! When the guard heals (DESIGN §14): a service unhealthy, whose container exited or went
//! away without an operation, or whose probe through Nginx fails, for longer than
//! GUARD_UNHEALTHY_FOR (so that the engine's restart policy has its chance first); a restart
//! loop at once. Unless it was healed 3 times in the last 15 minutes, when the guard gives
//! up on it and says so once. Driven by the engine's events and a timer for the next
//! deadline: nothing polls.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Heals of one service within `HEAL_WINDOW` before the guard gives up on it.
pub const MAX_HEALS: usize = 3;
pub const HEAL_WINDOW: Duration = Duration::from_secs(15 * 60);
/// More exits than this within `LOOP_WINDOW` is a restart loop.
pub const LOOP_EXITS: usize = 3;
pub const LOOP_WINDOW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
pub struct Watch {
    unhealthy_for: Duration,
    since: HashMap<String, (Instant, Finding)>,
    heals: HashMap<String, VecDeque<Instant>>,
    exits: HashMap<String, VecDeque<Instant>>,
    given_up: HashMap<String, Instant>,
}

/// What was seen of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Unhealthy,
    /// Its container exited or was removed, and nothing started it again.
    Exited,
    /// The engine restarted it more than `LOOP_EXITS` times within `LOOP_WINDOW`.
    RestartLoop,
    /// Its container looks healthy, but the API fails its probe through Nginx.
    ProbeFailing,
}

impl Finding {
    /// What was detected, for the incident report.
    pub fn detected(self, unhealthy_for: Duration) -> String {
        let after = humantime::format_duration(unhealthy_for);
        match self {
            Finding::Unhealthy => format!("unhealthy for more than {after}"),
            Finding::Exited => {
                format!("its container exited or went away, and nothing started it within {after}")
            }
            Finding::RestartLoop => {
                format!("a restart loop: more than {LOOP_EXITS} exits within 5 minutes")
            }
            Finding::ProbeFailing => {
                format!("its container looks healthy, but its probe through Nginx failed for {after}")
            }
        }
    }

    /// The line that opens the incident's notification.
    pub fn summary(self, service: &str) -> String {
        match self {
            Finding::Unhealthy => format!("{service} is unhealthy: healing it"),
            Finding::Exited => format!("{service} is down: bringing it back"),
            Finding::RestartLoop => format!("{service} restarts in a loop: healing it"),
            Finding::ProbeFailing => format!("{service} fails its probe through Nginx: replacing it"),
        }
    }
}

/// What is due for a service.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Heal(String, Finding),
    /// Healed too often: tell once, then leave it alone.
    GiveUp(String),
}

impl Watch {
    pub fn new(unhealthy_for: Duration) -> Self {
        Self {
            unhealthy_for,
            ..Self::default()
        }
    }

    /// A container event (`health_status: unhealthy`, `start`, `die`, `destroy`, ...) of a
    /// service. The caller leaves out what an operation did (a deploy's old container dies).
    pub fn observe(&mut self, service: &str, action: &str, now: Instant) {
        match action.trim() {
            // The container's own check failing says more than the probe through Nginx.
            "health_status: unhealthy" => {
                let seen = self
                    .since
                    .entry(service.to_string())
                    .or_insert((now, Finding::Unhealthy));
                if seen.1 == Finding::ProbeFailing {
                    seen.1 = Finding::Unhealthy;
                }
            }
            "die" | "oom" => {
                self.since
                    .entry(service.to_string())
                    .or_insert((now, Finding::Exited));
                self.count_exit(service, now);
            }
            "destroy" => {
                self.since
                    .entry(service.to_string())
                    .or_insert((now, Finding::Exited));
            }
            // Started again (the restart policy, or an operator): wait for its health.
            "start" => {
                self.since
                    .retain(|s, (_, f)| s != service || *f != Finding::Exited);
            }
            "probe failed" => {
                self.since
                    .entry(service.to_string())
                    .or_insert((now, Finding::ProbeFailing));
            }
            "probe passed" => {
                self.since
                    .retain(|s, (_, f)| s != service || *f != Finding::ProbeFailing);
            }
            // Healthy again (an operator fixed it, or it recovered): looked after again.
            "health_status: healthy" => {
                self.since.remove(service);
                self.given_up.remove(service);
            }
            _ => {}
        }
    }

    /// A loop is due at once: waiting longer only restarts it more.
    fn count_exit(&mut self, service: &str, now: Instant) {
        let exits = self.exits.entry(service.to_string()).or_default();
        exits.push_back(now);
        while exits
            .front()
            .is_some_and(|t| now.duration_since(*t) > LOOP_WINDOW)
        {
            exits.pop_front();
        }
        if exits.len() > LOOP_EXITS {
            let due_now = now.checked_sub(self.unhealthy_for).unwrap_or(now);
            self.since
                .insert(service.to_string(), (due_now, Finding::RestartLoop));
        }
    }

    /// The service is healthy again, or its container went away with a deploy.
    pub fn forget(&mut self, service: &str) {
        self.since.remove(service);
    }

    /// Since when the service's finding stands.
    pub fn since(&self, service: &str) -> Option<Instant> {
        self.since.get(service).map(|(t, _)| *t)
    }

    pub fn is_unhealthy(&self, service: &str) -> bool {
        self.since.contains_key(service)
    }

    /// When the next service becomes due, if any is unhealthy.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.since
            .iter()
            .filter(|(s, _)| !self.given_up.contains_key(*s))
            .map(|(_, (t, _))| *t + self.unhealthy_for)
            .min()
    }

    /// The first service whose time is up.
    pub fn due(&mut self, now: Instant) -> Option<Due> {
        let (service, finding) = self
            .since
            .iter()
            .filter(|(s, (t, _))| !self.given_up.contains_key(*s) && *t + self.unhealthy_for <= now)
            .map(|(s, (_, f))| (s.clone(), *f))
            .min_by(|a, b| a.0.cmp(&b.0))?;
        let heals = self.heals.entry(service.clone()).or_default();
        while heals
            .front()
            .is_some_and(|t| now.duration_since(*t) > HEAL_WINDOW)
        {
            heals.pop_front();
        }
        if heals.len() >= MAX_HEALS {
            self.given_up.insert(service.clone(), now);
            return Some(Due::GiveUp(service));
        }
        Some(Due::Heal(service, finding))
    }

    /// A heal was made (whatever came of it): it counts toward giving up.
    pub fn healed(&mut self, service: &str, now: Instant) {
        self.heals.entry(service.to_string()).or_default().push_back(now);
        self.since.remove(service);
        self.exits.remove(service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhealthy_for_long_enough_is_healed_and_healthy_again_is_not() {
        let t0 = Instant::now();
        let mut w = Watch::new(Duration::from_secs(30));
        w.observe("api", "health_status: unhealthy", t0);
        w.observe("api", "health_status: unhealthy", t0 + Duration::from_secs(10));
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(w.due(t0 + Duration::from_secs(29)), None);
        assert_eq!(
            w.due(t0 + Duration::from_secs(30)),
            Some(Due::Heal("api".into(), Finding::Unhealthy))
        );
        w.observe("api", "health_status: healthy", t0 + Duration::from_secs(31));
        assert_eq!(
            (w.next_deadline(), w.due(t0 + Duration::from_secs(90))),
            (None, None)
        );
    }

    #[test]
    fn three_heals_in_fifteen_minutes_then_it_gives_up_once() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = Watch::new(Duration::from_secs(30));
        for round in 0..3 {
            w.observe("api", "health_status: unhealthy", at(round * 100));
            assert_eq!(
                w.due(at(round * 100 + 30)),
                Some(Due::Heal("api".into(), Finding::Unhealthy))
            );
            w.healed("api", at(round * 100 + 40));
        }
        w.observe("api", "health_status: unhealthy", at(400));
        assert_eq!(w.due(at(430)), Some(Due::GiveUp("api".into())));
        assert_eq!(w.due(at(500)), None, "given up: no more heals, told once");
        assert_eq!(w.next_deadline(), None);
        // Another service is still looked after.
        w.observe("mysql", "health_status: unhealthy", at(500));
        assert_eq!(
            w.due(at(530)),
            Some(Due::Heal("mysql".into(), Finding::Unhealthy))
        );
    }

    #[test]
    fn an_exit_the_restart_policy_undoes_is_left_alone_and_one_that_stays_is_healed() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = Watch::new(Duration::from_secs(30));
        w.observe("redis", "die", at(0));
        w.observe("redis", "start", at(1));
        assert_eq!((w.next_deadline(), w.due(at(60))), (None, None));
        w.observe("mysql", "die", at(10));
        w.observe("mysql", "destroy", at(11));
        assert_eq!(w.due(at(39)), None);
        assert_eq!(w.due(at(40)), Some(Due::Heal("mysql".into(), Finding::Exited)));
    }

    #[test]
    fn a_fourth_exit_within_five_minutes_is_a_loop_due_at_once() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = Watch::new(Duration::from_secs(30));
        for i in 0..3 {
            w.observe("api", "die", at(i * 100));
            w.observe("api", "start", at(i * 100 + 1));
        }
        assert_eq!(
            w.due(at(301)),
            None,
            "three exits in five minutes: not yet a loop"
        );
        w.observe("api", "die", at(310));
        w.observe("api", "start", at(311));
        assert_eq!(w.due(at(312)), None, "the first exit is older than five minutes");
        w.observe("api", "die", at(320));
        w.observe("api", "start", at(321));
        assert_eq!(
            w.due(at(321)),
            Some(Due::Heal("api".into(), Finding::RestartLoop))
        );
        w.healed("api", at(330));
        w.observe("api", "die", at(340));
        w.observe("api", "start", at(341));
        assert_eq!(w.due(at(400)), None, "a heal starts the count again");
    }

    #[test]
    fn a_failing_probe_is_healed_after_the_same_wait_and_a_passing_one_clears_it() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut w = Watch::new(Duration::from_secs(30));
        w.observe("api", "probe failed", at(0));
        w.observe("api", "probe passed", at(10));
        assert_eq!(w.due(at(60)), None);
        w.observe("api", "probe failed", at(60));
        w.observe("api", "probe failed", at(70));
        assert_eq!(
            w.due(at(90)),
            Some(Due::Heal("api".into(), Finding::ProbeFailing))
        );
    }
}
