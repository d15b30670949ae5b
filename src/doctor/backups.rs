//! Backups against their schedule: the newest one's age, the last deep verification, the
//! off-site copy, room for the next one, and the cron entry or systemd timer that runs it.

use super::finding::Finding;
use crate::backup::catalog::{self, OnDisk, backup_root};
use crate::engine::Engine;
use crate::output::human_bytes;
use crate::stack::Project;
use crate::sys::fsutil;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use std::path::{Path, PathBuf};

const CHECK: &str = "backups";
/// How long after its scheduled time the nightly backup may take to appear.
const GRACE: Duration = Duration::hours(1);
const DEEP_VERIFY_AGE: Duration = Duration::days(7);
/// Longest wait for the off-site listing: doctor answers in about a second.
const REMOTE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

pub async fn check(engine: &Engine, project: &Project) -> Vec<Finding> {
    let all = match catalog::list(&backup_root(project)) {
        Ok(all) => all,
        Err(e) => return vec![Finding::fail(CHECK, e.what, "check BACKUP_DIR in .env.prod")],
    };
    let complete: Vec<&OnDisk> = all.iter().filter(|b| b.manifest.is_some()).collect();
    let newest = complete.iter().max_by(|a, b| a.id.cmp(&b.id)).copied();
    let (hour, minute) = schedule_time(project);
    let finished = newest.and_then(finished_at);
    let mut found = vec![
        age(
            newest.map(|b| b.id.as_str()).zip(finished),
            Utc::now(),
            hour,
            minute,
        ),
        deep_verified(&complete, Utc::now()),
    ];
    let (offsite, data_root) = tokio::join!(offsite(project, newest), data_root(engine));
    found.extend(offsite);
    found.push(disk(&backup_root(project), newest.map_or(0, |b| b.size)));
    found.push(data_root);
    found.push(scheduled(project));
    found
}

fn schedule_time(project: &Project) -> (u32, u32) {
    let get = |k: &str, d: u32| {
        project
            .env
            .get(k)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(d)
    };
    (get("BACKUP_SCHEDULE_HOUR", 2), get("BACKUP_SCHEDULE_MINUTE", 15))
}

fn finished_at(b: &OnDisk) -> Option<DateTime<Utc>> {
    let m = b.manifest.as_ref()?;
    DateTime::parse_from_rfc3339(&m.finished_at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The newest scheduled run at or before `now` (the nightly runs daily at hour:minute UTC).
pub fn last_due(now: DateTime<Utc>, hour: u32, minute: u32) -> DateTime<Utc> {
    let at = NaiveTime::from_hms_opt(hour.min(23), minute.min(59), 0).unwrap_or_default();
    let today = now.date_naive().and_time(at).and_utc();
    if today <= now {
        today
    } else {
        today - Duration::days(1)
    }
}

/// The newest backup (id, finished) against the nightly schedule.
pub fn age(newest: Option<(&str, DateTime<Utc>)>, now: DateTime<Utc>, hour: u32, minute: u32) -> Finding {
    let Some((id, finished)) = newest else {
        return Finding::fail(
            CHECK,
            "there is no backup",
            "`pricescan-ctl backup`, and install the schedule (below)",
        );
    };
    let ago = crate::output::human_age((now - finished).num_seconds().max(0) as u64);
    let due = last_due(now, hour, minute);
    if finished < due && now - due > GRACE {
        return Finding::fail(
            CHECK,
            format!(
                "the newest backup, {id}, is {ago} old: the nightly run at {hour:02}:{minute:02} UTC made none since"
            ),
            "see why the scheduled run failed (cron mail, `journalctl -u pricescan-backup`), then `pricescan-ctl backup`",
        )
        .care();
    }
    Finding::ok(CHECK, format!("the newest backup, {id}, is {ago} old")).care()
}

fn deep_verified(complete: &[&OnDisk], now: DateTime<Utc>) -> Finding {
    let last = complete
        .iter()
        .filter_map(|b| b.manifest.as_ref()?.deep_verified_at.as_deref())
        .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .max();
    let fix = "`pricescan-ctl backup verify --deep` loads the newest dump into a throwaway MySQL";
    match last {
        None => Finding::warn(
            CHECK,
            "no backup was ever restored into a throwaway MySQL to prove it",
            fix,
        ),
        Some(t) if now - t > DEEP_VERIFY_AGE => Finding::warn(
            CHECK,
            format!(
                "the last deep verification was {} ago",
                crate::output::human_age((now - t).num_seconds() as u64)
            ),
            fix,
        ),
        Some(t) => Finding::ok(
            CHECK,
            format!("a deep verification passed on {}", t.format("%Y-%m-%d %H:%M UTC")),
        ),
    }
}

async fn offsite(project: &Project, newest: Option<&OnDisk>) -> Option<Finding> {
    let remote = match crate::backup::offsite::open(project) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            return Some(Finding::fail(
                CHECK,
                e.what,
                "correct the BACKUP_REMOTE_* settings in .env.prod",
            ));
        }
    };
    let listed = match tokio::time::timeout(REMOTE_WAIT, remote.backups()).await {
        Ok(Ok(listed)) => listed,
        Ok(Err(e)) => {
            return Some(Finding::fail(
                CHECK,
                format!("off-site: {}", e.what),
                "check the storage server and the BACKUP_REMOTE_* credentials",
            ));
        }
        Err(_) => {
            return Some(Finding::fail(
                CHECK,
                format!(
                    "off-site: {} gave no answer within {}s",
                    remote.location(),
                    REMOTE_WAIT.as_secs()
                ),
                "check the storage server and the network to it",
            ));
        }
    };
    let newest = newest?;
    Some(match listed.iter().any(|r| r.complete && r.id == newest.id) {
        true => Finding::ok(
            CHECK,
            format!(
                "the newest backup, {}, is off-site at {}",
                newest.id,
                remote.location()
            ),
        ),
        false => Finding::warn(
            CHECK,
            format!("the newest backup, {}, is not off-site", newest.id),
            format!("`pricescan-ctl backup push {}`", newest.id),
        ),
    })
}

/// Room for the next backup: twice the last one's size, in BACKUP_DIR.
fn disk(root: &Path, last_size: u64) -> Finding {
    let probe = nearest_existing(root);
    let free = match fsutil::free_space(&probe) {
        Ok(f) => f,
        Err(e) => return Finding::warn("disk", e.what, "check BACKUP_DIR"),
    };
    let need = last_size.saturating_mul(2);
    let what = format!(
        "{} free for backups at {}; the last backup took {}",
        human_bytes(free),
        root.display(),
        human_bytes(last_size)
    );
    match free < need {
        true => Finding::fail(
            "disk",
            format!("only {what}"),
            "free space there (`pricescan-ctl cleanup`, `backup prune`), or move BACKUP_DIR",
        ),
        false => Finding::ok("disk", what),
    }
}

fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// The engine's data root, when the engine runs on this machine: under 10% free fails.
async fn data_root(engine: &Engine) -> Finding {
    if engine.is_remote() {
        return Finding::ok(
            "disk",
            "the engine runs on another machine: its disk is checked there",
        );
    }
    let root = match engine.data_root().await {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => {
            return Finding::warn(
                "disk",
                "the engine did not say where its data root is",
                "`docker info`",
            );
        }
        Err(e) => return Finding::warn("disk", e.what, "`docker info`"),
    };
    match fsutil::space(Path::new(&root)) {
        Ok((free, total)) if free.saturating_mul(10) < total => Finding::fail(
            "disk",
            format!(
                "the engine's data root {root} has {} free of {}",
                human_bytes(free),
                human_bytes(total)
            ),
            "`pricescan-ctl cleanup` frees old release images and build cache",
        )
        .care(),
        Ok((free, total)) => Finding::ok(
            "disk",
            format!(
                "the engine's data root {root} has {} free of {}",
                human_bytes(free),
                human_bytes(total)
            ),
        ),
        Err(e) => Finding::warn("disk", e.what, "run doctor on the engine's machine"),
    }
}

/// Where cron and systemd keep what they run.
const SCHEDULERS: [&str; 4] = [
    "/etc/cron.d",
    "/var/spool/cron/crontabs",
    "/etc/systemd/system",
    "/etc/crontab",
];

/// A cron entry or systemd unit that runs this project's backup.
fn scheduled(project: &Project) -> Finding {
    let dir = project.dir.display().to_string();
    let runs_ours = |text: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.contains(&dir) && l.contains(" backup"))
    };
    let found = SCHEDULERS
        .iter()
        .flat_map(|s| files_in(Path::new(s)))
        .find(|f| std::fs::read_to_string(f).is_ok_and(|t| runs_ours(&t)));
    match found {
        Some(f) => Finding::ok("schedule", format!("{} runs the nightly backup", f.display())),
        None => Finding::warn(
            "schedule",
            format!("no cron entry or systemd unit runs `pricescan-ctl backup` in {dir}"),
            "`cp config/cron/pricescan-backup /etc/cron.d/`, or install config/systemd/pricescan-backup.{service,timer} and `systemctl enable --now pricescan-backup.timer`",
        ),
    }
}

fn files_in(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    std::fs::read_dir(path)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::finding::Level;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_last_due_run_is_today_or_yesterday() {
        assert_eq!(
            last_due(at("2026-11-26T03:00:00Z"), 2, 15),
            at("2026-11-26T02:15:00Z")
        );
        assert_eq!(
            last_due(at("2026-11-26T01:00:00Z"), 2, 15),
            at("2026-11-25T02:15:00Z")
        );
    }

    #[test]
    fn a_backup_older_than_the_last_run_fails_after_the_grace() {
        let now = at("2026-11-26T04:00:00Z");
        let before = Some(("a", at("2026-11-25T02:20:00Z")));
        assert_eq!(age(before, now, 2, 15).status, Level::Fail);
        // The run is due but still within its grace.
        assert_eq!(age(before, at("2026-11-26T02:40:00Z"), 2, 15).status, Level::Ok);
        assert_eq!(
            age(Some(("b", at("2026-11-26T02:30:00Z"))), now, 2, 15).status,
            Level::Ok
        );
        assert_eq!(age(None, now, 2, 15).status, Level::Fail);
    }
}
