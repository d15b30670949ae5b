//! `monitor`: a live dashboard of the stack. Stats arrive on one engine stream per container
//! (the engine pushes a sample a second; nothing is polled per tick), events on one event
//! stream, and a status snapshot with the API probe is taken once per interval.
//! `--once` or a non-terminal prints one snapshot; `--json` prints one document per interval.

use crate::cli::MonitorArgs;
use crate::commands::context::Context;
use crate::engine::{Engine, Event, Sample};
use crate::error::{Context as _, CtlError, ExitStatus, Result};
use crate::monitor::state::{self, MonitorState, Snapshot};
use crate::monitor::tui::{self, View};
use crate::output::Printer;
use crate::targets::context::{Engines, Stack};
use crate::targets::status::{self, NodeRef};
use futures_util::StreamExt;
use ratatui::crossterm::event::{self, Event as Key, KeyCode, KeyModifiers};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The endpoint whose latency the header shows: the API itself on one host, the API through
/// the first Nginx task on swarm (nothing else reaches it there).
fn is_api_probe(name: &str) -> bool {
    name == "api on :8000" || name.starts_with("api via nginx on ")
}
/// How long `--once` waits for two samples of every running container (rates need two).
const ONCE_WAIT: Duration = Duration::from_secs(4);

enum Update {
    Sample(String, Sample, Instant),
    /// The stats stream of (service, container) ended.
    Ended(String, String),
    Event(Event),
    /// A node's engine could not be reached (node, why): its tasks show no rates.
    Unreachable(String, String),
}

/// One stats stream per running container, tracked by container (oxker's way): a stream
/// that ended is forgotten so that a restarted container gets a new one, a container that
/// no longer runs has its stream aborted, and every stream is aborted on exit. Each stream
/// and one event stream per engine run on the engine of the container's node.
struct Feeds {
    engines: Engines,
    /// Each engine once reached, by `Engines::key`; None: unreachable, not tried again.
    reached: HashMap<String, Option<Engine>>,
    tx: mpsc::Sender<Update>,
    stats: HashMap<String, tokio::task::JoinHandle<()>>,
    events: Vec<tokio::task::JoinHandle<()>>,
    project: String,
}

impl Drop for Feeds {
    fn drop(&mut self) {
        for task in self.stats.values().chain(&self.events) {
            task.abort();
        }
    }
}

impl Feeds {
    async fn follow(&mut self, snapshot: &status::StackStatus) {
        let running: HashMap<&str, &status::ServiceStatus> = snapshot
            .services
            .iter()
            .filter(|s| s.state == "running")
            .filter_map(|s| Some((s.container.as_deref()?, s)))
            .collect();
        self.stats.retain(|name, task| {
            let keep = running.contains_key(name.as_str()) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, row) in running {
            if self.stats.contains_key(name) {
                continue;
            }
            let Some(engine) = self.engine_for(row.node.as_ref()).await else {
                continue;
            };
            let (tx, service, name) = (self.tx.clone(), row.service.clone(), name.to_string());
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
            self.stats.insert(key, task);
        }
    }

    /// The engine of `node`, reached once; its event stream starts when it is first reached.
    async fn engine_for(&mut self, node: Option<&NodeRef>) -> Option<Engine> {
        let key = self.engines.key(node.map(|n| n.id.as_str()));
        if let Some(known) = self.reached.get(&key) {
            return known.clone();
        }
        let reached = match self.engines.of(node.map(|n| n.id.as_str())).await {
            Ok(engine) => {
                self.events
                    .push(follow_events(&engine, &self.project, self.tx.clone()));
                Some(engine)
            }
            Err(e) => {
                let who = node.map_or_else(|| "this engine".to_string(), |n| n.hostname.clone());
                let _ = self.tx.try_send(Update::Unreachable(who, e.what));
                None
            }
        };
        self.reached.insert(key, reached.clone());
        reached
    }

    /// Forgets a stream that ended, so the next refresh starts a new one if it runs again.
    fn ended(&mut self, container: &str) {
        self.stats.remove(container);
    }
}

fn follow_events(engine: &Engine, project: &str, tx: mpsc::Sender<Update>) -> tokio::task::JoinHandle<()> {
    let mut events = Box::pin(engine.events(project, None));
    tokio::spawn(async move {
        while let Some(Ok(e)) = events.next().await {
            if tx.send(Update::Event(e)).await.is_err() {
                break;
            }
        }
    })
}

pub async fn run(ctx: &mut Context, args: MonitorArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.services.services)?;
    let engine = ctx.engine().await?;
    let stack = ctx.stack(&engine, &project)?;
    let (tx, mut rx) = mpsc::channel(256);
    let mut feeds = Feeds {
        engines: stack.engines().await?,
        reached: HashMap::new(),
        tx,
        stats: HashMap::new(),
        events: Vec::new(),
        project: project.name.clone(),
    };
    // This engine's events from the start, even before any of its containers runs.
    feeds.engine_for(None).await;
    let mut state = MonitorState::default();
    refresh(&stack, &selected, &mut state, &mut feeds).await?;
    let interactive = !args.once && !ctx.printer.is_json() && ctx.printer.stdout_is_tty();
    if interactive {
        return dashboard(&stack, &selected, &mut state, &mut feeds, &mut rx, args.interval).await;
    }
    if args.once || !ctx.printer.is_json() {
        settle(&mut state, &mut feeds, &mut rx).await;
        refresh(&stack, &selected, &mut state, &mut feeds).await?;
        print_snapshot(&ctx.printer, &state)?;
        return Ok(ExitStatus::Success);
    }
    stream_json(&stack, &selected, &mut state, &mut feeds, &mut rx, args.interval).await
}

async fn refresh(
    stack: &Stack<'_>,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
) -> Result<()> {
    let snapshot = stack.monitor_rows(selected).await?;
    feeds.follow(&snapshot).await;
    state.status(snapshot, is_api_probe);
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
        Update::Unreachable(node, why) => state.note(&node, &format!("unreachable: {why}")),
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
        .map(|row| state::row_text(&row.status, row.rates))
        .collect();
    printer.table(&state::COLUMNS, rows);
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

async fn stream_json(
    stack: &Stack<'_>,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
    rx: &mut mpsc::Receiver<Update>,
    interval: Duration,
) -> Result<ExitStatus> {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = crate::sys::signals::received() => return Ok(ExitStatus::Success),
            Some(update) = rx.recv() => apply(state, feeds, update),
            _ = tick.tick() => {
                refresh(stack, selected, state, feeds).await?;
                let line = serde_json::to_string(&snapshot(state)?).context(|| "cannot encode the snapshot".into())?;
                if stack.printer.line_or_closed(&line) {
                    return Ok(ExitStatus::Success);
                }
            }
        }
    }
}

async fn dashboard(
    stack: &Stack<'_>,
    selected: &[String],
    state: &mut MonitorState,
    feeds: &mut Feeds,
    rx: &mut mpsc::Receiver<Update>,
    interval: Duration,
) -> Result<ExitStatus> {
    let mut terminal = stack.printer.full_screen();
    let result = dashboard_loop(&mut terminal, stack, selected, state, feeds, rx, interval).await;
    stack.printer.leave_full_screen();
    result
}

#[allow(clippy::too_many_arguments)]
async fn dashboard_loop(
    terminal: &mut ratatui::DefaultTerminal,
    stack: &Stack<'_>,
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
                refresh(stack, selected, state, feeds).await?;
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
                            None => log_pane(feeds, state, &view).await,
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

/// The selected row's last log lines, read on the engine of its node.
async fn log_pane(feeds: &mut Feeds, state: &MonitorState, view: &View) -> Option<(String, Vec<String>)> {
    let service = tui::order(state, view.sort).get(view.selected)?.clone();
    let row = state
        .status
        .as_ref()?
        .services
        .iter()
        .find(|s| s.service == service)?
        .clone();
    let container = row.container.clone()?;
    let lines = match feeds.engine_for(row.node.as_ref()).await {
        Some(engine) => engine
            .log_tail(&container, 30)
            .await
            .unwrap_or_else(|e| vec![e.what]),
        None => vec!["this node's engine cannot be reached".to_string()],
    };
    Some((service, lines))
}
