//! Waiting for a container to be ready (healthy, or running without a health check) or to
//! complete, and explaining why it did not.

use crate::engine::{ContainerDetail, Engine};
use crate::error::Result;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(250);

/// `after` from now, saturating: a deadline too far to count is simply never reached.
pub fn deadline(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(crate::stack::units::MAX_DURATION))
        .unwrap_or(now)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Running, and healthy if it has a health check.
    Ready,
    /// Exited with code 0 (`service_completed_successfully`).
    Completed,
}

/// Why a service did not reach its goal.
#[derive(Debug, Clone)]
pub struct NotReady {
    pub reason: String,
    pub detail: ContainerDetail,
}

/// Polls the container until it reaches `goal`, fails, or `timeout` passes. `on_state`
/// hears each new state ("starting", "healthy"...) for the progress display.
pub async fn until(
    engine: &Engine,
    id: &str,
    goal: Goal,
    timeout: Duration,
    on_state: &mut (dyn FnMut(&str) + Send),
) -> Result<std::result::Result<ContainerDetail, NotReady>> {
    let deadline = deadline(timeout);
    let mut last = String::new();
    loop {
        let detail = engine.inspect(id).await?;
        let state = detail
            .health
            .clone()
            .filter(|_| detail.running)
            .unwrap_or_else(|| detail.status.clone());
        if state != last {
            on_state(&state);
            last = state;
        }
        if let Some(verdict) = judge(&detail, goal) {
            return Ok(verdict
                .map(|_| detail.clone())
                .map_err(|reason| NotReady { reason, detail }));
        }
        if Instant::now() >= deadline {
            let reason = format!(
                "not ready after {} (state: {last})",
                humantime::format_duration(timeout)
            );
            return Ok(Err(NotReady { reason, detail }));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Some(Ok) when done, Some(Err(reason)) when it failed for good, None to keep waiting.
fn judge(d: &ContainerDetail, goal: Goal) -> Option<std::result::Result<(), String>> {
    let exited = !d.running && (d.status == "exited" || d.status == "dead");
    match goal {
        Goal::Completed if exited && d.exit_code == 0 => Some(Ok(())),
        Goal::Completed if exited => Some(Err(format!("exited with code {}", d.exit_code))),
        Goal::Completed => None,
        Goal::Ready if d.is_ready() => Some(Ok(())),
        Goal::Ready if d.oom_killed => Some(Err("killed: out of memory".into())),
        Goal::Ready if exited => Some(Err(format!("exited with code {}", d.exit_code))),
        Goal::Ready if d.running && d.health.as_deref() == Some("unhealthy") => {
            Some(Err("its health check failed".into()))
        }
        Goal::Ready => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(status: &str, running: bool, health: Option<&str>, code: i64) -> ContainerDetail {
        ContainerDetail {
            status: status.into(),
            running,
            health: health.map(str::to_string),
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn readiness_verdicts() {
        assert_eq!(
            judge(&detail("running", true, Some("healthy"), 0), Goal::Ready),
            Some(Ok(()))
        );
        assert_eq!(
            judge(&detail("running", true, None, 0), Goal::Ready),
            Some(Ok(()))
        );
        assert_eq!(
            judge(&detail("running", true, Some("starting"), 0), Goal::Ready),
            None
        );
        assert!(matches!(
            judge(&detail("running", true, Some("unhealthy"), 0), Goal::Ready),
            Some(Err(_))
        ));
        assert!(matches!(
            judge(&detail("exited", false, None, 1), Goal::Ready),
            Some(Err(_))
        ));
        assert_eq!(judge(&detail("restarting", false, None, 1), Goal::Ready), None);
    }

    #[test]
    fn completion_verdicts() {
        assert_eq!(
            judge(&detail("exited", false, None, 0), Goal::Completed),
            Some(Ok(()))
        );
        assert!(matches!(
            judge(&detail("exited", false, None, 2), Goal::Completed),
            Some(Err(_))
        ));
        assert_eq!(judge(&detail("running", true, None, 0), Goal::Completed), None);
    }
}
