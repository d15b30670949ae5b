//! Deploys on the swarm lab (DESIGN §11): v1 → v2 and a broken release under load with no
//! failed request, a rollback from the release records, SIGTERM in the middle of an update,
//! and the deploys that must be refused before anything changes.

use crate::common::lab::*;
use crate::common::{self, Run, TestProject, load_loop_at};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Runs `args` while GET /api/version goes through Nginx from two workers.
fn under_load(p: &TestProject, host: &str, args: &[&str]) -> (Run, common::LoadResult) {
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop_at(host, p.port("HTTP_PORT"), "/api/version", 2, 30, stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    let run = p.run(args);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    (run, load.join().unwrap())
}

fn service_field(service: &str, format: &str) -> String {
    lab(1, &["service", "inspect", service, "--format", format])
}

fn latest_release(p: &TestProject) -> serde_json::Value {
    let history = common::json(&p.run(&["--json", "deploy", "history"]));
    history[0].clone()
}

/// The images of the API's tasks meant to run.
fn task_images(service: &str) -> Vec<String> {
    lab(
        1,
        &[
            "service",
            "ps",
            service,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Image}}",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn deploys_roll_through_the_swarm_without_losing_a_request() {
    wait_for_lab();
    let _nodes = NODES.read().unwrap_or_else(|e| e.into_inner());
    let (mut p, _guard) = project("swdeploy");
    p.set_env("SWARM_NODE_ENGINES", &node_engines(&[1, 2, 3]));
    p.ok(&[
        "setup",
        "--target",
        "swarm",
        "--data-node",
        &node_id(1),
        "--skip-images",
    ]);
    p.ok(&["start"]);
    p.ok(&["scale", "api=2"]);
    let api = format!("{}_pricescan-api", p.name);
    let (_, host) = nginx_node(&p.name);
    let port = p.port("HTTP_PORT");
    assert_eq!(version_at(&host, port), "v1");
    let nginx_task = lab(
        1,
        &["service", "ps", "-q", &format!("{}_pricescan-nginx", p.name)],
    );

    // v1 -> v2: a rolling start-first update, a pre-deploy backup from the data node.
    let (run, load) = under_load(&p, &host, &["deploy", "--image", "pricescan-test/api:v2"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(load.failed, 0, "{load:?}\n{}", run.all());
    assert!(load.ok > 20, "{load:?}");
    assert_eq!(version_at(&host, port), "v2");
    assert_eq!(task_images(&api), vec!["pricescan-test/api:v2"; 2]);
    let update = service_field(&api, "{{json .Spec.UpdateConfig}}");
    assert!(update.contains("\"Order\":\"start-first\""), "{update}");
    assert!(update.contains("\"FailureAction\":\"rollback\""), "{update}");
    let v2 = latest_release(&p);
    assert_eq!(v2["image"], "pricescan-test/api:v2");
    assert_eq!(v2["result"], "succeeded");
    let backup = v2["backup"].as_str().expect("a pre-deploy backup").to_string();
    assert!(p.file(&format!("backups/{backup}/manifest.json")).is_file());
    assert_eq!(
        service_field(&api, "{{index .Spec.Labels \"io.pricescan.release\"}}"),
        v2["id"].as_str().unwrap()
    );
    // start from any checkout keeps the deployed release.
    p.ok(&["start", "-s", "api"]);
    assert_eq!(task_images(&api), vec!["pricescan-test/api:v2"; 2]);

    // A broken release: the swarm rolls it back by itself; exit 4, v2 serves throughout.
    let (run, load) = under_load(
        &p,
        &host,
        &["deploy", "--image", "pricescan-test/api:broken", "--no-backup"],
    );
    assert_eq!(run.code, 4, "{}", run.all());
    assert_eq!(load.failed, 0, "{load:?}\n{}", run.all());
    assert!(run.stderr.contains("rolled back"), "{}", run.all());
    assert_eq!(version_at(&host, port), "v2");
    assert_eq!(latest_release(&p)["result"], "rolled_back");

    // After an automatic rollback the swarm has no previous spec: the records name v1.
    let (run, load) = under_load(&p, &host, &["deploy", "rollback"]);
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(load.failed, 0, "{load:?}\n{}", run.all());
    assert_eq!(version_at(&host, port), "v1");
    assert_eq!(latest_release(&p)["kind"], "rollback");

    sigterm_mid_update(&p, &api);
    assert_eq!(
        lab(
            1,
            &["service", "ps", "-q", &format!("{}_pricescan-nginx", p.name)]
        ),
        nginx_task,
        "a deploy restarted or moved Nginx"
    );
    refused_deploys(&p, &api);
}

/// SIGTERM while the tasks roll: the update is rolled back, and the record says so.
fn sigterm_mid_update(p: &TestProject, api: &str) {
    let child = p
        .cmd(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while service_field(api, "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}") != "updating" {
        assert!(Instant::now() < deadline, "the update never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    nix_kill(child.id(), "TERM");
    let out = wait_output(child);
    assert_eq!(out.code, 143, "{}", out.all());
    assert_eq!(
        service_field(api, "{{.UpdateStatus.State}}"),
        "rollback_completed"
    );
    assert_eq!(task_images(api), vec!["pricescan-test/api:v1"; 2]);
    let last = latest_release(p);
    assert_eq!(
        (last["image"].as_str(), last["result"].as_str()),
        (Some("pricescan-test/api:v2"), Some("rolled_back")),
        "{last:#}"
    );
}

/// Refused with exit 2, before anything changes: --build (no registry) and an image that
/// some nodes lack.
fn refused_deploys(p: &TestProject, api: &str) {
    let before = service_field(api, "{{.Version.Index}}");
    let run = p.run(&["deploy", "--build", ".", "--no-backup"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("no registry"), "{}", run.all());
    lab(
        1,
        &["tag", "pricescan-test/api:v2", "pricescan-test/api:only-on-1"],
    );
    let run = p.run(&["deploy", "--image", "pricescan-test/api:only-on-1", "--no-backup"]);
    assert_eq!(run.code, 2, "{}", run.all());
    for n in [2, 3] {
        assert!(
            run.stderr.contains(&node_id(n)),
            "node {n} not named:\n{}",
            run.all()
        );
    }
    assert!(!run.stderr.contains(&node_id(1)), "{}", run.all());
    assert_eq!(service_field(api, "{{.Version.Index}}"), before);
    paused_update_is_refused(p, api);
}

/// An update someone else started and the swarm paused: a deploy on top of it is refused
/// with how to resume or roll back, and changes nothing.
fn paused_update_is_refused(p: &TestProject, api: &str) {
    lab(
        1,
        &[
            "service",
            "update",
            "--detach",
            "--update-failure-action",
            "pause",
            "--image",
            "pricescan-test/api:broken",
            api,
        ],
    );
    let state = || service_field(api, "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}");
    let deadline = Instant::now() + Duration::from_secs(180);
    while state() != "paused" {
        assert!(Instant::now() < deadline, "the update never paused: {}", state());
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = service_field(api, "{{.Version.Index}}");
    let run = p.run(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("has an update that is paused"),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("docker service rollback"), "{}", run.all());
    assert_eq!(service_field(api, "{{.Version.Index}}"), before);
    lab(1, &["service", "rollback", "--detach", api]);
}

fn nix_kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_output(child: std::process::Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}
