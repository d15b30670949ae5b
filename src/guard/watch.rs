//! When the guard heals (DESIGN §14): a service unhealthy, or whose container exited or went
//! away without an operation, for longer than GUARD_UNHEALTHY_FOR (so that the engine's
//! restart policy has its chance first), unless it was healed 3 times in the last 15 minutes, when the guard
//! gives up on it and says so once. Driven by the engine's events and a timer for the next
//! deadline: nothing polls.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Heals of one service within `HEAL_WINDOW` before the guard gives up on it.
pub const MAX_HEALS: usize = 3;
pub const HEAL_WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct Watch {
    unhealthy_for: Duration,
    since: HashMap<String, (Instant, Finding)>,
    heals: HashMap<String, VecDeque<Instant>>,
    given_up: HashMap<String, Instant>,
}

/// What was seen of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Unhealthy,
    /// Its container exited or was removed, and nothing started it again.
    Exited,
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
            "health_status: unhealthy" => {
                self.since
                    .entry(service.to_string())
                    .or_insert((now, Finding::Unhealthy));
            }
            "die" | "destroy" | "oom" => {
                self.since
                    .entry(service.to_string())
                    .or_insert((now, Finding::Exited));
            }
            // Started again (the restart policy, or an operator): wait for its health.
            "start" => {
                self.since
                    .retain(|s, (_, f)| s != service || *f != Finding::Exited);
            }
            // Healthy again (an operator fixed it, or it recovered): looked after again.
            "health_status: healthy" => {
                self.since.remove(service);
                self.given_up.remove(service);
            }
            _ => {}
        }
    }

    /// The service is healthy again, or its container went away with a deploy.
    pub fn forget(&mut self, service: &str) {
        self.since.remove(service);
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
}
