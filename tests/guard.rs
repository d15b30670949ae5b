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

fn api_id(p: &TestProject) -> String {
    p.container_ids()
        .into_iter()
        .find(|(name, _)| name.contains("api"))
        .map(|(_, id)| id)
        .expect("an API container")
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

    // Gunicorn's master is the container's PID 1, which ignores SIGSTOP sent from inside;
    // its workers, stopped alone, would be replaced by the master.
    let hung = api_id(&p);
    for args in [
        vec!["kill", "-s", "STOP", &hung],
        vec!["exec", &hung, "pkill", "-STOP", "-f", "gunicorn"],
    ] {
        assert!(
            Command::new("docker").args(&args).status().unwrap().success(),
            "{args:?}"
        );
    }
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
