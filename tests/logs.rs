//! `logs` against real containers that print known lines at known times.

mod common;

use common::TestProject;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const COMPOSE: &str = r#"
services:
  app:
    image: pricescan-test/base:bookworm
    command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo early-$$i; done; echo to-stderr >&2; sleep 3; for i in 1 2 3; do echo late-$$i; done; echo token=$$TOKEN; exec sleep 3600"]
    environment:
      TOKEN: ${TOKEN:-first}
    stop_signal: SIGKILL
  big:
    image: pricescan-test/base:bookworm
    command: ["python3", "-c", "import sys\nw = sys.stdout.write\nfor i in range(1, 200001): w('n%d\\n' % i)\nw('x' * 40000 + '\\n')"]
    restart: "no"
"#;

fn project(tag: &str) -> TestProject {
    let p = TestProject::new(tag);
    p.write("logs.yml", COMPOSE);
    p.ok(&["-f", "logs.yml", "setup", "--skip-images"]);
    p.ok(&["-f", "logs.yml", "start", "--no-wait"]);
    p
}

/// Waits until `pred` holds for the service's container state.
fn wait_for(p: &TestProject, service: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let name = format!("{}-{service}-1", p.name);
    while Instant::now() < deadline {
        let logs = Command::new("docker").args(["logs", &name]).output().unwrap();
        let text = String::from_utf8_lossy(&logs.stdout);
        if text.contains(what) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{service} never printed {what}");
}

#[test]
fn tail_prefix_grep_since_and_a_large_log() {
    let p = project("logs");
    wait_for(&p, "app", "token=first");
    wait_for(&p, "big", "xxxxxxxxxx");

    let run = p.ok(&["-f", "logs.yml", "logs", "-s", "app", "-n", "5"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", run.all());
    assert!(lines.iter().all(|l| l.starts_with("app | ")), "{}", run.stdout);
    assert_eq!(lines[4], "app | token=first");

    let raw = p
        .ok(&["-f", "logs.yml", "logs", "-s", "app", "--no-prefix"])
        .stdout;
    assert!(
        raw.lines().any(|l| l == "to-stderr"),
        "stderr lines are shown too:\n{raw}"
    );
    // The engine reads stdout and stderr through separate pipes, so only the order within
    // one output is defined.
    let stdout: Vec<&str> = raw.lines().filter(|l| *l != "to-stderr").collect();
    assert_eq!(stdout[..3], ["early-1", "early-2", "early-3"], "{raw}");

    let grep = p
        .ok(&[
            "-f",
            "logs.yml",
            "logs",
            "-s",
            "app",
            "--no-prefix",
            "--grep",
            "^late-[23]$",
        ])
        .stdout;
    assert_eq!(grep, "late-2\nlate-3\n");

    // --since with the time of the first late line: the early lines (3 s before) are gone.
    let stamped = p
        .ok(&["-f", "logs.yml", "logs", "-s", "app", "--no-prefix", "-t"])
        .stdout;
    let late = stamped
        .lines()
        .find(|l| l.ends_with(" late-1"))
        .expect("late-1 with a timestamp");
    let since = late.split(' ').next().unwrap();
    let recent = p
        .ok(&[
            "-f",
            "logs.yml",
            "logs",
            "-s",
            "app",
            "--no-prefix",
            "--since",
            since,
        ])
        .stdout;
    assert!(
        recent.contains("late-1\n") && !recent.contains("early-"),
        "{recent}"
    );
    let none = p.ok(&[
        "-f",
        "logs.yml",
        "logs",
        "-s",
        "app",
        "--since",
        "2000-01-01T00:00:00Z",
        "--until",
        "2000-01-02T00:00:00Z",
    ]);
    assert_eq!(none.stdout, "");

    // 200 000 lines and one line of 40 000 characters (cut into several messages by the
    // logging driver): every line once, in order, none torn.
    let big = p
        .ok(&["-f", "logs.yml", "logs", "-s", "big", "--no-prefix"])
        .stdout;
    let mut count = 0;
    for (i, line) in big.lines().enumerate() {
        if i < 200_000 {
            assert_eq!(line, format!("n{}", i + 1), "line {i}");
            count += 1;
        } else {
            assert_eq!(line.len(), 40_000, "the long line was torn");
            assert!(line.bytes().all(|b| b == b'x'));
        }
    }
    assert_eq!(count, 200_000);
    assert_eq!(big.lines().count(), 200_001);

    let bad = p.run(&["-f", "logs.yml", "logs", "--since", "yesterday-ish"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
}

#[test]
fn follow_picks_up_a_recreated_container_and_ends_cleanly() {
    let mut p = project("follow");
    wait_for(&p, "app", "token=first");
    let mut follow = p.cmd(&["-f", "logs.yml", "logs", "-f", "-s", "app", "-n", "1"]);
    let child = follow.stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // A changed value recreates the container; the stream must move to the new one.
    p.set_env("TOKEN", "second");
    p.ok(&["-f", "logs.yml", "start", "--no-wait"]);
    wait_for(&p, "app", "token=second");
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "Ctrl-C ends logs -f with exit 0");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("app | token=first"), "{text}");
    assert!(text.contains("-- now following"), "{text}");
    assert!(text.contains("app | token=second"), "{text}");

    // A closed pipe ends it promptly, with exit 0.
    let start = Instant::now();
    let bin = env!("CARGO_BIN_EXE_pricescan-ctl");
    // Only the quiet service: nothing more is written after the third line.
    let script = format!(
        "{bin} -p {} -f logs.yml logs -f -s app | head -3; exit ${{PIPESTATUS[0]}}",
        p.name
    );
    let mut piped = Command::new("bash");
    piped.args(["-c", &script]).current_dir(p.path());
    for (k, v) in &p.env {
        piped.env(k, v);
    }
    let out = piped.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}
