//! `logs`: the selected services' logs interleaved by time, each line prefixed with its
//! service. `--follow` keeps going across restarts and recreations. Memory stays constant:
//! lines stream from the engine to stdout, one buffered line per container at most.

use crate::cli::LogsArgs;
use crate::commands::context::Context;
use crate::engine::loglines::{Assembler, LogLine};
use crate::engine::{Engine, LogQuery, LogSource};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::LogWriter;
use crate::targets::TargetKind;
use crate::targets::seam::log_sources;
use futures_util::StreamExt;
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// Batches in flight per container: enough to keep the pipe full, small enough to stay flat.
const CHANNEL_LINES: usize = 16;

/// What travels from a container's reader to the writer: lines in batches (one channel
/// message per burst, not per line), or a note.
enum Item {
    Lines(Arc<str>, Vec<LogLine>),
    Note(String, String),
}

/// Chunks taken from the engine at once when they are already there.
const BATCH: usize = 512;

pub async fn run(ctx: &mut Context, args: LogsArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let services = project.select(&args.services.services)?;
    let grep = args
        .grep
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|e| CtlError::usage("invalid --grep expression").cause(e))?;
    let query = LogQuery {
        follow: args.follow,
        tail: args.tail,
        since: args
            .since
            .as_deref()
            .map(|t| parse_time(t, "--since"))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t, "--until"))
            .transpose()?,
    };
    let engine = ctx.engine().await?;
    let kind = ctx.stack(&engine, &project)?.kind;
    let mut writer = ctx
        .printer
        .log_writer(&services, !args.no_prefix, args.timestamps);
    let (tx, rx) = mpsc::channel(CHANNEL_LINES);
    let work = async {
        match args.follow {
            true => {
                for service in &services {
                    let (engine, tx, q) = (engine.clone(), tx.clone(), query.clone());
                    let (project_name, service) = (project.name.clone(), service.clone());
                    tokio::spawn(async move { follow(engine, project_name, kind, service, q, tx).await });
                }
                drop(tx);
                write_all(rx, &mut writer, grep.as_ref()).await
            }
            false => {
                merged(
                    &engine,
                    (&project.name, kind),
                    &services,
                    &query,
                    &mut writer,
                    grep.as_ref(),
                )
                .await
            }
        }
    };
    let outcome = tokio::select! {
        biased;
        _ = crate::sys::signals::received() => Ok(()),
        r = work => r,
    };
    let flushed = writer.flush();
    match outcome.and(flushed.map_err(|e| CtlError::failure("cannot write the logs").cause(e))) {
        Ok(()) => Ok(ExitStatus::Success),
        Err(e) if e.causes.iter().any(|c| c.contains("Broken pipe")) => Ok(ExitStatus::Success),
        Err(e) => Err(e),
    }
}

/// `10m`, `2h` (that long ago) or an RFC 3339 time, as Unix seconds.
fn parse_time(text: &str, flag: &str) -> Result<i64> {
    match crate::stack::units::parse_human_duration(text) {
        // Bounded to 100 years, so the subtraction cannot overflow.
        Ok(d) => return Ok(chrono::Utc::now().timestamp() - d.as_secs() as i64),
        Err(e) if e.contains("limit") => {
            return Err(CtlError::usage(format!("invalid {flag}: {e}")));
        }
        Err(_) => {}
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|_| {
            CtlError::usage(format!("invalid {flag} {text:?}"))
                .hint("use a duration (10m, 2h) or an RFC 3339 time")
        })
}

fn write_err(e: std::io::Error) -> CtlError {
    CtlError::failure("cannot write the logs").cause(e)
}

fn emit(writer: &mut LogWriter, grep: Option<&Regex>, service: &str, line: &LogLine) -> Result<()> {
    if grep.is_none_or(|re| re.is_match(&line.text)) {
        writer.line(service, &line.stamp, &line.text).map_err(write_err)?;
    }
    Ok(())
}

/// Streams one container into `tx`, skipping lines at or before `after` (nanos).
async fn pump(
    engine: &Engine,
    source: &LogSource,
    query: &LogQuery,
    after: i64,
    service: &str,
    tx: &mpsc::Sender<Item>,
) -> Result<i64> {
    let service: Arc<str> = Arc::from(service);
    let mut last = after;
    let mut assembler = Assembler::default();
    let mut stream = std::pin::pin!(engine.source_log_chunks(source, query).ready_chunks(BATCH));
    let mut batch = Vec::new();
    while let Some(chunks) = stream.next().await {
        for chunk in chunks {
            let (output, bytes) = chunk?;
            assembler.push(output, &bytes, &mut |l| {
                // Against `after`, not the newest time seen: the engine stamps stdout and
                // stderr in separate copiers, so a log's times are not always in order.
                if l.nanos > after || l.nanos == 0 {
                    last = last.max(l.nanos);
                    batch.push(l);
                }
            });
        }
        if !batch.is_empty()
            && tx
                .send(Item::Lines(service.clone(), std::mem::take(&mut batch)))
                .await
                .is_err()
        {
            return Ok(last);
        }
    }
    assembler.finish(&mut |l| batch.push(l));
    if !batch.is_empty() {
        let _ = tx.send(Item::Lines(service, batch)).await;
    }
    Ok(last)
}

/// Without --follow: each source's lines (a container, or every task of a swarm service)
/// in its own channel, merged by time.
async fn merged(
    engine: &Engine,
    (project, kind): (&str, TargetKind),
    services: &[String],
    query: &LogQuery,
    writer: &mut LogWriter,
    grep: Option<&Regex>,
) -> Result<()> {
    let mut sources = Vec::new();
    for service in services {
        for log in log_sources(engine, project, kind, service, false).await? {
            let (tx, rx) = mpsc::channel(CHANNEL_LINES);
            let (engine, q) = (engine.clone(), query.clone());
            let task =
                tokio::spawn(async move { pump(&engine, &log.source, &q, i64::MIN, &log.label, &tx).await });
            sources.push((rx, task));
        }
    }
    let mut heads: Vec<(Arc<str>, std::collections::VecDeque<LogLine>)> = Vec::with_capacity(sources.len());
    for (rx, _) in sources.iter_mut() {
        heads.push(
            next_batch(rx)
                .await
                .unwrap_or_else(|| (Arc::from(""), Default::default())),
        );
    }
    loop {
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, (_, q))| q.front().map(|l| (l.nanos, i)))
            .min();
        let Some((_, i)) = next else { break };
        let line = heads[i].1.pop_front().expect("a head was just found");
        emit(writer, grep, &heads[i].0, &line)?;
        if heads[i].1.is_empty()
            && let Some(batch) = next_batch(&mut sources[i].0).await
        {
            heads[i] = batch;
        }
    }
    for (_, task) in sources {
        task.await
            .map_err(|e| CtlError::failure("a log reader stopped").cause(e))??;
    }
    Ok(())
}

async fn next_batch(
    rx: &mut mpsc::Receiver<Item>,
) -> Option<(Arc<str>, std::collections::VecDeque<LogLine>)> {
    loop {
        match rx.recv().await? {
            Item::Lines(s, lines) => return Some((s, lines.into())),
            Item::Note(..) => continue,
        }
    }
}

async fn write_all(mut rx: mpsc::Receiver<Item>, writer: &mut LogWriter, grep: Option<&Regex>) -> Result<()> {
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            _ = check.tick() => match writer.reader_gone() {
                true => return Ok(()),
                false => continue,
            },
        };
        let Some(item) = item else { return Ok(()) };
        match item {
            Item::Lines(service, lines) => {
                for line in &lines {
                    emit(writer, grep, &service, line)?;
                }
            }
            Item::Note(service, text) => writer.note(&service, &text).map_err(write_err)?,
        }
        // Flush when nothing else is waiting, so a quiet stream still shows up at once.
        if rx.is_empty() {
            writer.flush().map_err(write_err)?;
        }
    }
}

/// A followed container: whether its stream is open, and the time of its last line.
struct Followed {
    open: Arc<AtomicBool>,
    last: Arc<AtomicI64>,
}

/// Follows a service for as long as the command runs: every running container of it, so a
/// start-first replacement shows up while the old one still drains, and a restarted
/// container is picked up again from its last line.
async fn follow(
    engine: Engine,
    project: String,
    kind: TargetKind,
    service: String,
    query: LogQuery,
    tx: mpsc::Sender<Item>,
) -> Result<()> {
    let mut followed: HashMap<LogSource, Followed> = HashMap::new();
    let mut first = true;
    while !tx.is_closed() {
        let mut wanted = log_sources(&engine, &project, kind, &service, true).await?;
        if first && wanted.is_empty() {
            // The current container even when stopped: its last lines are what one wants.
            wanted = log_sources(&engine, &project, kind, &service, false).await?;
        }
        for log in wanted {
            let (q, after) = match followed.get(&log.source) {
                Some(f) if f.open.load(Ordering::Relaxed) => continue,
                Some(f) => {
                    // Reattaching to a restarted container: from its last line on.
                    let last = f.last.load(Ordering::Relaxed);
                    (
                        LogQuery {
                            tail: None,
                            since: Some(last.div_euclid(1_000_000_000)),
                            ..query.clone()
                        },
                        last,
                    )
                }
                None if first => (query.clone(), i64::MIN),
                None => {
                    let note = format!("now following {}", log.name);
                    if tx.send(Item::Note(service.clone(), note)).await.is_err() {
                        return Ok(());
                    }
                    (
                        LogQuery {
                            tail: None,
                            since: None,
                            ..query.clone()
                        },
                        i64::MIN,
                    )
                }
            };
            let f = followed.entry(log.source.clone()).or_insert_with(|| Followed {
                open: Arc::new(AtomicBool::new(true)),
                last: Arc::new(AtomicI64::new(i64::MIN)),
            });
            f.open.store(true, Ordering::Relaxed);
            let (open, last) = (f.open.clone(), f.last.clone());
            let (engine, tx) = (engine.clone(), tx.clone());
            tokio::spawn(async move {
                let end = pump(&engine, &log.source, &q, after, &log.label, &tx)
                    .await
                    .unwrap_or(after);
                last.store(end, Ordering::Relaxed);
                open.store(false, Ordering::Relaxed);
            });
        }
        first = false;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
