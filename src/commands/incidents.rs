//! `incidents`: the guard's reports (DESIGN §14), newest first; `incidents show ID` prints
//! one. A damaged report is named and skipped.

use crate::cli::{IncidentsArgs, IncidentsCommand};
use crate::commands::context::Context;
use crate::error::{CtlError, ExitStatus, Result};
use crate::guard::incident::{self, Incident};

pub fn run(ctx: &mut Context, args: IncidentsArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let (all, problems) = incident::list(&incident::dir(&project.dir));
    for p in &problems {
        ctx.printer.warn(p);
    }
    match args.command {
        None => list(ctx, &all),
        Some(IncidentsCommand::Show { id }) => show(ctx, &all, &id),
    }
}

fn list(ctx: &Context, all: &[Incident]) -> Result<ExitStatus> {
    if ctx.printer.is_json() {
        ctx.printer.json(&serde_json::json!(all));
        return Ok(ExitStatus::Success);
    }
    let rows = all
        .iter()
        .rev()
        .map(|i| {
            vec![
                i.id.clone(),
                i.service.clone(),
                i.outcome.replace('_', " "),
                i.detected.clone(),
                i.recovery_seconds.map_or("-".into(), |s| format!("{s:.1}s")),
            ]
        })
        .collect();
    ctx.printer
        .table(&["ID", "SERVICE", "OUTCOME", "DETECTED", "RECOVERED IN"], rows);
    Ok(ExitStatus::Success)
}

fn show(ctx: &Context, all: &[Incident], id: &str) -> Result<ExitStatus> {
    let Some(found) = all.iter().find(|i| i.id == id) else {
        return Err(
            CtlError::usage(format!("no incident {id:?}")).hint("`pricescan-ctl incidents` lists them")
        );
    };
    match ctx.printer.is_json() {
        true => ctx.printer.json(&serde_json::json!(found)),
        false => ctx.printer.result(&found.markdown()),
    }
    Ok(ExitStatus::Success)
}
