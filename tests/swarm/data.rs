//! Backups and restores on the swarm lab (DESIGN §11): they run on the data node's engine,
//! reached through SWARM_NODE_ENGINES (here over ssh, to a real sshd in the node's network
//! namespace), and the backup lands in the project directory on this machine.

use crate::common::lab::*;
use crate::common::{self, TestProject};
use std::process::Command;

/// A shell command in the running task container of `service` on lab node `node`; the
/// passwords are read from the swarm secrets inside it.
fn in_task(p: &TestProject, node: u32, service: &str, script: &str) -> String {
    let label = format!(
        "label=com.docker.swarm.service.name={}_pricescan-{service}",
        p.name
    );
    let id = lab(node, &["ps", "-q", "--filter", &label]);
    assert!(!id.is_empty(), "no running {service} task on node {node}");
    let out = Command::new("docker")
        .args([
            "-H",
            &sock(node),
            "exec",
            id.lines().next().unwrap(),
            "sh",
            "-c",
            script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn sql(p: &TestProject, node: u32, query: &str) -> String {
    let script = format!(
        "MYSQL_PWD=\"$(cat \"$MYSQL_ROOT_PASSWORD_FILE\")\" mysql -uroot -N -B \"$MYSQL_DATABASE\" -e \"{query}\""
    );
    in_task(p, node, "mysql", &script)
}

fn redis(p: &TestProject, node: u32, cmd: &str) -> String {
    let script = format!("REDISCLI_AUTH=\"$(cat \"$REDIS_PASSWORD_FILE\")\" redis-cli --raw {cmd}");
    in_task(p, node, "redis", &script)
}

const ROWS: &str = "SELECT COUNT(*), SUM(CRC32(CONCAT(id, v))) FROM canary";

#[test]
fn backups_and_restores_run_on_the_data_node_reached_over_ssh() {
    wait_for_lab();
    let _nodes = NODES.read().unwrap_or_else(|e| e.into_inner());
    let (mut p, _guard) = project("swdata");
    let data = 2;
    // The data node is a worker, reached through its sshd; the manager is this engine.
    p.set_env(
        "SWARM_NODE_ENGINES",
        &format!("{}=ssh://root@{}", node_id(data), addr(data)),
    );
    p.ok(&[
        "setup",
        "--target",
        "swarm",
        "--data-node",
        &node_id(data),
        "--skip-images",
    ]);
    p.ok(&["start"]);
    sql(
        &p,
        data,
        "CREATE TABLE canary (id INT PRIMARY KEY, v VARCHAR(40)); INSERT INTO canary SELECT seq, MD5(seq) FROM seq_1_to_5000",
    );
    redis(&p, data, "SET canary kept");
    let before = sql(&p, data, ROWS);

    let run = p.ok(&["--json", "backup"]);
    let manifest = common::json(&run);
    let id = manifest["id"].as_str().unwrap().to_string();
    assert_eq!(manifest["row_counts"]["canary"], 5000, "{manifest:#}");
    for file in ["manifest.json", "SHA256SUMS", "mysql.sql.zst", "redis.rdb"] {
        assert!(p.file(&format!("backups/{id}/{file}")).is_file(), "{file}");
    }
    p.ok(&["backup", "verify", &id]);

    sql(
        &p,
        data,
        "DELETE FROM canary WHERE id > 4000; UPDATE canary SET v = 'changed' WHERE id < 10; CREATE TABLE later (x INT)",
    );
    redis(&p, data, "SET canary changed");
    assert_ne!(sql(&p, data, ROWS), before);
    let run = p.ok(&["restore", &id, "--yes"]);
    assert!(run.all().contains("stopping the API"), "{}", run.all());
    assert_eq!(sql(&p, data, ROWS), before, "rows differ after the restore");
    assert_eq!(sql(&p, data, "SHOW TABLES LIKE 'later'"), "");
    assert_eq!(redis(&p, data, "GET canary"), "kept");
    // The API serves again, through Nginx.
    let status = common::json(&p.run(&["--json", "status"]));
    assert_eq!(status["healthy"], true, "{status:#}");
    assert!(!p.file(".pricescan/swarm-api-held").exists());
    remote_engine(&p);
    bad_node_engines(&mut p, data);
}

/// `--docker-host ssh://` to the manager: every command of the swarm target works through
/// it; on the compose target, reading works and writing files the containers mount is
/// refused (exit 2) before anything is written.
fn remote_engine(p: &TestProject) {
    let ssh = format!("ssh://root@{}", addr(1));
    let status = common::json(&p.run(&["--docker-host", &ssh, "--json", "status"]));
    assert_eq!(status["healthy"], true, "{status:#}");
    p.ok(&["--docker-host", &ssh, "scale", "api=2"]);
    let logs = p.ok(&["--docker-host", &ssh, "logs", "-s", "api", "-n", "5"]);
    assert!(logs.stdout.contains("pricescan-api.2 |"), "{}", logs.all());
    let env = p.read(".env.prod");
    let config = p.dir_names("config/nginx");
    let run = p.run(&[
        "--target",
        "compose",
        "--docker-host",
        &ssh,
        "setup",
        "--skip-images",
    ]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.contains("must run on the server itself"),
        "{}",
        run.all()
    );
    for command in [&["start"][..], &["deploy", "--no-backup"], &["restart"]] {
        let mut args = vec!["--target", "compose", "--docker-host", &ssh];
        args.extend_from_slice(command);
        let run = p.run(&args);
        assert_eq!(run.code, 2, "{command:?}: {}", run.all());
    }
    assert_eq!(p.read(".env.prod"), env);
    assert_eq!(p.dir_names("config/nginx"), config);
    // Reading the compose target remotely works: nothing of it runs there (exit 3).
    let run = p.run(&["--target", "compose", "--docker-host", &ssh, "status"]);
    assert_eq!(run.code, 3, "{}", run.all());
}

/// An entry for a node the swarm lacks (exit 2), an engine that cannot be reached (exit 69,
/// naming the node), and a key the node refuses (exit 69).
fn bad_node_engines(p: &mut TestProject, data: u32) {
    let backups = p.dir_names("backups");
    p.set_env(
        "SWARM_NODE_ENGINES",
        "abcdefabcdef0123456789abc=unix:///nowhere.sock",
    );
    let run = p.run(&["backup"]);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr
            .contains("abcdefabcdef0123456789abc, which is not in this swarm"),
        "{}",
        run.all()
    );
    p.set_env(
        "SWARM_NODE_ENGINES",
        &format!("{}=unix:///tmp/pslab/nowhere.sock", node_id(data)),
    );
    let run = p.run(&["backup"]);
    assert_eq!(run.code, 69, "{}", run.all());
    assert!(run.stderr.contains(&node_id(data)), "{}", run.all());
    p.set_env(
        "SWARM_NODE_ENGINES",
        &format!("{}=ssh://nobody@{}", node_id(data), addr(data)),
    );
    let run = p.run(&["backup"]);
    assert_eq!(run.code, 69, "{}", run.all());
    assert!(run.stderr.contains(&node_id(data)), "{}", run.all());
    assert_eq!(p.dir_names("backups"), backups, "a failed backup left something");
}
