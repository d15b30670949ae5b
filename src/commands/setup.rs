//! `setup`: prerequisites, the stack files, `.env.prod` with fresh secrets, rendered config,
//! directories, networks, volumes and images. Idempotent: a second run changes nothing.

use crate::cli::{ForceTarget, SetupArgs};
use crate::commands::context::Context;
use crate::deploy::{images, nginx};
use crate::engine::Engine;
use crate::error::{Context as _, CtlError, ExitStatus, Result};
use crate::stack::templates::{self, CONFIG_DIR, TEMPLATE_DIR};
use crate::stack::{Environment, Project, embedded, envfile, resolve_path, secrets};
use crate::sys::fsutil;
use crate::targets::context::{Prepare, TargetKind};
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The old production guide's minimums.
const MIN_CPUS: u64 = 2;
const MIN_MEMORY: u64 = 4_000_000_000;
/// The kernel keeps some memory for itself: a "4 GB" machine reports a little less.
const MEMORY_TOLERANCE: f64 = 0.9;
const MIN_DISK: u64 = 20_000_000_000;
/// Database passwords that live on in MySQL's volume once it is initialised.
const DB_SECRETS: [&str; 2] = ["DB_PASSWORD", "MYSQL_ROOT_PASSWORD"];

/// What this run changed, to report it and to say "nothing changed" when it is empty.
#[derive(Default)]
struct Changes(Vec<String>);

impl Changes {
    fn add(&mut self, ctx: &Context, what: String) {
        ctx.printer.info(&format!("  {what}"));
        self.0.push(what);
    }

    /// Many files of one kind are reported as one line ("rendered config/ (16 files)").
    fn add_files(&mut self, ctx: &Context, verb: &str, dir: &str, files: Vec<String>) {
        match files.len() {
            0 => {}
            1..=3 => files
                .into_iter()
                .for_each(|f| self.add(ctx, format!("{verb} {f}"))),
            n => {
                for f in &files {
                    ctx.printer.debug(&format!("{verb} {f}"));
                }
                self.add(ctx, format!("{verb} {dir}/ ({n} files)"));
            }
        }
    }
}

pub async fn run(ctx: &mut Context, args: SetupArgs) -> Result<ExitStatus> {
    let opts = ctx.project_options();
    let cwd = std::env::current_dir().context(|| "no current directory".into())?;
    let dir = opts
        .project_dir
        .as_deref()
        .map_or(cwd.clone(), |d| resolve_path(&cwd, d));
    std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    let mut engine = ctx.engine().await?;
    ctx.require_files_reach(&engine, "setup")?;
    check_prerequisites(ctx, &mut engine, &dir, args.strict).await?;

    let mut changes = Changes::default();
    write_stack_files(ctx, &dir, &opts.file, &args.force, &mut changes)?;
    let env_path = resolve_path(&dir, &opts.env_file);
    write_env_file(ctx, &engine, &env_path, &args.force, &mut changes).await?;

    let project = ctx.project()?;
    project.env.check_placeholders()?;
    crate::stack::offsite::Offsite::from_env(&project.env, &project.dir)?;
    let channels = crate::stack::notify::Channels::from_env(&project.env)?;
    render_config(ctx, &project, &mut changes)?;
    render_alertmanager(ctx, &project, &channels, &mut changes)?;
    create_directories(ctx, &project, &mut changes)?;
    record_target(ctx, &project, &env_path, &mut changes)?;
    let project = ctx.project()?;
    let prepare = Prepare {
        init: args.init,
        data_node: args.data_node.as_deref(),
    };
    for change in ctx.stack(&engine, &project)?.prepare(&prepare).await? {
        changes.add(ctx, change);
    }
    if !args.skip_images {
        ensure_images(ctx, &engine, &project, &mut changes).await?;
    }
    replication_user(ctx, &engine, &project, &mut changes).await?;
    if args.backup_key {
        backup_key(ctx, &project, &env_path, &mut changes)?;
    }
    let guard = match args.guard {
        true => guard_unit(ctx, &project, &mut changes),
        false => Ok(()),
    };
    match changes.0.len() {
        0 => ctx
            .printer
            .info("setup: nothing changed; everything was already in place and every secret was kept"),
        n => ctx.printer.info(&format!(
            "setup: done ({n} change{})",
            if n == 1 { "" } else { "s" }
        )),
    }
    guard.map(|_| ExitStatus::Success)
}

/// `--guard`: the rendered unit, installed as pricescan-guard-<project>.service and enabled.
/// Without systemd the unit is still installed, and the command fails saying so.
fn guard_unit(ctx: &Context, project: &Project, changes: &mut Changes) -> Result<()> {
    use crate::sys::systemd;
    let rendered = project
        .dir
        .join(CONFIG_DIR)
        .join("systemd/pricescan-guard.service");
    let text =
        std::fs::read_to_string(&rendered).context(|| format!("cannot read {}", rendered.display()))?;
    let unit = format!("pricescan-guard-{}.service", project.name);
    let path = systemd::unit_dir().join(&unit);
    if systemd::install(&path, &text)? {
        changes.add(ctx, format!("installed {}", path.display()));
    }
    if !systemd::running() {
        return Err(CtlError::failure(format!(
            "systemd is not running on this host: {unit} is installed but not enabled"
        ))
        .hint("run `pricescan-ctl guard` under the supervisor this host uses; it stays in the foreground"));
    }
    systemd::enable_now(&unit)?;
    ctx.printer.info(&format!(
        "guard: {unit} is enabled and running (`systemctl status {unit}`)"
    ));
    Ok(())
}

/// The binlog archiver's user on a MySQL that already has data (a new one gets it from
/// config/mysql/initdb); its password may have just been generated or regenerated.
async fn replication_user(
    ctx: &Context,
    engine: &Engine,
    project: &Project,
    changes: &mut Changes,
) -> Result<()> {
    let password = project.env.get("BINLOG_PASSWORD").unwrap_or_default();
    if !crate::stack::pitr::enabled(&project.env) || password.is_empty() {
        return Ok(());
    }
    let data = ctx.stack(engine, project)?.data_engine().await?;
    let containers = data.project_containers(&project.name).await?;
    let Ok(mysql) =
        crate::deploy::converge::running_container(&containers, crate::backup::catalog::MYSQL_SERVICE)
    else {
        return Ok(());
    };
    let user = project
        .env
        .get("BINLOG_USER")
        .unwrap_or_else(|| "pricescan_binlog".into());
    if crate::backup::binlog::ensure_replication_user(&data, &mysql.id, &user, &password).await? {
        changes.add(ctx, format!("created the replication user {user} in MySQL"));
    }
    Ok(())
}

/// `--backup-key`: an age identity for the off-site copies, and .env.prod pointed at it
/// where its two variables are empty. An existing identity is kept, never replaced.
fn backup_key(ctx: &Context, project: &Project, env_path: &Path, changes: &mut Changes) -> Result<()> {
    let configured = project
        .env
        .get("BACKUP_ENCRYPTION_IDENTITY_FILE")
        .filter(|v| !v.trim().is_empty());
    let path = resolve_path(
        &project.dir,
        Path::new(configured.as_deref().unwrap_or(".pricescan/backup-identity.txt")),
    );
    let public = match path.exists() {
        true => {
            ctx.printer
                .info(&format!("kept the backup key {}", path.display()));
            crate::backup::seal::public_key_of(&path)?
        }
        false => {
            let public = crate::backup::seal::create_identity(&path)?;
            changes.add(
                ctx,
                format!("created the backup key {} (mode 0600)", path.display()),
            );
            public
        }
    };
    let text = std::fs::read_to_string(env_path).context(|| format!("cannot read {}", env_path.display()))?;
    let mut fill: Vec<(&str, String)> = Vec::new();
    if configured.is_none() {
        fill.push(("BACKUP_ENCRYPTION_IDENTITY_FILE", path.display().to_string()));
    }
    let recipients = project
        .env
        .get("BACKUP_ENCRYPTION_RECIPIENTS")
        .unwrap_or_default();
    if recipients.trim().is_empty() {
        fill.push(("BACKUP_ENCRYPTION_RECIPIENTS", public.clone()));
    } else if !recipients.contains(&public) {
        ctx.printer.warn(&format!(
            "BACKUP_ENCRYPTION_RECIPIENTS names other keys; add {public} to it to encrypt to this key too"
        ));
    }
    if !fill.is_empty() {
        let (new_text, keys) = envfile::set(&text, &fill);
        fsutil::write_atomic(env_path, new_text.as_bytes(), 0o600)?;
        changes.add(
            ctx,
            format!("set {} in {}", keys.join(" and "), env_path.display()),
        );
    }
    ctx.printer.info(&format!("backup public key: {public}"));
    ctx.printer.warn(&format!(
        "keep a copy of {} OFF this server (a password manager, a safe): without it no off-site backup can be restored, and a key that exists only next to the data it protects protects nothing",
        path.display()
    ));
    Ok(())
}

async fn check_prerequisites(ctx: &Context, engine: &mut Engine, dir: &Path, strict: bool) -> Result<()> {
    if !engine.version_supported() {
        return Err(
            CtlError::failure(format!("Docker engine {} is too old", engine.info.version))
                .hint("pricescan-ctl needs Docker Engine 20.10 or newer"),
        );
    }
    let (cpus, memory) = engine.host_resources().await?;
    let disk = fsutil::free_space(dir)?;
    let gb = |b: u64| b as f64 / 1e9;
    let mut problems = Vec::new();
    if cpus < MIN_CPUS {
        problems.push(format!("{cpus} CPU core(s); the stack needs at least {MIN_CPUS}"));
    }
    if (memory as f64) < MIN_MEMORY as f64 * MEMORY_TOLERANCE {
        problems.push(format!(
            "{:.1} GB of memory; the stack needs at least {:.0} GB",
            gb(memory),
            gb(MIN_MEMORY)
        ));
    }
    if disk < MIN_DISK {
        problems.push(format!(
            "{:.1} GB free on {}; the stack needs at least {:.0} GB",
            gb(disk),
            dir.display(),
            gb(MIN_DISK)
        ));
    }
    ctx.printer.info(&format!(
        "prerequisites: engine {} (API {}), {cpus} cores, {:.1} GB memory, {:.1} GB free disk",
        engine.info.version,
        engine.info.api_version,
        gb(memory),
        gb(disk)
    ));
    if strict && !problems.is_empty() {
        let mut err = CtlError::failure("the machine is below the stack's minimums");
        for p in problems {
            err = err.cause(p);
        }
        return Err(err.hint("run without --strict to go on with warnings"));
    }
    for p in problems {
        ctx.printer.warn(&p);
    }
    Ok(())
}

/// Writes a file from the binary's copy if it is missing (or forced); says whether it did.
fn write_embedded(path: &Path, text: &str, force: bool) -> Result<bool> {
    if path.exists() && !force {
        return Ok(false);
    }
    fsutil::write_atomic(path, text.as_bytes(), 0o644)?;
    Ok(true)
}

fn shown(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

fn write_stack_files(
    ctx: &Context,
    dir: &Path,
    file: &Path,
    force: &[ForceTarget],
    changes: &mut Changes,
) -> Result<()> {
    let forced = |t| force.contains(&t);
    let compose = resolve_path(dir, file);
    let mut singles = Vec::new();
    let default_compose = file == Path::new(embedded::COMPOSE_FILE_NAME);
    if (default_compose || forced(ForceTarget::Compose))
        && write_embedded(&compose, embedded::COMPOSE, forced(ForceTarget::Compose))?
    {
        singles.push(shown(dir, &compose));
    }
    let example = dir.join(embedded::ENV_EXAMPLE_NAME);
    if write_embedded(&example, embedded::ENV_EXAMPLE, forced(ForceTarget::Example))? {
        singles.push(shown(dir, &example));
    }
    changes.add_files(ctx, "wrote", ".", singles);
    let mut written = Vec::new();
    for (rel, text) in templates::embedded() {
        let path = dir.join(TEMPLATE_DIR).join(rel);
        if write_embedded(&path, text, forced(ForceTarget::Templates))? {
            written.push(shown(dir, &path));
        }
    }
    changes.add_files(ctx, "wrote", TEMPLATE_DIR, written);
    Ok(())
}

fn example_text(env_path: &Path) -> String {
    let dir = env_path.parent().unwrap_or(Path::new("."));
    std::fs::read_to_string(dir.join(embedded::ENV_EXAMPLE_NAME))
        .unwrap_or_else(|_| embedded::ENV_EXAMPLE.to_string())
}

async fn write_env_file(
    ctx: &mut Context,
    engine: &Engine,
    path: &Path,
    force: &[ForceTarget],
    changes: &mut Changes,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let example = example_text(path);
    let mut generate = envfile::generate_secret;
    if !path.exists() {
        let (text, filled) = envfile::from_example(&example, &mut generate);
        fsutil::write_atomic(path, text.as_bytes(), 0o600)?;
        changes.add(
            ctx,
            format!(
                "created {} (mode 0600, {} fresh secrets)",
                shown(&dir, path),
                filled.len()
            ),
        );
        return Ok(());
    }
    // Fails with the file and line if .env.prod is malformed, before anything is rewritten.
    Environment::load(path)?;
    if fsutil::mode_of(path).is_some_and(|m| m & 0o077 != 0) {
        fsutil::set_mode(path, 0o600)?;
        changes.add(
            ctx,
            format!(
                "restricted {} to mode 0600 (it was readable by others)",
                shown(&dir, path)
            ),
        );
    }
    let mut text = std::fs::read_to_string(path).context(|| format!("cannot read {}", path.display()))?;
    let added = envfile::missing(&example, &text, &mut generate);
    if !added.is_empty() {
        text.push_str(&format!(
            "\n# Added by pricescan-ctl setup on {}\n",
            chrono::Utc::now().format("%Y-%m-%d")
        ));
        for (key, value) in &added {
            text.push_str(&format!("{key}={value}\n"));
        }
        fsutil::write_atomic(path, text.as_bytes(), 0o600)?;
        let keys: Vec<&str> = added.iter().map(|(k, _)| k.as_str()).collect();
        changes.add(ctx, format!("added {} to {}", keys.join(", "), shown(&dir, path)));
    }
    if force.contains(&ForceTarget::Secrets) {
        regenerate_secrets(ctx, engine, path, &text, changes).await?;
    }
    Ok(())
}

/// `--force secrets`. Database passwords are kept once MySQL's volume exists: MySQL stores
/// them in its data, so new values in .env.prod would lock the API out.
async fn regenerate_secrets(
    ctx: &mut Context,
    engine: &Engine,
    path: &Path,
    text: &str,
    changes: &mut Changes,
) -> Result<()> {
    let project = ctx.project()?;
    let env = Environment::parse(path, text)?;
    let mysql_initialised = match project.file.volumes.contains_key("mysql-data") {
        true => engine.volume_exists(&project.volume_name("mysql-data")).await?,
        false => false,
    };
    let keys: Vec<String> = env
        .entries
        .iter()
        .map(|e| e.key.clone())
        .filter(|k| secrets::is_generated(k))
        .filter(|k| {
            let keep = mysql_initialised && DB_SECRETS.contains(&k.as_str());
            if keep {
                ctx.printer.warn(&format!(
                    "kept {k}: MySQL's data volume already holds it (change it in MySQL first)"
                ));
            }
            !keep
        })
        .collect();
    let (new_text, changed) = envfile::regenerate(text, &keys, &mut envfile::generate_secret);
    fsutil::write_atomic(path, new_text.as_bytes(), 0o600)?;
    changes.add(ctx, format!("regenerated {}", changed.join(", ")));
    Ok(())
}

fn builtins(project: &Project) -> BTreeMap<String, String> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "pricescan-ctl".into());
    BTreeMap::from([
        ("PROJECT_DIR".to_string(), project.dir.display().to_string()),
        ("PRICESCAN_CTL".to_string(), exe),
        ("COMPOSE_PROJECT_NAME".to_string(), project.name.clone()),
    ])
}

fn render_config(ctx: &Context, project: &Project, changes: &mut Changes) -> Result<()> {
    let config = project.dir.join(CONFIG_DIR);
    let all = templates::load(&project.dir)?;
    let (rendered, warnings) = templates::render(project, &all, &builtins(project))?;
    for w in warnings {
        ctx.printer.warn(&w);
    }
    std::fs::create_dir_all(&config).context(|| format!("cannot create {}", config.display()))?;
    // Rendered files hold secrets (Redis' password): only the owner may enter config/.
    fsutil::set_mode(&config, 0o700)?;
    let mut created = Vec::new();
    for file in rendered {
        let path = config.join(&file.path);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(file.content.as_str()) {
            continue;
        }
        fsutil::write_atomic(&path, file.content.as_bytes(), 0o644)?;
        match current {
            Some(_) => changes.add(ctx, format!("updated {}", shown(&project.dir, &path))),
            None => created.push(shown(&project.dir, &path)),
        }
    }
    changes.add_files(ctx, "rendered", CONFIG_DIR, created);
    // Include files that start, deploy and restore own: created once, then left to them.
    for (path, content) in [
        (
            nginx::upstream_path(project),
            nginx::upstream_config("pricescan-api"),
        ),
        (nginx::writes_path(project), nginx::writes_config(false)),
    ] {
        if !path.exists() {
            fsutil::write_atomic(&path, content.as_bytes(), 0o644)?;
            changes.add(ctx, format!("created {}", shown(&project.dir, &path)));
        }
    }
    Ok(())
}

/// config/alertmanager/alertmanager.yml, from the NOTIFY_* channels.
fn render_alertmanager(
    ctx: &Context,
    project: &Project,
    channels: &crate::stack::notify::Channels,
    changes: &mut Changes,
) -> Result<()> {
    let image = project
        .env
        .get("ALERTMANAGER_IMAGE")
        .filter(|i| !i.trim().is_empty())
        .unwrap_or_else(|| crate::stack::alerting::DEFAULT_IMAGE.to_string());
    let (content, warnings) = crate::stack::alerting::render(channels, &image);
    for w in warnings {
        ctx.printer.warn(&w);
    }
    let path = project
        .dir
        .join(CONFIG_DIR)
        .join(crate::stack::alerting::CONFIG_PATH);
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() == Some(content.as_str()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    // Readable by the container's user, like every rendered file; config/ itself is 0700.
    fsutil::write_atomic(&path, content.as_bytes(), 0o644)?;
    let verb = if current.is_some() { "updated" } else { "rendered" };
    changes.add(ctx, format!("{verb} {}", shown(&project.dir, &path)));
    Ok(())
}

fn create_directories(ctx: &Context, project: &Project, changes: &mut Changes) -> Result<()> {
    let backup_dir = project
        .env
        .get("BACKUP_DIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "./backups".into());
    let dirs: [(PathBuf, u32); 3] = [
        (project.dir.join(CONFIG_DIR).join("tls"), 0o755),
        (resolve_path(&project.dir, Path::new(&backup_dir)), 0o700),
        (project.dir.join(".pricescan"), 0o700),
    ];
    for (dir, mode) in dirs {
        if dir.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
        fsutil::set_mode(&dir, mode)?;
        changes.add(ctx, format!("created {}/", shown(&project.dir, &dir)));
    }
    Ok(())
}

/// `--target swarm` at setup is remembered in .env.prod, so later commands need no flag.
fn record_target(ctx: &Context, project: &Project, env_path: &Path, changes: &mut Changes) -> Result<()> {
    let Some(kind) = ctx.global.target.map(TargetKind::from) else {
        return Ok(());
    };
    let wanted = match kind {
        TargetKind::Compose => "compose",
        TargetKind::Swarm => "swarm",
    };
    if project.env.file_value("STACK_TARGET") == Some(wanted) {
        return Ok(());
    }
    let text = std::fs::read_to_string(env_path).context(|| format!("cannot read {}", env_path.display()))?;
    let (new_text, _) = envfile::set(&text, &[("STACK_TARGET", wanted.to_string())]);
    fsutil::write_atomic(env_path, new_text.as_bytes(), 0o600)?;
    changes.add(
        ctx,
        format!("set STACK_TARGET={wanted} in {}", env_path.display()),
    );
    Ok(())
}

async fn ensure_images(
    ctx: &Context,
    engine: &Engine,
    project: &Project,
    changes: &mut Changes,
) -> Result<()> {
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for service in project.active_services() {
        if let Some(image) = project.service(&service).image.clone() {
            wanted.entry(image).or_insert(service);
        }
    }
    let checks = wanted.keys().map(|image| engine.image_exists(image));
    let present = join_all(checks).await;
    let mut failures = Vec::new();
    for ((image, service), present) in wanted.iter().zip(present) {
        if present? {
            ctx.printer.debug(&format!("image {image} is present"));
            continue;
        }
        match images::pull(&ctx.printer, engine, image).await {
            Ok(()) => changes.add(ctx, format!("pulled image {image}")),
            Err(e) => failures.push((image.clone(), service.clone(), e)),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let mut err = CtlError::failure(format!(
        "{} image(s) missing and could not be pulled",
        failures.len()
    ));
    let mut overrides = Vec::new();
    for (image, service, e) in &failures {
        let var = project.image_variable(service);
        let via = var
            .as_ref()
            .map(|v| format!(" (set {v} to use another image)"))
            .unwrap_or_default();
        err = err.cause(format!(
            "{image} for {service}{via}: {}",
            e.causes.last().unwrap_or(&e.what)
        ));
        overrides.extend(var);
    }
    let hint = match overrides.is_empty() {
        true => "check the registry is reachable, or load the images locally".to_string(),
        false => format!(
            "build or load the images locally and set {} in .env.prod; or rerun with --skip-images",
            overrides.join(", ")
        ),
    };
    Err(err.hint(hint))
}
