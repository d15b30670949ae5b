//! Point-in-time recovery against the real MariaDB test image with its binary log on, the
//! real archiver (`pricescan-binlog`: MariaDB's own mysqlbinlog as a replication client) and
//! the real replay. A writer inserts numbered rows at a steady rate as the application's own
//! user; the assertions compare row sets exactly: every row stamped at or before the target
//! second is back, once, and none after it.

mod common;

use common::running::{http_status, spawn};
use common::{TestProject, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

fn stack(tag: &str) -> TestProject {
    let mut p = TestProject::new(tag).with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("BACKUP_PITR", "true");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start", "-s", "mysql", "-s", "binlog"]);
    p.sql("CREATE TABLE w (seq INT NOT NULL, ts DATETIME NOT NULL)");
    p
}

fn mysql(p: &TestProject) -> String {
    format!("{}-pricescan-mysql-1", p.name)
}

fn archiver(p: &TestProject) -> String {
    format!("{}-pricescan-binlog-1", p.name)
}

/// Inserts `(seq, UTC_TIMESTAMP())` into `w` about 50 times a second as the application's user, until
/// stopped; a lost connection (MySQL restarted) is opened again. No PRIMARY KEY on `w`: a
/// row replayed twice would show.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Writer {
    fn start(p: &TestProject) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, container) = (stop.clone(), mysql(p));
        let thread = std::thread::spawn(move || {
            let mut seq = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let mut child = Command::new("docker")
                    .args(["exec", "-i", &container, "sh", "-c"])
                    .arg("MYSQL_PWD=\"$MYSQL_PASSWORD\" exec mariadb -u\"$MYSQL_USER\" -h127.0.0.1 pricescan")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                while !flag.load(Ordering::Relaxed) {
                    seq += 1;
                    if writeln!(stdin, "INSERT INTO w VALUES ({seq}, UTC_TIMESTAMP());").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                drop(stdin);
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
            }
            seq
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Every row of `w` as `seq ts`, sorted.
fn rows(p: &TestProject) -> Vec<String> {
    let mut all: Vec<String> = p
        .sql("SELECT seq, ts FROM w")
        .lines()
        .map(|l| l.replace('\t', " "))
        .collect();
    all.sort();
    all
}

fn ts_of(row: &str) -> &str {
    row.split_once(' ').map(|(_, ts)| ts).unwrap_or("")
}

/// MySQL's clock, to the second, as `YYYY-MM-DD HH:MM:SS` (UTC in the container).
fn now(p: &TestProject) -> String {
    p.sql("SELECT UTC_TIMESTAMP()")
}

fn rfc3339(mysql_time: &str) -> String {
    format!("{}Z", mysql_time.replace(' ', "T"))
}

fn utc(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .to_utc()
}

fn second_before(mysql_time: &str) -> String {
    let t = chrono::NaiveDateTime::parse_from_str(mysql_time, "%Y-%m-%d %H:%M:%S").unwrap();
    (t - chrono::Duration::seconds(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn backup_count(p: &TestProject) -> usize {
    std::fs::read_dir(p.file("backups"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_dropped_table_comes_back_to_the_second_before_under_load() {
    let p = stack("pitrdrop");
    p.sql("CREATE TABLE prices (id INT PRIMARY KEY, v INT); INSERT INTO prices SELECT seq, seq * 2 FROM seq_1_to_100");
    let writer = Writer::start(&p);
    std::thread::sleep(Duration::from_secs(2));
    let backup = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    assert!(backup["binlog"]["file"].as_str().is_some(), "{backup:#}");
    std::thread::sleep(Duration::from_secs(2));
    p.sql("INSERT INTO prices SELECT seq, seq * 2 FROM seq_101_to_120");
    std::thread::sleep(Duration::from_millis(1500));
    // The mistake, and the second it happened in.
    let dropped_at = p.sql("SELECT UTC_TIMESTAMP(); DROP TABLE prices");
    std::thread::sleep(Duration::from_secs(2));
    let written = writer.stop();
    let before = rows(&p);
    assert!(
        before.len() > 100,
        "the writer wrote {written}, the table has {}",
        before.len()
    );
    let target = second_before(&dropped_at);
    let expected: Vec<String> = before
        .iter()
        .filter(|r| ts_of(r) <= target.as_str())
        .cloned()
        .collect();
    assert!(
        !expected.is_empty() && expected.len() < before.len(),
        "the target must split the writes: {} of {}",
        expected.len(),
        before.len()
    );

    // The operator finds the mistake in the archive, with its time and position.
    let listed = json(&p.ok(&["--json", "backup", "events", "--grep", "drop"]));
    let drop = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["what"].as_str().unwrap().contains("DROP TABLE `prices`"))
        .unwrap_or_else(|| panic!("no DROP TABLE prices in {listed:#}"));
    assert_eq!(drop["kind"], "ddl");
    assert!(drop["position"]["pos"].as_u64().unwrap() > 4, "{drop}");
    let drop_time = drop["time"].as_str().unwrap();
    assert!(
        drop_time >= rfc3339(&dropped_at).as_str(),
        "{drop_time} vs {dropped_at}"
    );
    let large = p.ok(&["backup", "events"]);
    assert!(
        large.stdout.contains("100 rows inserted into pricescan.prices"),
        "{}",
        large.all()
    );
    assert!(!large.stdout.contains("20 rows"), "{}", large.all());

    let run = p.ok(&["restore", "--to", &rfc3339(&target), "--yes"]);
    assert!(
        run.stdout.contains(&format!("restoring to {target} UTC")),
        "{}",
        run.all()
    );
    assert_eq!(p.sql("SELECT COUNT(*), SUM(v) FROM prices"), "120\t14520");
    let after = rows(&p);
    let missing: Vec<&String> = expected.iter().filter(|r| !after.contains(r)).collect();
    let extra: Vec<&String> = after.iter().filter(|r| !expected.contains(r)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && after.len() == expected.len(),
        "rows at or before {target}: missing {missing:?}, extra {extra:?}\n{}",
        run.all()
    );
    assert_eq!(
        p.sql("SHOW DATABASES LIKE 'pricescan\\_\\_%'"),
        "",
        "a shadow schema was left behind"
    );
}

#[test]
fn bad_targets_are_refused_before_anything_changes() {
    let p = stack("pitrbad");
    p.sql("INSERT INTO w VALUES (1, UTC_TIMESTAMP())");
    let first = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    let first_id = first["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let between = now(&p);
    std::thread::sleep(Duration::from_millis(1100));
    let second = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    let second_id = second["id"].as_str().unwrap().to_string();
    p.sql("INSERT INTO w VALUES (2, UTC_TIMESTAMP())");
    let (rows_before, backups_before) = (rows(&p), backup_count(&p));
    let file = first["binlog"]["file"].as_str().unwrap().to_string();

    let refused = |args: &[&str], code: i32, says: &str| {
        let mut all = vec!["restore", "--yes"];
        all.extend_from_slice(args);
        let run = p.run(&all);
        assert_eq!(run.code, code, "{args:?}:\n{}", run.all());
        assert!(
            run.stderr.contains(says),
            "{args:?} should say {says:?}:\n{}",
            run.all()
        );
        assert_eq!(rows(&p), rows_before, "{args:?} changed the data");
        assert_eq!(backup_count(&p), backups_before, "{args:?} took a backup");
    };
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    refused(&["--to", &future], 2, "is in the future");
    refused(&["--to", "2001-01-01T00:00:00Z"], 2, "is before every backup");
    refused(&["--to", "not a time"], 2, "is not a time");
    refused(
        &["--to", &rfc3339(&between), &second_id],
        2,
        &format!("backup {second_id} is newer than"),
    );
    refused(
        &["--to-position", "mysql-bin.000999:4"],
        2,
        "mysql-bin.000999 is not in the binlog archive",
    );
    refused(
        &["--to-position", &format!("{file}:999999999")],
        2,
        "does not exist",
    );
    refused(
        &["--to", &rfc3339(&between), "--only", "redis"],
        2,
        "Redis has no binary log",
    );

    // A hole in the archive between the backup and the target.
    p.sql("FLUSH BINARY LOGS; INSERT INTO w VALUES (3, UTC_TIMESTAMP()); FLUSH BINARY LOGS; INSERT INTO w VALUES (4, UTC_TIMESTAMP())");
    let next = format!(
        "mysql-bin.{:06}",
        file.rsplit('.').next().unwrap().parse::<u32>().unwrap() + 1
    );
    std::thread::sleep(Duration::from_secs(1));
    let rm = Command::new("docker")
        .args(["exec", &archiver(&p), "rm", &format!("/archive/{next}")])
        .output()
        .unwrap();
    assert!(rm.status.success(), "{}", String::from_utf8_lossy(&rm.stderr));
    let rows_before = rows(&p);
    let run = p.run(&["restore", "--yes", "--to", &rfc3339(&now(&p)), &first_id]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("the binlog archive has a gap"),
        "{}",
        run.all()
    );
    assert_eq!(rows(&p), rows_before);
    assert_eq!(backup_count(&p), backups_before);
    assert!(
        pitr_findings(&p).contains("FAIL the binlog archive has a gap"),
        "{}",
        pitr_findings(&p)
    );
    // A server whose binary log is no longer in ROW format is caught too.
    p.sql("SET GLOBAL binlog_format = 'STATEMENT'");
    assert!(
        pitr_findings(&p).contains("FAIL the binary log is in STATEMENT format"),
        "{}",
        pitr_findings(&p)
    );
}

/// doctor's point-in-time recovery findings, a line each: `STATUS message`.
fn pitr_findings(p: &TestProject) -> String {
    let doctor = json(&p.run(&["--json", "doctor"]));
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "pitr")
        .map(|c| {
            format!(
                "{} {}",
                c["status"].as_str().unwrap().to_uppercase(),
                c["message"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn setup_gives_an_existing_mysql_its_replication_user_once() {
    let p = stack("pitruser");
    p.sql("DROP USER pricescan_binlog");
    let run = p.ok(&["setup", "--skip-images"]);
    assert!(
        run.stdout
            .contains("created the replication user pricescan_binlog in MySQL"),
        "{}",
        run.all()
    );
    let again = p.ok(&["setup", "--skip-images"]);
    assert!(again.stdout.contains("nothing changed"), "{}", again.all());
    // The archiver logs in with it again once its connection is cut.
    let grants = p.sql("SHOW GRANTS FOR pricescan_binlog");
    assert!(
        grants.contains("REPLICATION SLAVE") && !grants.contains("ALL PRIVILEGES"),
        "{grants}"
    );
    std::thread::sleep(Duration::from_secs(1));
    // The window: from the first backup that records its binlog position, up to now.
    let before_backup = p.ok(&["backup", "list"]);
    assert!(
        before_backup.stdout.contains("from (no backup records"),
        "{}",
        before_backup.all()
    );
    let id = json(&p.ok(&["--json", "backup", "--only", "mysql"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = p.ok(&["backup", "list"]);
    assert!(
        list.stdout.contains(&format!("(backup {id}) to now")) && list.stdout.contains("up to date"),
        "{}",
        list.all()
    );
    let status = p.ok(&["status", "-s", "mysql", "-s", "binlog"]);
    assert!(
        status.stdout.contains("binlog:      archive up to date"),
        "{}",
        status.all()
    );
    let status = json(&p.ok(&["--json", "status", "-s", "mysql", "-s", "binlog"]));
    assert_eq!(status["binlog_archive"]["lag_bytes"], 0, "{status:#}");
    let listed = json(&p.ok(&["--json", "backup", "list"]));
    assert_eq!(
        listed[0]["point_in_time"]["from_backup"],
        id.as_str(),
        "{listed:#}"
    );
    assert_eq!(listed[0]["point_in_time"]["archive_lag_bytes"], 0, "{listed:#}");
    assert!(
        pitr_findings(&p).contains("OK the binary log is on, in ROW format")
            && pitr_findings(&p).contains("is up to date"),
        "{}",
        pitr_findings(&p)
    );
}

#[test]
fn the_archive_survives_a_killed_archiver_and_a_restarted_mysql_without_gap_or_duplicate() {
    let p = stack("pitrkill");
    let backup = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    assert!(backup["binlog"].is_object(), "{backup:#}");
    let writer = Writer::start(&p);
    std::thread::sleep(Duration::from_secs(2));
    let docker = |args: &[&str]| {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Mid-event: the archiver dies at once, whatever it was writing.
    docker(&["kill", "-s", "KILL", &archiver(&p)]);
    std::thread::sleep(Duration::from_secs(2));
    docker(&["start", &archiver(&p)]);
    std::thread::sleep(Duration::from_secs(2));
    docker(&["restart", "-t", "10", &mysql(&p)]);
    std::thread::sleep(Duration::from_secs(4));
    let written = writer.stop();
    std::thread::sleep(Duration::from_secs(2));
    let before = rows(&p);
    assert!(
        before.len() > 100,
        "the writer wrote {written}, the table has {}",
        before.len()
    );
    // Every closed file is the server's, byte for byte.
    let sums =
        |container: &str, dir: &str| sh_lines(container, &format!("cd {dir} && md5sum mysql-bin.[0-9]*"));
    let (server, archived) = (
        sums(&mysql(&p), "/var/lib/mysql"),
        sums(&archiver(&p), "/archive"),
    );
    // From the backup's file on (retention removed what no backup needs), every closed one.
    let first = backup["binlog"]["file"].as_str().unwrap();
    let closed: Vec<&String> = server[..server.len() - 1]
        .iter()
        .filter(|l| l.split_whitespace().nth(1) >= Some(first))
        .collect();
    assert!(!closed.is_empty(), "MySQL's restart closed no file: {server:?}");
    for line in closed {
        assert!(
            archived.contains(line),
            "{line} differs in the archive:\n{archived:#?}\nserver:\n{server:#?}"
        );
    }
    // Up to where the server stands now, by position.
    let status = p.sql("SHOW MASTER STATUS");
    let mut cols = status.split_whitespace();
    let position = format!("{}:{}", cols.next().unwrap(), cols.next().unwrap());
    let run = p.ok(&["restore", "--to-position", &position, "--yes"]);
    assert_eq!(
        rows(&p),
        before,
        "after replaying through the kill and the restart:\n{}",
        run.all()
    );
}

#[test]
fn sigint_during_the_replay_leaves_the_live_data_untouched_and_the_site_serving() {
    let mut p = TestProject::new("pitrint").with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("BACKUP_PITR", "true");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    p.sql("CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(100))");
    p.ok(&["backup", "--only", "mysql"]);
    // Enough binary log after the backup that the replay is still running when the signal comes.
    for chunk in 0..8 {
        let (from, to) = (chunk * 100_000 + 1, (chunk + 1) * 100_000);
        p.sql(&format!(
            "INSERT INTO big SELECT seq, REPEAT('x', 100) FROM seq_{from}_to_{to}"
        ));
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = p.sql("SELECT COUNT(*), SUM(id) FROM big");
    let run = spawn(&p, &["restore", "--to", &rfc3339(&now(&p)), "--yes"]);
    run.wait_for("replaying the binary log");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        http_status(&p, "GET"),
        200,
        "reads are served while the replay runs"
    );
    assert_eq!(
        http_status(&p, "POST"),
        503,
        "writes are refused while the replay runs"
    );
    run.signal("-INT");
    let (exit, stderr) = run.finish();
    assert_eq!(exit, Some(130), "{stderr}");
    assert!(stderr.contains("the live data was never touched"), "{stderr}");
    assert_eq!(p.sql("SELECT COUNT(*), SUM(id) FROM big"), before);
    assert_eq!(
        p.sql("SHOW DATABASES LIKE 'pricescan\\_\\_%'"),
        "",
        "a shadow schema was left behind"
    );
    assert_eq!(http_status(&p, "GET"), 200, "the site serves");
    assert_eq!(http_status(&p, "POST"), 405, "writes reach the API again");
    assert!(p.ok(&["lock", "status"]).stdout.contains(": free"));
}

#[test]
fn retention_keeps_every_binlog_the_oldest_kept_backup_needs_and_nothing_older() {
    let mut p = stack("pitrkeep");
    let keep = |p: &mut TestProject, last: &str| {
        for (key, value) in [
            ("BACKUP_KEEP_LAST", last),
            ("BACKUP_KEEP_DAILY", "0"),
            ("BACKUP_KEEP_WEEKLY", "0"),
            ("BACKUP_KEEP_MONTHLY", "0"),
        ] {
            p.set_env(key, value);
        }
    };
    let archived = |p: &TestProject| sh_lines(&archiver(p), "ls /archive | grep -E '[.][0-9]+$'");
    let backup = |p: &TestProject| {
        let manifest = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
        manifest["binlog"]["file"].as_str().unwrap().to_string()
    };
    keep(&mut p, "2");
    p.sql("FLUSH BINARY LOGS; INSERT INTO w VALUES (1, UTC_TIMESTAMP())");
    let first = backup(&p);
    assert!(
        archived(&p).iter().all(|f| *f >= first),
        "{:?} keeps files before {first}",
        archived(&p)
    );
    p.sql("FLUSH BINARY LOGS; INSERT INTO w VALUES (2, UTC_TIMESTAMP()); FLUSH BINARY LOGS");
    std::thread::sleep(Duration::from_millis(1100));
    let second = backup(&p);
    let all = archived(&p);
    assert!(all.contains(&first) && first < second, "{all:?}");

    // With one backup kept, the first goes, and the binlog before the second with it.
    keep(&mut p, "1");
    let dry = p.ok(&["backup", "prune", "--dry-run"]);
    assert!(
        dry.stdout.contains(&format!("remove binlog {first}")),
        "{}",
        dry.all()
    );
    assert_eq!(archived(&p), all, "--dry-run removed files");
    p.ok(&["backup", "prune"]);
    let left = archived(&p);
    assert!(
        left.iter().all(|f| *f >= second) && left.contains(&second),
        "{left:?} around {second}"
    );
    p.sql("INSERT INTO w VALUES (3, UTC_TIMESTAMP())");
    std::thread::sleep(Duration::from_millis(500));
    let run = p.ok(&["restore", "--to", &rfc3339(&now(&p)), "--yes"]);
    assert_eq!(p.sql("SELECT COUNT(*) FROM w"), "3", "{}", run.all());
}

/// `backup archive` ships the archive (sealed with age) while a writer runs and the S3
/// server goes away for a while; then the server is lost: MySQL's volume, the archive, the
/// local backups and the shipping journal all go. A fresh stack restores from the bucket
/// alone, every row the writer committed comes back, and the new server's binary log, which
/// numbers its files from 1 again, is never mistaken for the old one's.
#[test]
fn after_losing_the_server_a_restore_from_the_bucket_alone_brings_back_every_shipped_row() {
    let s3 = common::s3::S3Server::start("pitrship");
    let mut s3 = s3;
    let mut p = TestProject::new("pitrship").with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("BACKUP_PITR", "true");
    p.set_env("BACKUP_PITR_SHIP_INTERVAL", "1s");
    p.set_env("BACKUP_REMOTE_URL", &format!("s3://{}/prod", s3.bucket));
    p.set_env("BACKUP_REMOTE_ENDPOINT", &s3.endpoint());
    p.set_env("BACKUP_REMOTE_ACCESS_KEY_ID", common::s3::ACCESS_KEY);
    p.set_env("BACKUP_REMOTE_SECRET_ACCESS_KEY", common::s3::SECRET_KEY);
    p.set_env("BACKUP_REMOTE_TIMEOUT", "5s");
    p.set_env("METRICS_TEXTFILE_DIR", "metrics");
    let hook = common::receivers::HttpReceiver::start();
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}/hook", hook.url));
    p.ok(&["setup", "--skip-images", "--backup-key"]);
    p.ok(&["start", "-s", "mysql", "-s", "binlog"]);
    p.sql("CREATE TABLE w (seq INT NOT NULL, ts DATETIME NOT NULL)");
    p.ok(&["backup", "--only", "mysql"]);
    let shipper = spawn(&p, &["backup", "archive"]);
    let writer = Writer::start(&p);
    std::thread::sleep(Duration::from_secs(4));
    let second = p.run(&["backup", "archive", "--once"]);
    assert_eq!(second.code, 75, "a second shipper must refuse:\n{}", second.all());
    assert!(second.stderr.contains("binlog-shipper"), "{}", second.all());
    // A minute's outage: the shipper keeps the tail locally, says it lags, and catches up
    // once the server is back.
    s3.kill();
    std::thread::sleep(Duration::from_secs(50));
    let lag = offsite_lag(&p);
    assert!(
        lag >= 40,
        "pricescan_pitr_offsite_lag_seconds is {lag} during the outage"
    );
    let told = hook.wait_for("/hook", "pitr.lagging");
    assert!(told.body.contains("binlog archive is lagging"), "{}", told.body);
    s3.restart();
    std::thread::sleep(Duration::from_secs(3));
    writer.stop();
    wait_until_shipped(&p, &s3);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(offsite_lag(&p), 0, "caught up");
    shipper.signal("-TERM");
    let (exit, stderr) = shipper.finish();
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(
        stderr.contains("shipping failed, trying again"),
        "the outage went unnoticed: {stderr}"
    );
    let chunks = s3.keys("prod/binlog/");
    assert!(!chunks.is_empty(), "no chunk in the bucket");
    let sealed = s3.cat(&format!("prod/binlog/{}", chunks[0]));
    assert!(
        sealed.starts_with(b"age-encryption.org/v1"),
        "chunks must be sealed"
    );
    let before = rows(&p);
    let last = before.iter().map(|r| ts_of(r).to_string()).max().unwrap();
    let listed = json(&p.ok(&["--json", "backup", "list"]));
    let offsite = &listed[0]["point_in_time"]["offsite"];
    assert!(
        utc(offsite["to"].as_str().unwrap_or("")) >= utc(&rfc3339(&last)),
        "the off-site window must reach the last row ({last}): {listed:#}"
    );
    assert_eq!(offsite["from_backup"], listed[0]["id"], "{listed:#}");

    // The server is lost: its volumes, its backups and the journal.
    common::cleanup_project(&p.name);
    std::fs::remove_dir_all(p.file("backups")).unwrap();
    std::fs::remove_file(p.file(".pricescan/binlog-shipped.json")).unwrap();
    // The bucket alone still tells the window.
    let remote = p.ok(&["backup", "list", "--remote"]).stdout;
    let line = remote
        .lines()
        .find(|l| l.starts_with("off-site ("))
        .unwrap_or_else(|| panic!("no off-site window in:\n{remote}"));
    let to = line
        .split(" to ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap();
    assert!(utc(to) >= utc(&rfc3339(&last)), "{line}");
    p.ok(&["start", "-s", "mysql", "-s", "binlog"]);
    p.sql("CREATE TABLE w (seq INT NOT NULL, ts DATETIME NOT NULL)");
    p.sql("FLUSH BINARY LOGS; FLUSH BINARY LOGS; INSERT INTO w VALUES (-1, UTC_TIMESTAMP())");
    std::thread::sleep(Duration::from_secs(1));
    // A damaged chunk, then a missing one, is refused before anything changes.
    let keys = s3.keys("prod/binlog/");
    let chunk = keys.iter().rfind(|k| k.contains('/')).expect("a chunk");
    let victim = format!("prod/binlog/{chunk}");
    let original = s3.cat(&victim);
    let refused = |what: &str, says: &str| {
        let run = p.run(&["restore", "--to", &rfc3339(&last), "--yes"]);
        assert_eq!(run.code, 1, "{what}:\n{}", run.all());
        assert!(run.stderr.contains(says), "{what}:\n{}", run.all());
        assert_eq!(p.sql("SELECT seq FROM w"), "-1", "{what} changed the data");
    };
    s3.put(&victim, b"not what was shipped");
    refused("a damaged chunk", "is damaged");
    let (file, range) = victim.trim_start_matches("prod/binlog/").split_once('/').unwrap();
    let end: u64 = range.split('-').map(|n| n.parse::<u64>().unwrap()).sum();
    s3.put(&victim, &original);
    s3.put(
        &format!("prod/binlog/{file}/{:020}-{:012}", end + 100, 4),
        b"late",
    );
    refused("a missing chunk", "the off-site binlog archive has a gap");
    let out = s3.rclone(&[
        "delete",
        &format!("s3:{}/prod/binlog/{file}/{:020}-{:012}", s3.bucket, end + 100, 4),
    ]);
    assert!(out.status.success());
    let run = p.ok(&["restore", "--to", &rfc3339(&last), "--yes"]);
    assert!(run.stdout.contains("pulling it from"), "{}", run.all());
    assert_eq!(
        rows(&p),
        before,
        "rows after a restore from the bucket alone:\n{}",
        run.all()
    );
}

/// Waits until the bucket holds every byte of every file of the local archive.
fn wait_until_shipped(p: &TestProject, s3: &common::s3::S3Server) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let sizes = sh_lines(
            &archiver(p),
            "cd /archive && for f in *.[0-9]*; do echo \"$(wc -c < $f) $f\"; done",
        );
        let local: Vec<(String, u64)> = sizes
            .iter()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(n, f)| (f.to_string(), n.parse().unwrap_or(0)))
            })
            .collect();
        let mut shipped = std::collections::BTreeMap::<String, u64>::new();
        for key in s3.keys("prod/binlog/") {
            let Some((file, range)) = key.split_once('/') else {
                continue;
            };
            let Some((offset, len)) = range.split_once('-') else {
                continue;
            };
            let end = offset.parse::<u64>().unwrap_or(0) + len.parse::<u64>().unwrap_or(0);
            let e = shipped.entry(file.to_string()).or_default();
            *e = (*e).max(end);
        }
        let behind: Vec<&(String, u64)> = local
            .iter()
            .filter(|(f, n)| shipped.get(f).copied().unwrap_or(0) < *n)
            .collect();
        if !local.is_empty() && behind.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not shipped within 90 s: {behind:?} of {local:?}, bucket {shipped:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// pricescan_pitr_offsite_lag_seconds, from the metrics textfile.
fn offsite_lag(p: &TestProject) -> i64 {
    let text = std::fs::read_to_string(p.file("metrics/pricescan_pitr.prom")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("pricescan_pitr_offsite_lag_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no offsite lag in {text:?}"))
}

/// The lines a shell script prints in a container.
fn sh_lines(container: &str, script: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["exec", container, "sh", "-c", script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Off-site retention: once the first off-site backup goes, the chunks of the binlog files
/// before the oldest kept one's go with it, and the rest stay.
#[test]
fn offsite_retention_keeps_the_chunks_the_oldest_kept_offsite_backup_needs() {
    let s3 = common::s3::S3Server::start("pitrprune");
    let mut p = TestProject::new("pitrprune").with_own_ports();
    for (key, value) in [
        ("COMPOSE_PROFILES", ""),
        ("BACKUP_PITR", "true"),
        ("BACKUP_REMOTE_URL", &format!("s3://{}/prod", s3.bucket)),
        ("BACKUP_REMOTE_ENDPOINT", &s3.endpoint()),
        ("BACKUP_REMOTE_ACCESS_KEY_ID", common::s3::ACCESS_KEY),
        ("BACKUP_REMOTE_SECRET_ACCESS_KEY", common::s3::SECRET_KEY),
        ("BACKUP_REMOTE_KEEP_LAST", "1"),
        ("BACKUP_REMOTE_KEEP_DAILY", "0"),
        ("BACKUP_REMOTE_KEEP_WEEKLY", "0"),
        ("BACKUP_REMOTE_KEEP_MONTHLY", "0"),
    ] {
        p.set_env(key, value);
    }
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start", "-s", "mysql", "-s", "binlog"]);
    p.sql("CREATE TABLE w (seq INT NOT NULL, ts DATETIME NOT NULL)");
    let first = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    p.sql("FLUSH BINARY LOGS; INSERT INTO w VALUES (1, UTC_TIMESTAMP()); FLUSH BINARY LOGS");
    std::thread::sleep(Duration::from_secs(1));
    p.ok(&["backup", "archive", "--once"]);
    let files = |s3: &common::s3::S3Server| -> Vec<String> {
        let mut f: Vec<String> = s3
            .keys("prod/binlog/")
            .iter()
            .filter_map(|k| k.split_once('/').map(|(f, _)| f.to_string()))
            .collect();
        f.dedup();
        f
    };
    let first_file = first["binlog"]["file"].as_str().unwrap().to_string();
    assert!(files(&s3).contains(&first_file), "{:?}", files(&s3));
    let second = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    let second_file = second["binlog"]["file"].as_str().unwrap().to_string();
    assert!(first_file < second_file);
    let shipped = files(&s3);
    assert!(
        shipped.iter().all(|f| *f >= second_file) && !shipped.is_empty(),
        "{shipped:?} keeps files before {second_file}"
    );
    let backups: Vec<String> = s3
        .keys("prod/")
        .iter()
        .filter_map(|k| k.split_once('/').map(|(b, _)| b.to_string()))
        .collect();
    assert!(
        backups.contains(&"binlog".to_string()),
        "the archive's chunks must not be pruned as a backup: {backups:?}"
    );
}

#[test]
fn after_losing_mysqls_volume_the_local_archive_restores_it_and_follows_the_new_server() {
    let p = stack("pitrvol");
    p.ok(&["backup", "--only", "mysql"]);
    let writer = Writer::start(&p);
    std::thread::sleep(Duration::from_secs(4));
    writer.stop();
    std::thread::sleep(Duration::from_secs(2));
    let before = rows(&p);
    let last = before.iter().map(|r| ts_of(r).to_string()).max().unwrap();
    // MySQL's volume is lost; a new MySQL starts empty and numbers its binary log from 1.
    let volume = sh_out(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/var/lib/mysql\"}}{{.Name}}{{end}}{{end}}",
        &mysql(&p),
    ]);
    sh_out(&["rm", "-f", &mysql(&p)]);
    sh_out(&["volume", "rm", volume.trim()]);
    p.ok(&["start", "-s", "mysql"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sh_lines(&archiver(&p), "ls /archive/earlier").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the archiver never set the old archive aside"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let run = p.ok(&["restore", "--to", &rfc3339(&last), "--yes"]);
    assert!(
        run.stdout
            .contains("kept from before MySQL's binary log started over"),
        "{}",
        run.all()
    );
    assert_eq!(rows(&p), before, "{}", run.all());
    // The new server's writes are archived: the archive catches up with it again.
    p.sql("INSERT INTO w VALUES (-7, UTC_TIMESTAMP())");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = json(&p.ok(&["--json", "status", "-s", "mysql", "-s", "binlog"]));
        if status["binlog_archive"]["lag_bytes"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the archive does not follow the new server: {status:#}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A docker command that must succeed; its stdout.
fn sh_out(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
