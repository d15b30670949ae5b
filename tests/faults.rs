//! The promise under faults (DESIGN §8), drilled on the real stack with real signals sent to
//! the built binary: SIGTERM, SIGINT, SIGHUP and SIGKILL in backup and restore, a second
//! checkout and a remote holder of the lock, a restart racing a deploy, and a bad byte in the
//! release log. Each scenario is its own test, so one failure does not hide the next.

mod common;

use common::running::{http_status, spawn};
use common::{TestProject, json, load_loop};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// MySQL and Redis (and the API with `api`), with `rows` rows of 100 bytes in `big`.
fn stack(tag: &str, rows: u32, api: bool) -> TestProject {
    let mut p = TestProject::new(tag).with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("API_DRAIN", "1s");
    p.ok(&["setup", "--skip-images"]);
    match api {
        true => p.ok(&["start"]),
        false => p.ok(&["start", "-s", "mysql", "-s", "redis"]),
    };
    p.sql(&format!(
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(100)); \
         INSERT INTO big SELECT seq, REPEAT('x', 100) FROM seq_1_to_{rows}"
    ));
    p
}

fn wait_for_partial(p: &TestProject) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p.dir_names("backups").iter().any(|n| n.ends_with(".partial")) {
        assert!(Instant::now() < deadline, "no backup started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lock_is_free(p: &TestProject) -> bool {
    p.ok(&["lock", "status"]).stdout.contains(": free")
}

fn api_state(p: &TestProject) -> String {
    common::docker_format(
        "container",
        &format!("{}-pricescan-api-1", p.name),
        "{{.State.Status}} {{.State.Health.Status}}",
    )
    .unwrap_or_default()
}

#[test]
fn signals_during_backup_leave_nothing_and_exit_with_their_code() {
    let p = stack("sigbk", 400_000, false);
    let first = json(&p.ok(&["--json", "backup", "--only", "mysql"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = std::fs::read(p.file("backups").join(&first).join("mysql.sql.zst")).unwrap();
    for (sig, code) in [("-TERM", 143), ("-INT", 130), ("-HUP", 129)] {
        std::thread::sleep(Duration::from_millis(1100)); // a new id needs a new second
        let run = spawn(&p, &["backup", "--only", "mysql"]);
        wait_for_partial(&p);
        run.signal(sig);
        let (exit, stderr) = run.finish();
        assert_eq!(exit, Some(code), "{sig}: {stderr}");
        assert!(stderr.contains("interrupted by SIG"), "{sig}: {stderr}");
        assert_eq!(p.dir_names("backups"), vec![first.clone()], "{sig} left debris");
        assert!(lock_is_free(&p), "{sig} left the lock held");
    }
    let after = std::fs::read(p.file("backups").join(&first).join("mysql.sql.zst")).unwrap();
    assert!(after == kept, "an older backup changed");
}

#[test]
fn debris_of_a_killed_backup_is_cleaned_by_the_next_lock_taker() {
    let p = stack("killbk", 400_000, false);
    let run = spawn(&p, &["backup", "--only", "mysql"]);
    wait_for_partial(&p);
    run.signal("-KILL");
    let (exit, _) = run.finish();
    assert_eq!(exit, None, "killed");
    assert!(p.dir_names("backups")[0].ends_with(".partial"));
    let status = p.ok(&["lock", "status"]).stdout;
    assert!(status.contains("that process is gone"), "{status}");

    let next = p.ok(&["backup", "--only", "redis"]);
    assert!(
        next.stderr.contains("taking over the operation lock"),
        "{}",
        next.all()
    );
    assert!(
        next.stderr.contains(".partial: an interrupted backup left it"),
        "{}",
        next.all()
    );
    let names = p.dir_names("backups");
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with("-manual"), "{names:?}");
    assert!(lock_is_free(&p));
}

#[test]
fn a_second_checkout_and_a_remote_holder_are_excluded() {
    let p = stack("twockt", 400_000, true);
    // The same project in another directory: same name, same engine, same .env.prod.
    let mut other = TestProject::new("twockt-b");
    other.name = p.name.clone();
    other.env = p.env.clone();
    for rel in [".env.prod", "docker-compose.prod.yml"] {
        other.write(rel, &p.read(rel));
    }
    let copy = Command::new("cp")
        .args(["-a", &p.file("config").display().to_string()])
        .arg(other.path())
        .status()
        .unwrap();
    assert!(copy.success());

    let backup = spawn(&p, &["backup", "--only", "mysql"]);
    wait_for_partial(&p);
    let stop = other.run(&["stop", "-s", "api"]);
    assert_eq!(stop.code, 75, "{}", stop.all());
    assert!(
        stop.stderr.contains("held by backup by")
            && stop.stderr.contains(&format!("(pid {})", backup.child.id())),
        "{}",
        stop.all()
    );
    let (exit, stderr) = backup.finish();
    assert_eq!(exit, Some(0), "{stderr}");
    assert!(api_state(&p).starts_with("running"), "the API was stopped");
    // --wait waits its turn instead.
    other.ok(&["stop", "-s", "api", "--wait", "30s"]);
    assert!(api_state(&p).starts_with("exited"));
    p.ok(&["start", "-s", "api"]);

    // A holder on another host cannot be checked from here: never taken over, only forced.
    p.hold_lock_elsewhere("deploy");
    assert!(
        p.ok(&["lock", "status"])
            .stdout
            .contains("held by deploy by ci on elsewhere")
    );
    let start = p.run(&["start"]);
    assert_eq!(start.code, 75, "{}", start.all());
    let json_status = json(&p.ok(&["--json", "lock", "status"]));
    assert_eq!(json_status["holder"]["host"], "elsewhere");
    assert_eq!(p.run(&["lock", "release"]).code, 2);
    p.ok(&["lock", "release", "--force"]);
    assert!(lock_is_free(&p));
    p.ok(&["start"]);
}

#[test]
fn a_restart_racing_a_deploy_waits_and_the_log_tells_the_truth() {
    let mut p = stack("race", 10, true);
    p.set_env("API_DRAIN", "6s");
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 2, stop.clone());
    let deploy = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    deploy.wait_for("draining");
    let restart = p.run(&["restart", "-s", "api"]);
    assert_eq!(restart.code, 75, "{}", restart.all());
    assert!(restart.stderr.contains("held by deploy by"), "{}", restart.all());
    let waited = spawn(&p, &["restart", "-s", "api", "--wait", "2m"]);
    let (exit, stderr) = deploy.finish();
    assert_eq!(exit, Some(0), "{stderr}");
    let (exit, stderr) = waited.finish();
    assert_eq!(exit, Some(0), "{stderr}");
    // A plain start from here (or any checkout) keeps what the engine says serves.
    p.ok(&["start"]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    assert!(r.ok > 50 && r.failed == 0, "{r:?}");
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    let status = json(&p.run(&["--json", "status"]));
    assert_eq!(history[0]["result"], "succeeded");
    assert_eq!(status["release"], history[0]["id"], "{status:#}");
    assert_eq!(p.serving_version(), "v2", "v2 must serve");
}

#[test]
fn a_bad_byte_in_the_release_log_loses_no_history() {
    let p = stack("badlog", 10, true);
    p.ok(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    let log = p.file(".pricescan/releases.jsonl");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.push(0xff);
    std::fs::write(&log, &bytes).unwrap();

    let history = p.ok(&["deploy", "history"]);
    assert!(
        history.stdout.contains("pricescan-test/api:v2"),
        "{}",
        history.all()
    );
    assert!(
        history.stderr.contains("releases.jsonl:2: skipped a line"),
        "{}",
        history.all()
    );
    let status = p.run(&["status"]);
    assert!(!status.stdout.contains("none recorded"), "{}", status.all());

    p.ok(&["deploy", "--image", "pricescan-test/api:v1", "--no-backup"]);
    let after = std::fs::read(&log).unwrap();
    assert_eq!(&after[..bytes.len()], &bytes[..], "the log was rewritten");
    let records = json(&p.ok(&["--json", "deploy", "history"]));
    assert_eq!(records.as_array().unwrap().len(), 2, "{records:#}");
    assert_eq!(records[0]["image"], "pricescan-test/api:v1");

    // A log that cannot be read fails the command and stays as it was.
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    let unreadable = p.run(&["deploy", "history"]);
    assert_eq!(unreadable.code, 1, "{}", unreadable.all());
    assert!(
        unreadable.stderr.contains("cannot read the release history"),
        "{}",
        unreadable.all()
    );
}

/// Data before the restore, to compare with afterwards.
fn snapshot(p: &TestProject) -> String {
    p.sql("SELECT COUNT(*), COALESCE(SUM(id), 0), COALESCE(MAX(v), '') FROM big")
}

/// Backs up `big`, then changes it; returns the backup id and the data from before.
fn backup_then_change(p: &TestProject) -> (String, String) {
    let backup = json(&p.ok(&["--json", "backup", "--only", "mysql"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.sql("DELETE FROM big WHERE id % 2 = 0; INSERT INTO big VALUES (0, 'after the backup')");
    std::thread::sleep(Duration::from_millis(1100)); // a new backup id needs a new second
    (backup, snapshot(p))
}

/// The answer Nginx gives to `method` on the API (0 when none).
fn databases(p: &TestProject) -> String {
    p.sql("SHOW DATABASES")
}

/// After an interrupted restore: the data as it was, the API up, writes accepted, no
/// shadow schema, no marker, the lock free.
fn assert_as_before(p: &TestProject, before: &str, what: &str) {
    assert_eq!(snapshot(p), before, "{what}: the data is not as it was");
    assert!(
        api_state(p).starts_with("running healthy"),
        "{what}: {}",
        api_state(p)
    );
    assert_eq!(
        http_status(p, "POST"),
        405,
        "{what}: writes must reach the API again"
    );
    assert!(!databases(p).contains("__"), "{what}: {}", databases(p));
    assert!(!p.file(".pricescan/restore-in-progress.json").exists(), "{what}");
    assert!(lock_is_free(p), "{what}");
}

#[test]
fn a_restore_interrupted_while_staging_never_touches_the_live_data() {
    let p = stack("sigrs", 1_000_000, true);
    for (sig, code, second) in [("-INT", 130, None), ("-TERM", 143, Some("-INT"))] {
        let (backup, before) = backup_then_change(&p);
        let run = spawn(&p, &["restore", &backup, "--yes", "--only", "mysql"]);
        run.wait_for("into the shadow schema");
        std::thread::sleep(Duration::from_millis(1000));
        // While the backup loads beside it, the old data serves reads and refuses writes.
        assert_eq!(http_status(&p, "GET"), 200, "{sig}");
        assert_eq!(http_status(&p, "POST"), 503, "{sig}: writes must be refused");
        run.signal(sig);
        if let Some(again) = second {
            std::thread::sleep(Duration::from_millis(100));
            run.signal(again);
        }
        let (exit, stderr) = run.finish();
        assert_eq!(exit, Some(code), "{sig}: {stderr}");
        assert!(
            stderr.contains("the live data was never touched"),
            "{sig}: {stderr}"
        );
        if second.is_some() {
            assert!(
                stderr.contains("still undoing, please wait: drop the shadow"),
                "{stderr}"
            );
        }
        assert_as_before(&p, &before, sig);
    }
}

#[test]
fn a_restore_that_fails_in_the_swap_puts_the_data_back() {
    let p = stack("swaprs", 200_000, true);
    let (backup, before) = backup_then_change(&p);
    let run = spawn(&p, &["restore", &backup, "--yes", "--only", "mysql"]);
    run.wait_for("into the shadow schema");
    // A session that holds a read lock on the live table makes the swap's RENAME wait.
    let mut holder = Command::new("docker")
        .args(["exec", &format!("{}-pricescan-mysql-1", p.name), "sh", "-c"])
        .arg("MYSQL_PWD=\"$MYSQL_ROOT_PASSWORD\" mariadb -uroot pricescan -e 'LOCK TABLES big READ; SELECT SLEEP(120)'")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    run.wait_for("paused the API for the swap");
    std::thread::sleep(Duration::from_millis(1500));
    run.signal("-INT");
    let (exit, stderr) = run.finish();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(exit, Some(130), "{stderr}");
    assert!(stderr.contains("the data from before is back"), "{stderr}");
    assert_as_before(&p, &before, "swap");
}

#[test]
fn a_killed_restore_is_put_right_by_the_next_command() {
    let p = stack("killrs", 1_000_000, true);
    let (backup, before) = backup_then_change(&p);
    let run = spawn(&p, &["restore", &backup, "--yes", "--only", "mysql"]);
    run.wait_for("into the shadow schema");
    std::thread::sleep(Duration::from_millis(1000));
    run.signal("-KILL");
    assert_eq!(run.finish().0, None);
    assert!(p.file(".pricescan/restore-in-progress.json").exists());
    assert_eq!(
        http_status(&p, "POST"),
        503,
        "read-only stays until someone undoes it"
    );
    let next = p.ok(&["backup", "--only", "redis"]);
    assert!(next.stderr.contains("was stopped half-way"), "{}", next.all());
    assert_as_before(&p, &before, "after the next command");
}

#[test]
fn a_hung_dump_hits_its_deadline_and_frees_the_lock() {
    let mut p = stack("hung", 1000, false);
    // A session that holds a write lock makes the real mysqldump wait on it: a hung dump.
    let container = format!("{}-pricescan-mysql-1", p.name);
    let mut holder = Command::new("docker")
        .args(["exec", &container, "sh", "-c"])
        .arg("MYSQL_PWD=\"$MYSQL_ROOT_PASSWORD\" mariadb -uroot pricescan -e 'LOCK TABLES big WRITE; SELECT SLEEP(120)'")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    p.set_env("BACKUP_DUMP_DEADLINE", "3s");
    let run = p.run(&["backup", "--only", "mysql"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr
            .contains("the MySQL dump (BACKUP_DUMP_DEADLINE) did not finish within its deadline of 3s"),
        "{}",
        run.all()
    );
    assert!(p.dir_names("backups").is_empty(), "{:?}", p.dir_names("backups"));
    assert!(lock_is_free(&p));
}

fn api_running(p: &TestProject) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={}", p.name),
        ])
        .args(["--filter", "label=com.docker.compose.service=pricescan-api"])
        .args(["--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn sigterm_before_and_after_the_switch_of_a_deploy() {
    let mut p = stack("sigdep", 300_000, true);
    p.set_env("API_DRAIN", "6s");
    // Before the switch: during the pre-deploy backup. Nothing is deployed or left behind.
    let run = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2"]);
    wait_for_partial(&p);
    run.signal("-TERM");
    let (exit, stderr) = run.finish();
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(stderr.contains("nothing was deployed"), "{stderr}");
    assert!(p.dir_names("backups").is_empty(), "{:?}", p.dir_names("backups"));
    assert_eq!(p.serving_version(), "v1");
    assert_eq!(api_running(&p).len(), 1, "{:?}", api_running(&p));

    // After the switch: the release serves and is recorded; the old container drains to the
    // end (no request in flight fails), then stops.
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 2, stop.clone());
    let run = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    run.wait_for("draining");
    run.signal("-TERM");
    let (exit, stderr) = run.finish();
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(stderr.contains("serves and is recorded"), "{stderr}");
    assert!(
        stderr.contains("still undoing, please wait: draining"),
        "the drain finishes, and says so: {stderr}"
    );
    assert!(r.ok > 20 && r.failed == 0, "{r:?}");
    assert_eq!(p.serving_version(), "v2");
    assert_eq!(api_running(&p).len(), 1, "{:?}", api_running(&p));
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    assert_eq!(history[0]["result"], "succeeded", "{history:#}");
    assert_eq!(history[0]["image"], "pricescan-test/api:v2");
    assert!(lock_is_free(&p));
    // Another checkout's `start` (this one's compose file still says v1) keeps v2.
    p.ok(&["start"]);
    assert_eq!(p.serving_version(), "v2");
    assert_eq!(json(&p.run(&["--json", "status"]))["release"], history[0]["id"]);
}

#[test]
fn a_killed_deploy_is_settled_by_the_next_command() {
    let mut p = stack("killdep", 10, true);
    // Long enough that the kill lands in the drain, which the next command then finishes.
    p.set_env("API_DRAIN", "8s");
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 2, stop.clone());
    // Killed before the switch: the new container never served; the next command removes it.
    let mut phases = Vec::new();
    let run = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    run.wait_for("starting");
    // Once the new container runs, and well before its first health check (3 s) can let
    // the switch happen. A fixed sleep raced a loaded machine, where starting took longer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api_running(&p).len() < 2 {
        assert!(Instant::now() < deadline, "the new API container never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    run.signal("-KILL");
    phases.push(format!("{:.3}: killed before the switch", unix_now()));
    assert_eq!(run.finish().0, None);
    assert_eq!(api_running(&p).len(), 2, "{:?}", api_running(&p));
    let next = p.ok(&["backup", "--only", "redis"]);
    phases.push(format!("{:.3}: settled\n{}", unix_now(), next.stderr));
    assert!(
        next.stderr.contains("an interrupted rollout left it running"),
        "{}",
        next.all()
    );
    assert_eq!(api_running(&p).len(), 1, "{:?}", api_running(&p));
    assert_eq!(p.serving_version(), "v1");

    // Killed after the switch: the new release serves; the next command retires the old one.
    let run = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    run.wait_for("draining");
    run.signal("-KILL");
    phases.push(format!("{:.3}: killed after the switch", unix_now()));
    assert_eq!(run.finish().0, None);
    let next = p.ok(&["backup", "--only", "redis"]);
    phases.push(format!("{:.3}: settled\n{}", unix_now(), next.stderr));
    assert!(next.stderr.contains("which serves"), "{}", next.all());
    assert!(next.all().contains("more before it stops"), "{}", next.all());
    assert_eq!(api_running(&p).len(), 1, "{:?}", api_running(&p));
    assert_eq!(p.serving_version(), "v2");
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    assert_eq!(history[0]["result"], "succeeded", "{history:#}");
    assert_eq!(history[0]["image"], "pricescan-test/api:v2");
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    assert!(r.ok > 20 && r.failed == 0, "{r:?}\n{}", phases.join("\n"));
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[test]
fn an_interrupted_redis_restore_is_never_left_stopped_and_empty() {
    let p = stack("sigredis", 10, true);
    // About 80 MB of RDB (within Redis' 384 MB maxmemory), so that putting it back takes long
    // enough to be interrupted.
    p.redis("EVAL \"for i=1,1000000 do redis.call('SET','k'..i,string.rep('x',64)) end\" 0");
    let backup = json(&p.ok(&["--json", "backup", "--only", "redis"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.redis("DEL k1");
    p.redis("SET after 1");
    let before = (p.redis("DBSIZE"), p.redis("GET after"));
    std::thread::sleep(Duration::from_millis(1100));
    let run = spawn(&p, &["restore", &backup, "--yes", "--only", "redis"]);
    run.wait_for("stopped the API");
    std::thread::sleep(Duration::from_millis(300));
    run.signal("-INT");
    let (exit, stderr) = run.finish();
    assert_eq!(exit, Some(130), "{stderr}");
    assert!(stderr.contains("the data from before is back"), "{stderr}");
    let redis_state = common::docker_format(
        "container",
        &format!("{}-pricescan-redis-1", p.name),
        "{{.State.Status}} {{.State.Health.Status}}",
    );
    assert_eq!(redis_state.as_deref(), Some("running healthy"));
    assert_eq!((p.redis("DBSIZE"), p.redis("GET after")), before);
    assert!(api_state(&p).starts_with("running healthy"), "{}", api_state(&p));
}

#[test]
fn a_recreation_the_engine_refuses_gives_way_to_the_old_container() {
    let mut p = stack("refused", 10, false);
    p.redis("SET kept 1");
    let redis = format!("{}-pricescan-redis-1", p.name);
    let before = common::docker_format("container", &redis, "{{.Id}}").unwrap();
    // json-file refuses this count when the container starts, after it was created.
    p.set_env("LOG_MAX_FILE", "0");
    let run = p.run(&["start", "-s", "redis"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stderr.contains("max-file"), "{}", run.all());
    assert!(
        run.stderr.contains("runs again with its previous configuration"),
        "{}",
        run.all()
    );
    let state = common::docker_format("container", &redis, "{{.Id}} {{.State.Status}}");
    assert_eq!(state, Some(format!("{before} running")));
    assert_eq!(p.redis("GET kept"), "1");
    // With a count it accepts, the recreation goes through and nothing set aside is left.
    p.set_env("LOG_MAX_FILE", "3");
    p.ok(&["start", "-s", "redis"]);
    let after = common::docker_format("container", &redis, "{{.Id}}").unwrap();
    assert_ne!(after, before);
    let names = std::process::Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=com.docker.compose.project={}", p.name))
        .output()
        .unwrap();
    let names = String::from_utf8_lossy(&names.stdout);
    assert!(!names.contains("replaced"), "{names}");
    assert_eq!(p.redis("GET kept"), "1");
}
