//! The binlog archive (DESIGN §13) as the rest of pricescan-ctl sees it: the replication
//! user that the archiver logs in as, and reading the archive that `pricescan-binlog` writes
//! (its files, their continuity, the gaps it recorded). The archiver itself is MySQL's own
//! `mysqlbinlog`, run by `config/binlog/archive.sh` in its container.

use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::stack::pitr::{ARCHIVE_DIR, Position, sequence};
use std::time::Duration;

/// How long listing or reading the archive's index may take.
const LIST_DEADLINE: Duration = Duration::from_secs(30);

/// Creates the archiver's user (or sets its password) on a running MySQL, as the initdb
/// script does on a new one; false when it could already log in with that password. The
/// password goes to the container on stdin, never in argv.
pub async fn ensure_replication_user(
    engine: &Engine,
    mysql: &str,
    user: &str,
    password: &str,
) -> Result<bool> {
    let plain = !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return Err(CtlError::usage(format!(
            "BINLOG_USER {user:?} must be letters, digits and _ only"
        )));
    }
    let login = format!(
        "read -r pw; MYSQL_PWD=\"$pw\" exec mysql -u'{user}' -h127.0.0.1 -N -B -e 'SHOW GRANTS' 2>/dev/null"
    );
    let (code, grants, _) = engine
        .exec_with_input(
            mysql,
            &["sh", "-c", &login],
            std::io::Cursor::new(format!("{password}\n")),
            |_| {},
        )
        .await?;
    if code == 0 && grants.contains("REPLICATION SLAVE") {
        return Ok(false);
    }
    let pw = password.replace('\\', "\\\\").replace('\'', "''");
    let sql = format!(
        "CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{pw}';\n\
         ALTER USER '{user}'@'%' IDENTIFIED BY '{pw}';\n\
         GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%';\n"
    );
    let script = crate::backup::root_sql::ROOT_CLIENT_EXEC;
    let (code, _, stderr) = engine
        .exec_with_input(
            mysql,
            &["sh", "-c", script],
            std::io::Cursor::new(sql.into_bytes()),
            |_| {},
        )
        .await?;
    match code {
        0 => Ok(true),
        _ => {
            Err(CtlError::failure(format!("cannot create the replication user {user}")).cause(stderr.trim()))
        }
    }
}

/// One archived binary log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedFile {
    pub name: String,
    pub size: u64,
}

/// What the archive holds: its files in sequence order, and the gaps the archiver recorded.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    pub files: Vec<ArchivedFile>,
    pub gaps: Vec<String>,
    /// Where the files are in the archiver's container: the live archive, or copies pulled
    /// from off-site for a restore.
    pub dir: String,
}

impl Archive {
    /// Parses `ls -ln`-like lines of `SIZE NAME`, and the GAPS file's lines.
    pub fn parse(listing: &str, gaps: &str) -> Self {
        let mut files: Vec<ArchivedFile> = listing
            .lines()
            .filter_map(|l| {
                let (size, name) = l.trim().split_once(' ')?;
                sequence(name)?;
                Some(ArchivedFile {
                    name: name.to_string(),
                    size: size.parse().ok()?,
                })
            })
            .collect();
        files.sort_by_key(|f| sequence(&f.name));
        let gaps = gaps
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        Self {
            files,
            gaps,
            dir: ARCHIVE_DIR.to_string(),
        }
    }

    /// The files to replay from `from` up to `to` (inclusive), in order; an error names what
    /// is missing when the sequence has a hole, or the archiver recorded a gap in between.
    pub fn span(&self, from: &Position, to: Option<&Position>) -> Result<Vec<&ArchivedFile>> {
        let first = from.sequence().unwrap_or(0);
        let last = to.and_then(Position::sequence).unwrap_or(u64::MAX);
        let files: Vec<&ArchivedFile> = self
            .files
            .iter()
            .filter(|f| sequence(&f.name).is_some_and(|n| n >= first && n <= last))
            .collect();
        let missing = |what: String| {
            CtlError::failure(format!("the binlog archive has a gap: {what}"))
                .hint("restore to a time before the gap, or from a backup taken after it")
        };
        match files.first() {
            Some(f) if f.name == from.file => {}
            _ => {
                return Err(missing(format!(
                    "{} (where the backup starts) is not archived",
                    from.file
                )));
            }
        }
        for pair in files.windows(2) {
            let (a, b) = (sequence(&pair[0].name), sequence(&pair[1].name));
            if a.zip(b).is_some_and(|(a, b)| b != a + 1) {
                return Err(missing(format!(
                    "nothing between {} and {}",
                    pair[0].name, pair[1].name
                )));
            }
        }
        if let Some(gap) = self.gaps.iter().find(|g| {
            files
                .iter()
                .skip(1)
                .any(|f| g.contains(&format!("resumed at {}", f.name)))
        }) {
            return Err(missing(gap.clone()));
        }
        Ok(files)
    }
}

/// Archived files no kept backup needs: those before the file where the oldest of them
/// (`from`) starts rolling forward. None without such a backup: then nothing is expendable.
pub fn expendable<'a>(archive: &'a Archive, from: Option<&Position>) -> Vec<&'a ArchivedFile> {
    let Some(first) = from.and_then(Position::sequence) else {
        return Vec::new();
    };
    archive
        .files
        .iter()
        .filter(|f| sequence(&f.name).is_some_and(|n| n < first))
        .collect()
}

/// Removes archived files by name (names checked by `sequence`, so nothing else can go).
pub async fn remove(engine: &Engine, archiver: &str, files: &[&ArchivedFile]) -> Result<()> {
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| {
            sequence(n).is_some() && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let script = format!("cd {ARCHIVE_DIR} && rm -f -- {}", names.join(" "));
    let out = engine
        .exec_within(archiver, &["sh", "-c", &script], LIST_DEADLINE)
        .await?;
    match out.exit_code {
        0 => Ok(()),
        _ => {
            Err(CtlError::failure("cannot remove old files from the binlog archive").cause(out.stderr.trim()))
        }
    }
}

/// Where the archiver sets the archive aside when MySQL's binary log starts over.
pub const EARLIER_DIR: &str = "/archive/earlier";

/// An archive set aside: its directory, and when (UTC, from its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    pub dir: String,
    pub until: chrono::DateTime<chrono::Utc>,
}

/// The archives set aside, newest first.
pub async fn earlier(engine: &Engine, archiver: &str) -> Result<Vec<Earlier>> {
    let script = format!("ls -1 {EARLIER_DIR} 2>/dev/null || true");
    let out = engine
        .exec_within(archiver, &["sh", "-c", &script], LIST_DEADLINE)
        .await?;
    let mut found: Vec<Earlier> = out.stdout.lines().filter_map(parse_earlier).collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.until));
    Ok(found)
}

fn parse_earlier(name: &str) -> Option<Earlier> {
    let until = chrono::NaiveDateTime::parse_from_str(name.trim(), "%Y%m%dT%H%M%SZ").ok()?;
    Some(Earlier {
        dir: format!("{EARLIER_DIR}/{}", name.trim()),
        until: until.and_utc(),
    })
}

/// The archives set aside that no kept backup needs: every one set aside before the oldest
/// kept backup was taken (a backup needs only the history it was taken in, and what came
/// after).
pub fn expendable_earlier(
    earlier: &[Earlier],
    oldest_kept: Option<chrono::DateTime<chrono::Utc>>,
) -> Vec<Earlier> {
    let Some(oldest) = oldest_kept else {
        return Vec::new();
    };
    earlier.iter().filter(|e| e.until < oldest).cloned().collect()
}

/// Removes archives set aside (their names checked by `parse_earlier`).
pub async fn remove_earlier(engine: &Engine, archiver: &str, gone: &[Earlier]) -> Result<()> {
    for e in gone {
        let name = e.dir.trim_start_matches(EARLIER_DIR).trim_start_matches('/');
        if parse_earlier(name).is_none() {
            continue;
        }
        let out = engine
            .exec_within(archiver, &["rm", "-rf", "--", &e.dir], LIST_DEADLINE)
            .await?;
        if out.exit_code != 0 {
            return Err(CtlError::failure(format!("cannot remove {}", e.dir)).cause(out.stderr.trim()));
        }
    }
    Ok(())
}

/// Lists the live archive in the archiver's container.
pub async fn list(engine: &Engine, archiver: &str) -> Result<Archive> {
    list_in(engine, archiver, ARCHIVE_DIR).await
}

/// Lists the binlog files in `dir` of the archiver's container.
pub async fn list_in(engine: &Engine, archiver: &str, dir: &str) -> Result<Archive> {
    let script = format!(
        "cd {dir} && for f in *; do [ -f \"$f\" ] && echo \"$(wc -c < \"$f\") $f\"; done; echo '--'; cat GAPS 2>/dev/null || true"
    );
    let out = engine
        .exec_within(archiver, &["sh", "-c", &script], LIST_DEADLINE)
        .await?;
    if out.exit_code != 0 {
        return Err(CtlError::failure("cannot list the binlog archive").cause(out.stderr.trim()));
    }
    let (listing, gaps) = out.stdout.split_once("--\n").unwrap_or((&out.stdout, ""));
    Ok(Archive {
        dir: dir.to_string(),
        ..Archive::parse(listing, gaps)
    })
}

/// Where the live server's binary log stands now, when MySQL answers.
pub async fn server_position(engine: &Engine, mysql: &str) -> Option<Position> {
    let script = &crate::backup::root_sql::query("SHOW MASTER STATUS");
    let out = engine
        .exec_within(mysql, &["sh", "-c", script], LIST_DEADLINE)
        .await
        .ok()?;
    let mut cols = out.stdout.split_whitespace();
    Some(Position {
        file: cols.next()?.to_string(),
        pos: cols.next()?.parse().ok()?,
    })
}

/// How many bytes of the server's binary log the archive lacks (at least, when it is a
/// file or more behind); None when the server cannot say.
pub async fn lag(engine: &Engine, mysql: &str, archive: &Archive) -> Option<u64> {
    let server = server_position(engine, mysql).await?;
    Some(match archive.files.last() {
        Some(f) if f.name == server.file => server.pos.saturating_sub(f.size),
        _ => server.pos.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_set_aside_goes_once_every_kept_backup_is_younger() {
        let e = parse_earlier("20261207T101500Z").unwrap();
        assert_eq!(e.dir, "/archive/earlier/20261207T101500Z");
        assert!(parse_earlier("../etc").is_none() && parse_earlier("x").is_none());
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let all = [e.clone()];
        assert!(expendable_earlier(&all, Some(at("2026-12-07T10:14:00Z"))).is_empty());
        assert_eq!(expendable_earlier(&all, Some(at("2026-12-07T10:16:00Z"))), [e]);
        assert!(
            expendable_earlier(&all, None).is_empty(),
            "no kept backup: nothing goes"
        );
    }

    fn pos(file: &str) -> Position {
        Position {
            file: file.into(),
            pos: 4,
        }
    }

    #[test]
    fn a_continuous_span() {
        let a = Archive::parse(
            "100 mysql-bin.000002\n50 mysql-bin.000003\n9 mysql-bin.index\n70 mysql-bin.000001\n",
            "",
        );
        let names: Vec<&str> = a
            .span(&pos("mysql-bin.000002"), None)
            .unwrap()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["mysql-bin.000002", "mysql-bin.000003"]);
        let to = pos("mysql-bin.000002");
        assert_eq!(a.span(&pos("mysql-bin.000001"), Some(&to)).unwrap().len(), 2);
    }

    #[test]
    fn only_files_before_the_oldest_kept_backup_are_expendable() {
        let a = Archive::parse("1 mysql-bin.000001\n1 mysql-bin.000002\n1 mysql-bin.000003\n", "");
        let gone: Vec<&str> = expendable(&a, Some(&pos("mysql-bin.000002")))
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(gone, ["mysql-bin.000001"]);
        assert!(expendable(&a, None).is_empty());
    }

    #[test]
    fn holes_and_recorded_gaps_are_refused() {
        let a = Archive::parse("1 mysql-bin.000001\n1 mysql-bin.000003\n", "");
        let e = a.span(&pos("mysql-bin.000001"), None).unwrap_err();
        assert!(
            e.what.contains("between mysql-bin.000001 and mysql-bin.000003"),
            "{}",
            e.what
        );
        assert!(a.span(&pos("mysql-bin.000002"), None).is_err());
        let g = Archive::parse(
            "1 mysql-bin.000001\n1 mysql-bin.000002\n",
            "2026-12-07T10:00:00Z after mysql-bin.000001: the server no longer had it; resumed at mysql-bin.000002\n",
        );
        assert!(g.span(&pos("mysql-bin.000001"), None).is_err());
        assert!(g.span(&pos("mysql-bin.000002"), None).is_ok());
    }
}
