//! The swarm lab of tests/swarm/lab.sh, as the swarm tests use it: its nodes' sockets and
//! addresses, the docker CLI against them, and a project that removes its services, configs,
//! secrets and networks from the lab when dropped.

use super::{Run, TestProject};
use std::process::Command;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Tests that need every node hold this for reading; losing a node takes it for writing, so
/// no test loses a node under another.
pub static NODES: RwLock<()> = RwLock::new(());

pub const LAB: &str = "/tmp/pslab";

pub fn sock(node: u32) -> String {
    format!("unix://{LAB}/n{node}/d.sock")
}

pub fn lab(node: u32, args: &[&str]) -> String {
    let out = Command::new("docker")
        .arg("-H")
        .arg(sock(node))
        .args(args)
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn addr(node: u32) -> String {
    format!("10.231.0.{}", 10 + node)
}

/// Waits for tests/run's `lab.sh up` (started beside the build) to finish.
pub fn wait_for_lab() {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !std::path::Path::new(&format!("{LAB}/ready")).exists() {
        assert!(
            !std::path::Path::new("/tmp/pslab.failed").exists(),
            "the swarm lab failed to come up: see /tmp/pslab.log"
        );
        assert!(
            Instant::now() < deadline,
            "the swarm lab is not up: tests/run starts it (tests/swarm/lab.sh up); see /tmp/pslab.log"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn node_id(node: u32) -> String {
    lab(node, &["info", "--format", "{{.Swarm.NodeID}}"])
}

/// The node IDs of a service's running tasks.
pub fn task_nodes(service: &str) -> Vec<String> {
    let ids = lab(
        1,
        &[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            service,
        ],
    );
    ids.lines()
        .map(|t| lab(1, &["inspect", "--format", "{{.NodeID}} {{.Status.State}}", t]))
        .filter(|l| l.ends_with(" running"))
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect()
}

pub fn http_ok(host: &str, port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect((host, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

/// Removes the project's services, then its configs, secrets and networks, from the lab.
pub struct LabProject(pub String);

impl Drop for LabProject {
    fn drop(&mut self) {
        let label = format!("label=com.docker.stack.namespace={}", self.0);
        for kind in ["service", "config", "secret", "network"] {
            let ids = lab(1, &[kind, "ls", "-q", "--filter", &label]);
            if !ids.is_empty() {
                let mut args = vec![kind, "rm"];
                args.extend(ids.lines());
                lab(1, &args);
            }
            if kind == "service" {
                std::thread::sleep(Duration::from_secs(3));
            }
        }
    }
}

pub fn project(tag: &str) -> (TestProject, LabProject) {
    let mut p = TestProject::new(tag);
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("DOCKER_HOST", &sock(1));
    p.set_env("HTTP_PORT", &super::free_port().to_string());
    p.set_env("HTTPS_PORT", &super::free_port().to_string());
    let guard = LabProject(p.name.clone());
    (p, guard)
}

pub fn assert_code(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "{}", run.all());
    assert!(run.all().contains(needle), "expected {needle:?}:\n{}", run.all());
}

/// The lab node (1..=3) that runs the project's Nginx task, and its address.
pub fn nginx_node(project: &str) -> (u32, String) {
    let id = task_nodes(&format!("{project}_pricescan-nginx"))
        .first()
        .cloned()
        .expect("a running Nginx task");
    let n = (1..=3).find(|n| node_id(*n) == id).expect("Nginx on a lab node");
    (n, addr(n))
}

/// The version the API answers with at `host:port` (through Nginx).
pub fn version_at(host: &str, port: u16) -> String {
    let out = Command::new("curl")
        .args([
            "-fsS",
            "--max-time",
            "5",
            &format!("http://{host}:{port}/api/version"),
        ])
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    body["version"].as_str().unwrap_or_default().to_string()
}

/// `SWARM_NODE_ENGINES` naming each of `nodes` by its lab socket.
pub fn node_engines(nodes: &[u32]) -> String {
    nodes
        .iter()
        .map(|n| format!("{}={}", node_id(*n), sock(*n)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Removes a single-host (compose target) stack's containers, networks and volumes from node
/// 1, however the test ends.
pub struct OnNode1(pub String);

impl Drop for OnNode1 {
    fn drop(&mut self) {
        let filter = format!("label=com.docker.compose.project={}", self.0);
        for (kind, list) in [
            ("container", ["ps", "-aq"]),
            ("network", ["network", "ls"]),
            ("volume", ["volume", "ls"]),
        ] {
            let ids = lab(1, &[list[0], list[1], "-q", "--filter", &filter]);
            if !ids.is_empty() {
                let mut args = vec![kind, "rm"];
                if kind != "network" {
                    args.push("-f");
                }
                args.extend(ids.lines());
                lab(1, &args);
            }
        }
    }
}
