//! Counting rows in a mysqldump stream as it passes: every `INSERT INTO `t` VALUES (..),(..);`
//! line adds its top-level tuples to `t`. Quotes and backslash escapes are tracked so that a
//! "),(" inside a string does not count. Constant memory: only the start of a line is kept.

use std::collections::BTreeMap;

#[derive(Default)]
pub struct RowCounter {
    pub counts: BTreeMap<String, u64>,
    /// The start of the current line, until we know whether it is an INSERT.
    head: Vec<u8>,
    table: Option<String>,
    at_line_start: bool,
    in_string: bool,
    escaped: bool,
    depth: u32,
    started: bool,
}

const PREFIX: &[u8] = b"INSERT INTO `";

impl RowCounter {
    pub fn new() -> Self {
        Self {
            at_line_start: true,
            ..Default::default()
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.table.is_some() {
                // An INSERT ends at its ';' (MariaDB puts each tuple on a line of its own).
                if b == b';' && !self.in_string && self.depth == 0 {
                    self.end_line();
                    self.at_line_start = false;
                } else {
                    self.scan(b);
                }
                continue;
            }
            if b == b'\n' {
                self.end_line();
                continue;
            }
            if self.at_line_start {
                self.head.push(b);
                if !PREFIX.starts_with(&self.head[..self.head.len().min(PREFIX.len())]) {
                    self.at_line_start = false;
                    self.head.clear();
                } else if self.head.len() > PREFIX.len() && b == b'`' {
                    self.table = Some(
                        String::from_utf8_lossy(&self.head[PREFIX.len()..self.head.len() - 1]).into_owned(),
                    );
                    self.counts
                        .entry(self.table.clone().unwrap_or_default())
                        .or_insert(0);
                    self.at_line_start = false;
                    self.head.clear();
                }
                continue;
            }
        }
    }

    fn scan(&mut self, b: u8) {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'\'') => self.in_string = false,
                _ => {}
            }
            return;
        }
        match b {
            b'\'' if self.started => self.in_string = true,
            b'(' => {
                // The values begin after " VALUES "; a "(" before that would be a column list.
                if self.depth == 0
                    && self.started
                    && let Some(t) = &self.table
                {
                    *self.counts.entry(t.clone()).or_insert(0) += 1;
                }
                self.depth += 1;
            }
            b')' => self.depth = self.depth.saturating_sub(1),
            b'S' if !self.started && self.depth == 0 => self.started = true, // the S of VALUES
            _ => {}
        }
    }

    fn end_line(&mut self) {
        self.head.clear();
        self.table = None;
        self.at_line_start = true;
        self.in_string = false;
        self.escaped = false;
        self.depth = 0;
        self.started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(dump: &str, chunk: usize) -> BTreeMap<String, u64> {
        let mut c = RowCounter::new();
        for part in dump.as_bytes().chunks(chunk) {
            c.feed(part);
        }
        c.counts
    }

    const DUMP: &str = "-- MySQL dump\nCREATE TABLE `items` (id int);\n\
        INSERT INTO `items` VALUES (1,'a'),(2,'b),(c'),(3,'it\\'s ) ('),(4,NULL);\n\
        INSERT INTO `items` VALUES (5,'x');\n\
        INSERT INTO `empty_t` VALUES ();\n\
        INSERT INTO `prices` VALUES (1,0x28292C28,'multi\nline');\n-- Dump completed\n";

    #[test]
    fn counts_tuples_whatever_the_chunking() {
        for chunk in [1, 3, 7, 64, 10_000] {
            let c = count(DUMP, chunk);
            assert_eq!(c.get("items"), Some(&5), "chunk {chunk}: {c:?}");
            assert_eq!(c.get("prices"), Some(&1), "chunk {chunk}: {c:?}");
        }
    }

    #[test]
    fn mariadb_puts_each_tuple_on_its_own_line() {
        let dump = "INSERT INTO `items` VALUES\n(1,'a),(b'),\n(2,'it''s;'),\n(3,NULL);\nINSERT INTO `t2` VALUES (9);\n";
        for chunk in [1, 4, 100] {
            let c = count(dump, chunk);
            assert_eq!(
                (c.get("items"), c.get("t2")),
                (Some(&3), Some(&1)),
                "chunk {chunk}: {c:?}"
            );
        }
    }

    #[test]
    fn lines_that_are_not_inserts_count_nothing() {
        let c = count("SELECT (1),(2);\n-- INSERT INTO `x` VALUES (1)\n", 5);
        assert!(c.is_empty(), "{c:?}");
    }
}
