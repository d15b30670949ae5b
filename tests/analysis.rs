//! Deploys judged by live traffic (DESIGN §15), against the real stack under a load loop
//! through Nginx: releases that pass /health but fail (`flaky`: 5 % of requests answer 500)
//! or slow (`slow`: +300 ms) real requests are switched back; a good one passes; too little
//! traffic warns, or fails with a load test; a signal in the window switches back. And
//! `loadtest` against the same stack.

mod common;

use common::running::spawn;
use common::{TestProject, json, load_loop};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn stack(tag: &str) -> TestProject {
    let mut p = TestProject::new(tag).with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("API_DRAIN", "2s");
    p.set_env("DEPLOY_ANALYSIS", "60s");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    assert_eq!(p.serving_version(), "v1");
    p
}

/// Runs `args` while a load loop hits /api/version through Nginx: the run, ok and failed.
fn under_load(p: &TestProject, args: &[&str]) -> (common::Run, common::LoadResult) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 4, stop.clone());
    // A baseline: the old release's traffic before the switch.
    std::thread::sleep(Duration::from_secs(2));
    let run = p.run(args);
    stop.store(true, Ordering::Relaxed);
    (run, load.join().unwrap())
}

fn api_running(p: &TestProject) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "--filter", "label=com.docker.compose.service=pricescan-api"])
        .arg("--filter")
        .arg(format!("label=com.docker.compose.project={}", p.name))
        .args(["--format", "{{.Names}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A bad release under load: exit 4 before the window's end, v1 serving, and the figures in
/// the JSON, the history and the notification's words.
fn rejected(p: &TestProject, image: &str, metric: &str) -> serde_json::Value {
    let (run, load) = under_load(p, &["--json", "deploy", "--image", image, "--no-backup"]);
    assert_eq!(run.code, 4, "{}", run.all());
    assert!(run.stderr.contains("the analysis failed"), "{}", run.all());
    let record = json(&run);
    let a = &record["analysis"];
    assert_eq!(a["verdict"], "failed", "{record:#}");
    assert_eq!(a["breach"]["metric"], metric, "{record:#}");
    assert!(a["release"]["requests"].as_u64().unwrap() >= 50, "{a:#}");
    assert!(a["baseline"]["requests"].as_u64().unwrap() >= 50, "{a:#}");
    assert!(
        a["watched_s"].as_f64().unwrap() < a["window_s"].as_f64().unwrap(),
        "a clear breach ends the window early: {a:#}"
    );
    assert!(load.ok > 50, "{load:?}");
    assert_eq!(p.serving_version(), "v1");
    assert_eq!(api_running(p).len(), 1, "{:?}", api_running(p));
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    assert_eq!(history[0]["result"], "rolled_back", "{history:#}");
    assert_eq!(history[0]["image"], image);
    assert_eq!(history[0]["analysis"]["breach"]["metric"], metric);
    assert!(
        history[0]["message"]
            .as_str()
            .unwrap()
            .contains("analysis failed"),
        "{history:#}"
    );
    record
}

#[test]
fn releases_that_fail_or_slow_real_requests_are_switched_back_and_a_good_one_passes() {
    let p = stack("canary");
    let flaky = rejected(&p, "pricescan-test/api:flaky", "error ratio");
    assert!(
        flaky["analysis"]["release"]["error_ratio"].as_f64().unwrap() > 0.01,
        "{flaky:#}"
    );
    let slow = rejected(&p, "pricescan-test/api:slow", "p95");
    assert!(
        slow["analysis"]["release"]["p95_ms"].as_f64().unwrap() >= 300.0,
        "{slow:#}"
    );

    // The same load on a good release: the window runs to its end, then v2 serves, and no
    // request failed at any point.
    let (run, load) = under_load(
        &p,
        &[
            "--json",
            "deploy",
            "--image",
            "pricescan-test/api:v2",
            "--no-backup",
            "--analysis",
            "8s",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let a = &json(&run)["analysis"];
    assert_eq!(a["verdict"], "passed", "{a:#}");
    assert_eq!(a["release"]["error_ratio"], 0.0, "{a:#}");
    assert!(a["release"]["requests"].as_u64().unwrap() >= 50, "{a:#}");
    assert_eq!(load.failed, 0, "{load:?}");
    assert_eq!(p.serving_version(), "v2");
}

#[test]
fn too_little_traffic_warns_and_fails_a_load_test_that_brings_too_little() {
    let p = stack("quiet");
    // No traffic at all: the release passes unjudged, and says so.
    let run = p.run(&[
        "deploy",
        "--image",
        "pricescan-test/api:v2",
        "--no-backup",
        "--analysis",
        "3s",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("too little traffic to judge the release"),
        "{}",
        run.all()
    );
    assert_eq!(p.serving_version(), "v2");

    // A load test that brings 3 requests a second for 4 s: too few to judge, so it fails.
    let run = p.run(&[
        "--json",
        "deploy",
        "--image",
        "pricescan-test/api:v1",
        "--no-backup",
        "--analysis",
        "4s",
        "--load-test",
        "/api/version,rate=3/s",
    ]);
    assert_eq!(run.code, 4, "{}", run.all());
    assert!(run.stderr.contains("the load test brought only"), "{}", run.all());
    assert_eq!(json(&run)["analysis"]["verdict"], "too_little_traffic");
    assert_eq!(p.serving_version(), "v2");

    // A load test that brings enough: judged on its traffic alone, and passed.
    let run = p.run(&[
        "--json",
        "deploy",
        "--image",
        "pricescan-test/api:v1",
        "--no-backup",
        "--analysis",
        "5s",
        "--load-test",
        "/api/version,concurrency=4",
    ]);
    assert_eq!(run.code, 0, "{}", run.all());
    let a = &json(&run)["analysis"];
    assert_eq!(a["verdict"], "passed", "{a:#}");
    assert!(a["release"]["requests"].as_u64().unwrap() >= 50, "{a:#}");
    assert_eq!(p.serving_version(), "v1");

    // A load test needs the window it runs in.
    let run = p.run(&[
        "deploy",
        "--image",
        "pricescan-test/api:v2",
        "--analysis",
        "0",
        "--load-test",
        "/",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
}

#[test]
fn sigterm_in_the_window_switches_back_without_a_failed_request() {
    let p = stack("canaryterm");
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 4, stop.clone());
    let run = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    run.wait_for("watching the new release's traffic");
    std::thread::sleep(Duration::from_secs(2));
    run.signal("-TERM");
    run.wait_for("switched back: ");
    let (exit, stderr) = run.finish();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(r.ok > 50 && r.failed == 0, "{r:?}");
    assert_eq!(p.serving_version(), "v1");
    assert_eq!(api_running(&p).len(), 1, "{:?}", api_running(&p));
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    assert_eq!(history[0]["result"], "rolled_back", "{history:#}");
    assert_eq!(history[0]["analysis"]["verdict"], "interrupted", "{history:#}");
}

/// Requests for `uri` in Nginx's access log so far.
fn logged(p: &TestProject, uri: &str) -> usize {
    let out = Command::new("docker")
        .args(["logs", &format!("{}-pricescan-nginx-1", p.name)])
        .output()
        .unwrap();
    let needle = format!("\"uri\":\"{uri}\"");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

#[test]
fn loadtest_counts_what_nginx_logged_and_gates_ci_on_thresholds() {
    let p = stack("loadtest");
    let before = logged(&p, "/api/version");
    let run = p.ok(&["--json", "loadtest", "/api/version", "-c", "4", "-d", "3s"]);
    let report = json(&run);
    let sent = report["requests"].as_u64().unwrap();
    assert!(sent > 50, "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(report["by_kind"]["2xx"], sent, "{report:#}");
    for q in ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms"] {
        assert!(report["latency"][q].as_f64().unwrap() > 0.0, "{q}: {report:#}");
    }
    // Nginx's log is written as each answer goes; give the engine a moment to have it all.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        (logged(&p, "/api/version") - before) as u64,
        sent,
        "Nginx logged every request, no more"
    );

    // The open model, and a table for people.
    let run = p.ok(&["loadtest", "/api/version", "--rate", "40/s", "-d", "2s"]);
    assert!(
        run.stdout.contains("P95") && run.stdout.contains("2xx"),
        "{}",
        run.all()
    );

    // A breach exits 1 and names it; a good threshold passes.
    let run = p.run(&[
        "loadtest",
        "/api/version",
        "-c",
        "2",
        "-d",
        "2s",
        "--threshold",
        "p50<1us,errors<1%",
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("p50<1us: measured"), "{}", run.all());
    assert!(
        !run.stderr.contains("errors<1%"),
        "only the breached one is named: {}",
        run.all()
    );
    p.ok(&[
        "loadtest",
        "/api/version",
        "-c",
        "2",
        "-d",
        "2s",
        "--threshold",
        "p99<10s,errors<1%",
    ]);
    // Errors by kind: a path that answers 404 counts as failed, and a write is sent as asked.
    let run = p.run(&[
        "--json",
        "loadtest",
        "/nope",
        "-c",
        "1",
        "-d",
        "1s",
        "--threshold",
        "errors<1%",
    ]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        json(&run)["by_kind"]["4xx"].as_u64().unwrap() > 0,
        "{}",
        run.all()
    );
    let run = p.ok(&[
        "--json",
        "loadtest",
        "/api/version",
        "-X",
        "POST",
        "--body",
        "{}",
        "-c",
        "1",
        "-d",
        "1s",
    ]);
    assert!(
        json(&run)["by_kind"]["4xx"].as_u64().unwrap() > 0,
        "POST is not allowed there: {}",
        run.all()
    );

    // Someone else's host is refused before a single request, unless named.
    for url in ["http://192.0.2.1/", "http://example.com:8080/x"] {
        let run = p.run(&["loadtest", url, "-d", "1s"]);
        assert_eq!(run.code, 2, "{}", run.all());
        assert!(run.stderr.contains("refusing to send load"), "{}", run.all());
        assert!(run.stderr.contains("--allow-host"), "{}", run.all());
    }
    let run = p.run(&["loadtest", "/", "--threshold", "p95 fast"]);
    assert_eq!(run.code, 2, "{}", run.all());
}

#[test]
fn a_deploy_killed_in_its_window_is_switched_back_by_the_next_command() {
    let p = stack("canarykill");
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 4, stop.clone());
    let run = spawn(&p, &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    run.wait_for("watching the new release's traffic");
    run.signal("-KILL");
    assert_eq!(run.finish().0, None);
    assert_eq!(api_running(&p).len(), 2, "{:?}", api_running(&p));
    // Unjudged, v2 must not keep serving: the next command sends traffic back to v1.
    let next = p.ok(&["backup", "--only", "redis"]);
    assert!(
        next.stderr
            .contains("killed before the analysis of its traffic ended"),
        "{}",
        next.all()
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    assert!(r.ok > 50 && r.failed == 0, "{r:?}");
    assert_eq!(p.serving_version(), "v1");
    assert_eq!(api_running(&p).len(), 1, "{:?}", api_running(&p));
    let history = json(&p.ok(&["--json", "deploy", "history"]));
    assert_eq!(history[0]["result"], "rolled_back", "{history:#}");
    assert_eq!(history[0]["image"], "pricescan-test/api:v2");
}
