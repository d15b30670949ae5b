//! `doctor`: every check of DESIGN §12 at once, one line each with its fix; exit 1 on any
//! fail. Read-only: it takes no lock and changes nothing.

use crate::commands::context::Context;
use crate::doctor::{self, Level};
use crate::error::{ExitStatus, Result};
use crate::output::Style;

pub async fn run(ctx: &mut Context) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let engine = ctx.engine().await?;
    ctx.stack(&engine, &project)?.host_only(
        "doctor",
        "run it on each server of a single-host stack; on swarm, `pricescan-ctl status` shows nodes and tasks",
    )?;
    let found = doctor::examine(&engine, &project).await;
    let count = |l: Level| found.iter().filter(|f| f.status == l).count();
    let (fails, warns) = (count(Level::Fail), count(Level::Warn));
    if ctx.printer.is_json() {
        let value = serde_json::json!({
            "project": project.name,
            "ok": fails == 0,
            "fails": fails,
            "warnings": warns,
            "checks": found,
        });
        ctx.printer.json(&value);
    } else {
        for f in &found {
            let (style, word) = match f.status {
                Level::Ok => (Style::Ok, "ok"),
                Level::Warn => (Style::Warn, "warn"),
                Level::Fail => (Style::Bad, "FAIL"),
            };
            ctx.printer
                .finding(style, word, f.check, &f.message, f.fix.as_deref());
        }
        ctx.printer.result(&format!(
            "{} checks: {fails} failed, {warns} warnings",
            found.len()
        ));
    }
    Ok(match fails {
        0 => ExitStatus::Success,
        _ => ExitStatus::Failure,
    })
}
