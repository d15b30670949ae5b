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
    /// Every stdout line taken so far, for the message when a wait fails.
    seen: std::cell::RefCell<Vec<String>>,
    /// Read as it comes, so that a chatty process never blocks on a full pipe.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: std::thread::JoinHandle<()>,
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
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (err, into) = (child.stderr.take().unwrap(), stderr.clone());
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            into.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    Running {
        child,
        lines,
        seen: Default::default(),
        stderr,
        stderr_reader,
    }
}

impl Running {
    /// Waits for a stdout line containing `needle`, and returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                self.seen.borrow_mut().push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!(
            "no line with {needle:?} within 180 s; stdout so far:\n{}\nstderr so far:\n{}",
            self.seen.borrow().join("\n"),
            self.stderr()
        );
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Exit code and stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        // The reader ends with the pipe.
        let reader = std::mem::replace(&mut self.stderr_reader, std::thread::spawn(|| {}));
        let _ = reader.join();
        let stderr = self.stderr.lock().unwrap().clone();
        (status.code(), stderr)
    }
}

/// A test that fails before `finish` leaves no process behind.
impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
