//! Backups against real MariaDB and Redis: a full round trip, a dump killed half-way, a
//! damaged file, two backups at once, no password in any process list, and retention.

mod common;

use common::{TestProject, files_of, json};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stack(tag: &str) -> TestProject {
    let mut p = TestProject::new(tag).with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start", "-s", "mysql", "-s", "redis"]);
    p
}

const ROWS: &str = "SELECT id, name, HEX(blob_col) FROM items ORDER BY id";

#[test]
fn round_trip_restores_rows_and_keys_exactly() {
    let p = stack("bkround");
    p.sql(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100), blob_col VARBINARY(16)); \
         INSERT INTO items VALUES (1, 'plain', NULL), (2, 'quote '' and ),( inside', 0x00FF), (3, 'two\\nlines', 0x28292C); \
         CREATE TABLE other (x INT); INSERT INTO other VALUES (1), (2); \
         CREATE VIEW named AS SELECT id, name FROM items; \
         CREATE TRIGGER doubled BEFORE INSERT ON other FOR EACH ROW SET NEW.x = NEW.x * 2; \
         CREATE PROCEDURE counted() SELECT COUNT(*) FROM items",
    );
    p.redis("SET price:1 9.99");
    p.redis("HSET item:2 name widget");
    let before_rows = p.sql(ROWS);

    let run = p.ok(&["--json", "backup"]);
    let manifest = json(&run);
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["row_counts"]["items"], 3, "{manifest:#}");
    assert_eq!(manifest["row_counts"]["other"], 2, "{manifest:#}");
    let id = manifest["id"].as_str().unwrap().to_string();
    assert!(id.ends_with("-manual"));
    let dir = p.file("backups").join(&id);
    for f in ["mysql.sql.zst", "redis.rdb", "SHA256SUMS", "manifest.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let verified = p.ok(&["backup", "verify", &id]);
    assert!(verified.stdout.contains("good"), "{}", verified.all());
    let deep = p.ok(&["backup", "verify", "--deep", &id]);
    assert!(deep.stdout.contains("matching row counts"), "{}", deep.all());
    let leftovers = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("name={}-verify", p.name)])
        .output()
        .unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "the throwaway verify container was left behind"
    );

    // Change, delete and add data, then restore.
    p.sql("DELETE FROM items WHERE id = 1; UPDATE items SET name = 'changed' WHERE id = 2; INSERT INTO items VALUES (4, 'new', NULL); CREATE TABLE later (y INT); DROP VIEW named; CREATE VIEW later_view AS SELECT 1; DROP PROCEDURE counted");
    p.redis("DEL price:1");
    p.redis("SET extra 1");
    let refused = p.run(&["restore", &id]);
    assert_eq!(
        refused.code,
        2,
        "no terminal and no --yes must refuse: {}",
        refused.all()
    );
    let restored = p.ok(&["restore", &id, "--yes"]);
    assert!(restored.stdout.contains("row counts match"), "{}", restored.all());
    assert_eq!(p.sql(ROWS), before_rows, "rows differ after the restore");
    assert_eq!(
        p.sql("SHOW FULL TABLES"),
        "items\tBASE TABLE\nnamed\tVIEW\nother\tBASE TABLE",
        "tables and views made after the backup must be gone, and the backup's back"
    );
    assert_eq!(p.sql("SELECT COUNT(*) FROM named"), "3");
    p.sql("INSERT INTO other VALUES (5)");
    assert_eq!(
        p.sql("SELECT MAX(x) FROM other"),
        "10",
        "the trigger must be back"
    );
    assert_eq!(p.sql("CALL counted()"), "3", "the procedure must be back");
    assert!(
        !p.sql("SHOW DATABASES").contains("__"),
        "no shadow schema may stay"
    );
    assert_eq!(p.redis("GET price:1"), "9.99");
    assert_eq!(p.redis("HGET item:2 name"), "widget");
    assert_eq!(p.redis("EXISTS extra"), "0");
    assert!(
        p.dir_names("backups").iter().any(|b| b.ends_with("-pre-restore")),
        "a pre-restore backup is taken: {:?}",
        p.dir_names("backups")
    );

    let list = p.ok(&["backup", "list"]);
    assert!(
        list.stdout.contains(&id) && list.stdout.contains("pre-restore"),
        "{}",
        list.all()
    );
}

#[test]
fn big_dump_lock_kill_damage_and_retention() {
    let mut p = stack("bkbig");
    // About a million rows, so that a dump takes long enough to be caught half-way.
    p.sql("CREATE TABLE big (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40)); INSERT INTO big (v) VALUES (REPEAT('x', 40))");
    for _ in 0..20 {
        p.sql("INSERT INTO big (v) SELECT v FROM big");
    }
    let first = json(&p.ok(&["--json", "backup", "--only", "mysql"]));
    assert_eq!(first["row_counts"]["big"], 1 << 20);
    let first_id = first["id"].as_str().unwrap().to_string();
    let first_files = files_of(p.file("backups").join(&first_id));
    std::thread::sleep(Duration::from_millis(1100)); // a new id needs a new second

    // A backup in progress holds the lock: a second one exits 75 and names it.
    let mut a = p
        .cmd(&["backup", "--only", "mysql"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial = wait_for_partial(&p);
    let second = p.run(&["backup", "--only", "mysql"]);
    assert_eq!(second.code, 75, "{}", second.all());
    assert!(
        second.stderr.contains("held by backup by") && second.stderr.contains(&format!("(pid {})", a.id())),
        "{}",
        second.all()
    );

    // No password in any process list inside the container during the dump.
    let password = p
        .secrets()
        .into_iter()
        .find(|(k, _)| k == "MYSQL_ROOT_PASSWORD")
        .unwrap()
        .1;
    let ps = Command::new("docker")
        .args([
            "exec",
            &format!("{}-pricescan-mysql-1", p.name),
            "ps",
            "-eo",
            "args",
        ])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains("mysqldump"), "the dump should be running:\n{ps}");
    assert!(!ps.contains(&password), "a password is visible in ps");
    let host_ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&host_ps.stdout).contains(&password));
    assert!(a.wait().unwrap().success());
    assert!(!partial.exists());
    std::thread::sleep(Duration::from_millis(1100));

    // MySQL killed in the middle of a dump: a failure, no new backup, no leftovers, and the
    // older backups untouched.
    let before = p.dir_names("backups");
    let b = p
        .cmd(&["backup", "--only", "mysql"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial = wait_for_partial(&p);
    Command::new("docker")
        .args(["kill", &format!("{}-pricescan-mysql-1", p.name)])
        .output()
        .unwrap();
    let out = b.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "a killed dump must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!partial.exists(), "the .partial directory was left behind");
    assert_eq!(
        p.dir_names("backups"),
        before,
        "no new backup directory may appear"
    );
    assert_eq!(
        files_of(p.file("backups").join(&first_id)),
        first_files,
        "an older backup changed"
    );
    p.ok(&["start", "-s", "mysql"]);

    // A dump truncated on disk after the fact: verify says so and exits 1.
    let dump = p.file("backups").join(&first_id).join("mysql.sql.zst");
    let len = std::fs::metadata(&dump).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dump)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let bad = p.run(&["backup", "verify", &first_id]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(bad.stderr.contains("mysql.sql.zst"), "{}", bad.all());
    let restore = p.run(&["restore", &first_id, "--yes"]);
    assert_eq!(
        restore.code,
        1,
        "a damaged backup is never restored: {}",
        restore.all()
    );

    // Retention: keep only the newest; --dry-run deletes nothing and says why.
    for key in ["BACKUP_KEEP_DAILY", "BACKUP_KEEP_WEEKLY", "BACKUP_KEEP_MONTHLY"] {
        p.set_env(key, "0");
    }
    p.set_env("BACKUP_KEEP_LAST", "1");
    let listed = p.dir_names("backups");
    let dry = p.ok(&["backup", "prune", "--dry-run"]);
    assert_eq!(p.dir_names("backups"), listed, "--dry-run removed something");
    assert!(
        dry.stdout.contains("remove ") && dry.stdout.contains("keep "),
        "{}",
        dry.all()
    );
    p.ok(&["backup", "prune"]);
    let left = p.dir_names("backups");
    assert_eq!(left.len(), 1, "{left:?}");
}

/// Waits until a `.partial` directory with a started dump exists, and returns it.
fn wait_for_partial(p: &TestProject) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let found = std::fs::read_dir(p.file("backups"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(".partial"))
                    && std::fs::metadata(path.join("mysql.sql.zst")).is_ok_and(|m| m.len() > 0)
            });
        if let Some(path) = found {
            return path;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no backup in progress appeared");
}
