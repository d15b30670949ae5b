//! The monitor's state: live rates from the engine's stats streams, the API's probe latency
//! over a window, and recent engine events, layered on a periodic status snapshot.

use crate::engine::{Event, Sample};
use crate::targets::status::{ServiceStatus, StackStatus};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

/// Points kept for sparklines and the latency window.
pub const HISTORY: usize = 60;
/// Events kept for the event pane.
const EVENTS: usize = 50;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rates {
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub block_read_bps: f64,
    pub block_write_bps: f64,
}

#[derive(Debug, Default)]
struct Series {
    last: Option<(Sample, Instant)>,
    rates: Option<Rates>,
    cpu: VecDeque<u64>,
    memory: VecDeque<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventLine {
    pub time: String,
    pub service: String,
    pub action: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub errors: u64,
    pub probes: u64,
}

#[derive(Debug, Default)]
pub struct MonitorState {
    pub status: Option<StackStatus>,
    series: BTreeMap<String, Series>,
    latencies: VecDeque<f64>,
    probe_errors: u64,
    probes: u64,
    pub events: VecDeque<EventLine>,
}

/// One service in a snapshot: the status fields plus live rates.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorRow {
    #[serde(flatten)]
    pub status: ServiceStatus,
    pub rates: Option<Rates>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub project: String,
    pub healthy: bool,
    pub time: String,
    pub services: Vec<MonitorRow>,
    pub endpoints: Vec<crate::targets::status::Endpoint>,
    pub api_latency: Latency,
    pub events: Vec<EventLine>,
}

fn rate(now: u64, before: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs
}

impl MonitorState {
    pub fn sample(&mut self, service: &str, sample: Sample, at: Instant) {
        let series = self.series.entry(service.to_string()).or_default();
        if let Some((prev, then)) = series.last {
            let secs = at.duration_since(then).as_secs_f64().max(0.001);
            let rates = Rates {
                cpu_percent: (sample.cpu_percent_since(&prev) * 10.0).round() / 10.0,
                memory_bytes: sample.memory_used,
                memory_limit_bytes: sample.memory_limit,
                net_rx_bps: rate(sample.rx_bytes, prev.rx_bytes, secs),
                net_tx_bps: rate(sample.tx_bytes, prev.tx_bytes, secs),
                block_read_bps: rate(sample.block_read, prev.block_read, secs),
                block_write_bps: rate(sample.block_write, prev.block_write, secs),
            };
            push(&mut series.cpu, (rates.cpu_percent * 10.0) as u64);
            push(&mut series.memory, sample.memory_used);
            series.rates = Some(rates);
        }
        series.last = Some((sample, at));
    }

    /// The service's stats stream ended (its container stopped or was replaced): its last
    /// rates are no longer live, and a new stream starts from a fresh first sample.
    pub fn stream_ended(&mut self, service: &str) {
        if let Some(series) = self.series.get_mut(service) {
            series.last = None;
            series.rates = None;
        }
    }

    /// A new status snapshot; the first endpoint that `is_probe` picks feeds the latency.
    pub fn status(&mut self, status: StackStatus, is_probe: fn(&str) -> bool) {
        if let Some(e) = status.endpoints.iter().find(|e| is_probe(&e.name)) {
            self.probes += 1;
            match e.ok {
                true => push_f(&mut self.latencies, e.latency_ms),
                false => self.probe_errors += 1,
            }
        }
        self.status = Some(status);
    }

    pub fn event(&mut self, e: Event) {
        let interesting = [
            "die", "oom", "restart", "start", "stop", "kill", "destroy", "create",
        ];
        let action = e.action.split(':').next().unwrap_or_default();
        if !(interesting.contains(&action) || action == "health_status") {
            return;
        }
        let time = chrono::DateTime::from_timestamp_nanos(e.time_nanos)
            .format("%H:%M:%S")
            .to_string();
        let service = if e.service.is_empty() {
            e.container
        } else {
            e.service
        };
        self.events.push_front(EventLine {
            time,
            service,
            action: e.action,
        });
        self.events.truncate(EVENTS);
    }

    /// A line in the event pane that no engine sent (a node that cannot be reached).
    pub fn note(&mut self, service: &str, action: &str) {
        self.events.push_front(EventLine {
            time: chrono::Utc::now().format("%H:%M:%S").to_string(),
            service: service.to_string(),
            action: action.to_string(),
        });
        self.events.truncate(EVENTS);
    }

    pub fn rates(&self, service: &str) -> Option<Rates> {
        self.series.get(service).and_then(|s| s.rates)
    }

    pub fn cpu_history(&self, service: &str) -> Vec<u64> {
        self.series
            .get(service)
            .map(|s| s.cpu.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn memory_history(&self, service: &str) -> Vec<u64> {
        self.series
            .get(service)
            .map(|s| s.memory.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn latency(&self) -> Latency {
        let mut sorted: Vec<f64> = self.latencies.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Latency {
            p50_ms: percentile(&sorted, 50.0),
            p95_ms: percentile(&sorted, 95.0),
            errors: self.probe_errors,
            probes: self.probes,
        }
    }

    pub fn snapshot(&self) -> Option<Snapshot> {
        let status = self.status.as_ref()?;
        let services = status
            .services
            .iter()
            .map(|s| MonitorRow {
                status: s.clone(),
                rates: self.rates(&s.service).filter(|_| s.state == "running"),
            })
            .collect();
        Some(Snapshot {
            project: status.project.clone(),
            healthy: status.healthy,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            services,
            endpoints: status.endpoints.clone(),
            api_latency: self.latency(),
            events: self.events.iter().cloned().collect(),
        })
    }
}

/// Column titles of a monitor row, for the snapshot table and the dashboard alike.
pub const COLUMNS: [&str; 9] = [
    "SERVICE",
    "STATE",
    "HEALTH",
    "CPU",
    "MEMORY",
    "NET RX TX",
    "BLOCK R W",
    "RESTARTS",
    "UPTIME",
];

/// One monitor row as text, in COLUMNS order; "-" where no rate is known yet. On swarm the
/// service cell names the task's node.
pub fn row_text(s: &ServiceStatus, r: Option<Rates>) -> Vec<String> {
    use crate::output::{human_age, human_bytes};
    let rate = |bps: f64| format!("{}/s", human_bytes(bps as u64));
    let or_dash = |f: &dyn Fn(Rates) -> String| r.map_or("-".to_string(), f);
    let service = match &s.node {
        Some(node) => format!("{} @ {}", s.service, node.hostname),
        None => s.service.clone(),
    };
    vec![
        service,
        s.state.clone(),
        s.health.clone(),
        or_dash(&|r| format!("{:.1}%", r.cpu_percent)),
        or_dash(&|r| {
            format!(
                "{} / {}",
                human_bytes(r.memory_bytes),
                human_bytes(r.memory_limit_bytes)
            )
        }),
        or_dash(&|r| format!("{} {}", rate(r.net_rx_bps), rate(r.net_tx_bps))),
        or_dash(&|r| format!("{} {}", rate(r.block_read_bps), rate(r.block_write_bps))),
        s.restarts.to_string(),
        s.uptime_s.map_or("-".into(), human_age),
    ]
}

fn push(q: &mut VecDeque<u64>, v: u64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

fn push_f(q: &mut VecDeque<f64>, v: f64) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(v);
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&[7.0], 95.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn rates_come_from_two_samples() {
        let mut state = MonitorState::default();
        let t0 = Instant::now();
        let a = Sample {
            cpu_total: 0,
            system_total: 0,
            online_cpus: 2,
            rx_bytes: 1000,
            block_write: 0,
            ..Default::default()
        };
        let b = Sample {
            cpu_total: 500_000_000,
            system_total: 2_000_000_000,
            online_cpus: 2,
            rx_bytes: 3000,
            block_write: 4096,
            memory_used: 42,
            ..Default::default()
        };
        state.sample("api", a, t0);
        assert!(state.rates("api").is_none(), "one sample gives no rate");
        state.sample("api", b, t0 + Duration::from_secs(2));
        let r = state.rates("api").unwrap();
        assert_eq!(r.cpu_percent, 50.0);
        assert_eq!(r.net_rx_bps, 1000.0);
        assert_eq!(r.block_write_bps, 2048.0);
        state.stream_ended("api");
        assert!(state.rates("api").is_none(), "a gone stream shows no stale rates");
        state.sample("api", b, t0 + Duration::from_secs(3));
        assert!(
            state.rates("api").is_none(),
            "a new stream starts from a first sample"
        );
        assert_eq!(r.memory_bytes, 42);
        // A counter that went backwards (a restart) gives zero, never a negative rate.
        let c = Sample { rx_bytes: 10, ..b };
        state.sample("api", c, t0 + Duration::from_secs(3));
        assert_eq!(state.rates("api").unwrap().net_rx_bps, 0.0);
    }

    #[test]
    fn only_interesting_events_are_kept_newest_first() {
        let mut state = MonitorState::default();
        for action in ["exec_start: sh", "die", "health_status: unhealthy"] {
            state.event(Event {
                time_nanos: 0,
                action: action.into(),
                container: "c".into(),
                service: "api".into(),
            });
        }
        let actions: Vec<&str> = state.events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["health_status: unhealthy", "die"]);
    }
}
