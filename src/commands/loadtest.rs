//! `loadtest [PATH|URL]`: HTTP load through the stack's own Nginx (DESIGN §15), reported as
//! throughput, latency percentiles from an HDR histogram and errors by kind; `--threshold`
//! turns a breach into exit 1 for CI.

use crate::cli::LoadtestArgs;
use crate::commands::context::Context;
use crate::error::{Context as _, CtlError, ExitStatus, Result};
use crate::load::generate;
use crate::load::report::{Report, Tally};
use crate::load::spec::{self, LoadSpec, Model};
use crate::stack::Project;
use std::time::{Duration, Instant};

const PROGRESS_EVERY: Duration = Duration::from_secs(5);

pub async fn run(ctx: &mut Context, args: LoadtestArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let thresholds = match &args.threshold {
        Some(text) => spec::parse_thresholds(text).map_err(CtlError::usage)?,
        None => Vec::new(),
    };
    let load = load_spec(&project, &args)?;
    let model = match load.model {
        Model::Rate(r) => format!("rate {r}/s"),
        Model::Concurrency(n) => format!("concurrency {n}"),
    };
    ctx.printer.info(&format!(
        "loadtest {} {}: {model} for {}",
        load.method,
        load.url,
        humantime::format_duration(load.duration)
    ));
    let printer = ctx.printer.clone();
    let mut shown = Instant::now();
    let mut progress = |t: &Tally, secs: f64| {
        if shown.elapsed() >= PROGRESS_EVERY {
            shown = Instant::now();
            printer.info(&format!(
                "[{secs:>5.1}s] {} requests, {} failed",
                t.requests(),
                t.errors()
            ));
        }
    };
    let stop = async {
        crate::sys::signals::received().await;
    };
    let ran = generate::run(&load, stop, &mut progress).await?;
    let head = (load.url.clone(), load.method.clone(), model);
    let mut report = Report::new(head, &ran.tally, ran.seconds, &thresholds);
    report.interrupted = ran.interrupted;
    show(ctx, &report)?;
    if ran.interrupted {
        return Err(crate::sys::signals::interrupted(
            "the load test stopped early; the report covers what ran",
        ));
    }
    verdict(&report)
}

fn verdict(report: &Report) -> Result<ExitStatus> {
    let breached = report.breached();
    if breached.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let mut e = CtlError::failure(format!(
        "{} of {} thresholds breached",
        breached.len(),
        report.thresholds.len()
    ));
    for v in breached {
        e = e.cause(format!(
            "{}: measured {}",
            v.threshold,
            measured(&v.threshold, v.measured)
        ));
    }
    Err(e)
}

fn measured(threshold: &str, value: f64) -> String {
    match threshold.trim_start() {
        t if t.starts_with("errors") => format!("{:.2} %", value * 100.0),
        t if t.starts_with("rps") || t.starts_with("throughput") => format!("{value:.1}/s"),
        _ => format!("{value:.1} ms"),
    }
}

/// The URL (a path goes to the stack's Nginx), checked against the stack's own hosts.
fn load_spec(project: &Project, args: &LoadtestArgs) -> Result<LoadSpec> {
    let base = crate::targets::status::nginx_base_url(project);
    let target = args.url.clone().unwrap_or_else(|| "/".into());
    let url = match (target.starts_with('/'), &base) {
        (true, Some(base)) => format!("{base}{target}"),
        (true, None) => {
            return Err(
                CtlError::usage("the stack publishes no Nginx HTTP port to send load to")
                    .hint("give a whole URL, e.g. http://127.0.0.1:8000/api/prices"),
            );
        }
        (false, _) => target,
    };
    let mut own: Vec<String> = ["127.0.0.1", "localhost", "::1"].map(String::from).to_vec();
    own.extend(base.as_deref().and_then(|b| spec::http_host(b).ok()));
    own.extend(
        project
            .env
            .get("SERVER_NAME")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from),
    );
    spec::check_host(&url, &own, &args.allow_host).map_err(|why| {
        CtlError::usage(format!("refusing to send load: {why}"))
            .hint("name the host with --allow-host HOST if it is yours to load")
    })?;
    let model = match (&args.rate, args.concurrency) {
        (Some(rate), _) => Model::Rate(spec::parse_rate(rate).map_err(CtlError::usage)?),
        (None, Some(n)) => {
            Model::Concurrency(spec::parse_concurrency(&n.to_string()).map_err(CtlError::usage)?)
        }
        (None, None) => Model::Concurrency(10),
    };
    Ok(LoadSpec {
        url,
        method: spec::parse_method(&args.method).map_err(CtlError::usage)?,
        body: body(args.body.as_deref())?,
        headers: headers(&args.headers, args.body.is_some())?,
        model,
        duration: args.duration,
        timeout: args.timeout,
    })
}

fn body(text: Option<&str>) -> Result<Option<Vec<u8>>> {
    match text {
        None => Ok(None),
        Some(t) => match t.strip_prefix('@') {
            Some(path) => std::fs::read(path)
                .map(Some)
                .map_err(|e| CtlError::usage(format!("cannot read the body from {path}")).cause(e)),
            None => Ok(Some(t.as_bytes().to_vec())),
        },
    }
}

/// `Name: value` pairs; a body without a Content-Type is sent as JSON.
fn headers(raw: &[String], has_body: bool) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for h in raw {
        let (name, value) = h
            .split_once(':')
            .filter(|(n, _)| !n.trim().is_empty())
            .ok_or_else(|| CtlError::usage(format!("invalid header {h:?}: expected `Name: value`")))?;
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
    if has_body && !out.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        out.push(("Content-Type".into(), "application/json".into()));
    }
    Ok(out)
}

fn show(ctx: &Context, r: &Report) -> Result<()> {
    if ctx.printer.is_json() {
        let value = serde_json::to_value(r).context(|| "cannot encode the report".into())?;
        ctx.printer.json(&value);
        return Ok(());
    }
    let l = &r.latency;
    let ms = |v: f64| format!("{v:.2} ms");
    ctx.printer.table(
        &[
            "REQUESTS",
            "SECONDS",
            "PER SECOND",
            "P50",
            "P90",
            "P95",
            "P99",
            "MAX",
            "ERRORS",
        ],
        vec![vec![
            r.requests.to_string(),
            format!("{:.1}", r.duration_s),
            format!("{:.1}", r.throughput_rps),
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p95_ms),
            ms(l.p99_ms),
            ms(l.max_ms),
            format!("{} ({:.2} %)", r.errors, r.error_ratio * 100.0),
        ]],
    );
    let kinds: Vec<String> = r.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    ctx.printer.result(&format!("by kind: {}", kinds.join(", ")));
    for v in &r.thresholds {
        let mark = if v.passed { "ok" } else { "BREACHED" };
        ctx.printer.result(&format!(
            "threshold {}: {} {mark}",
            v.threshold,
            measured(&v.threshold, v.measured)
        ));
    }
    Ok(())
}
