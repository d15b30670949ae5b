//! `status`: one table of the services, then endpoint probes, the last backup and the
//! current release. Exit 0 when every selected service is running and healthy, 3 otherwise.

use crate::cli::StatusArgs;
use crate::commands::context::Context;
use crate::error::{Context as _, ExitStatus, Result};
use crate::output::{Printer, Style, human_age, human_bytes};
use crate::targets::seam::Report;
use crate::targets::status::{Endpoint, Resources, ServiceStatus, StackStatus};
use crate::targets::swarm::status::SwarmStatus;

pub async fn run(ctx: &mut Context, args: StatusArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.services.services)?;
    let engine = ctx.engine().await?;
    let resources = if args.stats {
        Resources::Sample
    } else {
        Resources::Skip
    };
    let report = ctx.stack(&engine, &project)?.status(&selected, resources).await?;
    let (value, healthy) = match &report {
        Report::Host(r) => (serde_json::to_value(r), r.healthy),
        Report::Swarm(r) => (serde_json::to_value(r), r.healthy),
    };
    if ctx.printer.is_json() {
        ctx.printer
            .json(&value.context(|| "cannot encode the status".into())?);
    } else {
        match &report {
            Report::Host(r) => show(&ctx.printer, r, resources),
            Report::Swarm(r) => show_swarm(&ctx.printer, r),
        }
    }
    Ok(if healthy {
        ExitStatus::Success
    } else {
        ExitStatus::Degraded
    })
}

fn show_swarm(p: &Printer, r: &SwarmStatus) {
    let rows = r
        .services
        .iter()
        .map(|s| {
            let short = s.replicas.running < s.replicas.desired || s.replicas.desired == 0;
            vec![
                s.service.clone(),
                p.style(
                    if short { Style::Bad } else { Style::Ok },
                    &format!("{}/{}", s.replicas.running, s.replicas.desired),
                ),
                s.image.clone(),
                s.update_state.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    p.table(&["SERVICE", "REPLICAS", "IMAGE", "UPDATE"], rows);
    let tasks = r
        .services
        .iter()
        .flat_map(|s| {
            s.tasks.iter().map(|t| {
                vec![
                    format!("{}.{}", s.service, t.slot.unwrap_or(0)),
                    t.node.clone(),
                    t.state.clone(),
                    p.style(
                        if t.health == "healthy" || t.health == "none" {
                            Style::Ok
                        } else {
                            Style::Warn
                        },
                        &t.health,
                    ),
                    t.error.clone().unwrap_or_default(),
                ]
            })
        })
        .collect();
    p.info("");
    p.table(&["TASK", "NODE", "STATE", "HEALTH", "ERROR"], tasks);
    p.info("");
    for state in &r.nodes {
        let n = &state.node;
        let role = if state.data {
            format!("{} (data node)", n.role)
        } else {
            n.role.clone()
        };
        let line = format!(
            "node {} {} {} {} {role}",
            n.hostname, n.id, n.state, n.availability
        );
        match (n.state.as_str(), n.availability.as_str()) {
            ("ready", "active") => p.info(&line),
            ("ready", _) => p.info(&p.style(Style::Warn, &format!("{line}: drained, runs no new task"))),
            _ => p.info(&p.style(Style::Bad, &format!("node {} ({}) is down", n.hostname, n.id))),
        }
    }
    for e in &r.endpoints {
        let verdict = match (e.ok, e.status, &e.error) {
            (true, Some(code), _) => p.style(Style::Ok, &format!("ok {code}")),
            (_, _, Some(err)) => p.style(Style::Bad, &format!("failed: {err}")),
            (_, code, _) => p.style(Style::Bad, &format!("failed {}", code.unwrap_or(0))),
        };
        p.info(&format!(
            "{}: {} {verdict} ({:.1} ms)",
            e.name, e.url, e.latency_ms
        ));
    }
    match r.healthy {
        true => p.info(&p.style(Style::Ok, "healthy: every service runs its desired tasks")),
        false => p.info(&p.style(
            Style::Bad,
            "degraded: a service runs below its desired count, a probe failed, or the data node is down",
        )),
    }
}

fn show(p: &Printer, r: &StackStatus, resources: Resources) {
    let rows = r.services.iter().map(|s| service_row(p, s, resources)).collect();
    let mut header = vec![
        "SERVICE", "STATE", "HEALTH", "UPTIME", "IMAGE", "VERSION", "RESTARTS", "PORTS", "DRIFT",
    ];
    if resources == Resources::Sample {
        header.extend(["CPU AVG", "MEMORY"]);
    }
    p.table(&header, rows);
    let endpoints = r.endpoints.iter().map(|e| endpoint_row(p, e)).collect();
    if resources == Resources::Skip {
        p.info(&p.style(
            Style::Dim,
            "add --stats for CPU and memory (up to a second more: the engine samples once a second)",
        ));
    }
    p.info("");
    p.table(&["ENDPOINT", "URL", "RESULT", "LATENCY"], endpoints);
    p.info("");
    let backup = match &r.last_backup {
        Some(b) => format!("{} ({} ago)", b.id, human_age(b.age_s)),
        None => "none yet".into(),
    };
    p.info(&format!("last backup: {backup}"));
    if let Some(a) = &r.binlog_archive {
        p.info(&format!("binlog:      {}", archive_line(a)));
    }
    p.info(&format!(
        "release:     {}",
        r.release.as_deref().unwrap_or("none recorded")
    ));
    let bad: Vec<&str> = r
        .services
        .iter()
        .filter(|s| !s.healthy)
        .map(|s| s.service.as_str())
        .collect();
    match bad.is_empty() {
        true => p.info(&p.style(
            Style::Ok,
            &format!("healthy: {} of {} services", r.services.len(), r.services.len()),
        )),
        false => p.info(&p.style(
            Style::Bad,
            &format!("degraded: {} not running or not healthy", bad.join(", ")),
        )),
    }
}

fn service_row(p: &Printer, s: &ServiceStatus, resources: Resources) -> Vec<String> {
    let state_style = if s.state == "running" {
        Style::Ok
    } else {
        Style::Bad
    };
    let health_style = match s.health.as_str() {
        "healthy" => Style::Ok,
        "none" => Style::Dim,
        "starting" => Style::Warn,
        _ => Style::Bad,
    };
    let ports: Vec<String> = s
        .ports
        .iter()
        .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
        .collect();
    let memory = match (s.memory_bytes, s.memory_limit_bytes) {
        (Some(used), Some(limit)) => format!("{} / {}", human_bytes(used), human_bytes(limit)),
        _ => "-".into(),
    };
    let mut row = vec![
        s.service.clone(),
        p.style(state_style, &s.state),
        p.style(health_style, &s.health),
        s.uptime_s.map(human_age).unwrap_or_else(|| "-".into()),
        s.image.clone(),
        s.version.clone().unwrap_or_else(|| "-".into()),
        s.restarts.to_string(),
        if ports.is_empty() {
            "-".into()
        } else {
            ports.join(", ")
        },
        match &s.drift_reason {
            Some(why) => p.style(Style::Warn, &format!("yes: {why}")),
            None => "no".into(),
        },
    ];
    if resources == Resources::Sample {
        row.push(
            s.cpu_percent
                .map(|c| format!("{c:.1}%"))
                .unwrap_or_else(|| "-".into()),
        );
        row.push(memory);
    }
    row
}

fn endpoint_row(p: &Printer, e: &Endpoint) -> Vec<String> {
    let verdict = match (e.ok, e.status, &e.error) {
        (true, Some(code), _) => p.style(Style::Ok, &format!("ok {code}")),
        (false, Some(code), _) => p.style(Style::Bad, &format!("failed {code}")),
        (_, _, Some(err)) => p.style(Style::Bad, &format!("failed: {err}")),
        _ => p.style(Style::Bad, "failed"),
    };
    vec![
        e.name.clone(),
        e.url.clone(),
        verdict,
        format!("{:.1} ms", e.latency_ms),
    ]
}

/// The binlog archive in one line: its gap or problem first, else its lag.
fn archive_line(a: &crate::targets::status::ArchiveState) -> String {
    if let Some(p) = &a.problem {
        return p.clone();
    }
    if let Some(gap) = &a.gap {
        return format!("the archive has a gap: {gap}");
    }
    match a.lag_bytes {
        Some(0) => format!("archive up to date ({} files)", a.files),
        Some(n) => format!("archive trails MySQL by {}", crate::output::human_bytes(n)),
        None => format!("archive holds {} files; MySQL cannot be compared", a.files),
    }
}
