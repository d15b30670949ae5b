//! What the binlog shipper watches over time (DESIGN §13): how long the archive and its
//! off-site copy have trailed MySQL, for the metrics `pricescan_pitr_lag_seconds` and
//! `pricescan_pitr_offsite_lag_seconds`, and when to say so: `pitr.lagging` once per
//! episode, `pitr.gap` once per gap. Pure: the caller ships, writes and sends.

use chrono::{DateTime, Utc};

/// A lag is an episode worth telling once it lasts this long.
pub const LAGGING_AFTER_S: i64 = 60;

#[derive(Debug)]
pub struct Watch {
    started: DateTime<Utc>,
    local_ok: Option<DateTime<Utc>>,
    offsite_ok: Option<DateTime<Utc>>,
    lagging_told: bool,
    gaps_told: usize,
}

/// What one observation asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub local_lag_s: i64,
    pub offsite_lag_s: i64,
    pub tell_lagging: bool,
    pub new_gaps: Vec<String>,
}

impl Watch {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            started: now,
            local_ok: None,
            offsite_ok: None,
            lagging_told: false,
            gaps_told: 0,
        }
    }

    /// After a round: `local_lag` bytes not archived (None: unknown, counted as caught up
    /// only when it was before), `behind` bytes archived but not off-site (None: the round
    /// failed), and the recorded gaps.
    pub fn observe(
        &mut self,
        now: DateTime<Utc>,
        local_lag: Option<u64>,
        behind: Option<u64>,
        gaps: &[String],
    ) -> Observed {
        if local_lag == Some(0) {
            self.local_ok = Some(now);
        }
        if behind == Some(0) {
            self.offsite_ok = Some(now);
        }
        let since = |ok: Option<DateTime<Utc>>| (now - ok.unwrap_or(self.started)).num_seconds().max(0);
        let local_lag_s = since(self.local_ok);
        // Off-site trails by at least what the archive trails.
        let offsite_lag_s = since(self.offsite_ok).max(local_lag_s);
        let lagging = offsite_lag_s >= LAGGING_AFTER_S;
        let tell_lagging = lagging && !self.lagging_told;
        self.lagging_told = lagging;
        let new_gaps = gaps.iter().skip(self.gaps_told).cloned().collect();
        self.gaps_told = self.gaps_told.max(gaps.len());
        Observed {
            local_lag_s,
            offsite_lag_s,
            tell_lagging,
            new_gaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn lag_grows_from_the_last_catch_up_and_is_told_once_per_episode() {
        let mut w = Watch::new(at(0));
        let o = w.observe(at(10), Some(0), Some(0), &[]);
        assert_eq!((o.local_lag_s, o.offsite_lag_s, o.tell_lagging), (0, 0, false));
        // An outage: shipping fails, the archive keeps up.
        let o = w.observe(at(40), Some(0), None, &[]);
        assert_eq!((o.local_lag_s, o.offsite_lag_s, o.tell_lagging), (0, 30, false));
        let o = w.observe(at(75), Some(0), Some(500), &[]);
        assert_eq!((o.offsite_lag_s, o.tell_lagging), (65, true));
        assert!(
            !w.observe(at(90), Some(0), Some(900), &[]).tell_lagging,
            "told once"
        );
        assert_eq!(w.observe(at(95), Some(0), Some(0), &[]).offsite_lag_s, 0);
        assert!(
            w.observe(at(200), Some(10), Some(0), &[]).tell_lagging,
            "a new episode: the archive trails"
        );
    }

    #[test]
    fn each_gap_is_told_once() {
        let mut w = Watch::new(at(0));
        let g1 = vec!["gap one".to_string()];
        assert_eq!(w.observe(at(1), Some(0), Some(0), &g1).new_gaps, g1);
        assert!(w.observe(at(2), Some(0), Some(0), &g1).new_gaps.is_empty());
        let g2 = vec!["gap one".to_string(), "gap two".to_string()];
        assert_eq!(w.observe(at(3), Some(0), Some(0), &g2).new_gaps, ["gap two"]);
    }
}
