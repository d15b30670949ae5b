//! `monitor`: a live dashboard of the stack. Stats arrive on one engine stream per container
//! (the engine pushes a sample a second; nothing is polled per tick), events on one event
//! stream, and a status snapshot with the API probe is taken once per interval.
//! `--once` or a non-terminal prints one snapshot; `--json` prints one document per interval.

use super::Context;
use crate::cli::MonitorArgs;
use crate::engine::{Engine, Event, Sample};
use crate::error::{Context as _, CtlError, ExitStatus, Result};
use crate::ops::monitor::{self, MonitorState, Snapshot};
use crate::ops::status::{self, Resources};
use crate::output::Printer;
use crate::stack::Project;
use crate::tui::{self, View};
use futures_util::StreamExt;
use ratatui::crossterm::event::{self, Event as Key, KeyCode, KeyModifiers};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The endpoint whose latency the header shows.
const API_PROBE: &str = "api on :8000";
/// How long `--once` waits for two samples of every running container (rates need two).
const ONCE_WAIT: Duration = Duration::from_secs(4);

enum Update {
    Sample(String, Sample, Instant),
    /// The stats stream of (service, container) ended.
    Ended(String, String),
    Event(Event),
}

/// One stats stream per running container, tracked by container name (oxker's way): a
/// stream that ended is forgotten so that a restarted container gets a new one, a container
/// that no longer runs has its stream aborted, and every stream is aborted on exit.
struct Feeds {
    engine: Engine,
    tx: mpsc::Sender<Update>,
    streaming: HashMap<String, tokio::task::JoinHandle<()>>,
}

impl Drop for Feeds {
    fn drop(&mut self) {
        for task in self.streaming.values() {
            task.abort();
        }
    }
}

impl Feeds {
    fn follow(&mut self, snapshot: &status::StackStatus) {
        let running: HashMap<String, String> = snapshot
            .services
            .iter()
            .filter(|s| s.state == "running")
            .filter_map(|s| Some((s.container.clone()?, s.service.clone())))
            .collect();
        self.streaming.retain(|name, task| {
            let keep = running.contains_key(name) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, service) in running {
            if self.streaming.contains_key(&name) {
                continue;
            }
            let (engine, tx) = (self.engine.clone(), self.tx.clone());
            let key = name.clone();
            let task = tokio::spawn(async move {
                let mut stream = std::pin::pin!(engine.stats_stream(&name));
                while let Some(Ok(sample)) = stream.next().await {
                    let update = Update::Sample(service.clone(), sample, Instant::now());
                    if tx.send(update).await.is_err() {
                        return;
                    }
                }
                let _ = tx.send(Update::Ended(service, name)).await;
            });
            self.streaming.insert(key, task);
        }
    }

    /// Forgets a stream that ended, so the next refresh starts a new one if it runs again.
    fn ended(&mut self, container: &str) {
        self.streaming.remove(container);
    }
}

pub async fn run(ctx: &mut Context, args: MonitorArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.services.services)?;
    let engine = ctx.engine().await?;
    let (tx, mut rx) = mpsc::channel(256);
    let events_tx = tx.clone();
    let mut events = Box::pin(engine.events(&project.name));
    tokio::spawn(async move {
        while let Some(Ok(e)) = events.next().await {
            if events_tx.send(Update::Event(e)).await.is_err() {
                break;
            }
        }
    });
    let mut feeds = Feeds {
        engine: engine.clone(),
        tx,
        streaming: HashMap::new(),
    };
    let mut state = MonitorState::default();
    refresh(&engine, &project, &selected, &mut state, &mut feeds).await?;
    let interactive = !args.once && !ctx.printer.is_json() && ctx.printer.stdout_is_tty();
    if interactive {
        return dashboard(
            &engine,
            &project,
            &selected,
            &mut state,
            &mut feeds,
            &mut rx,
            args.interval,
        )
        .await;
    }
    if args.once || !ctx.printer.is_json() {
        settle(&mut state, &mut feeds, &mut rx).await;
        refresh(&engine, &project, &selected, &mut state, &mut feeds).await?;
        print_snapshot(&ctx.printer, &state)?;
        return Ok(ExitStatus::Success);
    }
    stream_json(
        &engine,
        &project,
        &selected,
        &mut state,
        &mut feeds,
        &mut rx,
        args.interval,
        &ctx.printer,
    )
    .await
}

async fn refresh(
    engine: &Engine,
    project: &Project,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
) -> Result<()> {
    let snapshot = status::collect(engine, project, selected, Resources::Skip).await?;
    feeds.follow(&snapshot);
    state.status(snapshot, API_PROBE);
    Ok(())
}

fn apply(state: &mut MonitorState, feeds: &mut Feeds, update: Update) {
    match update {
        Update::Sample(service, sample, at) => state.sample(&service, sample, at),
        Update::Ended(service, container) => {
            state.stream_ended(&service);
            feeds.ended(&container);
        }
        Update::Event(e) => state.event(e),
    }
}

/// Waits until every running service has rates (two samples), or ONCE_WAIT.
async fn settle(state: &mut MonitorState, feeds: &mut Feeds, rx: &mut mpsc::Receiver<Update>) {
    let deadline = tokio::time::Instant::now() + ONCE_WAIT;
    loop {
        let running: Vec<String> = state
            .status
            .iter()
            .flat_map(|s| {
                s.services
                    .iter()
                    .filter(|s| s.state == "running")
                    .map(|s| s.service.clone())
            })
            .collect();
        if running.iter().all(|s| state.rates(s).is_some()) {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(update)) => apply(state, feeds, update),
            _ => return,
        }
    }
}

fn snapshot(state: &MonitorState) -> Result<Snapshot> {
    state
        .snapshot()
        .ok_or_else(|| CtlError::failure("no status from the engine yet"))
}

fn print_snapshot(printer: &Printer, state: &MonitorState) -> Result<()> {
    let snap = snapshot(state)?;
    if printer.is_json() {
        printer.json(&serde_json::to_value(&snap).context(|| "cannot encode the snapshot".into())?);
        return Ok(());
    }
    let rows = snap
        .services
        .iter()
        .map(|row| monitor::row_text(&row.status, row.rates))
        .collect();
    printer.table(&monitor::COLUMNS, rows);
    let lat = snap.api_latency;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    printer.info(&format!(
        "API probe: p50 {} p95 {} errors {}/{}",
        ms(lat.p50_ms),
        ms(lat.p95_ms),
        lat.errors,
        lat.probes
    ));
    for e in snap.events.iter().take(10) {
        printer.info(&format!("event {} {} {}", e.time, e.service, e.action));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn stream_json(
    engine: &Engine,
    project: &Project,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
    rx: &mut mpsc::Receiver<Update>,
    interval: Duration,
    printer: &Printer,
) -> Result<ExitStatus> {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = crate::signals::received() => return Ok(ExitStatus::Success),
            Some(update) = rx.recv() => apply(state, feeds, update),
            _ = tick.tick() => {
                refresh(engine, project, selected, state, feeds).await?;
                let line = serde_json::to_string(&snapshot(state)?).context(|| "cannot encode the snapshot".into())?;
                if printer.line_or_closed(&line) {
                    return Ok(ExitStatus::Success);
                }
            }
        }
    }
}

async fn dashboard(
    engine: &Engine,
    project: &Project,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
    rx: &mut mpsc::Receiver<Update>,
    interval: Duration,
) -> Result<ExitStatus> {
    // ratatui::init() also installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::init();
    let result = dashboard_loop(
        &mut terminal,
        engine,
        project,
        selected,
        state,
        feeds,
        rx,
        interval,
    )
    .await;
    ratatui::restore();
    result
}

#[allow(clippy::too_many_arguments)]
async fn dashboard_loop(
    terminal: &mut ratatui::DefaultTerminal,
    engine: &Engine,
    project: &Project,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
    rx: &mut mpsc::Receiver<Update>,
    interval: Duration,
) -> Result<ExitStatus> {
    let mut view = View::default();
    let mut tick = tokio::time::interval(interval);
    let mut keys = tokio::time::interval(Duration::from_millis(100));
    let draw = |terminal: &mut ratatui::DefaultTerminal, state: &MonitorState, view: &View| {
        terminal
            .draw(|f| tui::draw(f, state, view))
            .map(|_| ())
            .context(|| "cannot draw the dashboard".into())
    };
    loop {
        tokio::select! {
            Some(update) = rx.recv() => apply(state, feeds, update),
            _ = tick.tick() => {
                refresh(engine, project, selected, state, feeds).await?;
                draw(terminal, state, &view)?;
            }
            _ = keys.tick() => {
                let mut changed = false;
                while event::poll(Duration::ZERO).unwrap_or(false) {
                    let Ok(Key::Key(key)) = event::read() else { continue };
                    let rows = state.status.as_ref().map_or(0, |s| s.services.len());
                    match key.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(ExitStatus::Success),
                        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(ExitStatus::Success),
                        KeyCode::Down => view.selected = (view.selected + 1).min(rows.saturating_sub(1)),
                        KeyCode::Up => view.selected = view.selected.saturating_sub(1),
                        KeyCode::Char('s') => view.sort = view.sort.next(),
                        KeyCode::Char('l') => view.logs = match view.logs.take() {
                            Some(_) => None,
                            None => log_pane(engine, state, &view).await,
                        },
                        _ => continue,
                    }
                    changed = true;
                }
                if changed {
                    draw(terminal, state, &view)?;
                }
            }
        }
    }
}

async fn log_pane(engine: &Engine, state: &MonitorState, view: &View) -> Option<(String, Vec<String>)> {
    let service = tui::order(state, view.sort).get(view.selected)?.clone();
    let container = state
        .status
        .as_ref()?
        .services
        .iter()
        .find(|s| s.service == service)?
        .container
        .clone()?;
    let lines = engine
        .log_tail(&container, 30)
        .await
        .unwrap_or_else(|e| vec![e.what]);
    Some((service, lines))
}
