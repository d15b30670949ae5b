//! `monitor` on swarm: one row per task with the node that runs it, and live rates read
//! from each node's own engine (SWARM_NODE_ENGINES); a node whose engine cannot be reached
//! costs its rows their rates, never the dashboard.

use crate::common::lab::*;
use crate::common::{TestProject, json};
use serde_json::Value;

fn rows(snapshot: &Value) -> Vec<Value> {
    snapshot["services"].as_array().cloned().unwrap_or_default()
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["service"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows:#?}"))
}

/// With the API at 3 tasks over at least two nodes and MySQL on `data`.
pub fn each_task_shows_its_node_and_rates(p: &mut TestProject, data: &str) {
    p.set_env("SWARM_NODE_ENGINES", &node_engines(&[1, 2, 3]));
    let snapshot = json(&p.ok(&["--json", "monitor", "--once"]));
    let rows = rows(&snapshot);
    let api = format!("{}_pricescan-api", p.name);
    let mut placed = task_nodes(&api);
    let mut shown: Vec<String> = (1..=3)
        .map(|slot| {
            let r = row(&rows, &format!("pricescan-api.{slot}"));
            assert_eq!(r["state"], "running", "{r:#}");
            // Rates need two samples from the engine of the task's own node.
            assert!(r["rates"]["cpu_percent"].is_number(), "{r:#}");
            assert!(r["rates"]["memory_bytes"].as_u64().unwrap_or(0) > 0, "{r:#}");
            r["node"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    placed.sort();
    shown.sort();
    assert_eq!(shown, placed, "{snapshot:#}");
    let mysql = row(&rows, "pricescan-mysql");
    assert_eq!(mysql["node"]["id"], data, "{mysql:#}");
    assert!(mysql["rates"]["memory_bytes"].is_number(), "{mysql:#}");
    // The API's latency comes through Nginx's published port, the only way to it on swarm.
    let latency = &snapshot["api_latency"];
    assert!(latency["probes"].as_u64() >= Some(1), "{snapshot:#}");
    assert_eq!(latency["errors"], 0, "{snapshot:#}");

    let text = p.ok(&["monitor", "--once"]);
    let hostname = lab(1, &["info", "--format", "{{.Name}}"]);
    assert!(
        text.stdout.contains(&format!("pricescan-mysql @ {hostname}")),
        "{}",
        text.all()
    );

    // A worker's engine unreachable: its tasks lose their rates, the rest stays live.
    let worker = (2..=3)
        .find(|n| placed.contains(&node_id(*n)))
        .expect("an API task on a worker");
    let others: Vec<u32> = (1..=3).filter(|n| *n != worker).collect();
    let unreachable = format!("{}=unix:///nonexistent/docker.sock", node_id(worker));
    let engines = format!("{},{unreachable}", node_engines(&others));
    p.set_env("SWARM_NODE_ENGINES", &engines);
    let snapshot = json(&p.ok(&["--json", "monitor", "--once"]));
    let events = snapshot["events"].to_string();
    assert!(events.contains("unreachable"), "{snapshot:#}");
    for r in rows_of(&snapshot, "pricescan-api.") {
        let lost = r["node"]["id"] == node_id(worker).as_str();
        assert_eq!(r["rates"].is_null(), lost, "{r:#}");
    }
    p.set_env("SWARM_NODE_ENGINES", "");
}

fn rows_of(snapshot: &Value, prefix: &str) -> Vec<Value> {
    rows(snapshot)
        .into_iter()
        .filter(|r| r["service"].as_str().unwrap_or_default().starts_with(prefix))
        .collect()
}
