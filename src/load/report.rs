//! What a load test measured: latencies in an HDR histogram, answers by status class and
//! failures by kind, and the verdict of each threshold.

use super::spec::{Metric, Threshold};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;

/// Latencies are kept in microseconds, from 1 µs to an hour, to 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ending {
    Status(u16),
    Timeout,
    Connect,
    /// The connection broke after it was made (reset, closed mid-answer).
    Io,
}

/// Running counts while the load runs; merged into a `Report` at the end.
#[derive(Debug, Clone)]
pub struct Tally {
    pub latency: Histogram<u64>,
    pub by_class: BTreeMap<String, u64>,
    pub timeouts: u64,
    pub connect: u64,
    pub io: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            latency: histogram(),
            by_class: BTreeMap::new(),
            timeouts: 0,
            connect: 0,
            io: 0,
        }
    }
}

impl Tally {
    pub fn record(&mut self, ending: Ending, took: std::time::Duration) {
        match ending {
            Ending::Status(code) => *self.by_class.entry(format!("{}xx", code / 100)).or_default() += 1,
            Ending::Timeout => self.timeouts += 1,
            Ending::Connect => self.connect += 1,
            Ending::Io => self.io += 1,
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(micros);
    }

    pub fn requests(&self) -> u64 {
        self.by_class.values().sum::<u64>() + self.timeouts + self.connect + self.io
    }

    /// Anything but a 2xx or 3xx answer.
    pub fn errors(&self) -> u64 {
        let bad_answers: u64 = self
            .by_class
            .iter()
            .filter(|(class, _)| !matches!(class.as_str(), "2xx" | "3xx"))
            .map(|(_, n)| n)
            .sum();
        bad_answers + self.timeouts + self.connect + self.io
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// A millisecond figure of the histogram, to a microsecond.
pub fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let q = |p: f64| ms(h.value_at_quantile(p));
        Latency {
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p95_ms: q(0.95),
            p99_ms: q(0.99),
            max_ms: ms(h.max()),
            mean_ms: h.mean().round() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub method: String,
    /// "rate 50/s" or "concurrency 8".
    pub model: String,
    pub duration_s: f64,
    pub requests: u64,
    pub throughput_rps: f64,
    pub latency: Latency,
    pub errors: u64,
    pub error_ratio: f64,
    /// Answers by status class, and failures by kind (timeout, connect, io).
    pub by_kind: BTreeMap<String, u64>,
    pub thresholds: Vec<Verdict>,
    /// True when a signal ended the test before its duration.
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub threshold: String,
    pub measured: f64,
    pub passed: bool,
}

impl Report {
    pub fn new(
        head: (String, String, String),
        tally: &Tally,
        seconds: f64,
        thresholds: &[Threshold],
    ) -> Self {
        let requests = tally.requests();
        let errors = tally.errors();
        let mut by_kind = tally.by_class.clone();
        for (kind, n) in [
            ("timeout", tally.timeouts),
            ("connect", tally.connect),
            ("io", tally.io),
        ] {
            if n > 0 {
                by_kind.insert(kind.into(), n);
            }
        }
        let mut report = Report {
            url: head.0,
            method: head.1,
            model: head.2,
            duration_s: (seconds * 1000.0).round() / 1000.0,
            requests,
            throughput_rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency: Latency::of(&tally.latency),
            errors,
            error_ratio: if requests > 0 {
                errors as f64 / requests as f64
            } else {
                0.0
            },
            by_kind,
            thresholds: Vec::new(),
            interrupted: false,
        };
        report.thresholds = thresholds.iter().map(|t| report.judge(t)).collect();
        report
    }

    fn judge(&self, t: &Threshold) -> Verdict {
        let l = &self.latency;
        let measured = match t.metric {
            Metric::Latency(50) => l.p50_ms,
            Metric::Latency(90) => l.p90_ms,
            Metric::Latency(95) => l.p95_ms,
            Metric::Latency(99) => l.p99_ms,
            Metric::Latency(_) => l.max_ms,
            Metric::Errors => self.error_ratio,
            Metric::Throughput => self.throughput_rps,
        };
        // No request at all meets no threshold: a test that sent nothing proved nothing.
        let passed = self.requests > 0 && t.holds(measured);
        Verdict {
            threshold: t.text.clone(),
            measured,
            passed,
        }
    }

    pub fn breached(&self) -> Vec<&Verdict> {
        self.thresholds.iter().filter(|v| !v.passed).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::spec::parse_thresholds;
    use std::time::Duration;

    #[test]
    fn a_report_counts_kinds_and_judges_thresholds() {
        let mut t = Tally::default();
        for i in 0..98 {
            t.record(Ending::Status(200), Duration::from_millis(10 + i % 5));
        }
        t.record(Ending::Status(503), Duration::from_millis(400));
        t.record(Ending::Timeout, Duration::from_secs(10));
        let th = parse_thresholds("p50<20ms,errors<1%,max<1s").unwrap();
        let r = Report::new(("u".into(), "GET".into(), "concurrency 1".into()), &t, 2.0, &th);
        assert_eq!((r.requests, r.errors), (100, 2));
        assert_eq!(r.by_kind.get("5xx"), Some(&1));
        assert_eq!(r.by_kind.get("timeout"), Some(&1));
        assert_eq!(r.throughput_rps, 50.0);
        let passed: Vec<bool> = r.thresholds.iter().map(|v| v.passed).collect();
        assert_eq!(passed, [true, false, false]);
    }

    #[test]
    fn nothing_sent_meets_no_threshold() {
        let th = parse_thresholds("errors<1%").unwrap();
        let r = Report::new(
            ("u".into(), "GET".into(), "rate 1/s".into()),
            &Tally::default(),
            1.0,
            &th,
        );
        assert_eq!(r.breached().len(), 1);
    }
}
