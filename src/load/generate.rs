//! The load itself: an open model (requests started on a fixed schedule, latency counted
//! from the time each was due, so a slow server cannot hide its queue) or a closed one (N
//! clients on kept-alive connections). Answers are read to the end and dropped, so memory
//! stays flat however long the test runs.

use super::report::{Ending, Tally};
use super::spec::{LoadSpec, Model};
use crate::error::{CtlError, Result};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Requests in flight at most in the open model; beyond that the schedule waits, and the
/// wait counts in each request's latency.
const MAX_IN_FLIGHT: usize = 10_000;

/// What a run left: the counts, how long it ran, and whether `stop` cut it short.
pub struct Ran {
    pub tally: Tally,
    pub seconds: f64,
    pub interrupted: bool,
}

struct Shot {
    client: reqwest::Client,
    request: reqwest::Request,
}

impl Shot {
    fn new(spec: &LoadSpec, pool: usize) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| CtlError::failure("cannot make an HTTP client").cause(e))?;
        let method = reqwest::Method::from_bytes(spec.method.as_bytes())
            .map_err(|_| CtlError::usage(format!("unknown HTTP method {}", spec.method)))?;
        let mut builder = client.request(method, &spec.url);
        for (k, v) in &spec.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &spec.body {
            builder = builder.body(body.clone());
        }
        let request = builder
            .build()
            .map_err(|e| CtlError::usage(format!("cannot make a request of {}", spec.url)).cause(e))?;
        Ok(Shot { client, request })
    }

    async fn fire(&self) -> Ending {
        let Some(request) = self.request.try_clone() else {
            return Ending::Io;
        };
        match self.client.execute(request).await {
            Ok(mut answer) => {
                let status = answer.status().as_u16();
                loop {
                    match answer.chunk().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return Ending::Status(status),
                        Err(e) => return ending_of(&e),
                    }
                }
            }
            Err(e) => ending_of(&e),
        }
    }
}

fn ending_of(e: &reqwest::Error) -> Ending {
    if e.is_timeout() {
        Ending::Timeout
    } else if e.is_connect() {
        Ending::Connect
    } else {
        Ending::Io
    }
}

/// Runs the load for `spec.duration`, or until `stop` completes; `progress` sees the counts
/// once a second.
pub async fn run(
    spec: &LoadSpec,
    stop: impl Future<Output = ()>,
    progress: &mut dyn FnMut(&Tally, f64),
) -> Result<Ran> {
    let pool = match spec.model {
        Model::Concurrency(n) => n,
        Model::Rate(r) => (r.ceil() as usize).clamp(1, 1024),
    };
    let shot = Arc::new(Shot::new(spec, pool)?);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let end = started + spec.duration;
    let mut tasks = JoinSet::new();
    tokio::pin!(stop);
    let interrupted = {
        let drive = drive(spec.model, &shot, &tally, end, &mut tasks);
        tokio::pin!(drive);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut drive => break false,
                _ = &mut stop => break true,
                _ = tick.tick() => {
                    let now = lock(&tally).clone();
                    progress(&now, started.elapsed().as_secs_f64());
                }
            }
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if interrupted {
        tasks.abort_all();
    }
    // Requests still in flight at the end are answered (or time out) and counted.
    while tasks.join_next().await.is_some() {}
    let tally = lock(&tally).clone();
    Ok(Ran {
        tally,
        seconds,
        interrupted,
    })
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn drive(
    model: Model,
    shot: &Arc<Shot>,
    tally: &Arc<Mutex<Tally>>,
    end: Instant,
    tasks: &mut JoinSet<()>,
) {
    match model {
        Model::Concurrency(n) => {
            for _ in 0..n {
                let (shot, tally) = (shot.clone(), tally.clone());
                tasks.spawn(async move {
                    while Instant::now() < end {
                        let sent = Instant::now();
                        let ending = shot.fire().await;
                        lock(&tally).record(ending, sent.elapsed());
                    }
                });
            }
            tokio::time::sleep_until(end.into()).await;
        }
        Model::Rate(rate) => open(rate, shot, tally, end, tasks).await,
    }
}

async fn open(rate: f64, shot: &Arc<Shot>, tally: &Arc<Mutex<Tally>>, end: Instant, tasks: &mut JoinSet<()>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut schedule = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        let due = schedule.tick().await.into_std();
        if due >= end {
            return;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (shot, tally) = (shot.clone(), tally.clone());
        tasks.spawn(async move {
            let ending = shot.fire().await;
            lock(&tally).record(ending, due.elapsed());
            drop(slot);
        });
        // Finished requests leave the set as they go, so it holds only those in flight.
        while tasks.try_join_next().is_some() {}
    }
}
