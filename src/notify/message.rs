//! The message every channel carries: what happened, where, and what to run next.

use serde::Serialize;
use std::time::Duration;

/// One attempt's deadline; a channel that hangs costs at most two of these plus a pause.
pub const DEADLINE: Duration = Duration::from_secs(10);
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
