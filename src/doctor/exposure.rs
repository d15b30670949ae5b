//! Published ports: MySQL and Redis never public; the API, Prometheus, Grafana and
//! Alertmanager on loopback only; Nginx is the one public entry point.

use super::finding::Finding;
use crate::engine::{ContainerInfo, PublishedPort};

const CHECK: &str = "exposure";
const DATA: [&str; 2] = ["pricescan-mysql", "pricescan-redis"];
const EDGE: &str = "pricescan-nginx";

pub fn check(containers: &[ContainerInfo]) -> Vec<Finding> {
    let mut found: Vec<Finding> = containers
        .iter()
        .filter(|c| c.is_running())
        .flat_map(|c| c.ports.iter().map(|p| judge(&c.service, p)))
        .collect();
    let data_published = containers
        .iter()
        .any(|c| DATA.contains(&c.service.as_str()) && !c.ports.is_empty());
    if !data_published {
        found.push(Finding::ok(CHECK, "MySQL and Redis publish no port"));
    }
    found
}

fn is_loopback(ip: &str) -> bool {
    ip.starts_with("127.") || ip == "::1"
}

/// One published port of `service`, judged.
pub fn judge(service: &str, p: &PublishedPort) -> Finding {
    let bind = match p.host_ip.as_str() {
        "" => "0.0.0.0",
        ip => ip,
    };
    let what = format!(
        "{service} publishes {bind}:{} → {}/{}",
        p.host_port, p.container_port, p.protocol
    );
    let fix = format!(
        "bind it to loopback in the compose file (`127.0.0.1:{}:{}` under {service}'s ports:), or remove it, then `pricescan-ctl start`",
        p.host_port, p.container_port
    );
    match (service, is_loopback(bind)) {
        (_, true) => Finding::ok(CHECK, format!("{what} (loopback only)")),
        (EDGE, false) => Finding::ok(CHECK, format!("{what} (the public entry point)")),
        (s, false) if DATA.contains(&s) => Finding::fail(
            CHECK,
            format!("{what}: anyone who reaches this server can try its password"),
            fix,
        ),
        (
            "pricescan-api" | "pricescan-prometheus" | "pricescan-grafana" | "pricescan-alertmanager",
            false,
        ) => Finding::fail(
            CHECK,
            format!("{what}: it must be reached through Nginx or a tunnel"),
            fix,
        ),
        _ => Finding::warn(CHECK, format!("{what}: public"), fix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::finding::Level;

    fn port(ip: &str, port: u16) -> PublishedPort {
        PublishedPort {
            host_ip: ip.into(),
            host_port: port,
            container_port: port,
            protocol: "tcp".into(),
        }
    }

    #[test]
    fn data_services_are_never_public() {
        assert_eq!(
            judge("pricescan-mysql", &port("0.0.0.0", 3306)).status,
            Level::Fail
        );
        assert_eq!(judge("pricescan-redis", &port("::", 6379)).status, Level::Fail);
        assert_eq!(
            judge("pricescan-mysql", &port("127.0.0.1", 3306)).status,
            Level::Ok
        );
    }

    #[test]
    fn consoles_stay_on_loopback_and_nginx_is_public() {
        assert_eq!(
            judge("pricescan-grafana", &port("0.0.0.0", 3000)).status,
            Level::Fail
        );
        assert_eq!(judge("pricescan-api", &port("127.0.0.1", 8000)).status, Level::Ok);
        assert_eq!(judge("pricescan-nginx", &port("0.0.0.0", 80)).status, Level::Ok);
        assert_eq!(
            judge("pricescan-kibana", &port("0.0.0.0", 5601)).status,
            Level::Warn
        );
        let f = judge("pricescan-mysql", &port("", 3306));
        assert!(f.message.contains("0.0.0.0:3306"), "{}", f.message);
        assert!(f.fix.unwrap().contains("127.0.0.1:3306:3306"));
    }
}
