//! `guard` (DESIGN §14): a long-lived process that watches the engine's events and heals a
//! service unhealthy for longer than GUARD_UNHEALTHY_FOR, under the operation lock (it waits
//! for a deploy, restore or backup instead of fighting it). The API is replaced start-first
//! behind Nginx, as `restart` does; a stateful service is restarted. Each detection is an
//! incident report; SIGTERM ends it after the current action (exit 143).

use crate::cli::GuardArgs;
use crate::commands::context::Context;
use crate::deploy::converge::{Converger, Mode};
use crate::deploy::release;
use crate::deploy::wait::Goal;
use crate::engine::{Engine, Event};
use crate::error::{CtlError, ExitStatus, Result};
use crate::guard::incident::{self, Incident};
use crate::guard::watch::{Due, Finding, Watch};
use crate::notify::Event as Notice;
use crate::stack::{Project, rollout};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Engine events kept for the next incident's report.
const EVENTS_KEPT: usize = 50;

pub async fn run(ctx: &mut Context, args: GuardArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let unhealthy_for = setting(&project, "GUARD_UNHEALTHY_FOR", Duration::from_secs(30))?;
    let keep = setting(&project, "INCIDENT_KEEP", Duration::from_secs(90 * 86400))?;
    let heal_timeout = setting(&project, "GUARD_HEAL_TIMEOUT", Duration::from_secs(180))?;
    let engine = ctx.engine().await?;
    let scope = ctx.stack(&engine, &project)?.kind.lock_scope();
    let _one =
        crate::targets::lock::acquire_role(&engine, scope, &project.name, "guard", &ctx.printer).await?;
    let dir = incident::dir(&project.dir);
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    for id in incident::prune(&dir, keep, chrono::Utc::now()) {
        ctx.printer
            .info(&format!("incident {id} is older than INCIDENT_KEEP: removed"));
    }
    let mut guard = Guard {
        watch: Watch::new(unhealthy_for),
        events: VecDeque::new(),
        unhealthy_for,
        wait: args.wait,
        scope,
        own: (0, 0),
        heal_timeout,
    };
    guard.seed(&engine, &project).await?;
    metrics(&project, true);
    ctx.printer.info(&format!(
        "guarding {}: a service unhealthy for {} is healed",
        project.name,
        humantime::format_duration(unhealthy_for)
    ));
    guard.watch_loop(ctx, &engine, &project).await;
    metrics(&project, false);
    Ok(crate::sys::signals::first().map_or(ExitStatus::Success, |s| s.exit_status()))
}

/// A duration setting of .env.prod, or its default.
fn setting(project: &Project, key: &str, default: Duration) -> Result<Duration> {
    match project
        .env
        .get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        None => Ok(default),
        Some(v) => crate::stack::units::parse_human_duration(&v).map_err(|e| {
            CtlError::usage(format!("invalid {key} {v:?}: {e}")).hint("for example 30s, 2m or 90d")
        }),
    }
}

fn metrics(project: &Project, up: bool) {
    let (all, _) = incident::list(&incident::dir(&project.dir));
    let mut set = vec![("pricescan_guard_up".to_string(), u8::from(up).to_string())];
    let mut counts = std::collections::BTreeMap::<(String, String), u64>::new();
    for i in &all {
        *counts.entry((i.service.clone(), i.outcome.clone())).or_default() += 1;
    }
    for ((service, outcome), n) in counts {
        set.push((
            format!("pricescan_incidents_total{{service=\"{service}\",outcome=\"{outcome}\"}}"),
            n.to_string(),
        ));
    }
    if let Some(s) = all.iter().rev().find_map(|i| i.recovery_seconds) {
        set.push(("pricescan_incident_last_recovery_seconds".into(), s.to_string()));
    }
    let set: Vec<(&str, String)> = set.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    crate::backup::metrics::update_file(project, "pricescan_guard.prom", &set);
}

struct Guard {
    watch: Watch,
    events: VecDeque<String>,
    unhealthy_for: Duration,
    wait: Duration,
    scope: crate::engine::LockScope,
    /// The last heal's span (Unix nanos): what its own replacement did is no finding.
    own: (i64, i64),
    /// How long a replacement may take to become healthy.
    heal_timeout: Duration,
}

impl Guard {
    /// The state when the guard starts: events tell only of changes.
    async fn seed(&mut self, engine: &Engine, project: &Project) -> Result<()> {
        for c in engine.project_containers(&project.name).await? {
            if c.is_running()
                && !c.is_oneoff()
                && engine.inspect(&c.id).await?.health.as_deref() == Some("unhealthy")
            {
                self.watch
                    .observe(&c.service, "health_status: unhealthy", Instant::now());
            }
        }
        Ok(())
    }

    async fn watch_loop(&mut self, ctx: &Context, engine: &Engine, project: &Project) {
        let mut events = Box::pin(engine.events(&project.name));
        loop {
            let deadline = self.watch.next_deadline().map(tokio::time::Instant::from_std);
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = crate::sys::signals::received() => return,
                e = events.next() => match e {
                    Some(Ok(e)) => self.observe(engine, project, &e).await,
                    _ => {
                        ctx.printer.warn("the engine's event stream ended; reconnecting in 2s");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        events = Box::pin(engine.events(&project.name));
                    }
                },
                _ = timer => {
                    while let Some(due) = self.watch.due(Instant::now()) {
                        self.act(ctx, engine, project, due).await;
                        if crate::sys::signals::first().is_some() {
                            return;
                        }
                    }
                }
            }
        }
    }

    async fn observe(&mut self, engine: &Engine, project: &Project, e: &Event) {
        if e.service.is_empty() {
            return;
        }
        let finding = matches!(
            e.action.trim(),
            "die" | "destroy" | "oom" | "health_status: unhealthy"
        );
        if finding && self.by_an_operation(engine, project, e).await {
            return;
        }
        let at = chrono::DateTime::from_timestamp_nanos(e.time_nanos);
        self.events.push_back(format!(
            "{} {} {}",
            at.format("%H:%M:%S%.3f"),
            e.container,
            e.action
        ));
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
        self.watch.observe(&e.service, &e.action, Instant::now());
    }

    /// Whether the guard's own heal or another operation (a deploy, a stop) did this.
    async fn by_an_operation(&self, engine: &Engine, project: &Project, e: &Event) -> bool {
        if (self.own.0..=self.own.1).contains(&e.time_nanos) {
            return true;
        }
        let held = crate::targets::lock::holder(engine, self.scope, &project.name).await;
        matches!(held, Ok(Some(_)))
    }
}

impl Guard {
    async fn act(&mut self, ctx: &Context, engine: &Engine, project: &Project, due: Due) {
        match due {
            Due::GiveUp(service) => self.give_up(ctx, project, &service).await,
            Due::Heal(service, finding) => {
                let began = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
                let healed = self.heal_incident(ctx, engine, project, &service, finding).await;
                self.own = (
                    began,
                    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX),
                );
                if let Err(e) = healed {
                    ctx.printer
                        .warn(&format!("cannot heal {service}: {}", e.summary()));
                }
                // Health events come on changes only: a heal that did not help is seen here.
                if matches!(ready(engine, project, &service).await, Ok(false)) {
                    self.watch
                        .observe(&service, "health_status: unhealthy", Instant::now());
                }
            }
        }
        metrics(project, true);
    }

    async fn give_up(&mut self, ctx: &Context, project: &Project, service: &str) {
        let detected = format!(
            "still unhealthy after {} heals in 15 minutes",
            crate::guard::watch::MAX_HEALS
        );
        let mut inc = Incident::open(service, detected, chrono::Utc::now());
        inc.events = self.events.iter().cloned().collect();
        inc.close("gave_up", chrono::Utc::now());
        save(ctx, project, &inc);
        let summary =
            format!("{service} stays unhealthy after 3 heals in 15 minutes: the guard leaves it to you");
        let details = vec![
            format!("incident: pricescan-ctl incidents show {}", inc.id),
            format!("next: pricescan-ctl logs -s {service}, then pricescan-ctl restart -s {service}"),
        ];
        notify(ctx, project, "guard.gave_up", summary, details).await;
    }

    async fn heal_incident(
        &mut self,
        ctx: &Context,
        engine: &Engine,
        project: &Project,
        service: &str,
        finding: Finding,
    ) -> Result<()> {
        let failing_since =
            chrono::Utc::now() - chrono::Duration::from_std(self.unhealthy_for).unwrap_or_default();
        let after = humantime::format_duration(self.unhealthy_for);
        let detected = match finding {
            Finding::Unhealthy => format!("unhealthy for more than {after}"),
            Finding::Exited => {
                format!("its container exited or went away, and nothing started it within {after}")
            }
        };
        let mut inc = Incident::open(service, detected, chrono::Utc::now());
        describe(engine, project, service, &mut inc, true).await;
        inc.events = self.events.iter().cloned().collect();
        save(ctx, project, &inc);
        let details = vec![format!("incident: pricescan-ctl incidents show {}", inc.id)];
        let summary = match finding {
            Finding::Unhealthy => format!("{service} is unhealthy: healing it"),
            Finding::Exited => format!("{service} is down: bringing it back"),
        };
        notify(ctx, project, "incident.opened", summary, details).await;
        let t = Instant::now();
        let lock = match ctx.lock(engine, project, "guard", Some(self.wait)).await {
            Ok(lock) => lock,
            Err(e) => {
                inc.step(
                    format!("the operation lock stayed taken: {}", e.what),
                    Some(t.elapsed()),
                );
                inc.close("failed", failing_since);
                save(ctx, project, &inc);
                self.watch.healed(service, Instant::now());
                return Err(e);
            }
        };
        inc.step("took the operation lock", Some(t.elapsed()));
        let outcome = self
            .heal_under_lock(ctx, engine, project, service, &mut inc)
            .await;
        if let Err(e) = lock.release(&ctx.printer).await {
            ctx.printer
                .warn(&format!("cannot free the operation lock: {}", e.summary()));
        }
        describe(engine, project, service, &mut inc, false).await;
        match outcome {
            Ok(()) => {
                inc.step("verified: running and healthy", None);
                inc.close("resolved", failing_since);
                save(ctx, project, &inc);
                let took = inc.recovery_seconds.unwrap_or_default();
                let summary = format!("{service} is healthy again: recovered in {took:.1} s");
                let details = vec![format!("incident: pricescan-ctl incidents show {}", inc.id)];
                notify(ctx, project, "incident.resolved", summary, details).await;
                Ok(())
            }
            Err(e) => {
                inc.close("failed", failing_since);
                save(ctx, project, &inc);
                Err(e)
            }
        }
    }

    /// Checked again under the lock: a deploy or a restart may have replaced it meanwhile.
    async fn heal_under_lock(
        &mut self,
        ctx: &Context,
        engine: &Engine,
        project: &Project,
        service: &str,
        inc: &mut Incident,
    ) -> Result<()> {
        if ready(engine, project, service).await? {
            inc.step(
                "healthy again before any action (it recovered, or an operation replaced it)",
                None,
            );
            self.watch.forget(service);
            return Ok(());
        }
        let t = Instant::now();
        let healed = heal(ctx, (engine, project), service, self.heal_timeout).await;
        self.watch.healed(service, Instant::now());
        match healed {
            Ok(how) => {
                inc.step(how, Some(t.elapsed()));
                Ok(())
            }
            Err(e) => {
                inc.step(format!("the heal failed: {}", e.what), Some(t.elapsed()));
                Err(e)
            }
        }
    }
}

/// Replaces or restarts the service as `restart` does; says which.
async fn heal(
    ctx: &Context,
    (engine, project): (&Engine, &Project),
    service: &str,
    timeout: Duration,
) -> Result<String> {
    let mut project = project.clone();
    let containers = engine.project_containers(&project.name).await?;
    release::adopt_serving(&mut project, &containers);
    let board = ctx.printer.service_board(&[service.to_string()]);
    let converger = Converger {
        engine,
        project: &project,
        board: &board,
        timeout,
        drain: rollout::api_drain(&project),
        containers,
    };
    match converger
        .converge(service, Mode::Restart, Some(Goal::Ready))
        .await?
    {
        Ok(_) if rollout::is_start_first(&project, service) => {
            Ok("replaced start-first behind Nginx (the new container took over, the old one drained)".into())
        }
        Ok(_) => Ok("restarted".into()),
        Err(f) => Err(CtlError::failure(format!(
            "{service} did not come back: {}",
            f.reason
        ))),
    }
}

/// Whether the service's container runs and is healthy.
async fn ready(engine: &Engine, project: &Project, service: &str) -> Result<bool> {
    for c in engine.project_containers(&project.name).await? {
        if c.service == service && c.is_running() && !c.is_oneoff() {
            return Ok(engine.inspect(&c.id).await?.is_ready());
        }
    }
    Ok(false)
}

/// The containers' states, and (before) the serving release and the service's last log
/// lines, masked.
async fn describe(engine: &Engine, project: &Project, service: &str, inc: &mut Incident, before: bool) {
    let containers = engine.project_containers(&project.name).await.unwrap_or_default();
    let mut lines = Vec::new();
    for c in containers.iter().filter(|c| !c.is_oneoff()) {
        let health = match engine.inspect(&c.id).await {
            Ok(d) => d.health.unwrap_or_else(|| "-".into()),
            Err(_) => "?".into(),
        };
        lines.push(format!("{} {} {health}", c.name, c.state));
    }
    if !before {
        inc.status_after = lines;
        return;
    }
    inc.status_before = lines;
    let Some(c) = containers.iter().find(|c| c.service == service && !c.is_oneoff()) else {
        return;
    };
    inc.release = c.labels.get(crate::engine::labels::RELEASE).cloned();
    let secrets = project.env.secret_values();
    inc.logs = engine
        .log_tail(&c.id, incident::LOG_LINES)
        .await
        .unwrap_or_default()
        .iter()
        .map(|l| crate::error::mask_text(&crate::error::mask_assignments(l), &secrets))
        .collect();
}

fn save(ctx: &Context, project: &Project, inc: &Incident) {
    if let Err(e) = inc.save(&incident::dir(&project.dir)) {
        ctx.printer
            .warn(&format!("cannot write incident {}: {}", inc.id, e.summary()));
    }
    ctx.printer.info(&format!(
        "incident {} ({}): {}",
        inc.id,
        inc.outcome.replace('_', " "),
        inc.timeline.last().map_or("", |s| s.what.as_str())
    ));
}

/// Every guard event goes out even with NOTIFY_ON=failure: whoever was told of an incident
/// is told how it ended.
async fn notify(ctx: &Context, project: &Project, event: &str, summary: String, details: Vec<String>) {
    let notice = Notice::new(event, &project.name, true, summary, details);
    crate::notify::events::emit(project, &ctx.printer, notice).await;
}
