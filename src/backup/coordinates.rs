//! A backup's place in the binary log (DESIGN §13), read from the dump as it passes.
//! mysqldump's `--master-data=2` (MariaDB, MySQL before 8.0.26) or `--source-data=2` writes
//! the file and position of its consistent snapshot as a comment near the top, and MariaDB
//! adds its GTID position. Point-in-time recovery replays the archive from there.

use crate::stack::pitr::Position;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// How much of the dump's start is searched: the comment comes before any table.
const HEAD: usize = 256 << 10;

static FILE_POS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)")
        .expect("valid regex")
});
static GTID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:gtid_slave_pos|gtid_purged)\s*=\s*'([^']*)'").expect("valid regex"));

/// Where a backup's snapshot sits in the binary log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordinates {
    pub file: String,
    pub pos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// When the dump had reported its snapshot: no event in the backup is later than this.
    pub seen_at: String,
    /// The file's first bytes (magic and creation time, hex): a new server names its binary
    /// log from 1 again, and this tells its files from the ones this backup needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

/// How many of a binary log file's first bytes identify it.
pub const HEAD_BYTES: usize = 8;

/// The identifying head of a binary log file's first bytes.
pub fn head_of(bytes: &[u8]) -> String {
    hex::encode(&bytes[..bytes.len().min(HEAD_BYTES)])
}

impl Coordinates {
    /// False only when both heads are known and differ: then they are two servers' files.
    pub fn same_file(&self, head: &str) -> bool {
        self.head.as_deref().is_none_or(|h| h == head)
    }
}

impl Coordinates {
    pub fn position(&self) -> Position {
        Position {
            file: self.file.clone(),
            pos: self.pos,
        }
    }
}

/// Watches the start of a dump stream for its coordinates.
#[derive(Default)]
pub struct Sniffer {
    head: Vec<u8>,
    found: Option<Coordinates>,
}

impl Sniffer {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.found.is_some() || self.head.len() >= HEAD {
            return;
        }
        let take = bytes.len().min(HEAD - self.head.len());
        self.head.extend_from_slice(&bytes[..take]);
        let text = String::from_utf8_lossy(&self.head);
        // The position line ends with ';': only a whole one counts.
        let Some(m) = FILE_POS
            .captures(&text)
            .filter(|c| text[c.get(0).map_or(0, |m| m.end())..].contains(';'))
        else {
            return;
        };
        let gtid = GTID
            .captures(&text)
            .map(|g| g[1].to_string())
            .filter(|g| !g.is_empty());
        self.found = m[2].parse().ok().map(|pos| Coordinates {
            file: m[1].to_string(),
            pos,
            gtid,
            seen_at: chrono::Utc::now().to_rfc3339(),
            head: None,
        });
        self.head = Vec::new();
    }

    pub fn finish(self) -> Option<Coordinates> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff(chunks: &[&str]) -> Option<Coordinates> {
        let mut s = Sniffer::default();
        for c in chunks {
            s.feed(c.as_bytes());
        }
        s.finish()
    }

    #[test]
    fn mariadb_with_gtid_across_chunks() {
        let c = sniff(&[
            "-- MariaDB dump\n-- Preferably use GTID to start replication from GTID position:\n\n-- SET GLOBAL gtid_slave_pos='0-1-42';\n",
            "-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.0000",
            "07', MASTER_LOG_POS=1234;\nCREATE TABLE",
        ])
        .unwrap();
        assert_eq!(
            (c.file.as_str(), c.pos, c.gtid.as_deref()),
            ("mysql-bin.000007", 1234, Some("0-1-42"))
        );
    }

    #[test]
    fn mysql_8_source_data() {
        let c = sniff(&[
            "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;\n",
        ])
        .unwrap();
        assert_eq!((c.file.as_str(), c.pos, c.gtid), ("binlog.000002", 157, None));
    }

    #[test]
    fn nothing_without_the_line_or_past_the_head() {
        assert!(sniff(&["-- MySQL dump\nCREATE TABLE t (a int);\n"]).is_none());
        let far = format!(
            "{}-- CHANGE MASTER TO MASTER_LOG_FILE='m.000001', MASTER_LOG_POS=4;\n",
            " ".repeat(HEAD)
        );
        assert!(sniff(&[&far]).is_none());
        assert!(sniff(&["-- CHANGE MASTER TO MASTER_LOG_FILE='m.000001', MASTER_LOG_POS=4"]).is_none());
    }
}
