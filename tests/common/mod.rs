//! Shared harness of the integration tests: a temporary project directory with a project
//! name of its own, the locally built test images, and cleanup of everything the test
//! created in the engine. Tests run the built binary against the real engine.
#![allow(dead_code)]

pub mod lab;
pub mod receivers;
pub mod running;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

/// The images tests/images/build.sh builds, by the variable that selects each.
pub const TEST_IMAGES: [(&str, &str); 7] = [
    ("API_IMAGE", "pricescan-test/api:v1"),
    ("MYSQL_IMAGE", "pricescan-test/mysql:8.0"),
    ("REDIS_IMAGE", "pricescan-test/redis:7"),
    ("NGINX_IMAGE", "pricescan-test/nginx:1.25"),
    ("PROMETHEUS_IMAGE", "pricescan-test/prometheus:v2"),
    ("ALERTMANAGER_IMAGE", "pricescan-test/alertmanager:0.25"),
    ("GRAFANA_IMAGE", "pricescan-test/grafana-standin:1"),
];

/// Fails loudly, never skips, when the engine or the test images are missing.
pub fn require_engine() {
    static CHECK: Once = Once::new();
    CHECK.call_once(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match info {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "integration tests need a running Docker engine: docker info failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("integration tests need the docker CLI and a running engine: {e}"),
        }
        for (_, image) in TEST_IMAGES {
            let ok = Command::new("docker")
                .args(["image", "inspect", image])
                .output()
                .map(|o| o.status.success());
            assert!(
                ok.unwrap_or(false),
                "test image {image} is missing: run tests/images/build.sh first"
            );
        }
    });
}

pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub env: Vec<(String, String)>,
}

impl TestProject {
    /// A new empty project directory; `tag` makes the project name readable in `docker ps`.
    pub fn new(tag: &str) -> Self {
        require_engine();
        let name = format!("pst-{tag}-{}", std::process::id());
        // The binlog archiver (BACKUP_PITR, on in new setups) runs only in the tests of
        // point-in-time recovery, which turn it on; MySQL's binary log is on everywhere.
        let env = TEST_IMAGES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("BACKUP_PITR".to_string(), "false".to_string())])
            // Every deploy is judged by its traffic; a short window keeps the tests that are
            // not about the analysis quick (tests/analysis.rs sets its own).
            .chain([("DEPLOY_ANALYSIS".to_string(), "3s".to_string())])
            .collect();
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            name,
            env,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.file(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The binary, run in the project directory with the project's name and test images.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pricescan-ctl"));
        cmd.current_dir(self.path())
            .arg("-p")
            .arg(&self.name)
            .args(args)
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_PROFILES")
            .env_remove("DOCKER_HOST")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run pricescan-ctl"))
    }

    /// Runs and insists on exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, 0, "pricescan-ctl {args:?} failed:\n{}", run.all());
        run
    }

    /// Secret values of the project's .env.prod. Secrets issued elsewhere (storage keys,
    /// channel tokens) stay empty until an operator fills them; those are not counted.
    pub fn secrets(&self) -> Vec<(String, String)> {
        self.read(".env.prod")
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| ["PASSWORD", "SECRET"].iter().any(|m| k.contains(m)))
            .filter(|(k, v)| !(v.is_empty() && (k.starts_with("BACKUP_REMOTE_") || k.starts_with("NOTIFY_"))))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        cleanup_project(&self.name);
    }
}

/// Removes every container, network and volume labelled with the project.
pub fn cleanup_project(name: &str) {
    let filter = format!("label=com.docker.compose.project={name}");
    let list = |args: &[&str]| -> Vec<String> {
        Command::new("docker")
            .args(args)
            .args(["--filter", &filter, "-q"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let remove = |cmd: &[&str], ids: Vec<String>| {
        if !ids.is_empty() {
            let _ = Command::new("docker").args(cmd).args(&ids).output();
        }
    };
    remove(&["rm", "-f", "-v"], list(&["ps", "-a"]));
    remove(&["network", "rm"], list(&["network", "ls"]));
    remove(&["volume", "rm", "-f"], list(&["volume", "ls"]));
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `docker inspect`-style query of one engine object; None if it does not exist.
pub fn docker_format(kind: &str, name: &str, format: &str) -> Option<String> {
    let out = Command::new("docker")
        .args([kind, "inspect", "--format", format, name])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Every file of a directory with its bytes, sorted by name.
pub fn files_of(dir: PathBuf) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// A free TCP port for a test to publish or listen on.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive free TCP ports, from 20000-31999: below the kernel's
/// ephemeral range (32768 and up), so a socket that another test opens on port 0 can never
/// take one between this check and its use. A port is never handed out twice in a process.
pub fn free_ports(n: u16) -> u16 {
    static HANDED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed = HANDED.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..10_000 {
        let base: u16 = rand::random_range(20_000..32_000 - n);
        let free = (base..base + n)
            .all(|p| !handed.contains(&p) && std::net::TcpListener::bind(("0.0.0.0", p)).is_ok());
        if free {
            handed.extend(base..base + n);
            return base;
        }
    }
    panic!("no {n} free consecutive ports in 20000-31999");
}

impl TestProject {
    /// Host ports of its own, so the test never clashes with the README's stack or another test.
    pub fn with_own_ports(mut self) -> Self {
        for key in [
            "HTTP_PORT",
            "HTTPS_PORT",
            "API_PORT",
            "PROMETHEUS_PORT",
            "GRAFANA_PORT",
            "ALERTMANAGER_PORT",
        ] {
            self.env.push((key.to_string(), free_port().to_string()));
        }
        self
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    pub fn port(&self, key: &str) -> u16 {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
            .expect("port set")
    }

    /// Container ids by service, from the engine.
    pub fn container_ids(&self) -> std::collections::BTreeMap<String, String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=com.docker.compose.project={}", self.name),
            ])
            .args(["--format", "{{.Label \"com.docker.compose.service\"}} {{.ID}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(s, id)| (s.to_string(), id.to_string())))
            .collect()
    }

    /// Runs SQL in the MySQL container as root; the password stays inside the container.
    pub fn sql(&self, query: &str) -> String {
        let container = format!("{}-pricescan-mysql-1", self.name);
        let script =
            format!("MYSQL_PWD=\"$MYSQL_ROOT_PASSWORD\" mariadb -uroot -N -B pricescan -e \"{query}\"");
        let out = Command::new("docker")
            .args(["exec", &container, "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// Requests made by a bounded load loop and how many failed.
#[derive(Debug, Default, Clone)]
pub struct LoadResult {
    pub ok: u64,
    pub failed: u64,
    /// When each failure happened (Unix seconds) and what came back, for the assertion's
    /// message: a lost request is placed against the command's own timed lines.
    pub failures: Vec<String>,
    /// The slowest answer that counted as ok, in milliseconds.
    pub slowest_ms: u64,
}

/// Sends GET `path` to 127.0.0.1:`port` from `workers` threads until `stop` is set (or 120 s
/// pass), one connection per request, and counts answers other than 200 as failures.
pub fn load_loop(
    port: u16,
    path: &'static str,
    workers: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<LoadResult> {
    load_loop_at("127.0.0.1", port, path, workers, 10, stop)
}

/// `load_loop` against `host`: 127.0.0.1, or an address of a namespace the tests created.
/// A request is failed when no answer came within `patience` seconds.
pub fn load_loop_at(
    host: &str,
    port: u16,
    path: &'static str,
    workers: usize,
    patience: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<LoadResult> {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let host = host.to_string();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                let (stop, host) = (stop.clone(), host.clone());
                std::thread::spawn(move || {
                    let mut r = LoadResult::default();
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                        let sent = std::time::Instant::now();
                        let answer = (|| -> std::io::Result<String> {
                            let mut s = std::net::TcpStream::connect((host.as_str(), port))?;
                            s.set_read_timeout(Some(std::time::Duration::from_secs(patience)))?;
                            write!(
                                s,
                                "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                            )?;
                            let mut buf = String::new();
                            s.read_to_string(&mut buf)?;
                            Ok(buf)
                        })();
                        match answer {
                            Ok(buf) if buf.starts_with("HTTP/1.1 200") => {
                                r.ok += 1;
                                r.slowest_ms = r.slowest_ms.max(sent.elapsed().as_millis() as u64);
                            }
                            other => {
                                r.failed += 1;
                                let what = match other {
                                    Ok(buf) => buf.lines().next().unwrap_or("").to_string(),
                                    Err(e) => e.to_string(),
                                };
                                let at = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .unwrap_or_default()
                                    .as_secs_f64();
                                r.failures.push(format!("{at:.3}: {what}"));
                            }
                        }
                    }
                    r
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .fold(LoadResult::default(), |mut a, b| {
                a.ok += b.ok;
                a.failed += b.failed;
                a.failures.extend(b.failures);
                a.slowest_ms = a.slowest_ms.max(b.slowest_ms);
                a
            })
    })
}

/// Parses a command's JSON output.
pub fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.all()))
}

impl TestProject {
    /// Holds the stack's operation lock the way a process on another host would: the lock
    /// container, labelled with an owner this host cannot check (so it is never taken over).
    pub fn hold_lock_elsewhere(&self, operation: &str) {
        let out = Command::new("docker")
            .args(["create", "--name", &format!("{}-lock", self.name)])
            .args(["--label", &format!("com.docker.compose.project={}", self.name)])
            .args(["--label", "com.docker.compose.oneoff=True"])
            .args(["--label", &format!("io.pricescan.owner.operation={operation}")])
            .args(["--label", "io.pricescan.owner.user=ci"])
            .args(["--label", "io.pricescan.owner.host=elsewhere"])
            .args(["--label", "io.pricescan.owner.pid=4242"])
            .args(["--label", "io.pricescan.owner.since=2026-01-01T00:00:00Z"])
            .args(["pricescan-ctl/lock:1", "/pricescan-lock"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot create the lock container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl TestProject {
    /// Names in a directory of the project, sorted; empty when it does not exist.
    pub fn dir_names(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.file(rel))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// A redis-cli command in the Redis container; the password stays inside it.
    pub fn redis(&self, cmd: &str) -> String {
        let container = format!("{}-pricescan-redis-1", self.name);
        let script = format!("REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli --raw {cmd}");
        let out = Command::new("docker")
            .args(["exec", &container, "sh", "-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The version the API answers with through Nginx's 127.0.0.1 listener.
    pub fn serving_version(&self) -> String {
        let out = Command::new("curl")
            .args([
                "-fsS",
                &format!("http://127.0.0.1:{}/api/version", self.port("API_PORT")),
            ])
            .output()
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        body["version"].as_str().unwrap_or_default().to_string()
    }
}

impl TestProject {
    /// Replaces the first `from` within `service`'s block of the compose file with `to`, and
    /// returns the file as it was (to put back).
    pub fn edit_service(&self, service: &str, from: &str, to: &str) -> String {
        let compose = self.read("docker-compose.prod.yml");
        let key = format!("  {service}:\n");
        let (head, block) = compose.split_once(&key).expect("the service in the compose file");
        let edited = format!("{head}{key}{}", block.replacen(from, to, 1));
        assert_ne!(edited, compose, "{from:?} is not in {service}'s block");
        self.write("docker-compose.prod.yml", &edited);
        compose
    }
}
