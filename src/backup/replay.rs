//! Replaying the binlog archive into the shadow schema (DESIGN §13). MySQL's own mysqlbinlog
//! decodes the archived files in the archiver's container; its output streams through
//! pricescan-ctl into `mysql` in the MySQL container, with the database renamed to the
//! shadow and the replay kept out of the binary log. Memory stays flat: bytes pass in the
//! engine's chunks. The replay is bounded by the last complete event the archive holds, so a
//! file still being written never ends it in the middle of an event.

use crate::backup::binlog::{self, Archive};
use crate::backup::coordinates::Coordinates;
use crate::backup::pitr_plan::{check_position, stop_datetime};
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::stack::pitr::{Position, Target};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures_util::StreamExt;
use std::time::Duration;

use crate::backup::root_sql::ROOT_PWD as ROOT;

/// What one replay will do, settled before anything changes.
#[derive(Debug, Clone)]
pub struct Replay {
    pub archiver: String,
    /// Where the files are in the archiver's container.
    pub dir: String,
    pub files: Vec<String>,
    pub start: Position,
    /// The end: the target's position, or the archive's last complete event.
    pub stop: Position,
    /// The first second not replayed, for a time target.
    pub stop_datetime: Option<String>,
    /// MySQL's mysqlbinlog applies --database after --rewrite-db; MariaDB's before.
    pub filter_renamed: bool,
    pub bytes: u64,
}

/// The archive's last complete event: where it ends, and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastEvent {
    pub end: Position,
    pub at: DateTime<Utc>,
}

/// Reads mysqlbinlog's event headers (`#261207 15:29:41 server id 1  end_log_pos 913 ...`,
/// in UTC) for the last one.
pub fn last_event(file: &str, headers: &str) -> Option<LastEvent> {
    last_event_within(file, headers, u64::MAX)
}

/// The last event in `headers` that ends at or before `limit`.
pub fn last_event_within(file: &str, headers: &str, limit: u64) -> Option<LastEvent> {
    headers
        .lines()
        .rev()
        .filter_map(|l| header(file, l))
        .find(|e| e.end.pos <= limit)
}

fn header(file: &str, line: &str) -> Option<LastEvent> {
    let (_, after) = line.split_once("end_log_pos")?;
    let mut words = line.trim_start_matches('#').split_whitespace();
    let (date, time) = (words.next()?, words.next()?);
    let at = NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%y%m%d %H:%M:%S").ok()?;
    let pos = after.split_whitespace().next()?.parse().ok()?;
    Some(LastEvent {
        end: Position {
            file: file.to_string(),
            pos,
        },
        at: at.and_utc(),
    })
}

/// The last complete event of `file` that ends at or before `limit`, decoding from `start`
/// (an event boundary) on, so that a caller going forward reads each event once.
pub async fn event_before(
    engine: &Engine,
    archiver: &str,
    dir: &str,
    (file, start): (&str, u64),
    limit: u64,
) -> Result<Option<LastEvent>> {
    // Past `limit` at most one event is printed (the one it cuts), so two headers suffice.
    let script = format!(
        "TZ=UTC mysqlbinlog --start-position={start} --stop-position={limit} {dir}/{file} 2>/dev/null \
         | grep -a '^#[0-9]\\{{6\\}} .*end_log_pos' | tail -n 2"
    );
    let headers = sh(engine, archiver, &script, "cannot read the binlog archive").await?;
    Ok(last_event_within(file, &headers, limit))
}

async fn sh(engine: &Engine, id: &str, script: &str, what: &str) -> Result<String> {
    let out = engine
        .exec_within(id, &["sh", "-c", script], Duration::from_secs(300))
        .await?;
    match out.exit_code {
        0 => Ok(out.stdout),
        _ => Err(CtlError::failure(what.to_string()).cause(out.stderr.trim())),
    }
}

/// The last complete event of the archive's newest file.
pub async fn archive_end(engine: &Engine, archiver: &str, archive: &Archive) -> Result<LastEvent> {
    let newest = archive.files.last().ok_or_else(|| {
        CtlError::failure("the binlog archive is empty").hint("is pricescan-binlog running?")
    })?;
    let script = format!(
        "TZ=UTC mysqlbinlog {}/{} 2>/dev/null | grep -a '^#[0-9]\\{{6\\}} .*end_log_pos' | tail -n 1",
        archive.dir, newest.name
    );
    let headers = sh(engine, archiver, &script, "cannot read the binlog archive").await?;
    last_event(&newest.name, &headers).ok_or_else(|| {
        CtlError::failure(format!(
            "{} in the binlog archive holds no complete event",
            newest.name
        ))
    })
}

/// Settles the replay from `base` to `target`, refusing what cannot be done before anything
/// changes: a gap, a position that does not exist, a time past what was archived.
pub async fn plan(
    engine: &Engine,
    archiver: &str,
    dir: &str,
    mysql: Option<&str>,
    base: &Coordinates,
    target: &Target,
) -> Result<Replay> {
    let archive = binlog::list_in(engine, archiver, dir).await?;
    let end = archive_end(engine, archiver, &archive).await?;
    let (stop, stop_dt) = match target {
        Target::Position(p) => {
            let size = archive.files.iter().find(|f| f.name == p.file).map(|f| f.size);
            check_position(p, size)?;
            if p.file == end.end.file && p.pos > end.end.pos {
                return Err(CtlError::usage(format!(
                    "position {p} is past the archive's last complete event ({}); nothing was changed",
                    end.end
                )));
            }
            (p.clone(), None)
        }
        Target::Time(t) => {
            check_covered(engine, mysql, &end, t).await?;
            (end.end.clone(), Some(stop_datetime(t)))
        }
    };
    let files = archive.span(&base.position(), Some(&stop))?;
    let version = sh(
        engine,
        archiver,
        "mysqlbinlog --version",
        "cannot run mysqlbinlog",
    )
    .await?;
    Ok(Replay {
        archiver: archiver.to_string(),
        dir: archive.dir.clone(),
        bytes: files.iter().map(|f| f.size).sum(),
        files: files.iter().map(|f| f.name.clone()).collect(),
        start: base.position(),
        stop,
        stop_datetime: stop_dt,
        filter_renamed: version.contains("MySQL"),
    })
}

/// A time after the archive's last event is covered only when the archive holds everything
/// the server wrote (nothing happened since); otherwise those events are not archived.
async fn check_covered(
    engine: &Engine,
    mysql: Option<&str>,
    end: &LastEvent,
    t: &DateTime<Utc>,
) -> Result<()> {
    if *t <= end.at {
        return Ok(());
    }
    if let Some(mysql) = mysql
        && binlog::server_position(engine, mysql).await.as_ref() == Some(&end.end)
    {
        return Ok(());
    }
    Err(CtlError::failure(format!(
        "the binlog archive reaches only {}; events up to {} are not archived; nothing was changed",
        end.at.format("%Y-%m-%dT%H:%M:%SZ"),
        t.format("%Y-%m-%dT%H:%M:%SZ")
    ))
    .cause("pricescan-binlog lags behind MySQL, or the server that wrote them is gone")
    .hint(format!(
        "restore to {} or earlier, or wait for the archive to catch up (`pricescan-ctl logs -s binlog`)",
        end.at.format("%Y-%m-%dT%H:%M:%SZ")
    )))
}

impl Replay {
    /// The mysqlbinlog command line: names and times only, never a secret.
    pub fn command(&self, db: &str, shadow: &str) -> String {
        let filter = if self.filter_renamed { shadow } else { db };
        let mut cmd = format!(
            "TZ=UTC exec mysqlbinlog --start-position={} --stop-position={} --rewrite-db='{db}->{shadow}' --database='{filter}'",
            self.start.pos, self.stop.pos
        );
        if let Some(dt) = &self.stop_datetime {
            cmd.push_str(&format!(" --stop-datetime='{dt}'"));
        }
        for f in &self.files {
            cmd.push_str(&format!(" {}/{f}", self.dir));
        }
        cmd
    }

    /// Generous: ten minutes, plus a minute for every 100 MB of binary log.
    fn deadline(&self) -> Duration {
        Duration::from_secs(600 + 60 * self.bytes.div_ceil(100 << 20))
    }

    /// Streams the decoded events into `shadow`; `started` hears the loader's exec id.
    pub async fn run(
        &self,
        engine: &Engine,
        mysql: &str,
        db: &str,
        shadow: &str,
        started: &mut (dyn FnMut(&str) + Send),
    ) -> Result<()> {
        let work = self.pipe(engine, mysql, db, shadow, started);
        let deadline = self.deadline();
        tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| crate::engine::deadline_error("the binlog replay", deadline))?
    }

    async fn pipe(
        &self,
        engine: &Engine,
        mysql: &str,
        db: &str,
        shadow: &str,
        started: &mut (dyn FnMut(&str) + Send),
    ) -> Result<()> {
        let decode = self.command(db, shadow);
        let exec = engine.exec_stream(&self.archiver, &["sh", "-c", &decode]).await?;
        let exec_id = exec.id().to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let chunks = futures_util::stream::unfold((exec, Some(tx)), |(mut exec, mut tx)| async move {
            match exec.next_stdout().await {
                Ok(Some(bytes)) => Some((Ok(bytes), (exec, tx))),
                Ok(None) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(std::mem::take(&mut exec.stderr));
                    }
                    None
                }
                Err(e) => Some((Err(std::io::Error::other(e.what)), (exec, None))),
            }
        });
        let reader = tokio_util::io::StreamReader::new(chunks.boxed());
        // The replay stays out of the binary log: it is not new history.
        let apply =
            format!("{ROOT} exec mysql -uroot -h127.0.0.1 --init-command='SET SESSION sql_log_bin=0'");
        let (code, _, stderr) = engine
            .exec_with_input_as(mysql, &["sh", "-c", &apply], reader, |_| {}, started)
            .await?;
        if code != 0 {
            return Err(
                CtlError::failure("replaying the binary log into the shadow schema failed")
                    .cause(stderr.trim()),
            );
        }
        // A decoder that failed half-way handed over only part of the events.
        let decoder_err = rx.await.unwrap_or_default();
        match engine.exec_exit_code(&exec_id).await? {
            0 => Ok(()),
            n => Err(CtlError::failure("mysqlbinlog could not read the binlog archive")
                .cause(format!("it exited with {n}"))
                .cause(decoder_err.trim().to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_event_header() {
        let h = "#261207 15:29:18 server id 1  end_log_pos 256 CRC32 0x0aa30040 \tStart: binlog v 4\n\
                 #261207  9:05:41 server id 1  end_log_pos 913 CRC32 0xb11ac85c \tTable_map: `sh`.`w`\n";
        let e = last_event("mysql-bin.000002", h).unwrap();
        assert_eq!(e.end.pos, 913);
        assert_eq!(e.at.to_rfc3339(), "2026-12-07T09:05:41+00:00");
        assert!(last_event("f.000001", "").is_none());
    }

    #[test]
    fn the_last_event_within_a_shipped_part_skips_the_one_it_cuts() {
        let h = "#261207  9:05:41 server id 1  end_log_pos 913 CRC32 0xb11ac85c \tXid\n\
                 #261207  9:05:42 server id 1  end_log_pos 1400 CRC32 0xb11ac85d \tXid\n";
        assert_eq!(last_event_within("m.000001", h, 1400).unwrap().end.pos, 1400);
        let e = last_event_within("m.000001", h, 1399).unwrap();
        assert_eq!(
            (e.end.pos, e.at.to_rfc3339().as_str()),
            (913, "2026-12-07T09:05:41+00:00")
        );
        assert!(last_event_within("m.000001", h, 900).is_none());
    }

    #[test]
    fn the_command_names_no_secret_and_filters_by_the_right_name() {
        let mut r = Replay {
            archiver: "a".into(),
            dir: "/archive".into(),
            files: vec!["m.000001".into(), "m.000002".into()],
            start: Position {
                file: "m.000001".into(),
                pos: 766,
            },
            stop: Position {
                file: "m.000002".into(),
                pos: 900,
            },
            stop_datetime: Some("2026-12-07 10:00:00".into()),
            filter_renamed: false,
            bytes: 0,
        };
        let c = r.command("shop", "shop__restore");
        assert!(c.contains("--start-position=766 --stop-position=900 --rewrite-db='shop->shop__restore' --database='shop'"), "{c}");
        assert!(
            c.ends_with("--stop-datetime='2026-12-07 10:00:00' /archive/m.000001 /archive/m.000002"),
            "{c}"
        );
        r.filter_renamed = true;
        assert!(
            r.command("shop", "shop__restore")
                .contains("--database='shop__restore'")
        );
    }
}
