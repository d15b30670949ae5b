//! The guard (DESIGN §14) as a separate process against the real stack: a hung API
//! (every Gunicorn process stopped with SIGSTOP, so the health check fails while the
//! container runs) is replaced start-first, the incident is written and told, a second guard
//! refuses, and SIGTERM ends it with 143.

mod common;

use common::receivers::HttpReceiver;
use common::running::{http_status, spawn};
use common::{TestProject, json};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The running API container (a deploy keeps the one before, stopped, for rollback).
fn api_id(p: &TestProject) -> String {
    let filter = format!("label=com.docker.compose.project={}", p.name);
    let ids = docker(&[
        "ps",
        "-q",
        "--filter",
        &filter,
        "--filter",
        "label=com.docker.compose.service=pricescan-api",
    ]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "one running API container: {ids:?}");
    ids[0].to_string()
}

/// Stops every Gunicorn process of the container: it runs, and answers nothing.
fn hang(id: &str) {
    // Gunicorn's master is the container's PID 1, which ignores SIGSTOP sent from inside;
    // its workers, stopped alone, would be replaced by the master.
    for args in [
        vec!["kill", "-s", "STOP", id],
        vec!["exec", id, "pkill", "-STOP", "-f", "gunicorn"],
    ] {
        assert!(
            Command::new("docker").args(&args).status().unwrap().success(),
            "{args:?}"
        );
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn steps(incident: &serde_json::Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_hung_api_is_replaced_start_first_and_the_incident_written_and_told() {
    let hook = HttpReceiver::start();
    let mut p = TestProject::new("guardhang").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "2s");
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}/hook", hook.url));
    p.set_env("METRICS_TEXTFILE_DIR", "metrics");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("guarding");
    let second = p.run(&["guard"]);
    assert_eq!(second.code, 75, "a second guard must refuse:\n{}", second.all());
    assert!(second.stderr.contains("guard"), "{}", second.all());

    let hung = api_id(&p);
    hang(&hung);
    guard.wait_for("(resolved)");
    assert_ne!(api_id(&p), hung, "the hung container must be replaced");
    // Serving again, every request.
    let stop = Arc::new(AtomicBool::new(false));
    let load = common::load_loop(p.port("HTTP_PORT"), "/api/version", 4, stop.clone());
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let load = load.join().unwrap();
    assert!(load.ok > 0 && load.failed == 0, "after the heal: {load:?}");
    assert_eq!(http_status(&p, "GET"), 200);

    let listed = json(&p.ok(&["--json", "incidents"]));
    let incident = &listed[0];
    assert_eq!(incident["outcome"], "resolved", "{listed:#}");
    assert!(
        incident["service"].as_str().unwrap().contains("api"),
        "{listed:#}"
    );
    assert!(incident["recovery_seconds"].as_f64().unwrap() > 2.0, "{listed:#}");
    let steps: Vec<&str> = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    for step in [
        "detected",
        "took the operation lock",
        "serving again",
        "replaced start-first",
        "verified",
        "resolved",
    ] {
        assert!(steps.iter().any(|s| s.contains(step)), "no {step:?} in {steps:?}");
    }
    assert!(!incident["logs"].as_array().unwrap().is_empty(), "{listed:#}");
    assert!(
        !incident["status_after"].as_array().unwrap().is_empty(),
        "{listed:#}"
    );
    let id = incident["id"].as_str().unwrap();
    let shown = p.ok(&["incidents", "show", id]);
    assert!(
        shown.stdout.contains(&format!("# Incident {id}")),
        "{}",
        shown.all()
    );
    let secrets = p.secrets();
    let report = p.read(&format!(".pricescan/incidents/{id}.json"));
    for (key, value) in secrets.iter().filter(|(_, v)| v.len() >= 8) {
        assert!(!report.contains(value.as_str()), "{key} in the incident report");
    }
    hook.wait_for("/hook", "incident.opened");
    let resolved = hook.wait_for("/hook", "incident.resolved");
    assert!(resolved.body.contains("recovered in"), "{}", resolved.body);
    let metrics = p.read("metrics/pricescan_guard.prom");
    assert!(metrics.contains("pricescan_guard_up 1"), "{metrics}");
    assert!(metrics.contains("outcome=\"resolved\"} 1"), "{metrics}");

    guard.signal("-TERM");
    let (code, stderr) = guard.finish();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        p.read("metrics/pricescan_guard.prom")
            .contains("pricescan_guard_up 0")
    );
}

#[test]
fn a_removed_mysql_is_recreated_with_its_data_and_an_operators_stop_is_left_alone() {
    let mut p = TestProject::new("guardgone").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "2s");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start", "-s", "mysql", "-s", "redis"]);
    p.sql("CREATE TABLE kept (v INT); INSERT INTO kept VALUES (42)");
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("guarding");
    // A stop by pricescan-ctl holds the operation lock: no finding.
    p.ok(&["stop", "-s", "redis"]);
    let mysql = format!("{}-pricescan-mysql-1", p.name);
    let removed = Command::new("docker")
        .args(["rm", "-f", &mysql])
        .status()
        .unwrap();
    assert!(removed.success());
    guard.wait_for("(resolved)");
    assert_eq!(p.sql("SELECT v FROM kept"), "42", "the data must still be there");
    let listed = json(&p.ok(&["--json", "incidents"]));
    let all = listed.as_array().unwrap();
    assert_eq!(all.len(), 1, "only MySQL's removal is an incident: {listed:#}");
    assert!(
        all[0]["service"].as_str().unwrap().contains("mysql"),
        "{listed:#}"
    );
    assert!(
        all[0]["detected"].as_str().unwrap().contains("went away"),
        "{listed:#}"
    );
    assert_eq!(all[0]["outcome"], "resolved", "{listed:#}");
    let redis = common::docker_format(
        "container",
        &format!("{}-pricescan-redis-1", p.name),
        "{{.State.Status}}",
    );
    assert_eq!(
        redis.as_deref(),
        Some("exited"),
        "the stopped Redis stays stopped"
    );
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
}

#[test]
fn a_service_that_never_gets_healthy_is_healed_three_times_then_given_up() {
    let hook = HttpReceiver::start();
    let mut p = TestProject::new("guardloop").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "1s");
    p.set_env("GUARD_HEAL_TIMEOUT", "4s");
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}/hook", hook.url));
    p.ok(&["setup", "--skip-images"]);
    p.edit_service(
        "pricescan-redis",
        "interval: 3s\n      timeout: 3s\n      retries: 10",
        "interval: 1s\n      timeout: 1s\n      retries: 1",
    );
    p.edit_service("pricescan-redis", "redis-cli ping | grep -q PONG", "false");
    p.ok(&["start", "-s", "redis", "--no-wait"]);
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("(gave up)");
    let gave_up = hook.wait_for("/hook", "guard.gave_up");
    assert!(gave_up.body.contains("3 heals"), "{}", gave_up.body);
    // No further action: the service stays unhealthy and nothing more is opened.
    let count = || json(&p.ok(&["--json", "incidents"])).as_array().unwrap().len();
    let after = count();
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(count(), after, "the guard acted after giving up");
    let listed = json(&p.ok(&["--json", "incidents"]));
    let outcomes: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "failed", "gave_up"], "{listed:#}");
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
}

#[test]
fn a_cut_network_is_healed_through_nginx_and_a_young_release_that_hangs_is_rolled_back() {
    let mut p = TestProject::new("guardprobe").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "2s");
    p.set_env("GUARD_PROBE_INTERVAL", "1s");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("guarding");

    // Its own health check passes, but Nginx can no longer reach it.
    let cut = api_id(&p);
    let networks = docker(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        &cut,
    ]);
    for net in networks.split_whitespace() {
        docker(&["network", "disconnect", net, &cut]);
    }
    guard.wait_for("(resolved)");
    assert_ne!(api_id(&p), cut, "the cut-off container must be replaced");
    assert_eq!(http_status(&p, "GET"), 200);
    let first = json(&p.ok(&["--json", "incidents"]))[0].clone();
    assert!(
        first["detected"]
            .as_str()
            .unwrap()
            .contains("probe through Nginx"),
        "{first:#}"
    );
    assert!(
        steps(&first).iter().any(|s| s.contains("replaced start-first")),
        "{first:#}"
    );

    // A release that hangs within GUARD_ROLLBACK_WINDOW of its deploy is rolled back.
    p.ok(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    assert_eq!(p.serving_version(), "v2");
    hang(&api_id(&p));
    guard.wait_for("(resolved)");
    assert_eq!(p.serving_version(), "v1", "the young release must be rolled back");
    let listed = json(&p.ok(&["--json", "incidents"]));
    let second = listed.as_array().unwrap().last().unwrap();
    assert!(
        steps(second).iter().any(|s| s.contains("rolled back release")),
        "{second:#}"
    );
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    let newest = &history[0];
    assert_eq!(newest["kind"], "rollback", "{history:#}");
    assert_eq!(newest["image"], "pricescan-test/api:v1", "{history:#}");
    assert_eq!(newest["result"], "succeeded", "{history:#}");
    assert!(
        newest["user"].as_str().unwrap().starts_with("guard"),
        "{history:#}"
    );
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
}

#[test]
fn a_deploy_under_way_is_waited_for_and_its_new_container_left_alone() {
    let mut p = TestProject::new("guarddeploy").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "2s");
    p.set_env("GUNICORN_GRACEFUL_TIMEOUT", "5s");
    p.ok(&["setup", "--skip-images"]);
    p.edit_service(
        "pricescan-api",
        "interval: 3s\n      timeout: 3s\n      retries: 10",
        "interval: 1s\n      timeout: 1s\n      retries: 2",
    );
    p.ok(&["start"]);
    p.write("hooks/pre-deploy", "#!/bin/sh\necho deploying >&2\nsleep 12\n");
    std::fs::set_permissions(
        p.file("hooks/pre-deploy"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("guarding");
    // The deploy holds the lock (its hook sleeps) when the old release hangs.
    let deploy = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    let started = std::time::Instant::now();
    while !deploy.stderr().contains("deploying") {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the deploy never ran its hook: {}",
            deploy.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let old = api_id(&p);
    hang(&old);
    let (code, stderr) = deploy.finish();
    assert_eq!(code, Some(0), "{stderr}");
    let new = api_id(&p);
    assert_ne!(new, old);
    guard.wait_for("(resolved)");
    let listed = json(&p.ok(&["--json", "incidents"]));
    let incident = &listed[0];
    assert_eq!(incident["outcome"], "resolved", "{listed:#}");
    let steps = steps(incident);
    assert!(
        steps
            .iter()
            .any(|s| s.contains("healthy again before any action")),
        "{steps:?}"
    );
    assert!(
        !steps
            .iter()
            .any(|s| s.contains("replaced start-first") || s.contains("restarted")),
        "{steps:?}"
    );
    assert_eq!(api_id(&p), new, "the guard must not touch the new release");
    assert_eq!(p.serving_version(), "v2");
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
}

/// A stand-in for the engine's socket that the test can take away: every byte passes to
/// the real engine until the proxy is killed, which cuts every connection at once.
struct EngineProxy(std::process::Child);

const PROXY: &str = r#"
import asyncio, os, sys
path, target = sys.argv[1], sys.argv[2]
async def pipe(r, w):
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def handle(r, w):
    try:
        tr, tw = await asyncio.open_unix_connection(target)
    except Exception:
        w.close()
        return
    await asyncio.gather(pipe(r, tw), pipe(tr, w))
async def main():
    if os.path.exists(path):
        os.unlink(path)
    server = await asyncio.start_unix_server(handle, path)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"#;

impl EngineProxy {
    fn start(path: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .args(["-c", PROXY, path, "/var/run/docker.sock"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Self(child)
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_engine_that_goes_away_is_retried_told_and_followed_again() {
    let hook = HttpReceiver::start();
    let mut p = TestProject::new("guardengine").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "2s");
    p.set_env("GUARD_ENGINE_DOWN_FOR", "2s");
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}/hook", hook.url));
    p.set_env("METRICS_TEXTFILE_DIR", "metrics");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start", "-s", "redis"]);
    let sock = format!("/tmp/pricescan-{}-engine.sock", p.name);
    let proxy = EngineProxy::start(&sock);
    let host = format!("unix://{sock}");
    let guard = spawn(&p, &["--docker-host", &host, "guard"]);
    guard.wait_for("guarding");

    drop(proxy);
    let down = hook.wait_for("/hook", "guard.engine_down");
    assert!(down.body.contains("has not answered"), "{}", down.body);
    let metrics = p.read("metrics/pricescan_guard.prom");
    assert!(metrics.contains("pricescan_guard_up 0"), "{metrics}");
    assert!(guard.stderr().contains("does not answer"), "{}", guard.stderr());

    let _proxy = EngineProxy::start(&sock);
    guard.wait_for("answers again");
    hook.wait_for("/hook", "guard.engine_back");
    // Watching again: a Redis stopped behind its back is brought back.
    let redis = format!("{}-pricescan-redis-1", p.name);
    docker(&["stop", &redis]);
    guard.wait_for("(resolved)");
    assert_eq!(
        common::docker_format("container", &redis, "{{.State.Status}}").as_deref(),
        Some("running")
    );
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
    let _ = std::fs::remove_file(&sock);
}

#[test]
fn setup_guard_installs_a_unit_that_systemd_accepts_and_says_when_it_cannot_enable_it() {
    let p = TestProject::new("guardunit");
    let units = tempfile::tempdir().unwrap();
    let run = p
        .cmd(&["setup", "--skip-images", "--guard"])
        .env("PRICESCAN_SYSTEMD_DIR", units.path())
        .output()
        .unwrap();
    let run = common::Run::from(run);
    let unit = units.path().join(format!("pricescan-guard-{}.service", p.name));
    let text = std::fs::read_to_string(&unit).expect("the unit is installed");
    let exe = env!("CARGO_BIN_EXE_pricescan-ctl");
    assert!(text.contains(&format!("ExecStart={exe} guard")), "{text}");
    assert!(
        text.contains(&format!("WorkingDirectory={}", p.path().display())),
        "{text}"
    );
    assert!(text.contains("Restart=always"), "{text}");
    // systemd's own checker: every directive parses and the binary is executable.
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    if std::path::Path::new("/run/systemd/system").is_dir() {
        assert_eq!(run.code, 0, "{}", run.all());
        return;
    }
    // This host has no systemd: installed, not enabled, and it says so.
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("systemd is not running on this host") && run.stderr.contains("hint:"),
        "{}",
        run.all()
    );
    let again = p
        .cmd(&["setup", "--skip-images", "--guard"])
        .env("PRICESCAN_SYSTEMD_DIR", units.path())
        .output()
        .unwrap();
    let again = common::Run::from(again);
    assert!(!again.stdout.contains("installed"), "unchanged: {}", again.all());
}

#[test]
fn a_restart_loop_is_healed_at_once_then_given_up_after_three_heals() {
    let hook = HttpReceiver::start();
    let mut p = TestProject::new("guardcrash").with_own_ports();
    // The loop is due at once, not after GUARD_UNHEALTHY_FOR.
    p.set_env("GUARD_UNHEALTHY_FOR", "10m");
    p.set_env("GUARD_HEAL_TIMEOUT", "3s");
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}/hook", hook.url));
    p.ok(&["setup", "--skip-images"]);
    p.edit_service(
        "pricescan-redis",
        "/usr/local/etc/redis/redis.conf",
        "/nonexistent/redis.conf",
    );
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("guarding");
    // The engine's restart policy restarts it again and again.
    let _ = p.run(&["start", "-s", "redis", "--no-wait"]);
    guard.wait_for("(gave up)");
    hook.wait_for("/hook", "guard.gave_up");
    let listed = json(&p.ok(&["--json", "incidents"]));
    let all = listed.as_array().unwrap();
    let outcomes: Vec<&str> = all.iter().map(|i| i["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["failed", "failed", "failed", "gave_up"], "{listed:#}");
    assert!(
        all[0]["detected"].as_str().unwrap().contains("restart loop"),
        "{listed:#}"
    );
    std::thread::sleep(Duration::from_secs(8));
    let after = json(&p.ok(&["--json", "incidents"]));
    assert_eq!(
        after.as_array().unwrap().len(),
        4,
        "acted after giving up: {after:#}"
    );
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
}

/// A self-signed certificate for `name`, valid for `days`, as TLS_CERT_DIR's fullchain.pem.
fn certificate(p: &TestProject, name: &str, days: u32) {
    let dir = p.file("config/tls");
    std::fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj"])
        .arg(format!("/CN={name}"))
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .args(["-days", &days.to_string(), "-keyout"])
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn an_expiring_certificate_is_reported_once_never_acted_on_and_resolved_when_renewed() {
    let hook = HttpReceiver::start();
    let mut p = TestProject::new("guardcare");
    p.set_env("GUARD_DOCTOR_INTERVAL", "1s");
    p.set_env("NGINX_TLS", "on");
    p.set_env("SERVER_NAME", "shop.example");
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}/hook", hook.url));
    p.ok(&["setup", "--skip-images"]);
    certificate(&p, "shop.example", 10);
    let before = std::fs::read(p.file("config/tls/fullchain.pem")).unwrap();
    let guard = spawn(&p, &["guard"]);
    let line = guard.wait_for("(reported)");
    assert!(line.contains("reported only"), "{line}");
    let opened = hook.wait_for("/hook", "incident.opened");
    assert!(
        opened.body.contains("certificate expires") && opened.body.contains("does not act"),
        "{}",
        opened.body
    );
    // Seen again and again: one report, and the certificate is left as it was.
    std::thread::sleep(Duration::from_secs(4));
    let listed = json(&p.ok(&["--json", "incidents"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["service"], "doctor-tls", "{listed:#}");
    assert_eq!(listed[0]["outcome"], "reported", "{listed:#}");
    assert_eq!(std::fs::read(p.file("config/tls/fullchain.pem")).unwrap(), before);
    // A guard started again does not report it twice.
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
    let guard = spawn(&p, &["guard"]);
    guard.wait_for("guarding");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(json(&p.ok(&["--json", "incidents"])).as_array().unwrap().len(), 1);
    // Renewed: resolved.
    certificate(&p, "shop.example", 365);
    guard.wait_for("(resolved)");
    hook.wait_for("/hook", "incident.resolved");
    let listed = json(&p.ok(&["--json", "incidents"]));
    assert_eq!(listed[0]["outcome"], "resolved", "{listed:#}");
    guard.signal("-TERM");
    assert_eq!(guard.finish().0, Some(143));
}

fn lock_free(p: &TestProject) -> bool {
    p.ok(&["lock", "status"]).stdout.contains(": free")
}

#[test]
fn sigterm_mid_heal_ends_with_the_stack_serving_and_a_guard_killed_mid_heal_is_settled_by_the_next() {
    let mut p = TestProject::new("guardsig").with_own_ports();
    p.set_env("GUARD_UNHEALTHY_FOR", "1s");
    p.set_env("GUARD_PROBE_INTERVAL", "1s");
    p.set_env("GUNICORN_GRACEFUL_TIMEOUT", "5s");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    for (signal, code) in [("-TERM", Some(143)), ("-KILL", None)] {
        let guard = spawn(&p, &["guard"]);
        guard.wait_for("guarding");
        hang(&api_id(&p));
        guard.wait_for("(open)");
        // Mid-heal: the replacement is starting beside the hung container.
        std::thread::sleep(Duration::from_secs(2));
        guard.signal(signal);
        let (exit, stderr) = guard.finish();
        assert_eq!(exit, code, "{signal}: {stderr}");
        if signal == "-KILL" {
            // systemd starts it again (Restart=always): the new guard takes the lock, which
            // settles what the killed one left, and heals what is still hung.
            let again = spawn(&p, &["guard"]);
            again.wait_for("(resolved)");
            again.signal("-TERM");
            assert_eq!(again.finish().0, Some(143));
        }
        assert!(lock_free(&p), "{signal}: the lock is left taken");
        assert_eq!(http_status(&p, "GET"), 200, "{signal}: not serving");
        // One API container serves, and it answers.
        let stop = Arc::new(AtomicBool::new(false));
        let load = common::load_loop(p.port("HTTP_PORT"), "/api/version", 2, stop.clone());
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        let load = load.join().unwrap();
        assert!(load.ok > 0 && load.failed == 0, "{signal}: {load:?}");
    }
}
