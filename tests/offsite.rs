//! Off-site backups against a real S3 server (SeaweedFS, which enforces SigV4), checked from
//! outside with rclone and the age CLI: a round trip restored from the off-site copy alone,
//! remote retention, the server killed mid-upload, a signal mid-upload, `push` catching up,
//! and every bad input of issue 10, none of which may touch the local backups.

mod common;

use common::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use common::{Run, TestProject, files_of, json};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "prod";

fn stack(tag: &str, s3: &S3Server) -> TestProject {
    let mut p = TestProject::new(tag).with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("BACKUP_REMOTE_URL", &format!("s3://{}/{PREFIX}", s3.bucket));
    p.set_env("BACKUP_REMOTE_ENDPOINT", &s3.endpoint());
    p.set_env("BACKUP_REMOTE_ACCESS_KEY_ID", ACCESS_KEY);
    p.set_env("BACKUP_REMOTE_SECRET_ACCESS_KEY", SECRET_KEY);
    p.set_env("BACKUP_REMOTE_TIMEOUT", "5s");
    p.set_env("METRICS_TEXTFILE_DIR", "metrics");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start", "-s", "mysql", "-s", "redis"]);
    p
}

/// The binary with extra environment (the process environment overrides .env.prod).
fn run_with(p: &TestProject, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = p.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

/// `doctor`'s finding about the off-site copy: (status, message, fix).
fn doctor_offsite(p: &TestProject, env: &[(&str, &str)]) -> (String, String, String) {
    let report = json(&run_with(p, env, &["--json", "doctor"]));
    let found = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "backups" && f["message"].as_str().unwrap().contains("off-site"))
        .unwrap_or_else(|| panic!("no off-site finding: {report:#}"))
        .clone();
    let text = |k: &str| found[k].as_str().unwrap_or_default().to_string();
    (text("status"), text("message"), text("fix"))
}

fn backup_id(p: &TestProject) -> String {
    std::thread::sleep(Duration::from_millis(1100)); // a new id needs a new second
    json(&p.ok(&["--json", "backup"]))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn remote_ids(s3: &S3Server) -> Vec<String> {
    let mut ids: Vec<String> = s3
        .keys(PREFIX)
        .iter()
        .filter_map(|k| k.split_once('/').map(|(id, _)| id.to_string()))
        .collect();
    ids.dedup();
    ids
}

/// The binary in the background, its output captured.
fn spawn(p: &TestProject, args: &[&str]) -> std::process::Child {
    p.cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `sig` (e.g. "-INT") to a process.
fn signal(sig: &str, pid: u32) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

fn metrics(p: &TestProject) -> String {
    p.read("metrics/pricescan_backup.prom")
}

/// `program args` with `input` on stdin; its stdout, insisting on success.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} must be installed (tests/run installs it): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    assert!(child.wait().unwrap().success(), "{program} {args:?} failed");
    out
}

fn age_decrypt(key: &std::path::Path, sealed: &[u8]) -> Vec<u8> {
    pipe("age", &["-d", "-i", &key.display().to_string()], sealed)
}

fn zstd_decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&pipe("zstd", &["-d", "-c"], bytes)).into_owned()
}

const ROWS: &str = "SELECT id, name FROM items ORDER BY id";
const CANARY: &str = "plaintext-canary-7f3e";

#[test]
fn encrypted_round_trip_restores_from_the_offsite_copy_alone_and_remote_prune_keeps_policy() {
    let s3 = S3Server::start("pricescan-round");
    let mut p = stack("osround", &s3);
    let keyed = p.ok(&["setup", "--skip-images", "--backup-key"]);
    assert!(keyed.stdout.contains("age1"), "{}", keyed.all());
    assert!(keyed.stderr.contains("OFF this server"), "{}", keyed.all());
    let key = p.file(".pricescan/backup-identity.txt");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    p.sql(&format!(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100)); \
         INSERT INTO items VALUES (1, '{CANARY}'), (2, 'two'), (3, 'three')"
    ));
    p.redis("SET price:1 9.99");
    let before = p.sql(ROWS);
    let id = backup_id(&p);

    // What landed, seen by rclone: the same files as locally, sealed; the manifest is there.
    let keys = s3.keys(PREFIX);
    let expected: Vec<String> = ["SHA256SUMS", "manifest.json", "mysql.sql.zst", "redis.rdb"]
        .iter()
        .map(|f| format!("{id}/{f}"))
        .collect();
    assert_eq!(keys, expected);
    let sealed = s3.cat(&format!("{PREFIX}/{id}/mysql.sql.zst"));
    assert!(sealed.starts_with(b"age-encryption.org/v1"), "not an age file");
    assert!(
        !String::from_utf8_lossy(&sealed).contains(CANARY),
        "plaintext reached the server"
    );
    let local = std::fs::read(p.file("backups").join(&id).join("mysql.sql.zst")).unwrap();
    let plain = age_decrypt(&key, &sealed);
    assert!(
        plain == local,
        "the age CLI does not decrypt the copy to the local file"
    );
    assert!(zstd_decode(&plain).contains(CANARY));
    let manifest: serde_json::Value = serde_json::from_slice(&age_decrypt(
        &key,
        &s3.cat(&format!("{PREFIX}/{id}/manifest.json")),
    ))
    .unwrap();
    assert_eq!(manifest["id"], id.as_str());
    assert!(
        metrics(&p).contains("pricescan_backup_offsite_last_success 1"),
        "{}",
        metrics(&p)
    );

    let listed = json(&p.ok(&["--json", "backup", "list", "--remote"]));
    assert_eq!(listed[0]["id"], id.as_str(), "{listed:#}");
    assert_eq!(listed[0]["complete"], true);
    let verified = p.ok(&["backup", "verify", "--remote", &id]);
    assert!(verified.stdout.contains("good"), "{}", verified.all());

    // The server is all that is left of the backup; the data changes; restore pulls it.
    std::fs::remove_dir_all(p.file("backups").join(&id)).unwrap();
    p.sql("DELETE FROM items WHERE id = 1; INSERT INTO items VALUES (4, 'later')");
    p.redis("DEL price:1");
    let restored = p.ok(&["restore", &id, "--yes"]);
    assert!(restored.stdout.contains("pulling it from"), "{}", restored.all());
    assert_eq!(p.sql(ROWS), before);
    assert_eq!(p.redis("GET price:1"), "9.99");
    assert!(p.file("backups").join(&id).join("manifest.json").is_file());

    // Remote retention with its own counts: the newest, and the newest verified.
    for (k, v) in [
        ("BACKUP_REMOTE_KEEP_LAST", "1"),
        ("BACKUP_REMOTE_KEEP_DAILY", "0"),
        ("BACKUP_REMOTE_KEEP_WEEKLY", "0"),
        ("BACKUP_REMOTE_KEEP_MONTHLY", "0"),
        ("BACKUP_REMOTE_KEEP_PRE_DEPLOY", "0"),
    ] {
        p.set_env(k, v);
    }
    s3.put(
        &format!("{PREFIX}/20200101T000000Z-manual/mysql.sql.zst"),
        b"cut short",
    );
    let middle = backup_id(&p);
    let newest = backup_id(&p);
    assert_eq!(
        remote_ids(&s3),
        vec![id.clone(), newest.clone()],
        "{}",
        p.ok(&["backup", "list", "--remote"]).all()
    );
    let local = p.dir_names("backups");
    for kept in [&id, &middle, &newest] {
        assert!(
            local.contains(kept),
            "local retention has its own counts: {local:?}"
        );
    }
}

#[test]
fn server_killed_or_signal_mid_upload_leaves_nothing_visible_and_push_catches_up() {
    let mut s3 = S3Server::start("pricescan-kill");
    let p = stack("oskill", &s3);
    // ~40 MB that does not compress, so the upload runs in several parts.
    p.sql(
        "CREATE TABLE big (id INT PRIMARY KEY, b VARBINARY(1024)); \
         INSERT INTO big SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_40000",
    );
    let journal = p.file(".pricescan/offsite-uploads.jsonl");
    let uploads = || std::fs::read_to_string(&journal).unwrap_or_default();
    // Waits until a multipart upload that `before` did not list has begun.
    let wait_new_upload = |before: &str| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !uploads()
            .lines()
            .any(|l| l.contains("upload_id") && !before.contains(l))
        {
            assert!(Instant::now() < deadline, "no multipart upload began");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // The server dies mid-upload: the local backup stays, the command says so and exits 1.
    let child = spawn(&p, &["backup"]);
    wait_new_upload("");
    signal("-STOP", s3.pid());
    s3.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is complete locally, but the off-site copy failed"),
        "{stderr}"
    );
    let local = p.dir_names("backups");
    assert_eq!(local.len(), 1, "{local:?}");
    let id = local[0].clone();
    p.ok(&["backup", "verify", &id]);
    let m = metrics(&p);
    assert!(m.contains("pricescan_backup_offsite_last_success 0"), "{m}");
    assert!(
        m.contains("pricescan_backup_last_success_timestamp_seconds"),
        "{m}"
    );

    // doctor names the unreachable off-site store as a fail.
    let (status, message, _) = doctor_offsite(&p, &[]);
    assert_eq!(status, "fail", "{message}");

    // The server could not be told to abort; the journal remembers the upload for later.
    let crashed = uploads();
    assert!(
        crashed.contains("upload_id"),
        "the unfinished upload was forgotten"
    );

    // Back up, a push interrupted by SIGINT aborts what it began and removes what it sent.
    s3.restart();
    assert!(
        s3.pending_uploads().contains(&id),
        "rclone should see the crash's upload: {}",
        s3.pending_uploads()
    );
    let child = spawn(&p, &["backup", "push"]);
    wait_new_upload(&crashed);
    signal("-INT", child.id());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        remote_ids(&s3).is_empty(),
        "visible after SIGINT: {:?}",
        s3.keys(PREFIX)
    );
    assert!(
        !s3.pending_uploads().contains(&id),
        "a part stayed: {}",
        s3.pending_uploads()
    );
    assert!(
        !uploads().contains("upload_id"),
        "the journal still lists an upload: {}",
        uploads()
    );

    // The newest backup is not off-site yet: doctor warns and names the push.
    let (status, message, fix) = doctor_offsite(&p, &[]);
    assert_eq!(status, "warn", "{message}");
    assert!(
        message.contains(&id) && fix.contains(&format!("backup push {id}")),
        "{message} / {fix}"
    );

    // push catches up; no pending multipart upload is left from the crash either.
    let pushed = p.ok(&["backup", "push"]);
    assert!(pushed.stdout.contains(&id), "{}", pushed.all());
    let (status, message, _) = doctor_offsite(&p, &[]);
    assert_eq!(
        (status.as_str(), message.contains(&id)),
        ("ok", true),
        "{message}"
    );
    assert!(
        !s3.pending_uploads().contains(&id),
        "a part stayed: {}",
        s3.pending_uploads()
    );
    assert_eq!(remote_ids(&s3), vec![id.clone()]);
    p.ok(&["backup", "verify", "--remote", &id]);
    assert!(metrics(&p).contains("pricescan_backup_offsite_last_success 1"));
    let again = p.ok(&["backup", "push"]);
    assert!(again.stdout.contains("already off-site"), "{}", again.all());

    // SIGTERM while the dump streams off-site: nothing new, locally or off-site.
    std::thread::sleep(Duration::from_millis(1100)); // a new id needs a new second
    let child = spawn(&p, &["backup"]);
    wait_new_upload("");
    signal("-TERM", child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        p.dir_names("backups"),
        vec![id.clone()],
        "SIGTERM left a local backup or debris"
    );
    assert_eq!(
        remote_ids(&s3),
        vec![id.clone()],
        "SIGTERM left something off-site"
    );
    assert!(
        !s3.pending_uploads().contains("mysql.sql.zst"),
        "a part stayed: {}",
        s3.pending_uploads()
    );
    assert!(
        !uploads().contains("upload_id"),
        "the journal still lists an upload: {}",
        uploads()
    );

    // SIGKILL mid-push leaves no time to clean up: the next push aborts the journaled upload,
    // replaces the incomplete copy, and nothing is left pending.
    let mut child = p
        .cmd(&["backup", "push", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_new_upload("");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        uploads().contains("upload_id"),
        "the killed push's upload is not journaled"
    );
    let listed = json(&p.ok(&["--json", "backup", "list", "--remote"]));
    let complete = listed.as_array().unwrap().iter().any(|b| b["complete"] == true);
    assert!(!complete, "a killed push must not look complete: {listed:#}");
    let pushed = p.ok(&["backup", "push"]);
    assert!(
        pushed.stderr.contains("aborted 1 unfinished off-site upload"),
        "{}",
        pushed.all()
    );
    assert!(
        !s3.pending_uploads().contains("mysql.sql.zst"),
        "a part stayed: {}",
        s3.pending_uploads()
    );
    assert_eq!(remote_ids(&s3), vec![id.clone()]);
    p.ok(&["backup", "verify", "--remote", &id]);
}

/// A TCP server that accepts and never answers: a hung endpoint.
fn hung_endpoint() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(16).flatten() {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    (url, handle)
}

fn assert_clean(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "{}", run.all());
    assert!(run.stderr.contains(needle), "wanted {needle:?}:\n{}", run.all());
    assert!(
        !run.all().contains(SECRET_KEY),
        "the secret leaked:\n{}",
        run.all()
    );
}

#[test]
fn bad_inputs_fail_clearly_and_never_touch_the_local_backups() {
    let s3 = S3Server::start("pricescan-bad");
    let p = stack("osbad", &s3);
    p.sql("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100)); INSERT INTO items VALUES (1, 'one')");
    let first = backup_id(&p);
    let snapshot = |p: &TestProject| files_of(p.file("backups").join(&first));
    let kept = snapshot(&p);

    // Wrong credentials at backup time: the local backup is made, the command exits 1.
    let wrong = "Wr0ngSecretValue-9d8c7b6a";
    std::thread::sleep(Duration::from_millis(1100)); // a new id needs a new second
    let run = run_with(&p, &[("BACKUP_REMOTE_SECRET_ACCESS_KEY", wrong)], &["backup"]);
    assert_clean(&run, 1, "is complete locally, but the off-site copy failed");
    assert!(run.stderr.contains("refused the credentials"), "{}", run.all());
    assert!(
        !run.all().contains(wrong),
        "the wrong secret leaked:\n{}",
        run.all()
    );
    assert_eq!(p.dir_names("backups").len(), 2);

    let run = run_with(
        &p,
        &[("BACKUP_REMOTE_URL", "s3://no-such-bucket/prod")],
        &["backup", "push"],
    );
    assert_clean(&run, 1, "the bucket no-such-bucket does not exist");
    let down = format!("http://127.0.0.1:{}", common::free_port());
    let run = run_with(&p, &[("BACKUP_REMOTE_ENDPOINT", &down)], &["backup", "push"]);
    assert_clean(&run, 1, "cannot list the off-site backups");
    let (hung, _server) = hung_endpoint();
    let run = run_with(
        &p,
        &[("BACKUP_REMOTE_ENDPOINT", &hung), ("BACKUP_REMOTE_TIMEOUT", "2s")],
        &["backup", "push"],
    );
    assert_clean(&run, 1, "cannot list the off-site backups");
    // doctor waits for a hung store no longer than it promises to answer.
    let (status, message, _) = doctor_offsite(&p, &[("BACKUP_REMOTE_ENDPOINT", &hung)]);
    assert_eq!(status, "fail", "{message}");
    assert!(message.contains("no answer within 3s"), "{message}");
    for (key, value) in [
        ("BACKUP_REMOTE_URL", "backups/prod"),
        ("BACKUP_REMOTE_URL", "s3://Bad_Bucket/prod"),
        ("BACKUP_REMOTE_ENDPOINT", "127.0.0.1:9000"),
        ("BACKUP_ENCRYPTION_RECIPIENTS", "not-a-key"),
    ] {
        let run = run_with(&p, &[(key, value)], &["backup", "push"]);
        assert_clean(&run, 2, key);
        let run = run_with(&p, &[(key, value)], &["-q", "config"]);
        assert_eq!(run.code, 2, "config -q with a bad {key}: {}", run.all());
    }
    assert_eq!(snapshot(&p), kept, "a bad input touched a local backup");

    // A tampered and a truncated remote object: verify and restore refuse them.
    p.ok(&["setup", "--skip-images", "--backup-key"]);
    p.ok(&["backup", "push", &first]);
    p.ok(&["backup", "verify", "--remote", &first]);
    let key = format!("{PREFIX}/{first}/mysql.sql.zst");
    let good = s3.cat(&key);
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    let p_before = p.sql("SELECT COUNT(*) FROM items");
    std::fs::rename(p.file("backups").join(&first), p.path().join("aside")).unwrap();
    for (what, bytes) in [
        ("tampered", flipped),
        ("truncated", good[..good.len() / 2].to_vec()),
    ] {
        s3.put(&key, &bytes);
        let run = p.run(&["backup", "verify", "--remote", &first]);
        assert_clean(&run, 1, "is damaged");
        let run = p.run(&["restore", &first, "--yes"]);
        assert_eq!(run.code, 1, "{what}: {}", run.all());
        assert!(
            !p.dir_names("backups").iter().any(|n| n.contains(&first)),
            "{what}: a damaged pull was kept: {:?}",
            p.dir_names("backups")
        );
        assert_eq!(p.sql("SELECT COUNT(*) FROM items"), p_before);
    }
    s3.put(&key, &good);
    let run = run_with(
        &p,
        &[("BACKUP_ENCRYPTION_IDENTITY_FILE", "/nonexistent/key.txt")],
        &["restore", &first, "--yes"],
    );
    assert_clean(&run, 2, "cannot read the identity file");
    assert!(!p.dir_names("backups").iter().any(|n| n.contains(&first)));
    std::fs::rename(p.path().join("aside"), p.file("backups").join(&first)).unwrap();
    assert_eq!(snapshot(&p), kept, "a bad input touched a local backup");
    p.ok(&["backup", "verify", &first]);
}

use std::os::unix::fs::PermissionsExt;
