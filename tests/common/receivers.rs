//! Real receivers for the notification tests: an HTTP server on 127.0.0.1 that records every
//! request (the webhook, Slack and Telegram through NOTIFY_TELEGRAM_API), and aiosmtpd, a
//! real SMTP server delivering into a maildir.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub body: String,
}

/// Answers every request with 200 and `{"ok":true}`, and keeps what it received.
pub struct HttpReceiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl HttpReceiver {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(request) = read_request(&stream) {
                    log.lock().unwrap().push(request);
                }
                let body = "{\"ok\":true,\"result\":{}}";
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, seen }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until a request whose path starts with `path` and whose body has `needle`.
    pub fn wait_for(&self, path: &str, needle: &str) -> Request {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(r) = self
                .requests()
                .into_iter()
                .find(|r| r.path.starts_with(path) && r.body.contains(needle))
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no request to {path} with {needle:?}; got {:#?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A TCP server that accepts and never answers: a channel that hangs.
pub fn hung_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    url
}

/// aiosmtpd delivering into a maildir.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: tempfile::TempDir,
}

impl SmtpServer {
    pub fn start() -> Self {
        let maildir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.path().join(sub)).unwrap();
        }
        let port = super::free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args([
                "-c",
                "aiosmtpd.handlers.Mailbox",
                &maildir.path().display().to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd (pip install aiosmtpd) must be installed: tests/run installs it");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, port, maildir }
    }

    /// Every delivered message, as text.
    pub fn mails(&self) -> Vec<String> {
        ["new", "cur"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(self.maildir.path().join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// Waits for a delivered message containing `needle`.
    pub fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(m) = self.mails().into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail with {needle:?}; got {:#?}",
                self.mails()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
