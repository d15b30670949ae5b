//! Reading Nginx's JSON access log through the engine, for the analysis after a switch:
//! the old release's requests over the window before it (the baseline), and the new
//! release's as they come, told apart by the upstream address that answered.

use super::analysis::{self, Figures, Limits, Measured, Verdict};
use crate::engine::loglines::Assembler;
use crate::engine::{Engine, LogQuery};
use crate::error::Result;
use crate::output::Printer;
use crate::stack::rollout::AnalysisSettings;
use futures_util::StreamExt;
use std::future::Future;
use std::time::{Duration, Instant};

const NANOS: i64 = 1_000_000_000;
/// How often the progress line is printed where it cannot be redrawn.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `ip:8000` for each address of an API container: how Nginx names it as an upstream.
pub fn upstreams(addresses: &[String]) -> Vec<String> {
    addresses.iter().map(|ip| format!("{ip}:8000")).collect()
}

/// Adds each access line of `text` stamped in [from, to) and answered by one of `upstreams`.
fn count(figures: &mut Figures, nanos: i64, text: &str, upstreams: &[String], (from, to): (i64, i64)) {
    if nanos < from || nanos >= to {
        return;
    }
    if let Some((status, micros, upstream)) = analysis::parse_access(text)
        && upstreams.contains(&upstream)
    {
        figures.add(status, micros);
    }
}

/// The requests `upstreams` answered between `from` and `to` (nanoseconds since the epoch).
pub async fn between(
    engine: &Engine,
    nginx: &str,
    upstreams: &[String],
    from: i64,
    to: i64,
) -> Result<Figures> {
    let query = LogQuery {
        follow: false,
        tail: None,
        since: Some(from / NANOS),
        until: Some(to / NANOS + 1),
    };
    let mut figures = Figures::default();
    let mut lines = Assembler::default();
    let mut stream = engine.log_chunks(nginx, &query);
    while let Some(item) = stream.next().await {
        let (output, bytes) = item?;
        lines.push(output, &bytes, &mut |l| {
            count(&mut figures, l.nanos, &l.text, upstreams, (from, to))
        });
    }
    lines.finish(&mut |l| count(&mut figures, l.nanos, &l.text, upstreams, (from, to)));
    Ok(figures)
}

/// What the watch is told.
pub struct Watch<'a> {
    pub engine: &'a Engine,
    pub printer: &'a Printer,
    pub nginx: String,
    pub upstreams: Vec<String>,
    /// When traffic moved, in nanoseconds since the epoch.
    pub from: i64,
    pub settings: &'a AnalysisSettings,
    pub limits: Limits,
    pub baseline: Measured,
}

/// How the watch ended.
pub struct Watched {
    pub figures: Figures,
    /// None when a signal ended it.
    pub verdict: Option<Verdict>,
    pub seconds: f64,
}

/// Follows the access log from the switch until the window ends, a clear breach shows, or
/// `stop` completes. A broken log stream is opened again where it broke.
pub async fn watch(w: &Watch<'_>, stop: impl Future<Output = ()>) -> Watched {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + w.settings.window;
    let mut figures = Figures::default();
    let mut last = w.from - 1;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut shown = Instant::now();
    let live = w.printer.live_line();
    tokio::pin!(stop);
    let verdict = 'watch: loop {
        let query = LogQuery {
            follow: true,
            tail: None,
            since: Some(last / NANOS),
            until: None,
        };
        let mut stream = w.engine.log_chunks(&w.nginx, &query);
        let mut lines = Assembler::default();
        loop {
            tokio::select! {
                _ = &mut stop => break 'watch None,
                _ = tokio::time::sleep_until(deadline) => {
                    break 'watch Some(analysis::judge(&figures, &w.limits, w.settings.min_requests, true));
                }
                _ = tick.tick() => {
                    let verdict = analysis::judge(&figures, &w.limits, w.settings.min_requests, false);
                    if verdict != Verdict::Watching {
                        break 'watch Some(verdict);
                    }
                    let line = progress(w, &figures, started);
                    match &live {
                        Some(live) => live.set(&line),
                        None if shown.elapsed() >= PROGRESS_EVERY => {
                            shown = Instant::now();
                            w.printer.info(&line);
                        }
                        None => {}
                    }
                }
                item = stream.next() => {
                    let Some(Ok((output, bytes))) = item else {
                        // The stream broke or ended (Nginx restarted): open it again.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue 'watch;
                    };
                    lines.push(output, &bytes, &mut |l| {
                        if l.nanos > last {
                            last = l.nanos;
                            count(&mut figures, l.nanos, &l.text, &w.upstreams, (w.from, i64::MAX));
                        }
                    });
                }
            }
        }
    };
    Watched {
        figures,
        verdict,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// `523 req, 0.00 % 5xx, p95 4 ms | before: 1812 req, 0.00 %, p95 3 ms`.
pub fn describe(now: &Measured, before: &Measured) -> String {
    format!(
        "{} req, {:.2} % 5xx, p95 {:.0} ms | before: {} req, {:.2} %, p95 {:.0} ms",
        now.requests,
        now.error_ratio * 100.0,
        now.p95_ms,
        before.requests,
        before.error_ratio * 100.0,
        before.p95_ms
    )
}

/// The progress line: redrawn every second on a terminal, printed every 5 s elsewhere.
fn progress(w: &Watch<'_>, figures: &Figures, started: Instant) -> String {
    format!(
        "[{:>5.1}s] analysing: {}",
        started.elapsed().as_secs_f64(),
        describe(&figures.measured(), &w.baseline)
    )
}
