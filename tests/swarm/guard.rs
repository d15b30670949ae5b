//! `guard` on swarm: the swarm replaces a killed task itself; the guard records the
//! replacement as an incident and acts on nothing.

use crate::common::lab::*;
use crate::common::running::spawn;
use crate::common::{TestProject, json};

/// With the API at 3 tasks over the lab's nodes.
pub fn records_the_swarms_replacement_of_a_killed_task(p: &mut TestProject, api: &str) {
    p.set_env("GUARD_PROBE_INTERVAL", "1s");
    let guard = spawn(p, &["guard"]);
    guard.wait_for("on swarm");
    let filter = format!("label=com.docker.swarm.service.name={api}");
    let (node, container) = (1..=3)
        .find_map(|n| {
            let ids = lab(n, &["ps", "-q", "--filter", &filter]);
            ids.lines().next().map(|id| (n, id.to_string()))
        })
        .expect("an API task's container on some node");
    lab(node, &["kill", &container]);
    let line = guard.wait_for("(resolved)");
    assert!(line.contains("pricescan-api"), "{line}");
    let listed = json(&p.ok(&["--json", "incidents"]));
    let incident = &listed[0];
    assert_eq!(incident["service"], "pricescan-api", "{listed:#}");
    assert!(
        incident["task"].as_str().is_some_and(|t| !t.is_empty()),
        "{listed:#}"
    );
    assert!(
        incident["detected"].as_str().unwrap().contains("failed"),
        "{listed:#}"
    );
    assert!(incident["recovery_seconds"].as_f64().is_some(), "{listed:#}");
    assert_eq!(task_nodes(api).len(), 3, "the swarm runs 3 API tasks again");
    guard.signal("-TERM");
    let (code, stderr) = guard.finish();
    assert_eq!(code, Some(143), "{stderr}");
    // A guard started again records nothing twice.
    let again = spawn(p, &["guard"]);
    again.wait_for("on swarm");
    std::thread::sleep(std::time::Duration::from_secs(3));
    again.signal("-TERM");
    assert_eq!(again.finish().0, Some(143));
    let after = json(&p.ok(&["--json", "incidents"]));
    assert_eq!(after.as_array().unwrap().len(), 1, "{after:#}");
    p.set_env("GUARD_PROBE_INTERVAL", "");
}
