//! `guard` (DESIGN §14): a long-lived process that watches the engine's events and heals a
//! service unhealthy for longer than GUARD_UNHEALTHY_FOR, under the operation lock (it waits
//! for a deploy, restore or backup instead of fighting it). The API is replaced start-first
//! behind Nginx, as `restart` does; a stateful service is restarted. Each detection is an
//! incident report; SIGTERM ends it after the current action (exit 143).

use crate::cli::GuardArgs;
use crate::commands::context::Context;
use crate::deploy::release::API_SERVICE;
use crate::engine::{Engine, Event};
use crate::error::{CtlError, ExitStatus, Result};
use crate::guard::care::{Care, Signal};
use crate::guard::heal;
use crate::guard::incident::{self, Incident};
use crate::guard::watch::{Due, Finding, Watch};
use crate::notify::Event as Notice;
use crate::stack::Project;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Engine events kept for the next incident's report.
const EVENTS_KEPT: usize = 50;
/// A probe of the API through Nginx that takes longer has failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The guard's settings from .env.prod (DESIGN §14), each with its default.
struct Settings {
    unhealthy_for: Duration,
    keep: Duration,
    heal_timeout: Duration,
    rollback_window: Duration,
    probe_every: Duration,
    engine_down_for: Duration,
    doctor_every: Duration,
}

impl Settings {
    fn read(project: &Project) -> Result<Self> {
        let env = &project.env;
        let (second, minute) = (Duration::from_secs(1), Duration::from_secs(60));
        Ok(Self {
            unhealthy_for: env.duration("GUARD_UNHEALTHY_FOR", 30 * second, Duration::ZERO)?,
            keep: env.duration("INCIDENT_KEEP", 90 * 24 * 60 * minute, minute)?,
            heal_timeout: env.duration("GUARD_HEAL_TIMEOUT", 3 * minute, second)?,
            rollback_window: env.duration("GUARD_ROLLBACK_WINDOW", 10 * minute, Duration::ZERO)?,
            probe_every: env.duration("GUARD_PROBE_INTERVAL", 10 * second, second)?,
            engine_down_for: env.duration("GUARD_ENGINE_DOWN_FOR", minute, Duration::ZERO)?,
            doctor_every: env.duration("GUARD_DOCTOR_INTERVAL", 15 * minute, second)?,
        })
    }
}

pub async fn run(ctx: &mut Context, args: GuardArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let settings = Settings::read(&project)?;
    let engine = ctx.engine().await?;
    let kind = ctx.stack(&engine, &project)?.kind;
    let scope = kind.lock_scope();
    let _one =
        crate::targets::lock::acquire_role(&engine, scope, &project.name, "guard", &ctx.printer).await?;
    let dir = incident::dir(&project.dir);
    let keep = chrono::Duration::from_std(settings.keep).unwrap_or(chrono::Duration::MAX);
    for id in incident::prune(&dir, keep, chrono::Utc::now()) {
        ctx.printer
            .info(&format!("incident {id} is older than INCIDENT_KEEP: removed"));
    }
    if kind == crate::targets::TargetKind::Swarm {
        let every = (settings.probe_every, settings.heal_timeout);
        return swarm(ctx, &engine, &project, scope, every).await;
    }
    let mut guard = Guard {
        watch: Watch::new(settings.unhealthy_for),
        events: VecDeque::new(),
        wait: args.wait,
        scope,
        own: (0, 0),
        last_event: None,
        probe: crate::targets::status::api_probe_url(&project),
        care: Care::load(&dir),
        settings,
    };
    guard.seed(&engine, &project).await?;
    incident::metrics(&project, true);
    ctx.printer.info(&format!(
        "guarding {}: a service unhealthy for {} is healed",
        project.name,
        humantime::format_duration(guard.settings.unhealthy_for)
    ));
    guard.watch_loop(ctx, &engine, &project).await;
    incident::metrics(&project, false);
    Ok(crate::sys::signals::first().map_or(ExitStatus::Success, |s| s.exit_status()))
}

/// On swarm the swarm heals; the guard records its replacements (DESIGN §14).
async fn swarm(
    ctx: &Context,
    engine: &Engine,
    project: &Project,
    scope: crate::engine::LockScope,
    (every, wait_back): (Duration, Duration),
) -> Result<ExitStatus> {
    incident::metrics(project, true);
    ctx.printer.info(&format!(
        "guarding {} on swarm: the swarm replaces failed tasks, and each replacement is recorded",
        project.name
    ));
    let watch = crate::guard::swarm::SwarmGuard {
        engine,
        project,
        printer: &ctx.printer,
        scope,
        every,
    };
    watch.run(wait_back).await;
    incident::metrics(project, false);
    Ok(crate::sys::signals::first().map_or(ExitStatus::Success, |s| s.exit_status()))
}

struct Guard {
    watch: Watch,
    events: VecDeque<String>,
    settings: Settings,
    wait: Duration,
    scope: crate::engine::LockScope,
    /// The last heal's span (Unix nanos): what its own replacement did is no finding.
    own: (i64, i64),
    /// The newest event seen (Unix nanos): a new stream resumes from it.
    last_event: Option<i64>,
    /// The API's health through Nginx, when Nginx is published.
    probe: Option<String>,
    /// The doctor's care signals, reported and never acted on.
    care: Care,
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
        let mut events = Box::pin(engine.events(&project.name, None));
        let mut probe = tokio::time::interval(self.settings.probe_every);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut doctor = tokio::time::interval(self.settings.doctor_every);
        doctor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                        if !self.reconnect(ctx, engine, project).await {
                            return;
                        }
                        // Resumes where it stopped: the engine replays what it still holds.
                        let since = self.last_event.map(|t| t + 1);
                        events = Box::pin(engine.events(&project.name, since));
                    }
                },
                // Before the probe: a probe that fails slowly must not starve what is due.
                _ = timer => {
                    while let Some(due) = self.watch.due(Instant::now()) {
                        self.act(ctx, engine, project, due).await;
                        if crate::sys::signals::first().is_some() {
                            return;
                        }
                    }
                }
                _ = probe.tick(), if self.probe.is_some() => {
                    self.probe_api(engine, project).await;
                    // The next probe an interval after this one ended, however long it took.
                    probe.reset();
                }
                _ = doctor.tick() => {
                    self.look_after(ctx, engine, project).await;
                    doctor.reset();
                }
            }
        }
    }

    /// The event stream ended: retries with backoff (1 s, doubling to 30 s), alerts once the
    /// engine has been away GUARD_ENGINE_DOWN_FOR, and looks at the stack again once it
    /// answers. False when a signal came meanwhile.
    async fn reconnect(&mut self, ctx: &Context, engine: &Engine, project: &Project) -> bool {
        let lost = Instant::now();
        let mut backoff = Duration::from_secs(1);
        let mut alerted = false;
        loop {
            tokio::select! {
                biased;
                _ = crate::sys::signals::received() => return false,
                _ = tokio::time::sleep(backoff) => {}
            }
            if engine.ping().await {
                break;
            }
            if backoff == Duration::from_secs(1) {
                ctx.printer
                    .warn("the Docker engine does not answer: the guard cannot see the stack; retrying");
                incident::metrics(project, false);
            }
            if !alerted && lost.elapsed() >= self.settings.engine_down_for {
                alerted = true;
                let summary = format!(
                    "the Docker engine has not answered for {}s: the guard can neither see nor heal {}",
                    lost.elapsed().as_secs(),
                    project.name
                );
                let next = "next: `systemctl status docker` and `journalctl -u docker` on the host".into();
                notify(ctx, project, "guard.engine_down", summary, vec![next]).await;
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
        if backoff > Duration::from_secs(1) {
            let away = lost.elapsed().as_secs();
            ctx.printer
                .info(&format!("the Docker engine answers again after {away}s"));
            incident::metrics(project, true);
        }
        if alerted {
            let summary = format!(
                "the Docker engine answers again; the guard watches {}",
                project.name
            );
            notify(ctx, project, "guard.engine_back", summary, Vec::new()).await;
        }
        if let Err(e) = self.seed(engine, project).await {
            ctx.printer
                .warn(&format!("cannot look at the stack: {}", e.summary()));
        }
        true
    }

    /// The doctor's care signals: each reported once (an incident and a notification), and
    /// resolved once it clears. Nothing is acted on.
    async fn look_after(&mut self, ctx: &Context, engine: &Engine, project: &Project) {
        let signals: Vec<Signal> = crate::doctor::examine(engine, project)
            .await
            .into_iter()
            .filter(|f| f.care && f.status != crate::doctor::Level::Ok)
            .map(|f| Signal {
                check: f.check.to_string(),
                message: f.message,
                fix: f.fix,
            })
            .collect();
        let changes = self.care.update(&signals, Utc::now());
        for inc in &changes.opened {
            save(ctx, project, inc);
            let summary = format!("{}: reported; the guard does not act on it", inc.detected);
            let details = vec![format!("incident: pricescan-ctl incidents show {}", inc.id)];
            notify(ctx, project, "incident.opened", summary, details).await;
        }
        for inc in &changes.resolved {
            save(ctx, project, inc);
            let check = inc.service.trim_start_matches("doctor-");
            let summary = format!("{check}: ok again ({})", inc.detected);
            notify(ctx, project, "incident.resolved", summary, Vec::new()).await;
        }
        if !changes.opened.is_empty() || !changes.resolved.is_empty() {
            incident::metrics(project, true);
        }
    }

    /// The API's health through Nginx. What a deploy or restart does to it is theirs.
    async fn probe_api(&mut self, engine: &Engine, project: &Project) {
        if self.probe.is_none() {
            return;
        }
        let passed = self.probe_passes().await;
        if !passed {
            // An unhealthy container is its own finding; a switch under way is the operation's.
            let held = crate::targets::lock::holder(engine, self.scope, &project.name).await;
            let healthy = heal::ready(engine, project, API_SERVICE).await;
            if matches!(held, Ok(Some(_))) || !matches!(healthy, Ok(true)) {
                return;
            }
        }
        let what = if passed { "probe passed" } else { "probe failed" };
        self.watch.observe(API_SERVICE, what, Instant::now());
    }

    async fn observe(&mut self, engine: &Engine, project: &Project, e: &Event) {
        self.last_event = Some(e.time_nanos);
        if e.service.is_empty() {
            return;
        }
        if self.by_an_operation(engine, project, e).await {
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

    /// Whether the guard's own heal did this (its old container failing as it drains), or
    /// another operation stopped or removed a container on purpose. A health check failing
    /// during another operation (a long backup) is still a finding, healed once it ends.
    async fn by_an_operation(&self, engine: &Engine, project: &Project, e: &Event) -> bool {
        if (self.own.0..=self.own.1).contains(&e.time_nanos) {
            return true;
        }
        if !matches!(e.action.trim(), "die" | "destroy" | "oom") {
            return false;
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
                if matches!(heal::ready(engine, project, &service).await, Ok(false)) {
                    self.watch
                        .observe(&service, "health_status: unhealthy", Instant::now());
                }
            }
        }
        incident::metrics(project, true);
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
        // Recovered by itself (or by an operation) meanwhile: nothing to report.
        if self.recovered(engine, project, service, finding).await? {
            self.watch.forget(service);
            return Ok(());
        }
        let failing_since = self.first_failure(project, service, finding);
        let detected = finding.detected(self.settings.unhealthy_for);
        let mut inc = Incident::open(service, detected, chrono::Utc::now());
        describe(engine, project, service, &mut inc, true).await;
        inc.events = self.events.iter().cloned().collect();
        save(ctx, project, &inc);
        let details = vec![format!("incident: pricescan-ctl incidents show {}", inc.id)];
        let summary = finding.summary(service);
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
            .heal_under_lock(ctx, (engine, project), (service, finding), &mut inc)
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

    /// When the service began to fail, for the time to recover: the health check's first
    /// failed probe (its interval × (retries − 1) before `unhealthy`), or when it was seen.
    fn first_failure(&self, project: &Project, service: &str, finding: Finding) -> DateTime<Utc> {
        let seen = self.watch.since(service).unwrap_or_else(Instant::now);
        let mut before = seen.elapsed();
        if finding == Finding::Unhealthy {
            let check = project.service(service).healthcheck.as_ref();
            let interval = check
                .and_then(|c| c.interval.as_ref())
                .map_or(Duration::from_secs(30), |d| d.value);
            let retries = check.and_then(|c| c.retries).unwrap_or(3);
            before += interval * retries.saturating_sub(1);
        }
        Utc::now() - chrono::Duration::from_std(before).unwrap_or_default()
    }

    /// Checked again under the lock: a deploy or a restart may have replaced it meanwhile.
    async fn heal_under_lock(
        &mut self,
        ctx: &Context,
        (engine, project): (&Engine, &Project),
        (service, finding): (&str, Finding),
        inc: &mut Incident,
    ) -> Result<()> {
        if self.recovered(engine, project, service, finding).await? {
            inc.step(
                "healthy again before any action (it recovered, or an operation replaced it)",
                None,
            );
            self.watch.forget(service);
            return Ok(());
        }
        let t = Instant::now();
        let stack = ctx.stack(engine, project)?;
        let timeout = self.settings.heal_timeout;
        // A young release that turns bad is rolled back; a removed container is not its fault.
        let young = match heal::may_roll_back(service) && finding != Finding::Exited {
            true => heal::young_release(engine, project, self.settings.rollback_window).await?,
            false => None,
        };
        let heal = async {
            match &young {
                Some(release) => heal::roll_back(&stack, release, timeout).await,
                None => heal::restart(&stack, service, timeout).await,
            }
        };
        let served = std::cell::Cell::new(None);
        // The API serves again once the switch is made, before the old container has drained.
        let watch_serving = async {
            while service == API_SERVICE && self.probe.is_some() {
                // Serving means answering promptly: a short wait marks the moment closely.
                if self.probe_within(Duration::from_secs(1)).await {
                    served.set(Some(Utc::now()));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            std::future::pending::<()>().await
        };
        tokio::pin!(heal);
        let healed = tokio::select! {
            biased;
            healed = &mut heal => healed,
            () = watch_serving => heal.await,
        };
        if let Some(at) = served.get() {
            inc.served(at);
        }
        self.watch.healed(service, Instant::now());
        let healed = match healed {
            Ok(how) if finding == Finding::ProbeFailing && !self.probe_passes().await => Err(
                CtlError::failure(format!("{how}, but the probe through Nginx still fails")),
            ),
            other => other,
        };
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

    async fn recovered(
        &self,
        engine: &Engine,
        project: &Project,
        service: &str,
        finding: Finding,
    ) -> Result<bool> {
        // A loop looks ready between two exits.
        if finding == Finding::RestartLoop {
            return Ok(false);
        }
        let ready = heal::ready(engine, project, service).await?;
        Ok(ready && (finding != Finding::ProbeFailing || self.probe_passes().await))
    }

    async fn probe_passes(&self) -> bool {
        self.probe_within(PROBE_TIMEOUT).await
    }

    async fn probe_within(&self, timeout: Duration) -> bool {
        let Some(url) = &self.probe else { return true };
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
    }
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
