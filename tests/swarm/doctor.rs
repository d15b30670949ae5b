//! `doctor`'s log rotation check on an engine without default log options (the lab's
//! daemons have none, unlike this machine's daemon.json): a service whose compose file does
//! not rotate its logs runs with logs that grow without limit, and doctor fails it.

use crate::common::json;
use crate::common::lab::*;

#[test]
fn doctor_fails_logs_that_grow_without_limit() {
    wait_for_lab();
    let (p, _guard) = project("doctorlogs");
    let _stack = OnNode1(p.name.clone());
    p.ok(&["setup", "--skip-images"]);
    p.edit_service(
        "pricescan-redis",
        "    logging: *default-logging\n",
        "    logging: {driver: json-file}\n",
    );
    p.ok(&["start", "-s", "redis"]);
    let run = p.run(&["--json", "doctor"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let report = json(&run);
    let logs: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "logs")
        .collect();
    assert_eq!(logs.len(), 1, "{report:#}");
    assert_eq!(logs[0]["status"], "fail", "{report:#}");
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("logs grow without limit: pricescan-redis (json-file)"),
        "{report:#}"
    );
    assert!(
        logs[0]["fix"].as_str().unwrap().contains("max-size"),
        "{report:#}"
    );
}
