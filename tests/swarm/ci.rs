//! The CI deploy jobs that `setup` renders into config/ci/ (GitHub Actions and GitLab CI),
//! run as their runners would run them: their shell steps under bash, through a real ssh
//! (lab node 1's sshd, whose key sets DOCKER_HOST to that node's engine) to a single-host
//! stack on that engine. Each exit code of DESIGN §4 that a deploy can give is read, and the
//! JSON result lands in result.json.

use crate::common::TestProject;
use crate::common::lab::*;
use serde_yaml_ng::Value;
use std::process::Command;

/// Writes the test's environment and project name into .env.prod: the ssh session sees
/// only that file.
fn env_into_file(p: &TestProject) {
    let mut text = p.read(".env.prod");
    let name = [("COMPOSE_PROJECT_NAME".to_string(), p.name.clone())];
    for (key, value) in p.env.iter().filter(|(k, _)| k != "DOCKER_HOST").chain(&name) {
        let line = format!("{key}={value}");
        let lines: Vec<String> = text
            .lines()
            .map(|l| match l.starts_with(&format!("{key}=")) {
                true => line.clone(),
                false => l.to_string(),
            })
            .collect();
        text = lines.join("\n") + "\n";
        if !text.contains(&format!("\n{line}\n")) {
            text.push_str(&format!("{line}\n"));
        }
    }
    p.write(".env.prod", &text);
}

/// The shell of the GitHub job's Deploy step and of the GitLab job's script.
fn scripts(p: &TestProject) -> (String, String) {
    let github: Value = serde_yaml_ng::from_str(&p.read("config/ci/github-deploy.yml")).unwrap();
    let steps = github["jobs"]["deploy"]["steps"].as_sequence().unwrap();
    let deploy = steps.iter().find(|s| s["name"] == "Deploy").unwrap();
    let gitlab: Value = serde_yaml_ng::from_str(&p.read("config/ci/gitlab-deploy.yml")).unwrap();
    let lines: Vec<&str> = gitlab["deploy"]["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    (deploy["run"].as_str().unwrap().to_string(), lines.join("\n"))
}

struct Job {
    code: i32,
    out: String,
    result: String,
}

fn run_job(script: &str, env: &[(&str, &str)]) -> Job {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .args(["-e", "-c", script])
        .current_dir(dir.path())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Job {
        code: out.status.code().unwrap_or(-1),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        result: std::fs::read_to_string(dir.path().join("result.json")).unwrap_or_default(),
    }
}

#[test]
fn the_ci_deploy_jobs_deploy_over_ssh_and_read_every_exit_code() {
    wait_for_lab();
    let (mut p, _guard) = project("ci");
    let _stack = OnNode1(p.name.clone());
    p.set_env("API_DRAIN", "1s");
    p.set_env("API_PORT", &crate::common::free_port().to_string());
    p.ok(&["setup", "--skip-images"]);
    env_into_file(&p);
    p.ok(&["start"]);
    let (github, gitlab) = scripts(&p);
    let key = format!("{LAB}/ssh/id_ed25519");
    let host = format!("root@{}", addr(1));

    let job = run_job(
        &gitlab,
        &[
            ("DEPLOY_HOST", &host),
            ("DEPLOY_SSH_KEY", &key),
            ("DEPLOY_IMAGE", "pricescan-test/api:v2"),
        ],
    );
    assert_eq!(job.code, 0, "{}", job.out);
    assert!(job.out.contains("deployed pricescan-test/api:v2"), "{}", job.out);
    let result: serde_json::Value =
        serde_json::from_str(&job.result).unwrap_or_else(|e| panic!("{e}: {}", job.out));
    assert_eq!(result["image"], "pricescan-test/api:v2", "{result:#}");
    assert_eq!(version_at(&addr(1), p.port("HTTP_PORT")), "v2");

    // GitHub's step reads a failed release the same way: rolled back, exit 4.
    let github_env = |image: &'static str| vec![("HOST", host.clone()), ("IMAGE", image.to_string())];
    let env = github_env("pricescan-test/api:broken");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let job = run_job(&github, &env);
    assert_eq!(job.code, 4, "{}", job.out);
    assert!(job.out.contains("rolled back automatically"), "{}", job.out);
    assert_eq!(version_at(&addr(1), p.port("HTTP_PORT")), "v2");

    // The lock held by an operation elsewhere: 75, try later.
    let lock = format!("{}-lock", p.name);
    let project_label = format!("com.docker.compose.project={}", p.name);
    lab(
        1,
        &[
            "create",
            "--name",
            &lock,
            "--label",
            &project_label,
            "--label",
            "com.docker.compose.oneoff=True",
            "--label",
            "io.pricescan.owner.operation=backup",
            "--label",
            "io.pricescan.owner.user=ci",
            "--label",
            "io.pricescan.owner.host=elsewhere",
            "--label",
            "io.pricescan.owner.pid=4242",
            "--label",
            "io.pricescan.owner.since=2026-01-01T00:00:00Z",
            "pricescan-ctl/lock:1",
            "/pricescan-lock",
        ],
    );
    let gitlab_env = [
        ("DEPLOY_HOST", host.as_str()),
        ("DEPLOY_SSH_KEY", key.as_str()),
        ("DEPLOY_IMAGE", "pricescan-test/api:v1"),
    ];
    let job = run_job(&gitlab.replace("--wait 10m", "--wait 1s"), &gitlab_env);
    assert_eq!(job.code, 75, "{}", job.out);
    assert!(job.out.contains("holds the lock"), "{}", job.out);
    lab(1, &["rm", &lock]);

    // A reference that could smuggle a command into the remote shell never leaves the runner.
    let job = run_job(
        &gitlab,
        &[
            ("DEPLOY_HOST", &host),
            ("DEPLOY_SSH_KEY", &key),
            ("DEPLOY_IMAGE", "x;touch /tmp/pwned"),
        ],
    );
    assert_eq!(job.code, 2, "{}", job.out);
    assert!(job.out.contains("bad image reference"), "{}", job.out);
    // ssh refused (no such key): 255, named as an ssh problem.
    let job = run_job(
        &gitlab,
        &[
            ("DEPLOY_HOST", "nobody@10.231.0.11"),
            ("DEPLOY_SSH_KEY", &key),
            ("DEPLOY_IMAGE", "pricescan-test/api:v1"),
        ],
    );
    assert_eq!(job.code, 255, "{}", job.out);
    assert!(job.out.contains("ssh failed"), "{}", job.out);
}
