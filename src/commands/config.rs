//! `config`: the resolved stack, secrets masked; `--services` lists names; `-q` validates.

use crate::cli::ConfigArgs;
use crate::commands::context::Context;
use crate::error::MASK;
use crate::error::{Context as _, ExitStatus, Result};
use crate::stack::Project;
use crate::stack::compose::ComposeFile;
use std::collections::BTreeSet;

pub fn run(ctx: &mut Context, args: ConfigArgs) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let selected = project.select(&args.select.services)?;
    crate::stack::offsite::Offsite::from_env(&project.env, &project.dir)?;
    crate::stack::notify::Channels::from_env(&project.env)?;
    if let Err(problem) = project.env.check_placeholders() {
        ctx.printer.warn(&format!("{problem}; start will refuse it"));
    }
    if ctx.printer.quiet {
        return Ok(ExitStatus::Success);
    }
    if args.list_services {
        let names = selected;
        match ctx.printer.is_json() {
            true => ctx.printer.json(&serde_json::json!(names)),
            false => ctx.printer.result(&names.join("\n")),
        }
        return Ok(ExitStatus::Success);
    }
    let resolved = resolved(&project, &selected)?;
    if ctx.printer.is_json() {
        let value = serde_json::to_value(&resolved).context(|| "cannot encode the configuration".into())?;
        ctx.printer.json(&value);
    } else {
        let text = crate::stack::compose::to_compose_text(&resolved)
            .context(|| "cannot encode the configuration".into())?;
        ctx.printer.result(&text);
    }
    Ok(ExitStatus::Success)
}

/// The selected services and what they depend on, with every secret-named variable masked.
/// The printer also scrubs secret values wherever else they appear (a command line, a URL).
fn resolved(project: &Project, selected: &[String]) -> Result<ComposeFile> {
    let shown: Vec<String> = project.start_waves(selected)?.concat();
    let mut file = project.file.clone();
    file.name = Some(project.name.clone());
    file.services.retain(|name, _| shown.contains(name));
    let networks: BTreeSet<String> = shown.iter().flat_map(|s| project.service_networks(s)).collect();
    file.networks.retain(|k, _| networks.contains(k));
    let volumes: BTreeSet<&String> = file
        .services
        .values()
        .flat_map(|s| &s.volumes)
        .filter_map(|m| m.source.as_ref())
        .collect();
    file.volumes.retain(|k, _| volumes.contains(k));
    for service in file.services.values_mut() {
        for (key, value) in service.environment.iter_mut() {
            if crate::error::is_secret_key(key) && value.is_some() {
                *value = Some(MASK.to_string());
            } else if let Some(v) = value.as_mut() {
                // A damaged .env.prod can run a secret's line into another value
                // (`USER=x<byte>SECRET=...`): what looks like a secret assignment is masked.
                // A damaged key can leave its secret in another value: whatever looks
                // generated is masked too.
                *v = crate::error::mask_random_tokens(&crate::error::mask_assignments(v));
            }
        }
    }
    Ok(file)
}
