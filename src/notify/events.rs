//! pricescan-ctl's own events (DESIGN §10): what happened, where, and what to run next, sent
//! to every configured channel. A channel that fails is a warning line and never changes
//! the command's exit code; a command stopped by a signal sends nothing.

use super::message::Event;
use super::send::send;
use crate::error::mask_text;
use crate::error::{CtlError, ExitStatus, Result};
use crate::output::Printer;
use crate::stack::Project;
use crate::stack::notify::{Channels, When};

/// Sends `event` if notifications are on and NOTIFY_ON lets it through.
pub async fn emit(project: &Project, printer: &Printer, event: Event) {
    let channels = match Channels::from_env(&project.env) {
        Ok(c) => c,
        Err(e) => {
            printer.warn(&format!("no notification was sent: {e}"));
            return;
        }
    };
    if !channels.enabled || (!event.failure && channels.when == When::Failure) {
        return;
    }
    // An error's causes can quote anything; no secret of .env.prod leaves in a message.
    let known = project.env.secret_values();
    let mut event = event;
    event.summary = mask_text(&event.summary, &known);
    event.details = mask_text(&event.details, &known);
    for (name, result) in send(&channels, &event).await {
        if let Err(why) = result {
            printer.warn(&format!("could not notify through {name}: {why}"));
        }
    }
}

/// A failure as an event: the error's message, causes and hint.
pub fn failed(kind: &str, project: &Project, err: &CtlError, next: &str) -> Event {
    let mut details: Vec<String> = err.causes.iter().map(|c| format!("cause: {c}")).collect();
    if let Some(hint) = &err.hint {
        details.push(format!("hint: {hint}"));
    }
    details.push(format!("next: {next}"));
    Event::new(kind, &project.name, true, err.what.clone(), details)
}

/// Whether an outcome is worth telling: a command stopped by a signal was stopped on purpose.
pub fn by_signal(result: &Result<ExitStatus>) -> bool {
    matches!(result, Err(e) if e.status.is_signal())
}
