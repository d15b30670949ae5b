//! start, stop, restart and status against the real engine, with real MariaDB, Redis,
//! Nginx, Prometheus and the stand-in API. One stack per test; the steps of a test build
//! on each other the way an operator's day does.

mod common;

use common::{TestProject, docker_format, json, load_loop};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn service<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == name)
        .unwrap()
}

fn set_env_line(p: &TestProject, key: &str, value: &str) {
    let text = p.read(".env.prod");
    let replaced: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key}=")) {
                format!("{key}={value}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(text, replaced, "{key} not found in .env.prod");
    p.write(".env.prod", &replaced);
}

#[test]
fn the_stack_runs_keeps_its_data_and_restarts_without_failed_requests() {
    let mut p = TestProject::new("life").with_own_ports();
    p.set_env("API_DRAIN", "2s");
    p.ok(&["setup"]);

    // Start from nothing: every service healthy, and docker-compose sees the same containers.
    let started = p.ok(&["start", "--timeout", "3m"]);
    assert!(
        started.stdout.contains("7 service(s) running"),
        "{}",
        started.all()
    );
    let status = json(&p.ok(&["--json", "status"]));
    assert_eq!(status["healthy"], true, "{status:#}");
    assert_eq!(status["services"].as_array().unwrap().len(), 7);
    for s in status["services"].as_array().unwrap() {
        assert_eq!(s["state"], "running", "{s:#}");
        assert_eq!(s["health"], "healthy", "{s:#}");
        assert_eq!(s["drift"], false, "{s:#}");
    }
    for e in status["endpoints"].as_array().unwrap() {
        assert_eq!(e["ok"], true, "{e:#}");
    }
    let compose = std::process::Command::new("docker-compose")
        .current_dir(p.path())
        .args([
            "-f",
            "docker-compose.prod.yml",
            "--env-file",
            ".env.prod",
            "-p",
            &p.name,
            "ps",
            "--services",
        ])
        .envs(p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&compose.stdout);
    let ours = p.container_ids();
    for s in ours.keys() {
        assert!(
            listed.lines().any(|l| l == s),
            "docker-compose ps does not list {s}:\n{listed}"
        );
    }

    // Only Nginx is public; the API goes through it; MySQL and Redis publish nothing.
    let ports = |svc: &str| {
        docker_format(
            "container",
            &format!("{}-{svc}-1", p.name),
            "{{json .NetworkSettings.Ports}}",
        )
        .unwrap()
    };
    for svc in ["pricescan-mysql", "pricescan-redis", "pricescan-api"] {
        assert!(
            !ports(svc).contains("HostPort"),
            "{svc} publishes a port: {}",
            ports(svc)
        );
    }
    for svc in [
        "pricescan-prometheus",
        "pricescan-grafana",
        "pricescan-alertmanager",
    ] {
        let bound = ports(svc);
        assert!(
            bound.contains("\"HostIp\":\"127.0.0.1\"") && !bound.contains("0.0.0.0"),
            "{svc}: {bound}"
        );
    }
    assert!(ports("pricescan-nginx").contains(&format!(
        "\"HostIp\":\"127.0.0.1\",\"HostPort\":\"{}\"",
        p.port("API_PORT")
    )));

    // A second start changes nothing.
    p.ok(&["start"]);
    assert_eq!(p.container_ids(), ours, "a no-op start recreated something");

    // A row survives stop + start, and restart -s mysql.
    p.sql("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'kept')");
    p.ok(&["stop"]);
    let stopped = json(&p.run(&["--json", "status"]));
    assert_eq!(stopped["healthy"], false);
    p.ok(&["start"]);
    assert_eq!(p.sql("SELECT v FROM t WHERE id = 1"), "kept");
    let restarted = p.ok(&["restart", "-s", "mysql"]);
    assert!(
        restarted.stdout.contains("went without pricescan-mysql"),
        "{}",
        restarted.all()
    );
    assert_eq!(p.sql("SELECT v FROM t WHERE id = 1"), "kept");

    // A changed value shows as drift, and start recreates exactly that service; data stays.
    let before = p.container_ids();
    set_env_line(&p, "MYSQL_MEMORY_LIMIT", "1536m");
    let drifted = json(&p.run(&["--json", "status"]));
    assert_eq!(service(&drifted, "pricescan-mysql")["drift"], true, "{drifted:#}");
    assert_eq!(service(&drifted, "pricescan-redis")["drift"], false);
    p.ok(&["start"]);
    let after = p.container_ids();
    for (svc, id) in &before {
        match svc.as_str() {
            "pricescan-mysql" => assert_ne!(&after[svc], id, "mysql was not recreated"),
            _ => assert_eq!(&after[svc], id, "{svc} was recreated but did not change"),
        }
    }
    assert_eq!(p.sql("SELECT v FROM t WHERE id = 1"), "kept");
    assert_eq!(json(&p.ok(&["--json", "status"]))["healthy"], true);

    // restart -s api under load through Nginx: no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let load = load_loop(p.port("API_PORT"), "/api/version", 4, stop.clone());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let old_api = p.container_ids()["pricescan-api"].clone();
    p.ok(&["restart", "-s", "api"]);
    std::thread::sleep(std::time::Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let result = load.join().unwrap();
    assert!(result.ok > 100, "the load loop barely ran: {result:?}");
    assert_eq!(
        result.failed, 0,
        "requests failed during restart -s api: {result:?}"
    );
    assert_ne!(
        p.container_ids()["pricescan-api"],
        old_api,
        "the API container was not replaced"
    );

    // Redis stopped: status exits 3, says so, and the API's health probe fails.
    p.ok(&["stop", "-s", "redis"]);
    let degraded = p.run(&["--json", "status"]);
    assert_eq!(degraded.code, 3, "{}", degraded.all());
    let degraded = json(&degraded);
    assert_eq!(service(&degraded, "pricescan-redis")["state"], "exited");
    let api_probe = degraded["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "api on :8000")
        .unwrap();
    assert_eq!(api_probe["ok"], false, "{api_probe:#}");
    let human = p.run(&["status"]);
    assert_eq!(human.code, 3);
    assert!(
        human.stdout.contains("degraded: pricescan-redis"),
        "{}",
        human.all()
    );
}

#[test]
fn a_service_that_never_gets_healthy_fails_start_with_its_logs() {
    let mut p = TestProject::new("broken").with_own_ports();
    p.set_env("API_IMAGE", "pricescan-test/api:broken");
    p.set_env("COMPOSE_PROFILES", "");
    p.ok(&["setup"]);
    let run = p.run(&["start", "--timeout", "90s"]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stderr.contains("failed: pricescan-api"), "{}", run.all());
    assert!(run.stderr.contains("last health check:"), "{}", run.all());
    assert!(
        run.stderr.contains("log lines:") && run.stderr.contains("GET /health"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("pricescan-nginx"),
        "nginx depends on the API and must be named: {}",
        run.all()
    );
    // The healthy services stay up.
    let status = json(&p.run(&["--json", "status"]));
    for healthy in ["pricescan-mysql", "pricescan-redis"] {
        assert_eq!(service(&status, healthy)["health"], "healthy", "{status:#}");
    }
    assert_eq!(service(&status, "pricescan-nginx")["state"], "missing");
}

#[test]
fn start_refuses_placeholders_and_a_missing_setup() {
    let p = TestProject::new("refuse");
    let run = p.run(&["start"]);
    assert_eq!(run.code, 2, "{}", run.all());
    p.ok(&["setup", "--skip-images"]);
    set_env_line(&p, "REDIS_PASSWORD", "changeme");
    let run = p.run(&["start"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("REDIS_PASSWORD is still a placeholder"),
        "{}",
        run.all()
    );
    assert!(
        p.container_ids().is_empty(),
        "nothing may start with a placeholder secret"
    );
}
