//! Judging a release by its traffic (DESIGN §15): Nginx's JSON access lines, counted per
//! release, against limits derived from the old release's traffic just before the switch.
//! The window may end early, but only on a clear breach: one that a healthy release would
//! show by chance less than once in a hundred deploys (the Wilson score interval's lower
//! bound at z = 2.576 above the limit).

use crate::load::report::{histogram, ms};
use crate::stack::rollout::AnalysisSettings;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// z for a one-sided 99.5 % bound: an early abort of a good release is a rare accident.
const Z: f64 = 2.576;

/// One access line: status, request time in microseconds, and the upstream that answered
/// (the last one tried when Nginx moved a request on). None for lines that are not
/// requests passed to the API.
pub fn parse_access(text: &str) -> Option<(u16, u64, String)> {
    #[derive(Deserialize)]
    struct Line {
        status: u16,
        duration: f64,
        upstream: String,
    }
    let line: Line = serde_json::from_str(text.trim()).ok()?;
    // "a:8000, b:8000" or "a:8000 : b:8000" (after an internal redirect): the last one answered.
    let last = line
        .upstream
        .rsplit([',', ' '])
        .find(|p| p.contains(':'))?
        .trim()
        .to_string();
    let micros = (line.duration.max(0.0) * 1_000_000.0) as u64;
    Some((line.status, micros, last))
}

/// Requests of one release over a stretch of time.
#[derive(Debug, Clone)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    pub latency: Histogram<u64>,
}

impl Default for Figures {
    fn default() -> Self {
        Figures {
            requests: 0,
            errors: 0,
            latency: histogram(),
        }
    }
}

/// The figures as recorded and shown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Measured {
    pub requests: u64,
    pub error_ratio: f64,
    pub p95_ms: f64,
}

impl Figures {
    pub fn add(&mut self, status: u16, micros: u64) {
        self.requests += 1;
        if status >= 500 {
            self.errors += 1;
        }
        self.latency.saturating_record(micros.max(1));
    }

    pub fn error_ratio(&self) -> f64 {
        match self.requests {
            0 => 0.0,
            n => self.errors as f64 / n as f64,
        }
    }

    pub fn p95_ms(&self) -> f64 {
        match self.requests {
            0 => 0.0,
            _ => ms(self.latency.value_at_quantile(0.95)),
        }
    }

    pub fn measured(&self) -> Measured {
        Measured {
            requests: self.requests,
            error_ratio: self.error_ratio(),
            p95_ms: self.p95_ms(),
        }
    }

    /// Requests slower than `limit_ms`.
    fn slower_than(&self, limit_ms: f64) -> u64 {
        let at_most = (limit_ms * 1000.0) as u64;
        self.requests - self.latency.count_between(0, at_most).min(self.requests)
    }
}

/// The limits a release is held to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Limits {
    pub error_ratio: f64,
    /// None when there is neither a baseline to derive it from nor DEPLOY_MAX_P95.
    pub p95_ms: Option<f64>,
}

/// `max(DEPLOY_MAX_ERROR_RATE, 2 × baseline)` and `max(1.5 × baseline, baseline + 100 ms)`,
/// or DEPLOY_MAX_P95. A baseline of fewer than DEPLOY_MIN_REQUESTS says nothing of latency.
pub fn limits(settings: &AnalysisSettings, baseline: &Figures) -> Limits {
    let known = baseline.requests >= settings.min_requests;
    let error_ratio = match known {
        true => settings.max_error_rate.max(2.0 * baseline.error_ratio()),
        false => settings.max_error_rate,
    };
    let derived = known.then(|| {
        let b = baseline.p95_ms();
        (1.5 * b).max(b + 100.0)
    });
    Limits {
        error_ratio,
        p95_ms: settings.max_p95.map(|d| d.as_secs_f64() * 1000.0).or(derived),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Watching,
    Passed,
    /// The window ended with fewer requests than DEPLOY_MIN_REQUESTS.
    TooLittle,
    Failed(Breach),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// "error ratio" or "p95".
    pub metric: String,
    pub measured: f64,
    pub limit: f64,
}

impl Breach {
    pub fn describe(&self) -> String {
        match self.metric.as_str() {
            "p95" => format!(
                "p95 latency {:.0} ms above the limit of {:.0} ms",
                self.measured, self.limit
            ),
            _ => format!(
                "5xx ratio {:.2} % above the limit of {:.2} %",
                self.measured * 100.0,
                self.limit * 100.0
            ),
        }
    }
}

/// The lower bound of the Wilson score interval of `k` in `n`.
fn wilson_lower(k: u64, n: u64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let spread = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    (centre - spread) / (1.0 + z2 / n)
}

/// The verdict so far; `over` when the window has ended.
pub fn judge(f: &Figures, limits: &Limits, min_requests: u64, over: bool) -> Verdict {
    if f.requests < min_requests {
        return if over {
            Verdict::TooLittle
        } else {
            Verdict::Watching
        };
    }
    let errors_breached = match over {
        true => f.error_ratio() > limits.error_ratio,
        false => wilson_lower(f.errors, f.requests) > limits.error_ratio,
    };
    if errors_breached {
        return Verdict::Failed(Breach {
            metric: "error ratio".into(),
            measured: f.error_ratio(),
            limit: limits.error_ratio,
        });
    }
    if let Some(limit) = limits.p95_ms {
        // p95 above the limit means more than 5 % of requests slower than it.
        let breached = match over {
            true => f.p95_ms() > limit,
            false => wilson_lower(f.slower_than(limit), f.requests) > 0.05,
        };
        if breached {
            return Verdict::Failed(Breach {
                metric: "p95".into(),
                measured: f.p95_ms(),
                limit,
            });
        }
    }
    if over { Verdict::Passed } else { Verdict::Watching }
}

/// What the release record keeps of the analysis.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Analysis {
    /// passed, failed, too_little_traffic or interrupted.
    pub verdict: String,
    pub window_s: f64,
    /// How long the release was watched (less than the window after a clear breach).
    pub watched_s: f64,
    pub release: Measured,
    pub baseline: Measured,
    pub limits: Limits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach: Option<Breach>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> AnalysisSettings {
        AnalysisSettings {
            window: Duration::from_secs(60),
            max_error_rate: 0.01,
            max_p95: None,
            min_requests: 50,
        }
    }

    fn figures(n: u64, every_nth_error: u64, ms: u64) -> Figures {
        let mut f = Figures::default();
        for i in 0..n {
            let status = if every_nth_error > 0 && i % every_nth_error == 0 {
                500
            } else {
                200
            };
            f.add(status, ms * 1000 + i % 7);
        }
        f
    }

    #[test]
    fn access_lines_name_the_upstream_that_answered() {
        let line = r#"{"time":"t","status":502,"duration":0.012,"upstream":"172.18.0.5:8000, 172.18.0.6:8000","upstream_time":"x"}"#;
        assert_eq!(parse_access(line), Some((502, 12_000, "172.18.0.6:8000".into())));
        let own = r#"{"status":200,"duration":0.000,"upstream":""}"#;
        assert_eq!(parse_access(own), None, "Nginx answered itself");
        assert_eq!(parse_access("2026/12/08 [error] upstream timed out"), None);
    }

    #[test]
    fn limits_follow_the_baseline_and_the_settings() {
        let base = figures(1000, 50, 20);
        let l = limits(&settings(), &base);
        assert_eq!(l.error_ratio, 0.04);
        assert!((l.p95_ms.unwrap() - 120.0).abs() < 1.0, "{l:?}");
        let none = limits(&settings(), &figures(10, 0, 20));
        assert_eq!((none.error_ratio, none.p95_ms), (0.01, None));
        let fixed = AnalysisSettings {
            max_p95: Some(Duration::from_millis(300)),
            ..settings()
        };
        assert_eq!(limits(&fixed, &base).p95_ms, Some(300.0));
    }

    #[test]
    fn a_clear_breach_ends_the_window_early_and_a_healthy_release_does_not() {
        let l = limits(&settings(), &figures(1000, 0, 5));
        let flaky = figures(400, 20, 5);
        assert!(matches!(judge(&flaky, &l, 50, false), Verdict::Failed(b) if b.metric == "error ratio"));
        let slow = figures(60, 0, 305);
        assert!(matches!(judge(&slow, &l, 50, false), Verdict::Failed(b) if b.metric == "p95"));
        // One 5xx in 60 is above 1 %, but not clearly: only the window's end may say so.
        let one = figures(60, 60, 5);
        assert_eq!(judge(&one, &l, 50, false), Verdict::Watching);
        assert!(matches!(judge(&one, &l, 50, true), Verdict::Failed(_)));
        assert_eq!(judge(&figures(5000, 0, 6), &l, 50, true), Verdict::Passed);
        assert_eq!(judge(&figures(49, 1, 500), &l, 50, true), Verdict::TooLittle);
    }
}
