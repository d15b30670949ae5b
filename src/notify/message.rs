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

    /// The message as a Teams Workflows webhook takes it: an Adaptive Card in a message.
    pub fn adaptive_card(&self) -> serde_json::Value {
        let facts: Vec<serde_json::Value> = [
            ("Event", &self.event),
            ("Project", &self.project),
            ("Host", &self.host),
            ("Time", &self.time),
        ]
        .into_iter()
        .map(|(title, value)| serde_json::json!({ "title": title, "value": value }))
        .collect();
        let mut body = vec![
            serde_json::json!({
                "type": "TextBlock", "text": self.summary, "weight": "Bolder", "size": "Medium",
                "wrap": true, "color": if self.failure { "Attention" } else { "Good" },
            }),
            serde_json::json!({ "type": "FactSet", "facts": facts }),
        ];
        if !self.details.is_empty() {
            // Teams' TextBlock is Markdown: a blank line keeps each detail on its own line.
            let details = self.details.replace('\n', "\n\n");
            body.push(serde_json::json!({ "type": "TextBlock", "text": details, "wrap": true }));
        }
        serde_json::json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adaptive_card_carries_the_summary_the_facts_and_each_detail() {
        let e = Event::new(
            "backup.failed",
            "shop",
            true,
            "disk full".into(),
            vec!["a".into(), "b".into()],
        );
        let card = e.adaptive_card();
        let content = &card["attachments"][0]["content"];
        assert_eq!(
            card["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(content["type"], "AdaptiveCard");
        assert_eq!(content["body"][0]["text"], "disk full");
        assert_eq!(content["body"][0]["color"], "Attention");
        assert_eq!(content["body"][1]["facts"][0]["value"], "backup.failed");
        assert_eq!(content["body"][2]["text"], "a\n\nb");
    }
}
