//! Bringing one service to its configuration: start what is stopped, recreate what drifted
//! (start-first behind Nginx for the API, stop-first for stateful services), leave what is
//! up to date alone, and wait for it to be ready.

use crate::deploy::nginx;
use crate::deploy::wait::{self, Goal, NotReady};
use crate::engine::{self, ContainerInfo, Engine, labels};
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::{Printer, ServiceBoard};
use crate::stack::Project;
use std::time::{Duration, Instant};

/// How many log lines a failure report shows.
pub const FAILURE_LOG_LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UpToDate,
    Started,
    Created,
    Recreated,
    Restarted,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Self::UpToDate => "up to date",
            Self::Started => "started",
            Self::Created => "created",
            Self::Recreated => "recreated",
            Self::Restarted => "restarted",
        }
    }
}

/// A service that did not come up, with what an operator needs to see.
#[derive(Debug, Clone)]
pub struct Failure {
    pub service: String,
    pub reason: String,
    pub health: Option<String>,
    pub logs: Vec<String>,
}

pub struct Converger<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub board: &'a ServiceBoard,
    pub timeout: Duration,
    /// How long the old API container keeps serving in-flight requests after the switch.
    pub drain: Duration,
    /// The project's containers when the operation began.
    pub containers: Vec<ContainerInfo>,
}

/// What to do with a service that is up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `start`: leave it alone.
    Start,
    /// `restart`: restart it anyway (and apply any change).
    Restart,
}

/// The container that stands for a service: the running one with the highest number, else
/// the newest stopped one.
pub fn current_container<'c>(containers: &'c [ContainerInfo], service: &str) -> Option<&'c ContainerInfo> {
    containers
        .iter()
        .filter(|c| c.service == service)
        .max_by_key(|c| (c.is_running(), c.number))
}

/// The running container of a service, or an error that says to start it.
pub fn running_container<'c>(containers: &'c [ContainerInfo], service: &str) -> Result<&'c ContainerInfo> {
    current_container(containers, service)
        .filter(|c| c.is_running())
        .ok_or_else(|| {
            CtlError::failure(format!("{service} is not running")).hint("start it with `pricescan-ctl start`")
        })
}

impl Converger<'_> {
    pub fn current(&self, service: &str) -> Option<&ContainerInfo> {
        current_container(&self.containers, service)
    }

    fn next_number(&self, service: &str) -> u32 {
        let numbers = self
            .containers
            .iter()
            .filter(|c| c.service == service)
            .map(|c| c.number);
        numbers.max().unwrap_or(0) + 1
    }

    /// Converges `service` and waits for `goal`. Errors that are not about the service
    /// itself (engine gone, bad config) come back as Err; a service that does not come up
    /// is an Ok(Err(Failure)).
    pub async fn converge(
        &self,
        service: &str,
        mode: Mode,
        goal: Option<Goal>,
    ) -> Result<std::result::Result<Action, Failure>> {
        let started = Instant::now();
        let desired_hash = self.project.config_hash(service)?;
        let image = self.project.service(service).image.clone().unwrap_or_default();
        let Some(image_id) = self.engine.image_id(&image).await? else {
            let via = self
                .project
                .image_variable(service)
                .map(|v| format!(" (set by {v})"))
                .unwrap_or_default();
            return Err(
                CtlError::failure(format!("image {image}{via} of {service} is not on this engine"))
                    .hint("run `pricescan-ctl setup` to pull it, or point the variable at a local image"),
            );
        };
        let current = self.current(service).cloned();
        let fresh = current.as_ref().is_some_and(|c| {
            c.labels.get(labels::CONFIG_HASH) == Some(&desired_hash) && c.image_id == image_id
        });
        let nginx = nginx::running_nginx(&self.containers).cloned();
        let start_first = crate::stack::rollout::is_start_first(self.project, service) && nginx.is_some();
        let outcome = match (&current, fresh, mode) {
            (Some(c), true, Mode::Start) if c.is_running() => Ok((c.name.clone(), Action::UpToDate)),
            (Some(c), _, _) if start_first && c.is_running() => self.start_first(service, c, goal).await?,
            (Some(c), true, Mode::Start) => self.or_failure(service, self.start_existing(c).await),
            (Some(c), fresh, mode) => {
                self.or_failure(service, self.stop_first(service, c, fresh, mode).await)
            }
            (None, _, _) => {
                let created = self.create(service, self.next_number(service)).await;
                self.or_failure(service, created.map(|n| (n, Action::Created)))
            }
        };
        let (name, action) = match outcome {
            Ok(done) => done,
            Err(failure) => return Ok(Err(failure)),
        };
        // Also for an up-to-date container: a running but unhealthy service is not "started".
        if let Some(Err(not_ready)) = match goal {
            Some(goal) => Some(self.wait(service, &name, goal).await?),
            None => None,
        } {
            return Ok(Err(self.failure(service, &name, not_ready).await));
        }
        self.remove_extras(service, &name).await?;
        if crate::stack::rollout::is_start_first(self.project, service) {
            // At rest the upstream names the service, which resolves to its one running
            // container for us and for docker-compose alike. A no-op when it already does.
            let changed = nginx::point_upstream(self.engine, self.project, nginx.as_ref(), service).await?;
            if !changed && action != Action::UpToDate {
                nginx::refresh(self.engine, nginx.as_ref()).await?;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        self.board
            .done(service, true, &format!("{} ({secs:.1}s)", action.word()));
        Ok(Ok(action))
    }

    async fn start_existing(&self, c: &ContainerInfo) -> Result<(String, Action)> {
        self.board.update(&c.service, "starting");
        self.engine.start(&c.id).await?;
        Ok((c.name.clone(), Action::Started))
    }

    async fn create(&self, service: &str, number: u32) -> Result<String> {
        self.board.update(service, "creating");
        let plan = engine::spec::plan(self.project, service, number, &[])?;
        let id = self.engine.create(&plan).await?;
        self.board.update(service, "starting");
        self.engine.start(&id).await?;
        Ok(plan.name)
    }

    /// Stateful services: stop, then start the same container (nothing changed) or a new one.
    async fn stop_first(
        &self,
        service: &str,
        c: &ContainerInfo,
        fresh: bool,
        mode: Mode,
    ) -> Result<(String, Action)> {
        self.board.update(service, "stopping");
        self.engine.stop(&c.id, self.grace(service)).await?;
        if fresh {
            self.engine.start(&c.id).await?;
            let action = if mode == Mode::Restart {
                Action::Restarted
            } else {
                Action::Started
            };
            return Ok((c.name.clone(), action));
        }
        // The old container stays, renamed, until its successor runs: one the engine refuses
        // to start (a bad option, a port taken) gives way to the old one again.
        let aside = format!("{}-replaced-{}", c.name, &c.id[..c.id.len().min(12)]);
        self.engine.rename(&c.id, &aside).await?;
        match self.create(service, c.number).await {
            Ok(name) => {
                self.engine.remove(&c.id).await?;
                Ok((name, Action::Recreated))
            }
            Err(e) => {
                self.put_back(c).await?;
                Err(e.cause(format!("{} runs again with its previous configuration", c.name)))
            }
        }
    }

    /// Removes a successor that could not start and starts the old container again.
    async fn put_back(&self, old: &ContainerInfo) -> Result<()> {
        if self.engine.inspect(&old.name).await.is_ok() {
            self.engine.remove(&old.name).await?;
        }
        self.engine.rename(&old.id, &old.name).await?;
        self.engine.start(&old.id).await
    }

    /// The API: a new container beside the old one; traffic moves once it is healthy; the old
    /// one drains, then goes. A new container that never gets healthy is removed and the old
    /// one keeps serving.
    async fn start_first(
        &self,
        service: &str,
        old: &ContainerInfo,
        goal: Option<Goal>,
    ) -> Result<std::result::Result<(String, Action), Failure>> {
        let name = match self.create(service, self.next_number(service)).await {
            Ok(name) => name,
            Err(e) => return Ok(Err(self.failure_from_error(service, e))),
        };
        if let Err(not_ready) = self.wait(service, &name, goal.unwrap_or(Goal::Ready)).await? {
            let mut failure = self.failure(service, &name, not_ready).await;
            self.engine.remove(&name).await?;
            failure.reason.push_str(&format!("; {} keeps serving", old.name));
            return Ok(Err(failure));
        }
        let nginx = nginx::running_nginx(&self.containers);
        self.board.update(service, "switching nginx");
        if let Err(e) = nginx::point_upstream(self.engine, self.project, nginx, &name).await {
            self.engine.remove(&name).await?;
            return Ok(Err(self.failure_from_error(service, e)));
        }
        self.board.update(service, &format!("draining {}", old.name));
        tokio::time::sleep(self.drain).await;
        self.engine.stop(&old.id, self.grace(service)).await?;
        self.engine.remove(&old.id).await?;
        Ok(Ok((name, Action::Recreated)))
    }

    /// Other running containers of the service (left by an interrupted rollout) go, now that
    /// `keep` serves. Stopped ones stay: a deploy keeps them for rollback.
    async fn remove_extras(&self, service: &str, keep: &str) -> Result<()> {
        let extras = self
            .containers
            .iter()
            .filter(|c| c.service == service && c.name != keep && c.is_running());
        for c in extras {
            self.engine.stop(&c.id, self.grace(service)).await?;
            self.engine.remove(&c.id).await?;
        }
        Ok(())
    }

    fn or_failure<T>(&self, service: &str, r: Result<T>) -> std::result::Result<T, Failure> {
        r.map_err(|e| self.failure_from_error(service, e))
    }

    fn grace(&self, service: &str) -> Option<Duration> {
        self.project
            .service(service)
            .stop_grace_period
            .as_ref()
            .map(|d| d.value)
    }

    async fn wait(&self, service: &str, name: &str, goal: Goal) -> Result<std::result::Result<(), NotReady>> {
        let board = self.board;
        let mut on_state = |state: &str| board.update(service, state);
        let result = wait::until(self.engine, name, goal, self.timeout, &mut on_state).await?;
        Ok(result.map(|_| ()))
    }

    async fn failure(&self, service: &str, name: &str, not_ready: NotReady) -> Failure {
        let logs = self
            .engine
            .log_tail(name, FAILURE_LOG_LINES)
            .await
            .unwrap_or_default();
        self.board.done(service, false, &not_ready.reason);
        Failure {
            service: service.to_string(),
            reason: not_ready.reason,
            health: not_ready.detail.last_health_output,
            logs,
        }
    }

    fn failure_from_error(&self, service: &str, e: CtlError) -> Failure {
        self.board.done(service, false, &e.what);
        let reason = std::iter::once(e.what)
            .chain(e.causes)
            .collect::<Vec<_>>()
            .join(": ");
        Failure {
            service: service.to_string(),
            reason,
            health: None,
            logs: Vec::new(),
        }
    }
}

/// Failure details on stderr, then exit 3 naming the services; the healthy ones stay up.
pub fn report(printer: &Printer, failures: &[Failure], total: usize) -> Result<ExitStatus> {
    for f in failures.iter().filter(|f| !f.reason.starts_with("not started")) {
        printer.service_failure(&f.service, &f.reason, f.health.as_deref(), &f.logs);
    }
    if failures.is_empty() {
        printer.info(&format!("{total} service(s) running"));
        return Ok(ExitStatus::Success);
    }
    let names: Vec<&str> = failures.iter().map(|f| f.service.as_str()).collect();
    Err(CtlError::new(
        ExitStatus::Degraded,
        format!(
            "{} of {total} service(s) are not running: {}",
            names.len(),
            names.join(", ")
        ),
    )
    .hint(format!(
        "see the output above, and `pricescan-ctl logs -s {}`",
        names[0]
    )))
}
