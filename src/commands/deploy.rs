//! `deploy`, `deploy history` and `deploy rollback`: a new API release without downtime,
//! undone by itself when it fails (exit 4), recorded in `.pricescan/releases.jsonl`.

use crate::backup::catalog::{Reason, parts};
use crate::backup::take;
use crate::cli::{DeployArgs, DeployCommand};
use crate::commands::context::Context;
use crate::deploy::canary::{self, Canary};
use crate::deploy::release::{self, API_SERVICE, Release};
use crate::deploy::rollout::{self, Plan};
use crate::error::{Context as _, CtlError, ExitStatus, Result};
use crate::notify::Event;
use crate::notify::events;
use crate::stack::Project;
use crate::targets::{Stack, seam};

pub async fn run(ctx: &mut Context, args: DeployArgs) -> Result<ExitStatus> {
    match args.command {
        Some(DeployCommand::History { limit }) => history(ctx, limit),
        Some(DeployCommand::Rollback { release: target }) => {
            let project = ctx.project()?;
            let target = rollback_target(ctx, &project, target.as_deref())?;
            let deploy = DeployArgs {
                command: None,
                image: Some(target.image.clone()),
                no_backup: true,
                ..args
            };
            let result = release(ctx, project.clone(), deploy, "rollback").await;
            tell(ctx, &project, "rollback", &result).await;
            result
        }
        None => {
            let project = ctx.project()?;
            let result = release(ctx, project.clone(), args, "deploy").await;
            tell(ctx, &project, "deploy", &result).await;
            result
        }
    }
}

/// deploy.succeeded, deploy.rolled_back or deploy.failed, to the notification channels.
async fn tell(ctx: &Context, project: &Project, kind: &str, result: &Result<ExitStatus>) {
    if events::by_signal(result) {
        return;
    }
    let event = match result {
        Ok(_) => {
            let serving = read_history(ctx, project)
                .ok()
                .and_then(|h| h.releases.last().cloned())
                .map_or("the configured image".into(), |r| {
                    format!("release {} ({})", r.id, r.image)
                });
            Event::new(
                "deploy.succeeded",
                &project.name,
                false,
                format!("{kind} succeeded: {serving} serves"),
                vec!["next: nothing; `pricescan-ctl status` shows the stack".into()],
            )
        }
        Err(e) if e.status == ExitStatus::RolledBack => events::failed(
            "deploy.rolled_back",
            project,
            e,
            "`pricescan-ctl deploy history` and `pricescan-ctl logs -s api --since 30m`; fix the release, then deploy again",
        ),
        Err(e) => events::failed(
            "deploy.failed",
            project,
            e,
            "`pricescan-ctl status` to see what serves, then `pricescan-ctl deploy history`",
        ),
    };
    events::emit(project, &ctx.printer, event).await;
}

/// The named release, or the one before the current; a usage error when there is none.
fn rollback_target(ctx: &Context, project: &Project, named: Option<&str>) -> Result<Release> {
    read_history(ctx, project)?.rollback_target(named).ok_or_else(|| {
        CtlError::usage(format!(
            "no release {} to roll back to",
            named.unwrap_or("before the current one")
        ))
        .hint("`pricescan-ctl deploy history` lists the releases")
    })
}

async fn release(
    ctx: &mut Context,
    mut project: Project,
    args: DeployArgs,
    kind: &str,
) -> Result<ExitStatus> {
    project.require(&[API_SERVICE, crate::deploy::nginx::NGINX_SERVICE])?;
    let engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, kind)?;
    let target = ctx.stack(&engine, &project)?.kind;
    let settings = crate::stack::rollout::analysis_settings(&project, args.analysis)?;
    let canary = Canary {
        settings: &settings,
        load: load_test(&project, &args, &settings)?,
    };
    let _lock = ctx.lock(&engine, &project, kind, args.wait_lock).await?;
    let history = read_history(ctx, &project)?;
    let now = chrono::Utc::now();
    let release_id = release::new_id(now);
    // What serves is what the engine says, whichever checkout deployed it.
    let serving = seam::serving(&engine, &project.name, target).await?;
    if let Some((id, image)) = &serving {
        release::pin(&mut project, id, image);
    }
    let stack = ctx.stack(&engine, &project)?;
    if args.migrate.is_some() {
        stack.host_only(
            "--migrate",
            "run the migration as a step of its own before the deploy",
        )?;
    }
    let image = choose_image(ctx, &stack, &args, &release_id).await?;
    if stack.runs_image(&image).await? {
        ctx.printer
            .info(&format!("{image} is already running; nothing changed"));
        return Ok(ExitStatus::Success);
    }
    let previous = serving
        .map(|(id, _)| id)
        .or_else(|| history.current().map(|r| r.id.clone()));
    let mut record = Release::begin(
        (&engine, &project),
        release_id,
        kind,
        image.clone(),
        previous,
        now,
    )
    .await?;
    if !args.no_backup {
        record.backup = Some(pre_deploy_backup(ctx, &stack).await?);
    }
    let hook_env = hook_env(&record);
    run_hook(ctx, &project, "pre-deploy", &hook_env).await?;
    if let Some(cmd) = &args.migrate {
        migrate(ctx, &engine, &project, &record, cmd).await?;
    }
    let plan = Plan {
        engine: &engine,
        project: &project,
        printer: &ctx.printer,
        image,
        release: record.id.clone(),
        timeout: args.timeout,
        drain: crate::stack::rollout::api_drain(&project),
    };
    let (outcome, analysis) = canary::judge(&plan, stack.switch(&plan).await, &canary).await;
    record.analysis = analysis;
    let leftover = rollout::record(&mut record, &project, kind, outcome, now).inspect_err(|e| {
        // The figures of a failed analysis are what a CI job needs to see.
        if e.status == ExitStatus::RolledBack && record.analysis.is_some() && ctx.printer.is_json() {
            let _ = report(ctx, &record);
        }
    })?;
    after_switch(ctx, &plan, &record, leftover, &hook_env).await
}

/// The release serves and is recorded: the old one retires, then the post-deploy hook.
async fn after_switch(
    ctx: &Context,
    plan: &Plan<'_>,
    record: &Release,
    leftover: rollout::Leftover,
    hook_env: &[(&str, String)],
) -> Result<ExitStatus> {
    let history = read_history(ctx, plan.project)?;
    let warnings = rollout::settle(plan, leftover, &history.releases).await;
    for w in &warnings {
        ctx.printer.warn(&format!("{w}; release {} serves", record.id));
    }
    if crate::sys::signals::first().is_some() {
        return Err(crate::sys::signals::interrupted(format!(
            "release {} ({}) serves and is recorded",
            record.id, record.image
        )));
    }
    if let Err(e) = run_hook(ctx, plan.project, "post-deploy", hook_env).await {
        ctx.printer.warn(&format!("{}; the release is live", e.what));
    }
    report(ctx, record)
}

/// `--load-test SPEC`: the load sent through the stack's own Nginx during the analysis.
fn load_test(
    project: &Project,
    args: &DeployArgs,
    settings: &crate::stack::rollout::AnalysisSettings,
) -> Result<Option<crate::load::spec::LoadSpec>> {
    let Some(text) = &args.load_test else {
        return Ok(None);
    };
    if settings.window.is_zero() {
        return Err(
            CtlError::usage("--load-test drives load during the analysis, which is off")
                .hint("give --analysis a duration, or set DEPLOY_ANALYSIS"),
        );
    }
    let load = crate::load::spec::parse_deploy_load(text).map_err(CtlError::usage)?;
    let base = crate::targets::status::nginx_base_url(project).ok_or_else(|| {
        CtlError::usage("--load-test needs Nginx's published HTTP port, and the stack has none")
    })?;
    Ok(Some(crate::load::spec::LoadSpec {
        url: format!("{base}{}", load.path),
        method: load.method,
        body: None,
        headers: Vec::new(),
        model: load.model,
        duration: settings.window,
        timeout: std::time::Duration::from_secs(10),
    }))
}

/// What the pre- and post-deploy hooks are told of the release.
fn hook_env(record: &Release) -> [(&'static str, String); 3] {
    [
        ("PRICESCAN_RELEASE", record.id.clone()),
        ("PRICESCAN_IMAGE", record.image.clone()),
        (
            "PRICESCAN_PREVIOUS_RELEASE",
            record.previous.clone().unwrap_or_default(),
        ),
    ]
}

fn report(ctx: &Context, record: &Release) -> Result<ExitStatus> {
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::to_value(record).context(|| "cannot encode the release".into())?);
    } else {
        ctx.printer
            .info(&format!("release {} ({}) is serving", record.id, record.image));
    }
    Ok(ExitStatus::Success)
}

/// The image to release: built from `--build DIR`, else `--image`, else the compose file's,
/// checked to be where the release will run.
async fn choose_image(
    ctx: &Context,
    stack: &Stack<'_>,
    args: &DeployArgs,
    release_id: &str,
) -> Result<String> {
    if let Some(dir) = &args.build {
        stack.host_only("--build", "there is no registry to push to: build the image, load it on every node (`docker save IMAGE | docker -H NODE load`), then pass --image IMAGE")?;
        return build(ctx, stack.engine, stack.project, dir, release_id).await;
    }
    let image = args
        .image
        .clone()
        .or_else(|| stack.project.service(API_SERVICE).image.clone())
        .unwrap_or_default();
    stack.check_image(&image).await?;
    Ok(image)
}

/// The pre-deploy backup's ID. A signal here drops the backup, whose guard removes its
/// partial directory.
async fn pre_deploy_backup(ctx: &Context, stack: &Stack<'_>) -> Result<String> {
    let data = stack.data_engine().await?;
    let all_parts = parts(None);
    let taken = tokio::select! {
        r = take::take(&data, stack.project, Reason::PreDeploy.word(), &all_parts, &ctx.printer, None) => r,
        _ = crate::sys::signals::received() => {
            return Err(crate::sys::signals::interrupted("during the pre-deploy backup; nothing was deployed"));
        }
    }
    .map_err(|e| CtlError::failure("the pre-deploy backup failed; nothing was deployed").cause(e.what))?;
    ctx.printer.info(&format!("pre-deploy backup: {}", taken.id));
    Ok(taken.id)
}

/// The release history, with a warning for each line that had to be skipped.
fn read_history(ctx: &Context, project: &Project) -> Result<release::History> {
    let history = release::history(project)?;
    for w in history.warnings(project) {
        ctx.printer.warn(&w);
    }
    Ok(history)
}

/// `deploy --build DIR`: DIR/Dockerfile.prod through the engine, tagged with the release id.
async fn build(
    ctx: &Context,
    engine: &crate::engine::Engine,
    project: &Project,
    dir: &std::path::Path,
    release_id: &str,
) -> Result<String> {
    let dir = crate::stack::resolve_path(&project.dir, dir);
    let context = crate::deploy::buildctx::context_tar(&dir, "Dockerfile.prod")?;
    let tag = format!("{}/api:{release_id}", project.name);
    ctx.printer
        .info(&format!("building {tag} from {}", dir.display()));
    let printer = ctx.printer.clone();
    engine
        .build(context.path(), "Dockerfile.prod", &tag, &mut |line| {
            printer.info(&format!("  {line}"))
        })
        .await?;
    Ok(tag)
}

/// Executable `hooks/NAME` of the project, if there is one; a failing pre-deploy hook stops
/// the deploy before anything changes.
async fn run_hook(ctx: &Context, project: &Project, name: &str, env: &[(&str, String)]) -> Result<()> {
    let path = project.dir.join("hooks").join(name);
    if !path.is_file() {
        return Ok(());
    }
    ctx.printer.info(&format!("running hooks/{name}"));
    let status = tokio::process::Command::new(&path)
        .current_dir(&project.dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .await
        .map_err(|e| CtlError::failure(format!("cannot run hooks/{name}")).cause(e))?;
    match status.success() {
        true => Ok(()),
        false => Err(CtlError::failure(format!(
            "hooks/{name} failed ({status}); nothing was deployed"
        ))),
    }
}

/// `--migrate CMD`: once, in a one-off container of the new image with the API's
/// configuration and networks, before any traffic moves.
async fn migrate(
    ctx: &Context,
    engine: &crate::engine::Engine,
    project: &Project,
    record: &Release,
    cmd: &str,
) -> Result<()> {
    let mut with_image = project.clone();
    if let Some(s) = with_image.file.services.get_mut(API_SERVICE) {
        s.image = Some(record.image.clone());
    }
    let name = format!(
        "{}-{API_SERVICE}-migrate-{}",
        project.name,
        record.id.to_lowercase()
    );
    let plan = crate::engine::spec::plan(&with_image, API_SERVICE, 0, &[])?.into_oneoff(name, cmd);
    ctx.printer.info(&format!("running the migration: {cmd}"));
    let (code, logs) = engine.run_plan(&plan, 30).await?;
    if code != 0 {
        ctx.printer
            .service_failure("migration", &format!("exited with {code}"), None, &logs);
        return Err(CtlError::failure(format!(
            "the migration failed (exit {code}); nothing was deployed"
        )));
    }
    Ok(())
}

fn history(ctx: &mut Context, limit: usize) -> Result<ExitStatus> {
    let project = ctx.project()?;
    let mut all = read_history(ctx, &project)?.releases;
    all.reverse();
    all.truncate(limit);
    if ctx.printer.is_json() {
        ctx.printer
            .json(&serde_json::to_value(&all).context(|| "cannot encode the history".into())?);
        return Ok(ExitStatus::Success);
    }
    let rows = all
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.kind.clone(),
                r.image.clone(),
                r.result.clone(),
                r.started_at.get(..19).unwrap_or_default().replace('T', " "),
                format!("{:.1}s", r.duration_s),
                r.backup.clone().unwrap_or_else(|| "-".into()),
                format!("{}@{}", r.user, r.host),
            ]
        })
        .collect();
    ctx.printer.table(
        &[
            "RELEASE",
            "KIND",
            "IMAGE",
            "RESULT",
            "STARTED (UTC)",
            "TOOK",
            "BACKUP",
            "BY",
        ],
        rows,
    );
    Ok(ExitStatus::Success)
}
