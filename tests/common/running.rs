//! The built binary running in the background, read line by line and sent real signals,
//! and the HTTP status the stack answers with through Nginx.

use super::TestProject;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary in the background, its stdout lines arriving on a channel.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

pub fn spawn(p: &TestProject, args: &[&str]) -> Running {
    let mut child = p
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Running { child, lines }
}

impl Running {
    /// Waits for a stdout line containing `needle`.
    pub fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200))
                && line.contains(needle)
            {
                return;
            }
        }
        panic!("no line with {needle:?} within 180 s");
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Exit code and stderr.
    pub fn finish(self) -> (Option<i32>, String) {
        let out = self.child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The status of a request through Nginx's loopback port to the API.
pub fn http_status(p: &TestProject, method: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
        .arg(format!("http://127.0.0.1:{}/api/version", p.port("API_PORT")))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}
