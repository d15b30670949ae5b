//! Sending one event to every configured channel (DESIGN §10): concurrently, each with a
//! deadline and one retry. The result names each channel and why it failed, in words that
//! never carry a channel's URL, token or password.

mod http;
mod mail;

use crate::stack::notify::Channels;
use serde::Serialize;
use std::time::Duration;

/// One attempt's deadline; a channel that hangs costs at most two of these plus a pause.
const DEADLINE: Duration = Duration::from_secs(10);
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What happened, where, and what to run next.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: String,
    pub project: String,
    pub host: String,
    pub time: String,
    pub summary: String,
    pub details: String,
    #[serde(skip)]
    pub failure: bool,
}

impl Event {
    pub fn new(event: &str, project: &str, failure: bool, summary: String, details: Vec<String>) -> Self {
        Self {
            event: event.to_string(),
            project: project.to_string(),
            host: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "unknown".into()),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            summary,
            details: details.join("\n"),
            failure,
        }
    }

    /// The message's text for chat and mail channels.
    pub fn text(&self) -> String {
        let mut text = format!(
            "[{}] {} on {}: {}",
            self.project, self.event, self.host, self.summary
        );
        if !self.details.is_empty() {
            text.push_str("\n\n");
            text.push_str(&self.details);
        }
        text.push_str(&format!("\n\n{}", self.time));
        text
    }
}

/// Each configured channel's outcome, in a stable order.
pub async fn send(channels: &Channels, event: &Event) -> Vec<(&'static str, Result<(), String>)> {
    let client = http::client();
    let mut jobs: Vec<(
        &'static str,
        futures_util::future::BoxFuture<'_, Result<(), String>>,
    )> = Vec::new();
    if let Some(url) = &channels.webhook {
        jobs.push((
            "webhook",
            Box::pin(retried(|| http::webhook(&client, url, event))),
        ));
    }
    if let Some(url) = &channels.slack {
        jobs.push(("slack", Box::pin(retried(|| http::slack(&client, url, event)))));
    }
    if let Some(t) = &channels.telegram {
        jobs.push((
            "telegram",
            Box::pin(retried(|| http::telegram(&client, t, event))),
        ));
    }
    if let Some(smtp) = &channels.smtp {
        jobs.push(("email", Box::pin(retried(|| mail::send(smtp, event)))));
    }
    let (names, futures): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
    names
        .into_iter()
        .zip(futures_util::future::join_all(futures).await)
        .collect()
}

/// Two attempts, each under the deadline.
async fn retried<F, Fut>(attempt: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut last = String::new();
    for n in 0..2 {
        if n > 0 {
            tokio::time::sleep(RETRY_AFTER).await;
        }
        match tokio::time::timeout(DEADLINE, attempt()).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {}s", DEADLINE.as_secs()),
        }
    }
    Err(format!("{last} (tried twice)"))
}
