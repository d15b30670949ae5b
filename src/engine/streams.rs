//! Long-lived engine streams: container logs, resource stats and engine events.

use super::client::Engine;
use super::containers::Sample;
use super::errors::engine_error;
use super::labels;
use crate::error::Result;
use bollard::container::LogOutput;
use bollard::query_parameters::{EventsOptionsBuilder, LogsOptionsBuilder, StatsOptionsBuilder};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;

/// Which output of the container a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    Stdout,
    Stderr,
}

/// What to ask the engine for. Timestamps are always requested: they order lines of
/// several containers and drop duplicates after a reconnect.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub follow: bool,
    pub tail: Option<u64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// An engine event about one of the project's containers.
#[derive(Debug, Clone)]
pub struct Event {
    pub time_nanos: i64,
    pub action: String,
    pub container: String,
    pub service: String,
}

fn log_options(q: &LogQuery) -> bollard::query_parameters::LogsOptions {
    let mut options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .follow(q.follow);
    options = options.tail(&q.tail.map_or_else(|| "all".to_string(), |n| n.to_string()));
    if let Some(since) = q.since {
        options = options.since(since.clamp(0, i32::MAX as i64) as i32);
    }
    if let Some(until) = q.until {
        options = options.until(until.clamp(0, i32::MAX as i64) as i32);
    }
    options.build()
}

fn chunk(
    item: std::result::Result<LogOutput, bollard::errors::Error>,
    what: &str,
) -> Result<(Output, Bytes)> {
    match item {
        Ok(LogOutput::StdErr { message }) => Ok((Output::Stderr, message)),
        Ok(other) => Ok((Output::Stdout, other.into_bytes())),
        Err(e) => Err(engine_error(what, e)),
    }
}

/// Where a log is read from: a container on this engine, or a swarm task on any node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogSource {
    Container(String),
    Task(String),
}

impl Engine {
    pub fn source_log_chunks(
        &self,
        source: &LogSource,
        q: &LogQuery,
    ) -> futures_util::stream::BoxStream<'static, Result<(Output, Bytes)>> {
        match source {
            LogSource::Container(id) => self.log_chunks(id, q).boxed(),
            LogSource::Task(id) => self.task_log_chunks(id, q).boxed(),
        }
    }

    /// A container's log as raw chunks; a chunk may hold part of a line, or several.
    pub fn log_chunks(&self, id: &str, q: &LogQuery) -> impl Stream<Item = Result<(Output, Bytes)>> + use<> {
        let what = format!("cannot read the logs of {id}");
        let stream = self.docker.logs(id, Some(log_options(q)));
        stream.map(move |item| chunk(item, &what))
    }

    /// A swarm task's log, read through the manager from whichever node runs it.
    pub fn task_log_chunks(
        &self,
        id: &str,
        q: &LogQuery,
    ) -> impl Stream<Item = Result<(Output, Bytes)>> + use<> {
        let what = format!("cannot read the logs of task {id}");
        let stream = self.docker.task_logs(id, Some(log_options(q)));
        stream.map(move |item| chunk(item, &what))
    }

    /// The last `lines` lines of a swarm task's log (through a manager), without timestamps.
    pub async fn task_log_tail(&self, id: &str, lines: u64) -> Result<Vec<String>> {
        let mut stream = self.docker.task_logs(
            id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .tail(&lines.to_string())
                    .build(),
            ),
        );
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            let (_, bytes) = chunk(item, &format!("cannot read the logs of task {id}"))?;
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Stats pushed by the engine once a second, for as long as the container runs.
    pub fn stats_stream(&self, id: &str) -> impl Stream<Item = Result<Sample>> + use<> {
        let options = StatsOptionsBuilder::default().stream(true).build();
        let what = format!("cannot read stats of {id}");
        self.docker
            .stats(id, Some(options))
            .map(move |item| item.map(Sample::from).map_err(|e| engine_error(&what, e)))
    }

    /// Events of the project's containers (die, oom, restart, health_status, start...), from
    /// `since` (Unix nanos) when given: the engine replays what it still holds, so a watcher
    /// that lost its connection misses nothing the engine remembers.
    pub fn events(&self, project: &str, since: Option<i64>) -> impl Stream<Item = Result<Event>> + use<> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                vec![format!("{}={project}", labels::PROJECT)],
            ),
        ]);
        let mut options = EventsOptionsBuilder::default().filters(&filters);
        if let Some(nanos) = since {
            let at = format!(
                "{}.{:09}",
                nanos.div_euclid(1_000_000_000),
                nanos.rem_euclid(1_000_000_000)
            );
            options = options.since(&at);
        }
        self.docker.events(Some(options.build())).map(|item| {
            let e = item.map_err(|e| engine_error("the engine's event stream failed", e))?;
            let actor = e.actor.unwrap_or_default();
            let attrs = actor.attributes.unwrap_or_default();
            Ok(Event {
                time_nanos: e.time_nano.unwrap_or(0),
                action: e.action.unwrap_or_default(),
                container: attrs
                    .get("name")
                    .cloned()
                    .unwrap_or_else(|| actor.id.unwrap_or_default()),
                service: attrs.get(labels::SERVICE).cloned().unwrap_or_default(),
            })
        })
    }
}
