//! Choosing what a point-in-time restore starts from (DESIGN §13): the newest backup whose
//! snapshot lies before the target, and the refusals that come before anything changes: a
//! target in the future or before every backup, a named backup newer than the target, and a
//! restore in between (its load is not in the archive, so a replay across it would be wrong).
//! Pure: the caller lists the backups.

use crate::backup::catalog::{DUMP_FILE, OnDisk};
use crate::backup::coordinates::Coordinates;
use crate::error::{CtlError, Result};
use crate::stack::pitr::{Position, Target};
use chrono::{DateTime, Utc};

/// When a backup's snapshot was known to be taken, to the second.
fn snapshot_at(c: &Coordinates) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(&c.seen_at).ok()?.with_timezone(&Utc);
    DateTime::from_timestamp(t.timestamp(), 0)
}

fn coordinates(b: &OnDisk) -> Option<&Coordinates> {
    let m = b.manifest.as_ref()?;
    m.files.iter().any(|f| f.name == DUMP_FILE).then_some(())?;
    m.binlog.as_ref()
}

/// Whether backup `b` was taken before `target`, so that replaying forward reaches it.
fn before(b: &OnDisk, target: &Target) -> bool {
    let Some(c) = coordinates(b) else {
        return false;
    };
    match target {
        Target::Time(t) => snapshot_at(c).is_some_and(|s| s <= *t),
        Target::Position(p) => {
            let at = c.position();
            (at.sequence(), at.pos) <= (p.sequence(), p.pos)
        }
    }
}

/// The backup to roll forward from: `named`, or the newest one before the target.
pub fn choose<'a>(
    backups: &'a [OnDisk],
    target: &Target,
    named: Option<&str>,
    now: DateTime<Utc>,
) -> Result<&'a OnDisk> {
    if let Target::Time(t) = target
        && *t > now
    {
        return Err(CtlError::usage(format!(
            "{} is in the future (it is {} now); nothing was changed",
            target,
            now.format("%Y-%m-%dT%H:%M:%SZ")
        )));
    }
    if let Some(id) = named {
        let b = backups
            .iter()
            .find(|b| b.id == id && b.manifest.is_some())
            .ok_or_else(|| {
                CtlError::usage(format!("no backup {id}"))
                    .hint("`pricescan-ctl backup list` shows the backups")
            })?;
        if coordinates(b).is_none() {
            return Err(CtlError::usage(format!(
                "backup {id} does not record its place in the binary log, so nothing can be replayed on it"
            ))
            .hint("pick a backup taken with the binary log on, or leave the id out"));
        }
        return match before(b, target) {
            true => Ok(b),
            false => Err(
                CtlError::usage(format!("backup {id} is newer than {target}; nothing was changed"))
                    .hint("leave the id out to use the newest backup before the target"),
            ),
        };
    }
    let usable: Vec<&OnDisk> = backups.iter().filter(|b| coordinates(b).is_some()).collect();
    usable
        .iter()
        .rev()
        .find(|b| before(b, target))
        .copied()
        .ok_or_else(|| {
            let oldest = usable
                .first()
                .map(|b| format!("the oldest backup that can be rolled forward is {}", b.id))
                .unwrap_or_else(|| "no backup records its place in the binary log yet".into());
            CtlError::usage(format!("{target} is before every backup; nothing was changed"))
                .cause(oldest)
                .hint("pick a later time, or restore a backup as it is with `pricescan-ctl restore ID`")
        })
}

/// A restore between the base backup and the target breaks the chain: its pre-restore
/// backup marks the moment, since a restore takes one first (so a pre-restore backup is a
/// base only for its own second).
pub fn check_no_restore_between(backups: &[OnDisk], base: &OnDisk, target: &Target) -> Result<()> {
    let Some(from) = coordinates(base).and_then(snapshot_at) else {
        return Ok(());
    };
    let crossed = backups.iter().find(|b| {
        if b.manifest.as_ref().is_none_or(|m| m.reason != "pre-restore") {
            return false;
        }
        let Some(at) = coordinates(b).and_then(snapshot_at) else {
            return false;
        };
        at >= from
            && match target {
                Target::Time(t) => at <= *t,
                Target::Position(p) => coordinates(b).is_some_and(|c| c.position() <= *p),
            }
    });
    match crossed {
        None => Ok(()),
        Some(b) => Err(CtlError::failure(format!(
            "a restore ran between backup {} and {target} (its pre-restore backup is {})",
            base.id, b.id
        ))
        .cause("the data a restore loads is not in the binary log, so a replay across it would be wrong")
        .hint(format!(
            "restore to a time before {}, or roll forward from a backup taken after that restore",
            b.id
        ))),
    }
}

/// The stop of a time target as mysqlbinlog takes it (UTC): the first second not replayed.
pub fn stop_datetime(t: &DateTime<Utc>) -> String {
    (*t + chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A position target must lie inside an archived file.
pub fn check_position(p: &Position, size_of_file: Option<u64>) -> Result<()> {
    match size_of_file {
        None => Err(CtlError::usage(format!(
            "{} is not in the binlog archive; nothing was changed",
            p.file
        ))
        .hint("`pricescan-ctl backup events` lists the archived positions")),
        Some(size) if p.pos > size => Err(CtlError::usage(format!(
            "position {p} does not exist: {} holds {size} bytes; nothing was changed",
            p.file
        ))
        .hint("`pricescan-ctl backup events` lists the archived positions")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::catalog::{FileEntry, Manifest};
    use std::collections::BTreeMap;

    fn backup(id: &str, reason: &str, file: &str, pos: u64, seen: &str) -> OnDisk {
        OnDisk {
            id: id.into(),
            path: id.into(),
            partial: false,
            size: 1,
            manifest: Some(Manifest {
                id: id.into(),
                reason: reason.into(),
                project: "p".into(),
                status: "complete".into(),
                started_at: seen.into(),
                finished_at: seen.into(),
                duration_s: 0.0,
                tool_version: "0".into(),
                database: Some("db".into()),
                mysql_version: None,
                redis_version: None,
                images: BTreeMap::new(),
                dump_flags: Vec::new(),
                files: vec![FileEntry {
                    name: DUMP_FILE.into(),
                    size: 1,
                    sha256: String::new(),
                }],
                row_counts: BTreeMap::new(),
                verified_at: None,
                deep_verified_at: None,
                binlog: Some(Coordinates {
                    file: file.into(),
                    pos,
                    gtid: None,
                    seen_at: seen.into(),
                    head: None,
                }),
            }),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_newest_backup_before_the_target() {
        let all = [
            backup("a", "nightly", "m.000001", 100, "2026-12-07T10:00:00.5Z"),
            backup("b", "manual", "m.000002", 50, "2026-12-07T11:00:00Z"),
        ];
        let now = at("2026-12-07T12:00:00Z");
        assert_eq!(
            choose(&all, &Target::Time(at("2026-12-07T10:59:59Z")), None, now)
                .unwrap()
                .id,
            "a"
        );
        assert_eq!(
            choose(&all, &Target::Time(at("2026-12-07T10:00:00Z")), None, now)
                .unwrap()
                .id,
            "a"
        );
        assert_eq!(
            choose(&all, &Target::Time(at("2026-12-07T11:30:00Z")), None, now)
                .unwrap()
                .id,
            "b"
        );
        let e = choose(&all, &Target::Time(at("2026-12-07T09:00:00Z")), None, now).unwrap_err();
        assert!(
            e.causes
                .iter()
                .any(|c| c.contains("oldest backup that can be rolled forward is a"))
        );
        let future = choose(&all, &Target::Time(at("2026-12-07T12:00:01Z")), None, now).unwrap_err();
        assert!(future.what.contains("in the future"));
        let named = choose(&all, &Target::Time(at("2026-12-07T10:30:00Z")), Some("b"), now).unwrap_err();
        assert!(named.what.contains("newer than"));
        let p = Target::Position(Position {
            file: "m.000002".into(),
            pos: 49,
        });
        assert_eq!(choose(&all, &p, None, now).unwrap().id, "a");
    }

    #[test]
    fn a_restore_in_between_is_refused() {
        let all = [
            backup("a", "nightly", "m.000001", 100, "2026-12-07T10:00:00Z"),
            backup("r", "pre-restore", "m.000001", 900, "2026-12-07T10:30:00Z"),
        ];
        let base = &all[0];
        assert!(check_no_restore_between(&all, base, &Target::Time(at("2026-12-07T10:29:00Z"))).is_ok());
        assert!(check_no_restore_between(&all, base, &Target::Time(at("2026-12-07T10:31:00Z"))).is_err());
        assert_eq!(stop_datetime(&at("2026-12-07T10:29:59Z")), "2026-12-07 10:30:00");
    }
}
