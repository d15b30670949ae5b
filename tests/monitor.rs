//! `monitor` against real containers: the JSON snapshot, and the full-screen dashboard
//! driven through tmux like an operator's terminal.

mod common;

use common::{TestProject, json};
use std::process::Command;
use std::time::{Duration, Instant};

const COMPOSE: &str = r#"
services:
  busy:
    image: pricescan-test/base:bookworm
    command: ["python3", "-c", "import time\nwhile True: sum(range(20000)); time.sleep(0.01)"]
    stop_signal: SIGKILL
  idle:
    image: pricescan-test/base:bookworm
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
"#;

fn project(tag: &str) -> TestProject {
    let p = TestProject::new(tag);
    p.write("mon.yml", COMPOSE);
    p.ok(&["-f", "mon.yml", "setup", "--skip-images"]);
    p.ok(&["-f", "mon.yml", "start"]);
    p
}

#[test]
fn once_json_has_rates_for_every_running_service() {
    let p = project("monjson");
    let snap = json(&p.ok(&["-f", "mon.yml", "--json", "monitor", "--once"]));
    let services = snap["services"].as_array().unwrap();
    assert_eq!(services.len(), 2, "{snap:#}");
    for s in services {
        assert_eq!(s["state"], "running", "{s:#}");
        let rates = &s["rates"];
        for field in [
            "cpu_percent",
            "net_rx_bps",
            "net_tx_bps",
            "block_read_bps",
            "block_write_bps",
        ] {
            let v = rates[field]
                .as_f64()
                .unwrap_or_else(|| panic!("{field} missing in {s:#}"));
            assert!(v >= 0.0, "{field} is negative: {s:#}");
        }
        assert!(rates["memory_bytes"].as_u64().unwrap() > 0, "{s:#}");
    }
    let busy = services.iter().find(|s| s["service"] == "busy").unwrap();
    assert!(
        busy["rates"]["cpu_percent"].as_f64().unwrap() > 0.0,
        "the busy service uses CPU: {busy:#}"
    );
    assert!(snap["api_latency"].is_object() && snap["events"].is_array());
}

#[test]
fn dashboard_draws_and_quits_restoring_the_terminal() {
    let p = project("montui");
    let session = format!("{}-tui", p.name);
    let bin = env!("CARGO_BIN_EXE_pricescan-ctl");
    let mut script = format!("cd {} && ", p.path().display());
    for (k, v) in &p.env {
        script.push_str(&format!("{k}={v} "));
    }
    script.push_str(&format!(
        "{bin} -p {} -f mon.yml monitor; echo monitor-exit=$?; sleep 60",
        p.name
    ));
    let tmux = |args: &[&str]| Command::new("tmux").args(args).output().expect("tmux");
    let out = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "150",
        "-y",
        "40",
        &script,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let capture =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !capture().contains("SERVICE") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let screen = capture();
    assert!(
        screen.contains("SERVICE") && screen.contains("busy") && screen.contains("idle"),
        "{screen}"
    );
    assert!(screen.contains("engine events"), "{screen}");
    tmux(&["send-keys", "-t", &session, "s"]);
    tmux(&["send-keys", "-t", &session, "q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !capture().contains("monitor-exit=") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = capture();
    tmux(&["kill-session", "-t", &session]);
    assert!(after.contains("monitor-exit=0"), "{after}");
    // Back on the normal screen: the dashboard's table is gone.
    assert!(
        !after.contains("engine events"),
        "the terminal was not restored:\n{after}"
    );
}
