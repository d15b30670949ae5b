//! The clap command tree: every command of DESIGN §3 and the global flags.

use crate::backup::catalog::{Part, Reason};
use crate::output::{ColorChoice, OutputFormat};
use crate::targets::TargetKind;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "pricescan-ctl",
    version,
    about = "Operate the PriceScan production stack"
)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Compose file of the stack (before the command: `logs -f` means --follow)
    #[arg(
        short = 'f',
        long,
        value_name = "FILE",
        default_value = "docker-compose.prod.yml"
    )]
    pub file: PathBuf,
    /// Variables of the stack (secrets included)
    #[arg(long, global = true, value_name = "FILE", default_value = ".env.prod")]
    pub env_file: PathBuf,
    /// Directory the stack lives in [default: current directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Project name [default: COMPOSE_PROJECT_NAME, then the compose file's name]
    #[arg(short = 'p', long, global = true, value_name = "NAME")]
    pub project_name: Option<String>,
    /// Docker engine address [default: DOCKER_HOST, then the local socket]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "DOCKER_HOST",
        hide_env_values = true
    )]
    pub docker_host: Option<String>,
    /// Where the stack runs [default: STACK_TARGET in .env.prod, then compose]
    #[arg(long, global = true, value_enum, value_name = "TARGET")]
    pub target: Option<TargetArg>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub output: OutputFormat,
    /// Same as --output json
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors and the command's result
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print engine calls and other detail on stderr
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// When to use colour (NO_COLOR is honoured with auto)
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Same as --color never
    #[arg(long, global = true)]
    pub no_color: bool,
}

impl GlobalArgs {
    pub fn color(&self) -> ColorChoice {
        if self.no_color {
            ColorChoice::Never
        } else {
            self.color
        }
    }

    pub fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.output
        }
    }
}

/// Services named on the command line (`-s api -s mysql`); none means all.
#[derive(Debug, Clone, Args, Default)]
pub struct ServiceArgs {
    /// Service to act on, by full or short name (repeatable) [default: all]
    #[arg(short = 's', long = "service", value_name = "NAME")]
    pub services: Vec<String>,
}

/// `--wait DUR` of every command that changes the stack (DESIGN §8).
#[derive(Debug, Clone, Args, Default)]
pub struct WaitArgs {
    /// Wait this long for the operation lock instead of exiting 75
    #[arg(long, value_parser = duration, value_name = "DUR")]
    pub wait: Option<Duration>,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::stack::units::parse_human_duration(s)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check prerequisites, create .env.prod with fresh secrets, render config, create networks and volumes
    Setup(SetupArgs),
    /// Print the resolved stack with secrets masked
    Config(ConfigArgs),
    /// Create or update the containers, start them in dependency order and wait for health
    Start(StartArgs),
    /// Stop services gracefully, dependents first; data stays
    Stop(StopArgs),
    /// Restart services, applying changed configuration; the API without downtime
    Restart(RestartArgs),
    /// Show services, health, resources and endpoint probes (exit 3 when degraded)
    Status(StatusArgs),
    /// Set the number of tasks of a service (swarm): `scale api=3`
    Scale(ScaleArgs),
    /// Show logs of several services interleaved
    Logs(LogsArgs),
    /// Live dashboard of containers, probes and engine events
    Monitor(MonitorArgs),
    /// Back up MySQL and Redis, or manage backups
    Backup(BackupArgs),
    /// Restore a backup
    Restore(RestoreArgs),
    /// Deploy a new API release without downtime, or manage releases
    Deploy(DeployArgs),
    /// Show or free the operation lock that commands changing the stack hold
    Lock(LockArgs),
    /// Send notifications: `notify test` checks every configured channel
    Notify(NotifyArgs),
    /// Send HTTP load through the stack's Nginx; report throughput, latency percentiles and errors
    Loadtest(LoadtestArgs),
    /// Watch the stack and heal it, writing an incident report each time (runs until stopped)
    Guard(GuardArgs),
    /// List the guard's incident reports, or show one
    Incidents(IncidentsArgs),
    /// Audit this server: exposure, secrets, TLS, backups, disk, logs, engine, drift (exit 1 on a fail)
    Doctor,
    /// Free what is safe to free: old release images, dangling images, dead one-off containers, build cache
    Cleanup(CleanupArgs),
    /// Print shell completions
    Completions(CompletionsArgs),
    /// Print the man page (roff)
    Man,
}

impl Command {
    /// Commands that answer a signal themselves: they undo their own work (deploy, restore)
    /// or end cleanly (logs, monitor), so `main` must not drop them half-way.
    pub fn handles_signals(&self) -> bool {
        matches!(
            self,
            Command::Deploy(_)
                | Command::Restore(_)
                | Command::Logs(_)
                | Command::Monitor(_)
                | Command::Guard(_)
                | Command::Loadtest(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForceTarget {
    /// Rewrite docker-compose.prod.yml from the binary's copy
    Compose,
    /// Rewrite .env.prod.example from the binary's copy
    Example,
    /// Rewrite templates/ from the binary's copy
    Templates,
    /// Generate new values for every secret in .env.prod
    Secrets,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Treat unmet CPU, memory and disk minimums as errors
    #[arg(long)]
    pub strict: bool,
    /// Regenerate only this, even if it exists (repeatable)
    #[arg(long, value_enum, value_name = "WHAT")]
    pub force: Vec<ForceTarget>,
    /// Do not check or pull images
    #[arg(long)]
    pub skip_images: bool,
    /// Create an age key pair for encrypted off-site backups (kept if it exists)
    #[arg(long)]
    pub backup_key: bool,
    /// Swarm: make this engine a one-node swarm manager if it is in no swarm
    #[arg(long)]
    pub init: bool,
    /// Install the guard's systemd unit and enable it (Restart=always)
    #[arg(long)]
    pub guard: bool,
    /// Swarm: the node (ID or hostname) that holds MySQL's and Redis' data
    #[arg(long, value_name = "NODE")]
    pub data_node: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub select: ServiceArgs,
    /// List the active service names only
    #[arg(long = "services")]
    pub list_services: bool,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(flatten)]
    pub lock: WaitArgs,
    /// Do not wait for health checks
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for each service to become healthy
    #[arg(long, value_parser = duration, default_value = "3m")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(flatten)]
    pub lock: WaitArgs,
    /// Grace period before a container is killed [default: the service's stop_grace_period]
    #[arg(short = 't', long, value_parser = duration)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    #[command(flatten)]
    pub lock: WaitArgs,
    /// How long to wait for each service to become healthy
    #[arg(long, value_parser = duration, default_value = "3m")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// SERVICE=N, e.g. api=3
    #[arg(value_name = "SERVICE=N", required = true)]
    pub targets: Vec<String>,
    /// Allow scaling services other than the API (never MySQL or Redis above 1)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub lock: WaitArgs,
    /// How long to wait for the tasks to run
    #[arg(long, value_parser = duration, default_value = "3m")]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Wait for every container's CPU and memory sample (up to a second more)
    #[arg(long)]
    pub stats: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Keep streaming, across restarts and recreations
    #[arg(short, long)]
    pub follow: bool,
    /// Lines per service from the end
    #[arg(short = 'n', long = "tail", value_name = "N")]
    pub tail: Option<u64>,
    /// Only lines after T (a duration like 10m, or an RFC 3339 time)
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Only lines before T (a duration like 10m, or an RFC 3339 time)
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Show the engine's timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only lines matching this regular expression
    #[arg(long, value_name = "RE")]
    pub grep: Option<String>,
    /// Do not prefix lines with the service name
    #[arg(long)]
    pub no_prefix: bool,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Refresh interval
    #[arg(long, value_parser = duration, default_value = "1s")]
    pub interval: Duration,
    /// Print one snapshot and exit
    #[arg(long)]
    pub once: bool,
}

/// Where the stack runs (`--target`); see `targets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    Compose,
    Swarm,
}

impl From<TargetArg> for TargetKind {
    fn from(arg: TargetArg) -> TargetKind {
        match arg {
            TargetArg::Compose => TargetKind::Compose,
            TargetArg::Swarm => TargetKind::Swarm,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackupPart {
    Mysql,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackupReason {
    Nightly,
    PreDeploy,
    Manual,
    PreRestore,
}

impl From<BackupPart> for Part {
    fn from(part: BackupPart) -> Part {
        match part {
            BackupPart::Mysql => Part::Mysql,
            BackupPart::Redis => Part::Redis,
        }
    }
}

impl From<BackupReason> for Reason {
    fn from(reason: BackupReason) -> Reason {
        match reason {
            BackupReason::Nightly => Reason::Nightly,
            BackupReason::PreDeploy => Reason::PreDeploy,
            BackupReason::Manual => Reason::Manual,
            BackupReason::PreRestore => Reason::PreRestore,
        }
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: Option<BackupCommand>,
    /// Back up only this part
    #[arg(long, value_enum)]
    pub only: Option<BackupPart>,
    /// Why this backup is taken; part of its id
    #[arg(long, value_enum, default_value = "manual")]
    pub reason: BackupReason,
    #[command(flatten)]
    pub lock: WaitArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List backups
    List {
        /// List the off-site backups instead
        #[arg(long)]
        remote: bool,
    },
    /// Check a backup's hashes, stream and footer
    Verify {
        /// Backup id [default: the latest]
        id: Option<String>,
        /// Check the latest backup
        #[arg(long, conflicts_with = "id")]
        latest: bool,
        /// Also restore into a throwaway container and compare row counts
        #[arg(long, conflicts_with = "remote")]
        deep: bool,
        /// Check the off-site copy instead: download, decrypt and hash every file
        #[arg(long)]
        remote: bool,
    },
    /// Copy backups off-site: those missing there, or the ones named
    Push {
        /// Backup ids [default: every local backup missing off-site]
        ids: Vec<String>,
        #[command(flatten)]
        lock: WaitArgs,
    },
    /// Download an off-site backup into the local store, and verify it
    Pull {
        /// Backup id
        id: String,
        #[command(flatten)]
        lock: WaitArgs,
    },
    /// Ship the binlog archive off-site as sealed chunks, every BACKUP_PITR_SHIP_INTERVAL, until
    /// stopped (a long-lived process for systemd)
    Archive {
        /// Ship what the archive holds now, then exit
        #[arg(long)]
        once: bool,
    },
    /// List the archived binlog events to restore just before: DDL, and transactions that
    /// changed many rows of a table, with their time and position
    Events {
        /// Only events since then: a duration (10m, 2h) or a time
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// Only events whose text contains WORD (any case), e.g. DROP
        #[arg(long, value_name = "WORD")]
        grep: Option<String>,
    },
    /// Apply the retention policy
    Prune {
        /// Say what would be removed and why, remove nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        lock: WaitArgs,
    },
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup id (with --to: the backup to roll forward from; default: the newest before TIME)
    #[arg(required_unless_present_any = ["to", "to_position"])]
    pub id: Option<String>,
    /// Roll MySQL forward from a backup through the binlog archive up to TIME (RFC 3339, or
    /// YYYY-MM-DD HH:MM:SS local); every event stamped at or before that second is replayed
    #[arg(long, value_name = "TIME", conflicts_with = "to_position")]
    pub to: Option<String>,
    /// Like --to, up to a place in the binary log: every event that begins before FILE:POS
    #[arg(long, value_name = "FILE:POS")]
    pub to_position: Option<String>,
    /// Restore only this part
    #[arg(long, value_enum)]
    pub only: Option<BackupPart>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub lock: WaitArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeployArgs {
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
    /// Image to deploy (local, or pulled)
    #[arg(long, value_name = "REF", conflicts_with = "build")]
    pub image: Option<String>,
    /// Build Dockerfile.prod in DIR through the engine and deploy the result
    #[arg(long, value_name = "DIR")]
    pub build: Option<PathBuf>,
    /// Skip the pre-deploy backup
    #[arg(long)]
    pub no_backup: bool,
    /// How long the new container may take to become healthy
    #[arg(long, value_parser = duration, default_value = "3m")]
    pub timeout: Duration,
    /// Wait this long for the operation lock instead of exiting 75
    #[arg(long = "wait", visible_alias = "wait-lock", value_parser = duration, value_name = "DUR")]
    pub wait_lock: Option<Duration>,
    /// Command run once in a one-off container of the new image before traffic moves
    #[arg(long, value_name = "CMD")]
    pub migrate: Option<String>,
    /// Watch the new release's traffic this long before the old one retires (0: off;
    /// default DEPLOY_ANALYSIS, 60s)
    #[arg(long, value_parser = duration, value_name = "DUR")]
    pub analysis: Option<Duration>,
    /// Drive this load through Nginx during the analysis: PATH[,rate=N/s|,concurrency=N][,method=M]
    #[arg(long, value_name = "SPEC")]
    pub load_test: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadtestArgs {
    /// A path on the stack's Nginx (default /), or a whole http:// URL
    #[arg(value_name = "PATH|URL")]
    pub url: Option<String>,
    /// Open model: start this many requests a second, whatever the answers take (e.g. 200/s)
    #[arg(long, value_name = "N/s", conflicts_with = "concurrency")]
    pub rate: Option<String>,
    /// Closed model: this many clients, each sending when its last answer came (default 10)
    #[arg(short, long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// How long to send load
    #[arg(short, long, value_parser = duration, default_value = "30s")]
    pub duration: Duration,
    /// HTTP method
    #[arg(short = 'X', long, default_value = "GET")]
    pub method: String,
    /// Request body, or @FILE to read it from a file
    #[arg(long)]
    pub body: Option<String>,
    /// A request header, `Name: value` (repeatable)
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// A request without an answer after this long counts as a timeout
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub timeout: Duration,
    /// Exit 1 when one is breached, e.g. 'p95<300ms,errors<1%'
    #[arg(long, value_name = "LIST")]
    pub threshold: Option<String>,
    /// Also allow this host, which is not the stack's own (repeatable)
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Show past releases, newest first
    History {
        /// How many releases
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
    /// Redeploy the previous good release (or the one named)
    Rollback {
        /// Release id
        release: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(subcommand)]
    pub command: LockCommand,
}

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Show who holds the operation lock (operation, user, host, pid, since)
    Status,
    /// Free the lock whatever holds it, when its holder cannot be checked from here
    Release {
        /// Required: freeing a lock that a live operation holds lets a second one start
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Print what would go and the space it would free; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Remove without asking (needed when not on a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub lock: WaitArgs,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: NotifyCommand,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message to every configured channel; exit 1 naming those that failed
    Test,
}

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// How long a heal waits for another operation (deploy, restore, backup) to end
    #[arg(long, value_parser = duration, value_name = "DUR", default_value = "30m")]
    pub wait: Duration,
}

#[derive(Debug, Args)]
pub struct IncidentsArgs {
    #[command(subcommand)]
    pub command: Option<IncidentsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// Print one incident report (Markdown; --json for the record)
    Show {
        /// The incident's id, as `incidents` lists it
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn file_flag_before_the_command_and_follow_after_it() {
        let cli = Cli::try_parse_from(["pricescan-ctl", "-f", "x.yml", "logs", "-f"]).unwrap();
        assert_eq!(cli.global.file, PathBuf::from("x.yml"));
        assert!(matches!(
            cli.command,
            Command::Logs(LogsArgs { follow: true, .. })
        ));
        let cli = Cli::try_parse_from(["pricescan-ctl", "status", "--json", "-s", "api"]).unwrap();
        assert!(cli.global.json);
    }
}
