//! `backup events` and the recoverable window of `backup list` (DESIGN §13): what the binlog
//! archive holds, read through the archiver's container.

use crate::backup::events::{self, Listed};
use crate::commands::context::Context;
use crate::deploy::converge::running_container;
use crate::engine::{ContainerInfo, Engine};
use crate::error::{CtlError, ExitStatus, Result};
use crate::stack::Project;
use crate::stack::pitr::{self, ARCHIVER_SERVICE};

/// The archiver's container on the engine that holds the data.
pub async fn archiver(ctx: &Context, engine: &Engine, project: &Project) -> Result<(Engine, ContainerInfo)> {
    let data = ctx.stack(engine, project)?.data_engine().await?;
    let containers = data.project_containers(&project.name).await?;
    let archiver = running_container(&containers, ARCHIVER_SERVICE)
        .map_err(|e| e.hint("the binlog archive is read through it: `pricescan-ctl start -s binlog`"))?
        .clone();
    Ok((data, archiver))
}

pub async fn events(ctx: &mut Context, since: Option<String>, grep: Option<String>) -> Result<ExitStatus> {
    let since = since
        .map(|s| {
            pitr::parse_since(&s, chrono::Utc::now())
                .map_err(|e| CtlError::usage(format!("invalid --since: {e}")))
        })
        .transpose()?;
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    let (data, archiver) = archiver(ctx, &engine, &project).await?;
    let word = grep.map(|g| g.to_lowercase());
    let shown: Vec<Listed> = events::list(&data, &archiver.id)
        .await?
        .into_iter()
        .filter(|e| since.is_none_or(|s| e.time >= s))
        .filter(|e| word.as_ref().is_none_or(|w| e.what.to_lowercase().contains(w)))
        .collect();
    if ctx.printer.is_json() {
        ctx.printer.json(&serde_json::json!(shown));
        return Ok(ExitStatus::Success);
    }
    let rows = shown
        .iter()
        .map(|e| {
            vec![
                e.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                e.position.to_string(),
                e.kind.to_string(),
                e.what.clone(),
            ]
        })
        .collect();
    ctx.printer.table(&["TIME", "POSITION", "KIND", "EVENT"], rows);
    if let Some(e) = shown.last() {
        ctx.printer.info(&format!(
            "to restore to just before an event: pricescan-ctl restore --to-position {}",
            e.position
        ));
    }
    Ok(ExitStatus::Success)
}

/// What point-in-time recovery can reach: from the oldest backup that records its place in
/// the binary log to the archive's newest complete event.
pub struct Window {
    pub from: Option<(String, String)>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub lag_bytes: Option<u64>,
    pub problem: Option<String>,
    /// The same from the bucket alone, when off-site backups are set.
    pub offsite: Option<OffsiteWindow>,
}

/// What the off-site copy alone can reach: from the oldest off-site backup that records its
/// binlog position to the newest event the shipper recorded as landed.
pub struct OffsiteWindow {
    pub location: String,
    pub from: Option<(String, String)>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    pub problem: Option<String>,
}

impl OffsiteWindow {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "location": self.location,
            "from": self.from.as_ref().map(|(_, t)| t),
            "from_backup": self.from.as_ref().map(|(id, _)| id),
            "to": self.to.map(|t| t.to_rfc3339()),
            "problem": self.problem,
        })
    }

    /// `local_to`: the local archive's newest event, to say how far the copy trails it.
    pub fn line(&self, local_to: Option<chrono::DateTime<chrono::Utc>>) -> String {
        let to = self.to.map_or(
            "(nothing shipped yet: run `pricescan-ctl backup archive`)".into(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        let mut line = format!(
            "off-site ({}): any second from {} to {to}",
            self.location,
            from_text(&self.from)
        );
        if let Some(p) = &self.problem {
            line.push_str(&format!("; {p}"));
        } else if let (Some(local), Some(there)) = (local_to, self.to) {
            let behind = (local - there).num_seconds().max(0);
            line.push_str(&format!("; {behind} s behind the local archive"));
        }
        line
    }
}

fn from_text(from: &Option<(String, String)>) -> String {
    from.as_ref().map_or(
        "(no backup records its binlog position yet)".to_string(),
        |(id, t)| format!("{t} (backup {id})"),
    )
}

/// A backup's start in the window: its id and the UTC second of its binlog position.
fn window_start(id: &str, manifest: &crate::backup::catalog::Manifest) -> Option<(String, String)> {
    let c = manifest.binlog.as_ref()?;
    let t = chrono::DateTime::parse_from_rfc3339(&c.seen_at).ok()?;
    Some((
        id.to_string(),
        t.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    ))
}

/// The off-site window, or None without off-site backups. Never fails: what cannot be read
/// is said in `problem`.
pub async fn offsite_window(project: &Project) -> Option<OffsiteWindow> {
    let remote = crate::backup::offsite::open(project).ok()??;
    let read = async {
        let mut from = None;
        for b in remote.backups().await?.iter().filter(|b| b.complete) {
            from = window_start(&b.id, &remote.manifest(&b.id).await?);
            if from.is_some() {
                break;
            }
        }
        Ok::<_, CtlError>((from, remote.through().await?))
    };
    let mut window = OffsiteWindow {
        location: remote.location(),
        from: None,
        to: None,
        problem: None,
    };
    match read.await {
        Ok((from, through)) => (window.from, window.to) = (from, through.map(|t| t.at)),
        Err(e) => window.problem = Some(format!("cannot read the bucket: {}", e.what)),
    }
    Some(window)
}

impl Window {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "from": self.from.as_ref().map(|(_, t)| t),
            "from_backup": self.from.as_ref().map(|(id, _)| id),
            "to": self.to.map(|t| t.to_rfc3339()),
            "archive_lag_bytes": self.lag_bytes,
            "archive_lag_seconds": self.lag_seconds(),
            "problem": self.problem,
            "offsite": self.offsite.as_ref().map(OffsiteWindow::json),
        })
    }

    /// 0 when up to date, else how old the newest archived event is.
    pub fn lag_seconds(&self) -> Option<i64> {
        match self.lag_bytes? {
            0 => Some(0),
            _ => self.to.map(|t| (chrono::Utc::now() - t).num_seconds().max(0)),
        }
    }

    /// The local window's line, then the off-site one's.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.line()];
        lines.extend(self.offsite.as_ref().map(|o| o.line(self.to)));
        lines
    }

    pub fn line(&self) -> String {
        let from = from_text(&self.from);
        let newest = self
            .to
            .map_or("?".to_string(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        // Nothing was written since the newest archived event: every second up to now counts.
        let to = match (self.lag_bytes, &self.problem) {
            (Some(0), None) => format!("now (the newest archived event is from {newest})"),
            _ => newest,
        };
        let mut line = format!("point-in-time recovery: any second from {from} to {to}");
        match (self.lag_bytes, &self.problem) {
            (_, Some(p)) => line.push_str(&format!("; {p}")),
            (Some(0), None) => line.push_str("; the archive is up to date"),
            (Some(n), None) => line.push_str(&format!(
                "; the archive trails MySQL by {n} bytes ({} s)",
                self.lag_seconds().unwrap_or(0)
            )),
            (None, None) => {}
        }
        line
    }
}

/// The window, or None when point-in-time recovery is off. Never fails: what cannot be
/// read is said in `problem`.
pub async fn window(
    ctx: &mut Context,
    project: &Project,
    backups: &[crate::backup::catalog::OnDisk],
) -> Option<Window> {
    if !pitr::enabled(&project.env) {
        return None;
    }
    let from = backups
        .iter()
        .find_map(|b| window_start(&b.id, b.manifest.as_ref()?));
    let mut window = Window {
        from,
        to: None,
        lag_bytes: None,
        problem: None,
        offsite: offsite_window(project).await,
    };
    let read = async {
        let engine = ctx.engine().await?;
        let (data, archiver) = archiver(ctx, &engine, project).await?;
        let archive = crate::backup::binlog::list(&data, &archiver.id).await?;
        let end = crate::backup::replay::archive_end(&data, &archiver.id, &archive).await?;
        let containers = data.project_containers(&project.name).await?;
        let lag = match running_container(&containers, crate::backup::catalog::MYSQL_SERVICE) {
            Ok(mysql) => crate::backup::binlog::lag(&data, &mysql.id, &archive).await,
            Err(_) => None,
        };
        Ok::<_, CtlError>((end.at, lag, archive.gaps.last().cloned()))
    };
    match read.await {
        Ok((to, lag, gap)) => {
            window.to = Some(to);
            window.lag_bytes = lag;
            window.problem = gap.map(|g| format!("the archive has a gap: {g}"));
        }
        Err(e) => window.problem = Some(format!("cannot read the binlog archive: {}", e.what)),
    }
    Some(window)
}

/// Retention of the binlog archive (DESIGN §13): every file needed to roll forward from the
/// oldest backup still kept, and nothing older. Quiet when point-in-time recovery is off or
/// the archiver is not running: the next prune catches up.
pub async fn prune_archive(ctx: &mut Context, project: &Project, dry_run: bool) -> Result<()> {
    if !pitr::enabled(&project.env) {
        return Ok(());
    }
    use crate::backup::{catalog, retention};
    // The backups retention keeps (a dry run has not removed the others).
    let all = catalog::list(&catalog::backup_root(project))?;
    let decisions = retention::decide(&catalog::candidates(&all), catalog::policy(&project.env));
    let kept: Vec<_> = all
        .iter()
        .filter(|b| decisions.get(&b.id).is_some_and(|why| !why.is_empty()))
        .filter_map(|b| b.manifest.as_ref())
        .collect();
    let from = kept
        .iter()
        .filter_map(|m| m.binlog.as_ref())
        .map(|c| c.position())
        .min_by_key(|p| p.sequence());
    let oldest_kept = kept
        .iter()
        .filter_map(|m| chrono::DateTime::parse_from_rfc3339(&m.started_at).ok())
        .map(|t| t.to_utc())
        .min();
    let engine = ctx.engine().await?;
    let (data, archiver) = match archiver(ctx, &engine, project).await {
        Ok(found) => found,
        Err(e) => {
            ctx.printer
                .debug(&format!("binlog archive not pruned: {}", e.what));
            return Ok(());
        }
    };
    let archive = match crate::backup::binlog::list(&data, &archiver.id).await {
        Ok(a) => a,
        Err(e) => {
            ctx.printer
                .warn(&format!("binlog archive not pruned: {}", e.what));
            return Ok(());
        }
    };
    let gone = crate::backup::binlog::expendable(&archive, from.as_ref());
    for f in &gone {
        let verb = if dry_run { "remove" } else { "pruned" };
        ctx.printer.info(&format!(
            "{verb} binlog {} (older than {}, where the oldest kept backup starts)",
            f.name,
            from.as_ref().map_or(String::new(), |p| p.to_string())
        ));
    }
    if !dry_run && let Err(e) = crate::backup::binlog::remove(&data, &archiver.id, &gone).await {
        ctx.printer
            .warn(&format!("binlog archive not pruned: {}", e.what));
    }
    prune_earlier(ctx, (&data, &archiver.id), oldest_kept, dry_run).await;
    Ok(())
}

/// The archives set aside when MySQL's binary log started over, once every kept backup is
/// younger than they are.
async fn prune_earlier(
    ctx: &Context,
    (engine, archiver): (&Engine, &str),
    oldest_kept: Option<chrono::DateTime<chrono::Utc>>,
    dry_run: bool,
) {
    use crate::backup::binlog;
    let earlier = match binlog::earlier(engine, archiver).await {
        Ok(e) => e,
        Err(e) => {
            return ctx
                .printer
                .warn(&format!("binlog archive not pruned: {}", e.what));
        }
    };
    let gone = binlog::expendable_earlier(&earlier, oldest_kept);
    for e in &gone {
        let verb = if dry_run { "remove" } else { "pruned" };
        ctx.printer.info(&format!(
            "{verb} {} (set aside when MySQL's binary log started over; every kept backup is younger)",
            e.dir
        ));
    }
    if !dry_run && let Err(e) = binlog::remove_earlier(engine, archiver, &gone).await {
        ctx.printer
            .warn(&format!("binlog archive not pruned: {}", e.what));
    }
}

/// `backup archive`: ships the binlog archive's growing tail off-site every
/// BACKUP_PITR_SHIP_INTERVAL until a signal ends it (exit 130 or 143; what was shipped is in
/// the journal, and the next start goes on from there). An outage is retried each round:
/// the archive itself is the queue. One per stack: a second exits 75 naming the first.
pub async fn archive(ctx: &mut Context, once: bool) -> Result<ExitStatus> {
    let project = ctx.project()?;
    if !pitr::enabled(&project.env) {
        return Err(CtlError::usage(
            "point-in-time recovery is off (BACKUP_PITR=false): there is no archive to ship",
        )
        .hint("set BACKUP_PITR=true in .env.prod, then `pricescan-ctl setup` and `pricescan-ctl start`"));
    }
    let remote = crate::backup::offsite::require(&project)?;
    let interval = ship_interval(&project)?;
    let engine = ctx.engine().await?;
    let scope = ctx.stack(&engine, &project)?.kind.lock_scope();
    let _one =
        crate::targets::lock::acquire_role(&engine, scope, &project.name, "binlog-shipper", &ctx.printer)
            .await?;
    let (mut journal, rebuilt) = crate::backup::shipping::Journal::open(&project, &remote).await?;
    if rebuilt {
        ctx.printer
            .info(&format!("shipping journal rebuilt from {}", remote.location()));
    }
    ctx.printer.info(&format!(
        "shipping the binlog archive to {} every {}",
        remote.location(),
        humantime::format_duration(interval)
    ));
    let mut watch = crate::backup::ship_watch::Watch::new(chrono::Utc::now());
    loop {
        let round = ship_round(ctx, &engine, &project, &remote, &mut journal).await;
        let seen = match &round {
            Ok(r) => watch.observe(chrono::Utc::now(), r.local_lag, Some(r.behind), &r.gaps),
            Err(_) => watch.observe(chrono::Utc::now(), None, None, &[]),
        };
        tell(ctx, &project, &round, &seen, interval).await;
        match round {
            Err(e) if once => return Err(e),
            _ if once => return Ok(ExitStatus::Success),
            _ => tokio::time::sleep(interval).await,
        }
    }
}

/// One round: the archiver and MySQL found again (they may have been recreated), then
/// whatever the archive holds beyond the journal shipped.
async fn ship_round(
    ctx: &Context,
    engine: &Engine,
    project: &Project,
    remote: &crate::backup::offsite::Remote,
    journal: &mut crate::backup::shipping::Journal,
) -> Result<crate::backup::shipping::Round> {
    let (data, archiver) = archiver(ctx, engine, project).await?;
    let containers = data.project_containers(&project.name).await?;
    let mysql = running_container(&containers, crate::backup::catalog::MYSQL_SERVICE)
        .ok()
        .map(|c| c.id.clone());
    crate::backup::shipping::ship_once(&data, &archiver.id, mysql.as_deref(), remote, journal).await
}

/// A round's outcome: a line when something was shipped or failed, the lag metrics, and
/// `pitr.lagging` or `pitr.gap` when the watch says so.
async fn tell(
    ctx: &Context,
    project: &Project,
    round: &Result<crate::backup::shipping::Round>,
    seen: &crate::backup::ship_watch::Observed,
    interval: std::time::Duration,
) {
    use crate::notify::Event;
    match round {
        Ok(r) if r.chunks > 0 => ctx.printer.info(&format!(
            "shipped {} in {} chunk(s); {} not off-site yet",
            crate::output::human_bytes(r.bytes),
            r.chunks,
            crate::output::human_bytes(r.behind)
        )),
        Ok(_) => {}
        Err(e) => ctx.printer.warn(&format!(
            "shipping failed, trying again in {}: {}",
            humantime::format_duration(interval),
            e.summary()
        )),
    }
    crate::backup::metrics::update_file(
        project,
        "pricescan_pitr.prom",
        &[
            ("pricescan_pitr_lag_seconds", seen.local_lag_s.to_string()),
            (
                "pricescan_pitr_offsite_lag_seconds",
                seen.offsite_lag_s.to_string(),
            ),
        ],
    );
    if seen.tell_lagging {
        let details = vec![
            format!("the local archive trails MySQL by {} s", seen.local_lag_s),
            format!("the off-site copy trails by {} s", seen.offsite_lag_s),
            "next: `pricescan-ctl logs -s binlog`, and the shipper's own log".into(),
        ];
        let summary =
            "the binlog archive is lagging: a lost server would lose more than the ship interval".to_string();
        let event = Event::new("pitr.lagging", &project.name, true, summary, details);
        crate::notify::events::emit(project, &ctx.printer, event).await;
    }
    for gap in &seen.new_gaps {
        let details = vec![gap.clone(), "next: take a backup (`pricescan-ctl backup`)".into()];
        let summary = "the binlog archive has a gap: no point in it can be restored across".to_string();
        let event = Event::new("pitr.gap", &project.name, true, summary, details);
        crate::notify::events::emit(project, &ctx.printer, event).await;
    }
}

/// BACKUP_PITR_SHIP_INTERVAL, 10 s unless set.
fn ship_interval(project: &Project) -> Result<std::time::Duration> {
    let second = std::time::Duration::from_secs(1);
    project
        .env
        .duration("BACKUP_PITR_SHIP_INTERVAL", 10 * second, second)
}

/// Off-site retention of the binlog archive, after the off-site backups' own: the chunks of
/// every file before the one the oldest kept off-site backup rolls forward from go, and
/// nothing newer.
pub async fn prune_remote_archive(ctx: &Context, project: &Project, dry_run: bool) -> Result<()> {
    use crate::backup::{offsite, retention};
    let Some(remote) = offsite::open(project)?.filter(|_| pitr::enabled(&project.env)) else {
        return Ok(());
    };
    let all = remote.backups().await?;
    let decisions = retention::decide(&offsite::candidates(&all), offsite::policy(project));
    let mut kept: Vec<&String> = all
        .iter()
        .filter(|b| b.complete && decisions.get(&b.id).is_some_and(|why| !why.is_empty()))
        .map(|b| &b.id)
        .collect();
    kept.sort();
    let mut from = None;
    for id in kept {
        if let Some(c) = remote.manifest(id).await?.binlog {
            from = Some(c.position());
            break;
        }
    }
    let Some(from) = from else {
        return Ok(());
    };
    let chunks = remote.archive_chunks().await?;
    let gone: Vec<_> = chunks
        .iter()
        .filter(|c| pitr::sequence(&c.file) < from.sequence())
        .collect();
    let mut files: Vec<&str> = gone.iter().map(|c| c.file.as_str()).collect();
    files.dedup();
    for file in files {
        let verb = if dry_run { "remove" } else { "pruned" };
        ctx.printer.info(&format!(
            "{verb} off-site binlog {file} (older than {from}, where the oldest kept off-site backup starts)"
        ));
    }
    if !dry_run {
        for chunk in gone {
            remote.delete_chunk(chunk).await?;
        }
    }
    Ok(())
}
