//! Point-in-time recovery's settings and targets (DESIGN §13): the BACKUP_PITR switch, and
//! what `restore --to TIME` and `--to-position FILE:POS` mean. Pure: nothing here reads a
//! binary log.

use super::environment::Environment;
use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};

/// The compose profile of the archiver service, enabled by BACKUP_PITR.
pub const PROFILE: &str = "pitr";
/// The archiver service, and the volume it writes.
pub const ARCHIVER_SERVICE: &str = "pricescan-binlog";
pub const ARCHIVE_VOLUME: &str = "binlog-archive";
/// Where the archive volume is mounted in the archiver.
pub const ARCHIVE_DIR: &str = "/archive";
/// Where the archive's chunks live in the bucket, beside the backups.
pub const REMOTE_DIR: &str = "binlog";

/// BACKUP_PITR: on unless it says false (new setups write true).
pub fn enabled(env: &Environment) -> bool {
    !matches!(
        env.get("BACKUP_PITR")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str(),
        "false" | "0" | "no" | "off" | ""
    )
}

/// A place in the binary log: a file and a byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl Position {
    /// The file's sequence number: `mysql-bin.000042` is 42.
    pub fn sequence(&self) -> Option<u64> {
        sequence(&self.file)
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// The sequence number a binary log file's name ends with.
pub fn sequence(file: &str) -> Option<u64> {
    let (_, n) = file.rsplit_once('.')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

/// `FILE:POS`, as `--to-position` takes it.
pub fn parse_position(text: &str) -> Result<Position, String> {
    let (file, pos) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} is not FILE:POS (for example mysql-bin.000012:4711)"))?;
    let pos: u64 = pos
        .parse()
        .map_err(|_| format!("{pos:?} is not a byte position (a whole number)"))?;
    let plain = file
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !plain || sequence(file).is_none() {
        return Err(format!(
            "{file:?} is not a binary log file name (for example mysql-bin.000012)"
        ));
    }
    if pos < 4 {
        return Err(format!(
            "position {pos} is inside the file's header; events start at 4"
        ));
    }
    Ok(Position {
        file: file.to_string(),
        pos,
    })
}

/// `--to TIME`: RFC 3339, or `YYYY-MM-DD HH:MM:SS` in this server's local zone. Binary log
/// events carry whole seconds, so a fraction is dropped: the restore keeps every event
/// stamped at or before that second.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else {
        let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .ok_or_else(|| {
                format!("{text:?} is not a time: use RFC 3339 (2026-12-07T14:03:00Z) or YYYY-MM-DD HH:MM:SS")
            })?;
        Local
            .from_local_datetime(&naive)
            .earliest()
            .ok_or_else(|| format!("{text:?} does not exist in this server's time zone"))?
            .with_timezone(&Utc)
    };
    Ok(DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at))
}

/// `--since`: a duration (`10m`: that long ago) or a time as `parse_time` takes it.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match super::units::parse_human_duration(text) {
        Ok(d) => Ok(now - chrono::Duration::seconds(d.as_secs() as i64)),
        Err(e) if e.contains("limit") => Err(e),
        Err(_) => parse_time(text),
    }
}

/// What a point-in-time restore rolls forward to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every event stamped at or before this second.
    Time(DateTime<Utc>),
    /// Every event that begins before this position.
    Position(Position),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Time(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%SZ")),
            Target::Position(p) => write!(f, "position {p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let p = parse_position("mysql-bin.000012:4711").unwrap();
        assert_eq!(
            (p.file.as_str(), p.pos, p.sequence()),
            ("mysql-bin.000012", 4711, Some(12))
        );
        assert!(parse_position("mysql-bin.000012").is_err());
        assert!(parse_position("mysql-bin.000012:x").is_err());
        assert!(parse_position("mysql-bin:40").is_err());
        assert!(parse_position("../etc/passwd.1:40").is_err());
        assert!(parse_position("mysql-bin.000001:3").is_err());
        assert!(parse_position(":").is_err());
    }

    #[test]
    fn times() {
        let t = parse_time("2026-12-07T14:03:05.75+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-07T13:03:05+00:00");
        assert!(parse_time("2026-12-07 14:03:05").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-07 14:03:05").is_err());
    }

    #[test]
    fn the_switch() {
        let env = |v: &str| {
            Environment::parse(std::path::Path::new(".env"), &format!("BACKUP_PITR={v}\n")).unwrap()
        };
        assert!(enabled(&env("true")));
        assert!(!enabled(&env("false")));
        assert!(!enabled(&env("")));
        assert_eq!(sequence("mysql-bin.000042"), Some(42));
        assert_eq!(sequence("mysql-bin.index"), None);
    }
}
