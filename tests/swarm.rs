//! The swarm target against the three-node lab of tests/swarm/lab.sh (DESIGN §11): setup,
//! start, scale, Nginx across nodes, a lost worker under load, stop, and the bad inputs.
//! tests/run brings the lab up; this test waits for it and checks the effects with the
//! docker CLI on the lab's manager.

#[path = "swarm/ci.rs"]
mod ci;
mod common;
#[path = "swarm/data.rs"]
mod data;
#[path = "swarm/deploy.rs"]
mod deploy;
#[path = "swarm/doctor.rs"]
mod doctor;
#[path = "swarm/guard.rs"]
mod guard;
#[path = "swarm/monitor.rs"]
mod monitor;

use common::lab::*;
use common::{TestProject, load_loop_at};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn the_stack_runs_on_a_three_node_swarm_and_survives_a_lost_worker() {
    wait_for_lab();
    let (mut p, _guard) = project("swarm");
    p.set_env("COMPOSE_PROFILES", "monitoring");
    // Nginx's proxy_read_timeout: how long a request stranded on a lost node waits.
    p.set_env("GUNICORN_TIMEOUT", "10");
    let data = node_id(1);
    p.ok(&[
        "setup",
        "--target",
        "swarm",
        "--data-node",
        &data,
        "--skip-images",
    ]);
    assert!(p.read(".env.prod").contains("STACK_TARGET=swarm"));
    // Idempotent, and later commands need no flag.
    let again = p.ok(&["setup", "--skip-images"]);
    assert!(again.all().contains("nothing changed"), "{}", again.all());
    // Secrets are swarm secrets, never values in a service spec.
    let secrets = lab(1, &["secret", "ls", "--format", "{{.Name}}"]);
    assert!(secrets.contains(&format!("{}_DB_PASSWORD-", p.name)), "{secrets}");

    let start = p.ok(&["start"]);
    assert!(
        start.stderr.contains("depends_on is ignored on swarm"),
        "{}",
        start.all()
    );
    let services = lab(
        1,
        &[
            "service",
            "ls",
            "--format",
            "{{.Name}}",
            "--filter",
            &format!("label=com.docker.stack.namespace={}", p.name),
        ],
    );
    for s in [
        "api",
        "mysql",
        "redis",
        "nginx",
        "prometheus",
        "grafana",
        "alertmanager",
    ] {
        assert!(
            services.contains(&format!("{}_pricescan-{s}", p.name)),
            "{services}"
        );
    }
    let api = format!("{}_pricescan-api", p.name);
    let spec = lab(1, &["service", "inspect", &api, "--format", "{{json .Spec}}"]);
    for (key, value) in p.secrets().into_iter().filter(|(_, v)| v.len() >= 8) {
        assert!(!spec.contains(&value), "the value of {key} is in the API's spec");
    }
    assert!(spec.contains("\"Mode\":\"dnsrr\""), "{spec}");
    assert_eq!(
        task_nodes(&format!("{}_pricescan-mysql", p.name)),
        vec![data.clone()]
    );

    p.ok(&["scale", "api=3"]);
    let api_nodes = task_nodes(&api);
    assert_eq!(api_nodes.len(), 3, "{api_nodes:?}");
    let mut distinct = api_nodes.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 2, "3 API tasks on one node: {api_nodes:?}");

    let nginx_node = task_nodes(&format!("{}_pricescan-nginx", p.name))[0].clone();
    let nginx_at = (1..=3).find(|n| node_id(*n) == nginx_node).unwrap();
    let port = p.port("HTTP_PORT");
    assert!(
        http_ok(&addr(nginx_at), port, "/health"),
        "no /health through Nginx"
    );

    // logs merges every task's lines, each labelled with its task slot.
    for _ in 0..12 {
        http_ok(&addr(nginx_at), port, "/api/version");
    }
    let logs = p.ok(&["logs", "-s", "api", "-n", "30"]);
    for slot in 1..=3 {
        assert!(
            logs.stdout.contains(&format!("pricescan-api.{slot} |")),
            "no line of task {slot}:\n{}",
            logs.stdout
        );
    }
    assert!(
        logs.stdout.contains("GET /api/version"),
        "no access log line:\n{}",
        logs.stdout
    );

    let status = common::json(&p.run(&["--json", "status"]));
    let api_status = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "pricescan-api")
        .unwrap()
        .clone();
    assert_eq!(api_status["replicas"]["running"], 3, "{status:#}");
    assert_eq!(api_status["replicas"]["desired"], 3, "{status:#}");
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3, "{status:#}");
    // The API publishes nothing on swarm: it is probed through Nginx's published port, and
    // Prometheus, Grafana and Alertmanager from inside the overlay network.
    let probes = status["endpoints"].as_array().unwrap();
    assert!(probes.iter().all(|e| e["ok"] == true), "{status:#}");
    let probed = |name: &str| {
        probes
            .iter()
            .any(|e| e["name"].as_str().unwrap().starts_with(name))
    };
    assert!(probed("api via nginx"), "{status:#}");
    for (name, url) in [
        ("prometheus", "http://pricescan-prometheus:9090/-/healthy"),
        ("grafana", "http://pricescan-grafana:3000/api/health"),
        ("alertmanager", "http://pricescan-alertmanager:9093/-/healthy"),
    ] {
        assert!(
            probes.iter().any(|e| e["name"] == name && e["url"] == url),
            "{status:#}"
        );
    }
    assert_eq!(status["healthy"], true, "{status:#}");
    monitor::each_task_shows_its_node_and_rates(&mut p, &data);
    guard::records_the_swarms_replacement_of_a_killed_task(&mut p, &api);

    // A worker that runs an API task but neither Nginx nor the data is lost under load.
    let victim = (2..=3)
        .find(|n| node_id(*n) != nginx_node && api_nodes.contains(&node_id(*n)))
        .expect("a worker with an API task and no Nginx");
    let victim_id = node_id(victim);
    let stop = Arc::new(AtomicBool::new(false));
    // A request in flight on the lost node has no answer to wait for: Nginx gives up on it
    // after proxy_read_timeout (GUNICORN_TIMEOUT, 10 s here) and retries it on a live task. The
    // client waits that long: slow, but not lost.
    let load = load_loop_at(&addr(nginx_at), port, "/api/version", 2, 30, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    // Tests that share the lab finish first: a lost node stays lost.
    let _all_mine = NODES.write().unwrap_or_else(|e| e.into_inner());
    let lost = Command::new("bash")
        .args(["tests/swarm/lab.sh", "lose", &victim.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(lost.success());
    let deadline = Instant::now() + Duration::from_secs(90);
    let down = loop {
        let run = p.run(&["status"]);
        if run.stdout.contains(&format!("({victim_id}) is down")) {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "status never named the lost node:\n{}",
            run.all()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(down.stdout.contains("vm"), "{}", down.all());
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let r = load.join().unwrap();
    assert!(r.ok > 20 && r.failed == 0, "{r:?}");
    let json = common::json(&p.run(&["--json", "status"]));
    let node = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == victim_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(node["state"], "down", "{json:#}");
    // The data node down at backup time: exit 1, naming it, and nothing left behind.
    let key = format!("io.pricescan.data.{}", p.name);
    let label = format!("{key}=true");
    lab(1, &["node", "update", "--label-rm", &key, &data]);
    lab(1, &["node", "update", "--label-add", &label, &victim_id]);
    let run = p.run(&["backup"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains(&format!("the data node {victim_id}")),
        "{}",
        run.all()
    );
    assert!(run.stderr.contains("is down"), "{}", run.all());
    assert!(p.dir_names("backups").is_empty(), "{:?}", p.dir_names("backups"));
    lab(1, &["node", "update", "--label-rm", &key, &victim_id]);
    lab(1, &["node", "update", "--label-add", &label, &data]);

    // Stop leaves no task and keeps the secrets, configs and the data volume.
    p.ok(&["stop"]);
    let running = lab(
        1,
        &[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            &format!("{}_pricescan-mysql", p.name),
            &api,
        ],
    );
    assert!(running.is_empty(), "{running}");
    assert!(lab(1, &["secret", "ls", "-q"]).lines().count() >= 5);
    assert!(
        !lab(
            1,
            &[
                "config",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={}", p.name)
            ]
        )
        .is_empty()
    );
    let volumes = lab(1, &["volume", "ls", "--format", "{{.Name}}"]);
    assert!(volumes.contains(&format!("{}_mysql-data", p.name)), "{volumes}");
}

#[test]
fn bad_swarm_inputs_are_refused_with_exit_2() {
    wait_for_lab();
    let _nodes = NODES.read().unwrap_or_else(|e| e.into_inner());
    let (p, _guard) = project("swarmbad");
    assert_code(
        &p.run(&[
            "setup",
            "--target",
            "swarm",
            "--data-node",
            "nosuchnode",
            "--skip-images",
        ]),
        2,
        "no node of this swarm is nosuchnode",
    );
    // Hostnames repeat in the lab (every node is "vm"): the ID is required.
    assert_code(
        &p.run(&["setup", "--target", "swarm", "--data-node", "vm", "--skip-images"]),
        2,
        "names several nodes",
    );
    let mut worker = TestProject::new("swarmw");
    worker.set_env("DOCKER_HOST", &sock(2));
    assert_code(
        &worker.run(&["setup", "--target", "swarm", "--skip-images"]),
        2,
        "is a swarm worker, not a manager",
    );
    // The host's own engine is in no swarm.
    let local = TestProject::new("swarml");
    assert_code(
        &local.run(&["setup", "--target", "swarm", "--skip-images"]),
        2,
        "is not in a swarm",
    );
    p.ok(&[
        "setup",
        "--target",
        "swarm",
        "--data-node",
        &node_id(1),
        "--skip-images",
    ]);
    assert_code(&p.run(&["restart"]), 2, "does not run on the swarm target yet");
    for command in ["doctor", "cleanup"] {
        assert_code(&p.run(&[command]), 2, "is not available on the swarm target");
    }
    p.ok(&["start", "-s", "redis"]);
    assert_code(&p.run(&["scale", "redis=2"]), 2, "cannot run more than one task");
    assert_code(&p.run(&["scale", "nginx=2"]), 2, "needs --force");
    assert_code(
        &p.run(&["--target", "compose", "scale", "api=2"]),
        2,
        "scale needs the swarm target",
    );
}
