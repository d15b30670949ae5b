//! `notify test`: one message to every configured channel (DESIGN §10). Exit 0 when all
//! accepted it, 1 naming each that failed and why, 2 when the channels are misconfigured.

use crate::cli::{NotifyArgs, NotifyCommand};
use crate::commands::context::Context;
use crate::error::{CtlError, ExitStatus, Result};
use crate::notify::{self, Event};
use crate::stack::notify::Channels;

pub async fn run(ctx: &mut Context, args: NotifyArgs) -> Result<ExitStatus> {
    match args.command {
        NotifyCommand::Test => test(ctx).await,
    }
}

async fn test(ctx: &mut Context) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let channels = Channels::from_env(&project.env)?;
    if channels.names().is_empty() {
        return Err(CtlError::usage("no notification channel is configured").hint(
            "set NOTIFY_WEBHOOK_URL, NOTIFY_SLACK_WEBHOOK_URL, NOTIFY_TEAMS_WEBHOOK_URL, NOTIFY_TELEGRAM_BOT_TOKEN or NOTIFY_SMTP_URL in .env.prod",
        ));
    }
    if !channels.enabled {
        ctx.printer
            .warn("NOTIFICATIONS_ENABLED is false: events are not sent; this test is sent anyway");
    }
    let event = Event::new(
        "test",
        &project.name,
        false,
        "a test message from `pricescan-ctl notify test`".into(),
        vec!["This channel works: pricescan-ctl will send its events here.".into()],
    );
    let results = notify::send(&channels, &event).await;
    if ctx.printer.is_json() {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|(name, r)| serde_json::json!({"channel": name, "ok": r.is_ok(), "error": r.as_ref().err()}))
            .collect();
        ctx.printer.json(&serde_json::json!(items));
    }
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|why| format!("{name}: {why}")))
        .collect();
    for (name, _) in results.iter().filter(|(_, r)| r.is_ok()) {
        ctx.printer.info(&format!("{name}: accepted"));
    }
    if failed.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let mut err = CtlError::failure(format!(
        "{} of {} channels did not accept the test message",
        failed.len(),
        results.len()
    ));
    for f in failed {
        err = err.cause(f);
    }
    Err(err.hint("check each channel's URL, token or credentials in .env.prod"))
}
