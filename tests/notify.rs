//! Notifications against real receivers: an HTTP server on 127.0.0.1 for the webhook, Slack
//! and Telegram (through NOTIFY_TELEGRAM_API), aiosmtpd for email; and a real Alertmanager
//! (Debian's) receiving ApiDown from Prometheus when the API stops.

mod common;

use common::receivers::{HttpReceiver, SmtpServer, hung_server};
use common::{Run, TestProject, free_port};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "123456:Tel3gramT0kenSecretValue";
const HOOK_PATH: &str = "/hooks/Wh00kSecretPath9876";
const SLACK_PATH: &str = "/services/T000/B000/Sl4ckSecretXyz";
const TEAMS_PATH: &str = "/workflows/w1/triggers/manual/paths/invoke?sig=T3amsSigSecret";

fn with_channels(p: &mut TestProject, http: &HttpReceiver, smtp: &SmtpServer) {
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("{}{HOOK_PATH}", http.url));
    p.set_env("NOTIFY_SLACK_WEBHOOK_URL", &format!("{}{SLACK_PATH}", http.url));
    p.set_env("NOTIFY_TEAMS_WEBHOOK_URL", &format!("{}{TEAMS_PATH}", http.url));
    p.set_env("NOTIFY_TELEGRAM_API", &http.url);
    p.set_env("NOTIFY_TELEGRAM_BOT_TOKEN", TOKEN);
    p.set_env("NOTIFY_TELEGRAM_CHAT_ID", "4242");
    p.set_env(
        "NOTIFY_SMTP_URL",
        &format!("smtp+insecure://127.0.0.1:{}", smtp.port),
    );
    p.set_env("NOTIFY_EMAIL_FROM", "pricescan@localhost");
    p.set_env("NOTIFY_EMAIL_TO", "ops@localhost");
}

fn run_with(p: &TestProject, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = p.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().unwrap())
}

fn assert_no_secret(run: &Run) {
    for secret in [TOKEN, HOOK_PATH, SLACK_PATH, "T3amsSigSecret"] {
        assert!(!run.all().contains(secret), "{secret} leaked:\n{}", run.all());
    }
}

/// The event arrived on every channel: the webhook, Slack, Teams, Telegram and email.
fn arrived_everywhere(http: &HttpReceiver, smtp: &SmtpServer, event: &str) {
    let hook = http.wait_for(HOOK_PATH, &format!("\"event\":\"{event}\""));
    let body: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    for key in ["event", "project", "host", "time", "summary", "details"] {
        assert!(body.get(key).is_some(), "webhook body lacks {key}: {body}");
    }
    http.wait_for(SLACK_PATH, event);
    let teams = http.wait_for("/workflows/w1/", event);
    let card: serde_json::Value = serde_json::from_str(&teams.body).unwrap();
    let content = &card["attachments"][0]["content"];
    assert_eq!(content["type"], "AdaptiveCard", "{card}");
    assert_eq!(content["body"][1]["facts"][0]["value"], event, "{card}");
    let telegram = http.wait_for(&format!("/bot{TOKEN}/sendMessage"), event);
    assert!(telegram.body.contains("4242"), "{}", telegram.body);
    smtp.wait_for(event);
}

#[test]
fn notify_test_reaches_every_channel_and_names_each_failure() {
    let (http, smtp) = (HttpReceiver::start(), SmtpServer::start());
    let mut p = TestProject::new("ntest");
    with_channels(&mut p, &http, &smtp);
    let setup = p.ok(&["setup", "--skip-images"]);
    assert!(
        setup
            .stderr
            .contains("Alertmanager before 0.28 cannot post to Teams"),
        "the test image's Alertmanager 0.25 has no Teams receiver:\n{}",
        setup.all()
    );
    let run = p.ok(&["notify", "test"]);
    for name in ["webhook", "slack", "teams", "telegram", "email"] {
        assert!(run.stdout.contains(&format!("{name}: accepted")), "{}", run.all());
    }
    arrived_everywhere(&http, &smtp, "test");
    assert!(smtp.wait_for("Subject:").contains(&p.name));
    assert_no_secret(&run);
    let am = p.read("config/alertmanager/alertmanager.yml");
    for part in [
        "webhook_configs",
        "slack_configs",
        "telegram_configs",
        "email_configs",
        "chat_id: 4242",
    ] {
        assert!(am.contains(part), "alertmanager.yml lacks {part}:\n{am}");
    }

    // A dead and a hung channel: exit 1 naming both; the others still deliver.
    let dead = format!("http://127.0.0.1:{}{HOOK_PATH}", free_port());
    let hung = format!("{}{SLACK_PATH}", hung_server());
    let before = smtp.mails().len();
    let run = run_with(
        &p,
        &[("NOTIFY_WEBHOOK_URL", &dead), ("NOTIFY_SLACK_WEBHOOK_URL", &hung)],
        &["notify", "test"],
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("2 of 5 channels"), "{}", run.all());
    assert!(run.stderr.contains("webhook: cannot connect"), "{}", run.all());
    assert!(run.stderr.contains("slack: no answer"), "{}", run.all());
    assert!(run.stdout.contains("email: accepted"), "{}", run.all());
    assert!(smtp.mails().len() > before);
    assert_no_secret(&run);

    // smtp:// requires STARTTLS, which this server does not offer: refused, not sent in clear.
    let plain = format!("smtp://127.0.0.1:{}", smtp.port);
    let run = run_with(&p, &[("NOTIFY_SMTP_URL", &plain)], &["notify", "test"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("email:"), "{}", run.all());

    // Configuration errors exit 2 at notify test, config -q and setup.
    for (key, value, needle) in [
        ("NOTIFY_WEBHOOK_URL", "not a url", "not a valid URL"),
        (
            "NOTIFY_SLACK_WEBHOOK_URL",
            "gopher://x.example/y",
            "unknown scheme",
        ),
        ("NOTIFY_SMTP_URL", "smtpz://h.example", "unknown scheme"),
        ("NOTIFY_EMAIL_TO", "", "NOTIFY_EMAIL_TO is empty"),
    ] {
        for args in [
            &["notify", "test"][..],
            &["-q", "config"],
            &["setup", "--skip-images"],
        ] {
            let run = run_with(&p, &[(key, value)], args);
            assert_eq!(run.code, 2, "{key}={value:?} {args:?}: {}", run.all());
            assert!(
                run.stderr.contains(needle),
                "{key}={value:?} {args:?}: {}",
                run.all()
            );
        }
    }
}

#[test]
fn a_failed_backup_and_a_rolled_back_deploy_arrive_on_every_channel() {
    let (http, smtp) = (HttpReceiver::start(), SmtpServer::start());
    let mut p = TestProject::new("nevents").with_own_ports();
    p.set_env("COMPOSE_PROFILES", "");
    p.set_env("API_DRAIN", "1s");
    with_channels(&mut p, &http, &smtp);
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);

    // MySQL stopped: the backup fails as it would without notifications (exit 1).
    let mysql = format!("{}-pricescan-mysql-1", p.name);
    assert!(
        Command::new("docker")
            .args(["stop", &mysql])
            .status()
            .unwrap()
            .success()
    );
    let run = p.run(&["backup"]);
    assert_eq!(run.code, 1, "{}", run.all());
    arrived_everywhere(&http, &smtp, "backup.failed");
    assert_no_secret(&run);
    // A dead channel is a warning line; the exit code stays the backup's own.
    let dead = format!("http://127.0.0.1:{}{HOOK_PATH}", free_port());
    let run = run_with(&p, &[("NOTIFY_WEBHOOK_URL", &dead)], &["backup"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stderr.contains("could not notify through webhook"),
        "{}",
        run.all()
    );
    assert_no_secret(&run);
    p.ok(&["start"]);

    // A broken release is rolled back (exit 4), and every channel hears of it.
    let run = p.run(&[
        "deploy",
        "--image",
        "pricescan-test/api:broken",
        "--no-backup",
        "--timeout",
        "15s",
    ]);
    assert_eq!(run.code, 4, "{}", run.all());
    arrived_everywhere(&http, &smtp, "deploy.rolled_back");
    let mail = smtp.wait_for("deploy.rolled_back");
    assert!(mail.contains("next:"), "{mail}");
    assert_no_secret(&run);

    // NOTIFY_ON=always: a good deploy is told too.
    let run = run_with(
        &p,
        &[("NOTIFY_ON", "always")],
        &["deploy", "--image", "pricescan-test/api:v2", "--no-backup"],
    );
    assert_eq!(run.code, 0, "{}", run.all());
    arrived_everywhere(&http, &smtp, "deploy.succeeded");
}

#[test]
fn alertmanager_receives_api_down_from_prometheus() {
    let mut p = TestProject::new("nalert").with_own_ports();
    p.set_env("COMPOSE_PROFILES", "monitoring");
    p.set_env("PROMETHEUS_SCRAPE_INTERVAL", "2s");
    p.set_env("ALERT_API_DOWN_FOR", "4s");
    // Every kind of channel, so that the real Alertmanager must accept the rendered config.
    p.set_env("NOTIFY_WEBHOOK_URL", &format!("http://127.0.0.1:9{HOOK_PATH}"));
    p.set_env(
        "NOTIFY_SLACK_WEBHOOK_URL",
        &format!("http://127.0.0.1:9{SLACK_PATH}"),
    );
    p.set_env("NOTIFY_TELEGRAM_API", "http://127.0.0.1:9");
    p.set_env("NOTIFY_TELEGRAM_BOT_TOKEN", TOKEN);
    p.set_env("NOTIFY_TELEGRAM_CHAT_ID", "4242");
    p.set_env("NOTIFY_SMTP_URL", "smtp://ops:Sm7pPassw0rd@127.0.0.1:9");
    p.set_env("NOTIFY_EMAIL_FROM", "pricescan@localhost");
    p.set_env("NOTIFY_EMAIL_TO", "ops@localhost");
    p.ok(&["setup", "--skip-images"]);
    p.ok(&["start"]);
    let status = p.ok(&["status"]);
    assert!(status.stdout.contains("alertmanager"), "{}", status.all());
    assert!(!status.all().contains("Sm7pPassw0rd"));
    let base = format!("http://127.0.0.1:{}", p.port("ALERTMANAGER_PORT"));
    let out = Command::new("curl")
        .args(["-fsS", &format!("{base}/api/v2/status")])
        .output()
        .unwrap();
    let loaded: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let original = loaded["config"]["original"].as_str().unwrap_or_default();
    for part in [
        "webhook_configs",
        "slack_configs",
        "telegram_configs",
        "email_configs",
    ] {
        assert!(
            original.contains(part),
            "Alertmanager did not load {part}:\n{original}"
        );
    }

    let api = format!("{}-pricescan-api-1", p.name);
    assert!(
        Command::new("docker")
            .args(["stop", &api])
            .status()
            .unwrap()
            .success()
    );
    let url = format!("{base}/api/v2/alerts");
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let out = Command::new("curl").args(["-fsS", &url]).output().unwrap();
        let alerts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let firing = alerts
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["labels"]["alertname"] == "ApiDown");
        if let Some(alert) = firing {
            assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
            assert_eq!(alert["labels"]["project"], p.name.as_str(), "{alert}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ApiDown never reached Alertmanager: {alerts}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
