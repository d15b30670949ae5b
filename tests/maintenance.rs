//! Operator care (DESIGN §12) against the real engine: `doctor` passes a healthy stack and
//! names each fault set up for it with its fix; `cleanup` removes each kind of debris and
//! keeps every volume, the serving image and the rollback images.

mod common;

use common::{TestProject, json};
use serde_json::Value;
use std::process::Command;

fn stack(tag: &str) -> TestProject {
    let mut p = TestProject::new(tag).with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    p
}

fn doctor(p: &TestProject) -> (i32, Value) {
    let run = p.run(&["--json", "doctor"]);
    (run.code, json(&run))
}

/// The findings of `check` with `status`.
fn findings(report: &Value, check: &str, status: &str) -> Vec<Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && f["status"] == status)
        .cloned()
        .collect()
}

/// Doctor exits 1 with a fail of `check` whose message has `needle` and whose fix has `fix`.
fn fails(p: &TestProject, check: &str, needle: &str, fix: &str) {
    let (code, report) = doctor(p);
    assert_eq!(code, 1, "{report:#}");
    let found = findings(&report, check, "fail");
    assert!(
        found
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains(needle)
                && f["fix"].as_str().unwrap().contains(fix)),
        "no {check} fail with {needle:?} / {fix:?}: {report:#}"
    );
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn doctor_passes_a_healthy_stack_and_names_each_fault_with_its_fix() {
    let mut p = stack("doctor");
    p.ok(&["backup"]);
    let (code, report) = doctor(&p);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], true);
    for check in [
        "exposure", "secrets", "tls", "backups", "disk", "logs", "engine", "drift", "lock", "schedule",
    ] {
        assert!(
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["check"] == check),
            "no {check} check: {report:#}"
        );
    }
    let text = p.ok(&["doctor"]);
    assert!(text.stdout.contains("ok    exposure"), "{}", text.all());
    assert!(text.stdout.contains("fix: "), "{}", text.all());

    // A world-readable .env.prod.
    let env = p.file(".env.prod");
    let mode = |m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&env, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(0o644);
    fails(&p, "secrets", "mode 0644", "chmod 600");
    mode(0o600);

    // The newest backup older than the nightly schedule. The schedule is put three hours
    // back, so that the run is overdue (past its hour of grace) whatever the time of day.
    let hour = (chrono::Utc::now() - chrono::Duration::hours(3))
        .format("%H")
        .to_string();
    p.set_env("BACKUP_SCHEDULE_HOUR", &hour);
    let id = json(&p.ok(&["--json", "backup", "list"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = format!("backups/{id}/manifest.json");
    let original = p.read(&manifest);
    let mut m: Value = serde_json::from_str(&original).unwrap();
    let old = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    m["finished_at"] = Value::String(old);
    p.write(&manifest, &serde_json::to_string_pretty(&m).unwrap());
    fails(&p, "backups", "made none since", "pricescan-ctl backup");
    p.write(&manifest, &original);

    // A certificate that expires tomorrow, and one for another name.
    let tls = p.file("tls");
    std::fs::create_dir_all(&tls).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=shop.example.test",
        ])
        .args(["-addext", "subjectAltName=DNS:shop.example.test"])
        .arg("-keyout")
        .arg(tls.join("privkey.pem"))
        .arg("-out")
        .arg(tls.join("fullchain.pem"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    p.set_env("NGINX_TLS", "on");
    p.set_env("TLS_CERT_DIR", "./tls");
    p.set_env("SERVER_NAME", "shop.example.test");
    fails(&p, "tls", "the certificate expires", "renew");
    p.set_env("SERVER_NAME", "other.example.test");
    fails(
        &p,
        "tls",
        "not other.example.test",
        "certificate for other.example.test",
    );
    p.set_env("NGINX_TLS", "off");

    // Log rotation left to the engine: json-file without a size limit in the compose file.
    // (This engine's daemon.json sets max-size for every container, so the logs still
    // rotate here: doctor warns; without those defaults it fails, as tests/swarm/doctor.rs
    // shows on a lab engine.)
    let compose = p.edit_service(
        "pricescan-redis",
        "    logging: *default-logging\n",
        "    logging: {driver: json-file}\n",
    );
    p.ok(&["start", "-s", "redis"]);
    let (_, report) = doctor(&p);
    let logs = findings(&report, "logs", "warn");
    assert!(
        logs.iter()
            .any(|f| f["message"].as_str().unwrap().contains("pricescan-redis")
                && f["fix"].as_str().unwrap().contains("max-size")),
        "{report:#}"
    );
    p.write("docker-compose.prod.yml", &compose);
    p.ok(&["start", "-s", "redis"]);

    // MySQL published on every address.
    let port = common::free_port();
    // (The backend network is internal, where Docker publishes nothing: the fault needs
    // MySQL on the frontend network too.)
    p.edit_service(
        "pricescan-mysql",
        "    networks: [backend]\n",
        &format!("    networks: [backend, frontend]\n    ports: [\"0.0.0.0:{port}:3306\"]\n"),
    );
    p.ok(&["start", "-s", "mysql"]);
    fails(&p, "exposure", &format!("0.0.0.0:{port}"), "127.0.0.1");
    p.write("docker-compose.prod.yml", &compose);
    p.ok(&["start", "-s", "mysql"]);
    let (code, report) = doctor(&p);
    assert_eq!(code, 0, "{report:#}");
}

/// An image of its own (distinct id) for a fake old release, sharing the API image's layers.
fn build_image(tag: &str) {
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let dockerfile = format!("FROM pricescan-test/api:v1\nLABEL io.pricescan.test=\"{tag}\"\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn release_line(id: &str, image: &str) -> String {
    serde_json::json!({
        "id": id, "kind": "deploy", "image": image, "digest": null, "previous": null,
        "user": "ci", "host": "test", "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:01:00Z", "duration_s": 60.0, "result": "succeeded",
        "backup": null, "message": null
    })
    .to_string()
}

#[test]
fn cleanup_frees_debris_and_keeps_volumes_serving_and_rollback_images() {
    let p = stack("cleanup");
    let images: Vec<String> = (1..=7).map(|n| format!("{}-old:{n}", p.name)).collect();
    for image in &images {
        build_image(image);
    }
    // Seven old releases; the last five are rollback targets. One more used the compose
    // file's own image, which start needs.
    let mut history = vec![release_line("r0", "pricescan-test/api:v1")];
    history.extend(
        images
            .iter()
            .enumerate()
            .map(|(n, i)| release_line(&format!("r{}", n + 1), i)),
    );
    p.write(".pricescan/releases.jsonl", &(history.join("\n") + "\n"));
    // A dangling image: its tag moved to a newer build.
    let dangle = format!("{}-dangle:1", p.name);
    build_image(&dangle);
    let dangling_id = docker(&["image", "inspect", "-f", "{{.Id}}", &dangle]);
    build_image(&format!("{dangle}x"));
    docker(&["tag", &format!("{dangle}x"), &dangle]);
    docker(&["rmi", &format!("{dangle}x")]);
    // One-off containers of this project that exited or never started.
    let oneoff = |name: &str, run: bool| {
        let mut args = vec![if run { "run" } else { "create" }];
        args.extend(["--label", "com.docker.compose.oneoff=True", "--name", name]);
        let project = format!("com.docker.compose.project={}", p.name);
        args.extend(["--label", &project, "pricescan-test/api:v1", "true"]);
        let out = Command::new("docker").args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let (exited, created) = (format!("{}-run-1", p.name), format!("{}-run-2", p.name));
    oneoff(&exited, true);
    oneoff(&created, false);
    p.write("backups/.20260101T000000Z-manual.partial/mysql.sql.zst", "half");
    let volumes = || {
        docker(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", p.name),
        ])
    };
    let volumes_before = volumes();
    assert!(!volumes_before.is_empty());
    let exists = |what: &str, name: &str| {
        Command::new("docker")
            .args([what, "inspect", name])
            .output()
            .unwrap()
            .status
            .success()
    };

    let dry = json(&p.ok(&["--json", "cleanup", "--dry-run"]));
    let planned = dry["would_remove"].to_string();
    for needle in [
        &images[0],
        &images[1],
        &dangling_id[7..19],
        &exited,
        &created,
        ".partial",
    ] {
        assert!(planned.contains(needle), "{needle} not planned: {dry:#}");
    }
    for kept in images[2..].iter().chain([&"pricescan-test/api:v1".to_string()]) {
        assert!(
            !planned.contains(&format!("\"{kept} ")),
            "{kept} planned: {dry:#}"
        );
    }
    assert!(dry["would_free_bytes"].as_u64().unwrap() > 0, "{dry:#}");
    assert!(exists("image", &images[0]) && exists("image", &dangling_id) && exists("container", &exited));
    assert!(p.file("backups/.20260101T000000Z-manual.partial").exists());
    // Without a terminal it needs --yes, and changes nothing without it.
    let refused = p.run(&["cleanup"]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(exists("image", &images[0]));

    let done = json(&p.ok(&["--json", "cleanup", "--yes"]));
    assert!(done["freed_bytes"].as_u64().unwrap() > 0, "{done:#}");
    assert!(
        !exists("image", &images[0]) && !exists("image", &images[1]),
        "{done:#}"
    );
    assert!(!exists("image", &dangling_id), "{done:#}");
    assert!(
        !exists("container", &exited) && !exists("container", &created),
        "{done:#}"
    );
    assert!(!p.file("backups/.20260101T000000Z-manual.partial").exists());
    for kept in &images[2..] {
        assert!(exists("image", kept), "{kept} removed: {done:#}");
    }
    assert!(exists("image", "pricescan-test/api:v1"));
    assert_eq!(volumes(), volumes_before);
    let status = p.run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.all());
    let again = json(&p.ok(&["--json", "cleanup", "--dry-run"]))["would_remove"].to_string();
    assert!(!again.contains(&p.name), "{again}");
    for image in &images[2..] {
        docker(&["rmi", image]);
    }
}
