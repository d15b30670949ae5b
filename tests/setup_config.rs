//! `setup` and `config` against the real engine: files, modes, secrets, networks and
//! volumes, idempotence, masking, and every bad input with its exit code.

mod common;

use common::{TestProject, docker_format};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn mode(p: &TestProject, rel: &str) -> u32 {
    std::fs::metadata(p.file(rel)).unwrap().permissions().mode() & 0o777
}

#[test]
fn setup_creates_the_project_and_a_second_run_changes_nothing() {
    let p = TestProject::new("setup");
    let first = p.ok(&["setup"]);
    assert!(first.stdout.contains("created .env.prod"), "{}", first.all());

    for rel in [
        "docker-compose.prod.yml",
        ".env.prod.example",
        "templates/nginx/pricescan.conf",
        "config/nginx/pricescan.conf",
        "config/nginx/upstream.inc",
        "config/prometheus/prometheus.yml",
        "config/prometheus/alerts.yml",
        "config/grafana/provisioning/datasources/prometheus.yml",
        "config/grafana/dashboards/pricescan-overview.json",
        "config/mysql/conf.d/pricescan.cnf",
        "config/gunicorn/gunicorn.conf.py",
        "config/logstash/pipeline/pricescan.conf",
        "config/systemd/pricescan-backup.timer",
        "config/systemd/pricescan-guard.service",
        "config/cron/pricescan-backup",
    ] {
        assert!(p.file(rel).is_file(), "{rel} missing");
    }
    assert!(p.file("backups").is_dir() && p.file(".pricescan").is_dir());
    assert_eq!(mode(&p, ".env.prod"), 0o600);
    assert_eq!(
        mode(&p, "config"),
        0o700,
        "config/ holds the rendered Redis password"
    );

    let secrets = p.secrets();
    assert!(secrets.len() >= 6, "{secrets:?}");
    assert!(
        p.read(".env.prod")
            .lines()
            .any(|l| l == "BACKUP_REMOTE_SECRET_ACCESS_KEY="),
        "setup must not invent a secret that a storage provider issues"
    );
    for (key, value) in &secrets {
        assert!(value.len() >= 32, "{key} is too short");
        assert!(
            value.chars().all(|c| c.is_ascii_alphanumeric()),
            "{key} is not shell/URL-safe"
        );
        assert!(
            !value.contains("VOTRE") && !value.contains("changeme"),
            "{key} kept its placeholder"
        );
    }
    let redis_password = &secrets.iter().find(|(k, _)| k == "REDIS_PASSWORD").unwrap().1;
    assert!(
        p.read("config/redis/redis.conf")
            .contains(&format!("requirepass {redis_password}"))
    );

    for net in ["backend", "frontend"] {
        let name = format!("{}_{net}", p.name);
        let labels = docker_format("network", &name, "{{json .Labels}}").expect("network exists");
        assert!(
            labels.contains(&format!("\"com.docker.compose.network\":\"{net}\"")),
            "{labels}"
        );
        assert!(
            labels.contains(&format!("\"com.docker.compose.project\":\"{}\"", p.name)),
            "{labels}"
        );
    }
    let internal = docker_format("network", &format!("{}_backend", p.name), "{{.Internal}}");
    assert_eq!(internal.as_deref(), Some("true"));
    for vol in ["mysql-data", "redis-data", "prometheus-data", "grafana-data"] {
        let labels = docker_format("volume", &format!("{}_{vol}", p.name), "{{json .Labels}}");
        assert!(
            labels
                .expect("volume exists")
                .contains(&format!("\"com.docker.compose.volume\":\"{vol}\""))
        );
    }

    let env_before = p.read(".env.prod");
    let config_before = p.read("config/nginx/pricescan.conf");
    let second = p.ok(&["setup"]);
    assert!(second.stdout.contains("nothing changed"), "{}", second.all());
    assert_eq!(p.read(".env.prod"), env_before, "secrets must be kept");
    assert_eq!(p.read("config/nginx/pricescan.conf"), config_before);
}

#[test]
fn setup_tightens_a_readable_env_file_and_completes_missing_variables() {
    let p = TestProject::new("envfix");
    p.ok(&["setup", "--skip-images"]);
    let trimmed: String = p
        .read(".env.prod")
        .lines()
        .filter(|l| !l.starts_with("LOG_LEVEL="))
        .map(|l| format!("{l}\n"))
        .collect();
    p.write(".env.prod", &trimmed);
    std::fs::set_permissions(p.file(".env.prod"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = p.ok(&["setup", "--skip-images"]);
    assert!(run.stdout.contains("added LOG_LEVEL"), "{}", run.all());
    assert!(run.stdout.contains("mode 0600"), "{}", run.all());
    assert_eq!(mode(&p, ".env.prod"), 0o600);
    assert!(p.read(".env.prod").contains("\nLOG_LEVEL=INFO\n"));
}

#[test]
fn force_secrets_regenerates_secrets_but_keeps_database_passwords_once_mysql_has_data() {
    let p = TestProject::new("force");
    p.ok(&["setup", "--skip-images"]);
    let before = p.secrets();
    let run = p.ok(&["setup", "--skip-images", "--force", "secrets"]);
    let after = p.secrets();
    let get = |list: &[(String, String)], k: &str| list.iter().find(|(key, _)| key == k).unwrap().1.clone();
    assert_ne!(get(&before, "SECRET_KEY"), get(&after, "SECRET_KEY"));
    assert_ne!(get(&before, "REDIS_PASSWORD"), get(&after, "REDIS_PASSWORD"));
    // setup created the MySQL volume, so the passwords MySQL stores must not change under it.
    assert_eq!(get(&before, "DB_PASSWORD"), get(&after, "DB_PASSWORD"));
    assert_eq!(
        get(&before, "MYSQL_ROOT_PASSWORD"),
        get(&after, "MYSQL_ROOT_PASSWORD")
    );
    assert!(run.stderr.contains("kept DB_PASSWORD"), "{}", run.all());
    for (_, secret) in &after {
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
    }
}

#[test]
fn setup_then_config_works_with_only_the_binary_and_masks_every_secret() {
    let p = TestProject::new("config");
    p.ok(&["setup", "--skip-images"]);
    let secrets = p.secrets();
    for args in [
        &["config"][..],
        &["--json", "config"],
        &["-v", "config", "-s", "api"],
    ] {
        let run = p.ok(args);
        assert!(run.stdout.contains("pricescan-api"), "{}", run.all());
        assert!(run.stdout.contains("********"), "{}", run.all());
        for (key, value) in &secrets {
            assert!(
                !run.stdout.contains(value.as_str()),
                "{key} leaked by config {args:?}"
            );
            assert!(
                !run.stderr.contains(value.as_str()),
                "{key} leaked on stderr by config {args:?}"
            );
        }
    }
    let yaml = p.ok(&["config"]).stdout;
    assert!(yaml.contains(&format!("name: {}", p.name)));
    assert!(
        yaml.contains("image: pricescan-test/mysql:8.0"),
        "the process environment overrides .env.prod"
    );
    assert!(
        !yaml.contains("pricescan-kibana"),
        "the logging profile is off by default"
    );

    let services = p.ok(&["config", "--services"]).stdout;
    let names: Vec<&str> = services.lines().collect();
    assert_eq!(
        names,
        [
            "pricescan-alertmanager",
            "pricescan-api",
            "pricescan-grafana",
            "pricescan-mysql",
            "pricescan-nginx",
            "pricescan-prometheus",
            "pricescan-redis"
        ]
    );
    let quiet = p.ok(&["config", "-q"]);
    assert!(quiet.stdout.is_empty(), "{}", quiet.all());
}

fn assert_fails(run: &common::Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "{}", run.all());
    assert!(run.stderr.starts_with("error: "), "{}", run.all());
    for n in needles {
        assert!(run.stderr.contains(n), "missing {n:?} in:\n{}", run.all());
    }
}

#[test]
fn broken_compose_file_reports_file_line_and_column() {
    let p = TestProject::new("badyaml");
    p.ok(&["setup", "--skip-images"]);
    let good = p.read("docker-compose.prod.yml");
    p.write(
        "docker-compose.prod.yml",
        &good.replacen("  pricescan-api:\n", "  pricescan-api:\n   broken: [\n", 1),
    );
    let run = p.run(&["config"]);
    assert_fails(&run, 2, &["docker-compose.prod.yml:", "invalid YAML"]);
    let line = run
        .stderr
        .split("docker-compose.prod.yml:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    assert!(line.parse::<u32>().is_ok(), "no line number in {}", run.stderr);
}

#[test]
fn broken_env_line_names_the_file_and_line() {
    let p = TestProject::new("badenv");
    p.ok(&["setup", "--skip-images"]);
    let env = p.read(".env.prod");
    p.write(".env.prod", &format!("{env}this line is wrong\n"));
    let line = env.lines().count() + 1;
    assert_fails(&p.run(&["config"]), 2, &[&format!(".env.prod:{line}")]);
    assert_fails(
        &p.run(&["setup", "--skip-images"]),
        2,
        &[&format!(".env.prod:{line}")],
    );
    assert!(
        p.read(".env.prod").ends_with("this line is wrong\n"),
        "setup must not rewrite a broken file"
    );
}

#[test]
fn dependency_cycle_is_refused_and_named() {
    let p = TestProject::new("cycle");
    p.ok(&["setup", "--skip-images"]);
    let good = p.read("docker-compose.prod.yml");
    let cyclic = good.replacen(
        "    image: ${MYSQL_IMAGE:-mysql:8.0}\n",
        "    image: ${MYSQL_IMAGE:-mysql:8.0}\n    depends_on: [pricescan-api]\n",
        1,
    );
    assert_ne!(cyclic, good, "the test must inject a dependency");
    p.write("docker-compose.prod.yml", &cyclic);
    assert_fails(
        &p.run(&["config"]),
        2,
        &[
            "dependency cycle",
            "pricescan-api -> pricescan-mysql -> pricescan-api",
        ],
    );
}

#[test]
fn unknown_service_gets_exit_2_and_a_suggestion() {
    let p = TestProject::new("unknown");
    p.ok(&["setup", "--skip-images"]);
    assert_fails(
        &p.run(&["config", "-s", "redsi"]),
        2,
        &["no such service: redsi", "did you mean pricescan-redis?"],
    );
}

#[test]
fn placeholder_secret_is_refused_with_its_name() {
    let p = TestProject::new("placeholder");
    p.ok(&["setup", "--skip-images"]);
    let env = p.read(".env.prod");
    let secret = p
        .secrets()
        .into_iter()
        .find(|(k, _)| k == "JWT_SECRET_KEY")
        .unwrap()
        .1;
    p.write(".env.prod", &env.replace(&secret, "VOTRE_CLE_JWT"));
    assert_fails(
        &p.run(&["setup", "--skip-images"]),
        2,
        &["JWT_SECRET_KEY is still a placeholder", ".env.prod:"],
    );
    let empty = env.replace(&format!("JWT_SECRET_KEY={secret}"), "JWT_SECRET_KEY=");
    p.write(".env.prod", &empty);
    let run = p.run(&["setup", "--skip-images"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("JWT_SECRET_KEY"), "{}", run.all());
}

#[test]
fn required_variable_error_names_the_key_path() {
    let p = TestProject::new("required");
    p.write(
        "docker-compose.prod.yml",
        "services:\n  web:\n    image: ${WEB_IMAGE:?set WEB_IMAGE to the image}\n",
    );
    assert_fails(
        &p.run(&["config"]),
        2,
        &["services.web.image: required variable WEB_IMAGE is missing a value: set WEB_IMAGE to the image"],
    );
}

#[test]
fn unreachable_engine_exits_69_fast_with_a_hint() {
    let p = TestProject::new("noengine");
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let start = Instant::now();
        let run = p.run(&["--docker-host", host, "setup"]);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "took {:?}",
            start.elapsed()
        );
        assert_fails(&run, 69, &["cannot reach the Docker engine", "hint:"]);
    }
    assert!(
        !p.file(".env.prod").exists(),
        "nothing is written when the engine is unreachable"
    );
}

#[test]
fn engine_socket_without_permission_exits_69_with_a_hint() {
    let p = TestProject::new("noperm");
    // An unprivileged user may not open the root-owned socket.
    let run = common::Run::from(
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_pricescan-ctl"))
            .args(["--project-dir", &p.path().display().to_string(), "setup"])
            .current_dir("/")
            .env_remove("DOCKER_HOST")
            .output()
            .expect("setpriv"),
    );
    assert_fails(
        &run,
        69,
        &[
            "cannot reach the Docker engine",
            "ermission denied",
            "docker group",
        ],
    );
}

#[test]
fn completions_and_man_page_come_from_the_command_tree() {
    let p = TestProject::new("completions");
    let bash = p.ok(&["completions", "bash"]).stdout;
    assert!(bash.contains("pricescan-ctl") && bash.contains("--docker-host"));
    let man = p.ok(&["man"]).stdout;
    assert!(man.contains(".TH pricescan-ctl") && man.contains("setup"));
}

#[test]
fn bad_flag_is_a_usage_error() {
    let p = TestProject::new("badflag");
    let run = p.run(&["status", "--no-such-flag"]);
    assert_eq!(run.code, 2, "{}", run.all());
}

#[test]
fn a_malformed_secret_is_reported_without_its_value() {
    let p = TestProject::new("badsecret");
    p.ok(&["setup", "--skip-images"]);
    let env = p.read(".env.prod");
    let secret = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    let (key, jwt) = (secret("SECRET_KEY"), secret("JWT_SECRET_KEY"));
    for (broken, shown) in [
        (
            env.replace(&format!("SECRET_KEY={key}"), &format!("SECRET_KEY=a${{b{key}")),
            key.clone(),
        ),
        (
            env.replace(
                &format!("JWT_SECRET_KEY={jwt}"),
                &format!("JWT_SECRET_KEY=\"{jwt}\"tail{jwt}"),
            ),
            jwt.clone(),
        ),
    ] {
        p.write(".env.prod", &broken);
        let run = p.run(&["config"]);
        assert_fails(&run, 2, &[".env.prod:"]);
        assert!(
            !run.all().contains(&shown),
            "a secret was printed:\n{}",
            run.all()
        );
    }
}

#[test]
fn a_compose_file_without_the_api_is_a_usage_error_not_a_panic() {
    let p = TestProject::new("noapi");
    p.ok(&["setup", "--skip-images"]);
    let compose = p.read("docker-compose.prod.yml");
    p.write(
        "docker-compose.prod.yml",
        &compose.replace("pricescan-api", "pricescan-app"),
    );
    let run = p.run(&["deploy", "--image", "pricescan-test/api:v2", "--no-backup"]);
    assert_fails(&run, 2, &["defines no service pricescan-api"]);
}
