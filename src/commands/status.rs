//! `status`: one table of the services, then endpoint probes, the last backup and the
//! current release. Exit 0 when every selected service is running and healthy, 3 otherwise.

use super::Context;
use crate::cli::StatusArgs;
use crate::error::{Context as _, ExitStatus, Result};
use crate::ops::status::{self, Resources, StackStatus};
use crate::output::{Printer, Style, human_age, human_bytes};

pub async fn run(ctx: &mut Context, args: StatusArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.services.services)?;
    let engine = ctx.engine().await?;
    let resources = if args.stats {
        Resources::Sample
    } else {
        Resources::Skip
    };
    let report = status::collect(&engine, &project, &selected, resources).await?;
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::to_value(&report).context(|| "cannot encode the status".into())?);
    } else {
        show(&ctx.printer, &report, resources);
    }
    Ok(if report.healthy {
        ExitStatus::Success
    } else {
        ExitStatus::Degraded
    })
}

fn show(p: &Printer, r: &StackStatus, resources: Resources) {
    let rows = r
        .services
        .iter()
        .map(|s| {
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
        })
        .collect();
    let mut header = vec![
        "SERVICE", "STATE", "HEALTH", "UPTIME", "IMAGE", "VERSION", "RESTARTS", "PORTS", "DRIFT",
    ];
    if resources == Resources::Sample {
        header.extend(["CPU AVG", "MEMORY"]);
    }
    p.table(&header, rows);
    let endpoints = r
        .endpoints
        .iter()
        .map(|e| {
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
        })
        .collect();
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
