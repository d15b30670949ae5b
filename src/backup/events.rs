//! `backup events`: the archived statements an operator restores to just before (DESIGN
//! §13): every DDL, and every transaction that changed many rows of one table. mysqlbinlog
//! decodes the archive in the archiver's container; its text streams through `Reader` a line
//! at a time, so memory stays flat whatever the archive's size.

use crate::backup::binlog;
use crate::engine::Engine;
use crate::error::{CtlError, Result};
use crate::stack::pitr::{ARCHIVE_DIR, Position};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// A transaction that changed at least this many rows of one table is listed.
pub const LARGE_DML: u64 = 100;
/// Marks the start of each file in the decoder's output.
const FILE_MARK: &str = "## pricescan file ";

static PASSWORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)((?:IDENTIFIED\s+(?:WITH\s+\S+\s+)?(?:BY|AS)|PASSWORD\s*\(?)\s*)'(?:[^'\\]|\\.|'')*'",
    )
    .expect("valid regex")
});

/// The binary log keeps `IDENTIFIED BY 'password'` as it was typed: never shown.
pub fn redact(statement: &str) -> String {
    PASSWORD.replace_all(statement, "$1'********'").into_owned()
}

/// One listed event: where its transaction begins (restore `--to-position` there to stop
/// just before it), when, and what it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub time: DateTime<Utc>,
    pub position: Position,
    pub kind: &'static str,
    pub what: String,
}

/// The decoder's output, read a line at a time.
#[derive(Default)]
pub struct Reader {
    file: String,
    at: u64,
    time: Option<DateTime<Utc>>,
    txn: Option<(Position, DateTime<Utc>)>,
    rows: BTreeMap<String, u64>,
    statement: Option<String>,
    pub found: Vec<Listed>,
}

fn header_time(line: &str) -> Option<DateTime<Utc>> {
    let mut words = line.trim_start_matches('#').split_whitespace();
    let (date, time) = (words.next()?, words.next()?);
    NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%y%m%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

impl Reader {
    pub fn line(&mut self, line: &str) {
        if let Some(file) = line.strip_prefix(FILE_MARK) {
            self.file = file.trim().to_string();
        } else if let Some(at) = line.strip_prefix("# at ") {
            self.at = at.trim().parse().unwrap_or(self.at);
        } else if line.starts_with('#') && line.contains("end_log_pos") {
            self.header(line);
        } else if let Some(change) = line.strip_prefix("### ") {
            self.row(change);
        } else if let Some(first) = self.statement.as_ref().map(String::is_empty) {
            self.statement_line(line, first);
        }
    }

    fn header(&mut self, line: &str) {
        self.time = header_time(line).or(self.time);
        let kind = line.split("end_log_pos").nth(1).unwrap_or_default();
        if kind.contains("GTID") || kind.contains("Gtid") {
            self.end_transaction();
            let start = Position {
                file: self.file.clone(),
                pos: self.at,
            };
            self.txn = self.time.map(|t| (start, t));
        } else if kind.contains("Xid") {
            self.end_transaction();
        }
        self.statement = kind.contains("\tQuery").then(String::new);
    }

    fn row(&mut self, change: &str) {
        let mut words = change.split_whitespace();
        let op = words.next().unwrap_or_default();
        let table = match op {
            "INSERT" | "DELETE" => words.nth(1),
            "UPDATE" => words.next(),
            _ => None,
        };
        if let Some(table) = table {
            *self
                .rows
                .entry(format!("{op} {}", table.replace('`', "")))
                .or_default() += 1;
        }
    }

    /// A Query event's statement: the lines after its SET and use lines, up to `/*!*/;`.
    fn statement_line(&mut self, line: &str, first: bool) {
        let done = line.ends_with("/*!*/;");
        let text = line.trim_end_matches("/*!*/;").trim();
        let skip = first && (text.starts_with("SET ") || text.starts_with("use ") || text.starts_with("/*!"));
        if !skip && !text.is_empty() {
            let s = self.statement.get_or_insert_with(String::new);
            if s.len() < 400 {
                s.push_str(if s.is_empty() { "" } else { " " });
                s.push_str(text);
            }
        }
        if done && self.statement.as_ref().is_some_and(|s| !s.is_empty()) {
            let statement = self.statement.take().unwrap_or_default();
            self.ddl(statement);
        }
    }

    fn ddl(&mut self, statement: String) {
        let statement = redact(&statement);
        let word = statement
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if matches!(
            word.as_str(),
            "BEGIN" | "COMMIT" | "ROLLBACK" | "XA" | "SAVEPOINT"
        ) {
            return;
        }
        if let Some((position, time)) = self.txn.clone() {
            self.found.push(Listed {
                time,
                position,
                kind: "ddl",
                what: statement,
            });
        }
    }

    fn end_transaction(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        let Some((position, time)) = self.txn.take() else {
            return;
        };
        for (change, n) in rows.into_iter().filter(|(_, n)| *n >= LARGE_DML) {
            let (op, table) = change.split_once(' ').unwrap_or_default();
            let verb = match op {
                "INSERT" => "inserted into",
                "UPDATE" => "updated in",
                _ => "deleted from",
            };
            self.found.push(Listed {
                time,
                position: position.clone(),
                kind: "dml",
                what: format!("{n} rows {verb} {table}"),
            });
        }
    }

    pub fn finish(mut self) -> Vec<Listed> {
        self.end_transaction();
        self.found
    }
}

/// The listed events of the whole archive, oldest first.
pub async fn list(engine: &Engine, archiver: &str) -> Result<Vec<Listed>> {
    let archive = binlog::list(engine, archiver).await?;
    let files: Vec<String> = archive.files.iter().map(|f| f.name.clone()).collect();
    let script = format!(
        "cd {ARCHIVE_DIR} && for f in {}; do echo '{FILE_MARK}'\"$f\"; TZ=UTC mysqlbinlog -v --base64-output=decode-rows \"$f\" || exit 1; done",
        files.join(" ")
    );
    let mut exec = engine.exec_stream(archiver, &["sh", "-c", &script]).await?;
    let mut reader = Reader::default();
    let mut partial = Vec::new();
    while let Some(chunk) = exec.next_stdout().await? {
        partial.extend_from_slice(&chunk);
        while let Some(end) = partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = partial.drain(..=end).collect();
            reader.line(String::from_utf8_lossy(&line).trim_end_matches('\n'));
        }
    }
    // The newest file may end in an event still being written: what came before counts.
    let code = exec.exit_code(engine).await?;
    if code != 0 && !exec.stderr.contains("Could not read entry") && !exec.stderr.contains("read error") {
        return Err(
            CtlError::failure("mysqlbinlog could not read the binlog archive").cause(exec.stderr.trim())
        );
    }
    Ok(reader.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECODED: &str = "## pricescan file mysql-bin.000002
# at 766
#261207 15:29:41 server id 1  end_log_pos 808 CRC32 0x1 \tGTID 0-1-14 trans
# at 808
#261207 15:29:41 server id 1  end_log_pos 870 CRC32 0x2 \tTable_map: `shop`.`w` mapped to number 18
### INSERT INTO `shop`.`w`
### SET
###   @1=3
# at 900
#261207 15:29:41 server id 1  end_log_pos 931 CRC32 0x3 \tXid = 40
COMMIT/*!*/;
# at 931
#261207 15:29:42 server id 1  end_log_pos 973 CRC32 0x4 \tGTID 0-1-15 ddl
# at 973
#261207 15:29:42 server id 1  end_log_pos 1090 CRC32 0x5 \tQuery\tthread_id=19\texec_time=0\terror_code=0
use `shop`/*!*/;
SET TIMESTAMP=1796657382/*!*/;
SET @@session.sql_mode=1411383296/*!*/;
DROP TABLE `prices` /* generated by server */
/*!*/;
# at 1090
#261207 15:29:43 server id 1  end_log_pos 1132 CRC32 0x6 \tGTID 0-1-16 trans
";

    #[test]
    fn passwords_are_never_shown() {
        for (sql, hidden) in [
            ("CREATE USER 'a'@'%' IDENTIFIED BY 'hunter2'", "hunter2"),
            (
                "ALTER USER a IDENTIFIED WITH mysql_native_password BY 'it''s \\'x'",
                "it''s",
            ),
            ("SET PASSWORD FOR a = PASSWORD('s3cret')", "s3cret"),
            ("GRANT ALL ON *.* TO a IDENTIFIED BY 'p4ss'", "p4ss"),
        ] {
            let shown = redact(sql);
            assert!(!shown.contains(hidden) && shown.contains("'********'"), "{shown}");
        }
        assert_eq!(redact("DROP TABLE prices"), "DROP TABLE prices");
    }

    #[test]
    fn ddl_and_large_deletes_with_their_transaction_start() {
        let mut r = Reader::default();
        for l in DECODED.lines() {
            r.line(l);
        }
        for _ in 0..LARGE_DML {
            r.line("### DELETE FROM `shop`.`w`");
        }
        let found = r.finish();
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].what, "DROP TABLE `prices` /* generated by server */");
        assert_eq!(
            (found[0].kind, found[0].position.to_string()),
            ("ddl", "mysql-bin.000002:931".into())
        );
        assert_eq!(found[0].time.to_rfc3339(), "2026-12-07T15:29:42+00:00");
        assert_eq!(found[1].what, "100 rows deleted from shop.w");
        assert_eq!(found[1].position.pos, 1090);
    }
}
