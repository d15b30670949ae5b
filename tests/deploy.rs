//! Zero-downtime deploys against the real stack, under a load loop through Nginx: a good
//! release, a broken one rolled back by itself, a rollback, Ctrl-C, and the lock.

mod common;

use common::{TestProject, json, load_loop};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs `args` while a load loop hits the API through Nginx; returns the run and the failures.
fn under_load(p: &TestProject, args: &[&str]) -> (common::Run, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 4, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let run = p.run(args);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    (run, r.ok, r.failed)
}

fn api_containers(p: &TestProject) -> Vec<(String, String)> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=com.docker.compose.service=pricescan-api",
            "--filter",
        ])
        .arg(format!("label=com.docker.compose.project={}", p.name))
        .args(["--format", "{{.Names}} {{.State}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.into(), b.into())))
        .collect()
}

#[test]
fn deploy_rollback_and_failures_never_drop_a_request() {
    let mut p = TestProject::new("deploy").with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("API_DRAIN", "2s");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    p.sql("CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders VALUES (1), (2), (3)");
    assert_eq!(p.serving_version(), "v1");

    // v1 -> v2: no failed request, v2 serves, the old container is stopped and kept.
    let (run, ok, failed) = under_load(&p, &["deploy", "--image", "pricescan-test/api:v2"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(ok > 100 && failed == 0, "ok {ok}, failed {failed}");
    assert_eq!(p.serving_version(), "v2");
    let containers = api_containers(&p);
    assert!(
        containers.iter().any(|(n, s)| n.ends_with("-1") && s == "exited"),
        "{containers:?}"
    );
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    let latest = &history[0];
    assert_eq!(
        (latest["image"].as_str(), latest["result"].as_str()),
        (Some("pricescan-test/api:v2"), Some("succeeded"))
    );
    let backup = latest["backup"].as_str().expect("a pre-deploy backup id");
    assert!(p.file("backups").join(backup).join("manifest.json").is_file());
    let status = json(&p.ok(&["--json", "status"]));
    assert_eq!(
        status["release"], latest["id"],
        "status shows the current release"
    );
    let again = p.ok(&["deploy", "--image", "pricescan-test/api:v2"]);
    assert!(again.stdout.contains("nothing changed"), "{}", again.all());

    // A broken release: exit 4, no failed request, v2 still serves, the broken one is gone.
    let (run, ok, failed) = under_load(
        &p,
        &[
            "deploy",
            "--image",
            "pricescan-test/api:broken",
            "--no-backup",
            "--timeout",
            "15s",
        ],
    );
    assert_eq!(run.code, 4, "{}", run.all());
    assert!(
        run.stderr.contains("last") && run.stderr.contains("log lines"),
        "{}",
        run.all()
    );
    assert!(ok > 100 && failed == 0, "ok {ok}, failed {failed}");
    assert_eq!(p.serving_version(), "v2");
    assert_eq!(
        json(&p.ok(&["--json", "deploy", "history"]))[0]["result"],
        "rolled_back"
    );
    assert_eq!(
        api_containers(&p).iter().filter(|(_, s)| s == "running").count(),
        1
    );

    // Ctrl-C while the new container starts: exit 130, the old release keeps serving.
    let mut child = p
        .cmd(&["deploy", "--image", "pricescan-test/api:broken", "--no-backup"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130));
    assert_eq!(p.serving_version(), "v2");
    assert_eq!(
        api_containers(&p).iter().filter(|(_, s)| s == "running").count(),
        1,
        "{:?}",
        api_containers(&p)
    );

    // Rollback: back to v1 with no failed request.
    let (run, ok, failed) = under_load(&p, &["deploy", "rollback"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(ok > 100 && failed == 0, "ok {ok}, failed {failed}");
    assert_eq!(p.serving_version(), "v1");

    // A deploy while another operation holds the lock: exit 75, nothing changes.
    let before = api_containers(&p);
    p.hold_lock_elsewhere("backup");
    let locked = p.run(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    p.ok(&["lock", "release", "--force"]);
    assert_eq!(locked.code, 75, "{}", locked.all());
    assert!(
        locked.stderr.contains("held by backup by ci on elsewhere"),
        "{}",
        locked.all()
    );
    assert_eq!(api_containers(&p), before);

    // A failing pre-deploy hook or migration stops the deploy before anything changes.
    let before = api_containers(&p);
    p.write(
        "hooks/pre-deploy",
        "#!/bin/sh\necho \"checking $PRICESCAN_IMAGE\" >&2\nexit 3\n",
    );
    std::fs::set_permissions(
        p.file("hooks/pre-deploy"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let hooked = p.run(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    assert_eq!(hooked.code, 1, "{}", hooked.all());
    assert!(
        hooked.stderr.contains("hooks/pre-deploy failed"),
        "{}",
        hooked.all()
    );
    std::fs::remove_file(p.file("hooks/pre-deploy")).unwrap();
    let migrated = p.run(&[
        "deploy",
        "--image",
        "pricescan-test/api:v2",
        "--no-backup",
        "--migrate",
        "echo migrating; exit 7",
    ]);
    assert_eq!(migrated.code, 1, "{}", migrated.all());
    assert!(
        migrated.stderr.contains("migration failed (exit 7)") && migrated.stderr.contains("migrating"),
        "{}",
        migrated.all()
    );
    assert_eq!(api_containers(&p), before);
    assert_eq!(p.serving_version(), "v1");

    // --build: Dockerfile.prod of a small context, .dockerignore honoured, deployed.
    p.write(
        "ctx/Dockerfile.prod",
        "FROM pricescan-test/api:v1\nENV APP_VERSION=v9\nCOPY . /ctx/\nRUN test ! -e /ctx/ignored.txt\n",
    );
    p.write("ctx/ignored.txt", "must not reach the build");
    p.write("ctx/.dockerignore", "ignored.txt\n");
    let (run, ok, failed) = under_load(
        &p,
        &[
            "deploy",
            "--build",
            "ctx",
            "--no-backup",
            "--migrate",
            "test -n \"$DB_HOST\"",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(ok > 100 && failed == 0, "ok {ok}, failed {failed}");
    assert_eq!(p.serving_version(), "v9");

    // The data never moved.
    assert_eq!(p.sql("SELECT COUNT(*) FROM orders"), "3");
}
