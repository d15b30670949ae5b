//! Point-in-time recovery (DESIGN §13), when BACKUP_PITR is on: MySQL's binary log on and in
//! ROW format, the archiver running, no gap in what it archived, and how far it lags.

use super::finding::Finding;
use crate::backup::binlog;
use crate::backup::catalog::MYSQL_SERVICE;
use crate::deploy::converge::running_container;
use crate::engine::{ContainerInfo, Engine};
use crate::stack::Project;
use crate::stack::pitr::{self, ARCHIVER_SERVICE};

const CHECK: &str = "pitr";

pub async fn check(engine: &Engine, project: &Project, containers: &[ContainerInfo]) -> Vec<Finding> {
    if !pitr::enabled(&project.env) {
        return Vec::new();
    }
    let Ok(mysql) = running_container(containers, MYSQL_SERVICE) else {
        return vec![Finding::fail(
            CHECK,
            "MySQL is not running",
            "`pricescan-ctl start`",
        )];
    };
    let mut found = vec![binary_log(engine, &mysql.id).await];
    found.push(match running_container(containers, ARCHIVER_SERVICE) {
        Ok(archiver) => archive(engine, &archiver.id, &mysql.id).await,
        Err(_) => Finding::fail(
            CHECK,
            "pricescan-binlog is not running: nothing is archived, and restore --to cannot reach past the last event it has",
            "`pricescan-ctl start -s binlog`",
        ),
    });
    found
}

/// The binary log must be on, in ROW format: a replay of statements is not the same data.
async fn binary_log(engine: &Engine, mysql: &str) -> Finding {
    let query = &crate::backup::root_sql::query("SELECT @@log_bin, @@binlog_format");
    let fix =
        "render config/mysql/conf.d again (`pricescan-ctl setup`), then `pricescan-ctl restart -s mysql`";
    let out = match engine.exec(mysql, &["sh", "-c", query]).await {
        Ok(out) if out.exit_code == 0 => out.stdout,
        Ok(out) => return Finding::fail(CHECK, format!("cannot ask MySQL: {}", out.stderr.trim()), fix),
        Err(e) => return Finding::fail(CHECK, format!("cannot ask MySQL: {}", e.what), fix),
    };
    let mut cols = out.split_whitespace();
    match (cols.next(), cols.next()) {
        (Some("1"), Some("ROW")) => Finding::ok(CHECK, "the binary log is on, in ROW format"),
        (Some("1"), Some(format)) => Finding::fail(
            CHECK,
            format!("the binary log is in {format} format, not ROW: a replay would not give the same data"),
            fix,
        ),
        _ => Finding::fail(
            CHECK,
            "the binary log is off: nothing can be replayed after a backup",
            fix,
        ),
    }
}

/// Gaps the archiver recorded, and how far its newest file trails the server's.
async fn archive(engine: &Engine, archiver: &str, mysql: &str) -> Finding {
    let archive = match binlog::list(engine, archiver).await {
        Ok(a) => a,
        Err(e) => return Finding::fail(CHECK, e.what, "`pricescan-ctl logs -s binlog`"),
    };
    if let Some(gap) = archive.gaps.last() {
        return Finding::fail(
            CHECK,
            format!("the binlog archive has a gap: {gap}"),
            "take a backup now (`pricescan-ctl backup`): a restore --to can only roll forward from after the gap",
        )
        .care();
    }
    if let Some(first) = archive.files.first() {
        let from = crate::stack::pitr::Position {
            file: first.name.clone(),
            pos: 4,
        };
        if let Err(e) = archive.span(&from, None) {
            return Finding::fail(
                CHECK,
                e.what,
                "take a backup now (`pricescan-ctl backup`): a restore --to can only roll forward from after the gap",
            );
        }
    }
    let lag = match binlog::lag(engine, mysql, &archive).await {
        Some(0) => Finding::ok(
            CHECK,
            format!(
                "the binlog archive holds {} file(s) and is up to date",
                archive.files.len()
            ),
        ),
        Some(bytes) => Finding::warn(
            CHECK,
            format!("the binlog archive trails MySQL by {bytes} bytes"),
            "`pricescan-ctl logs -s binlog` says why",
        ),
        None => Finding::warn(
            CHECK,
            "cannot compare the binlog archive with MySQL",
            "`pricescan-ctl logs -s binlog`",
        ),
    };
    lag.care()
}
