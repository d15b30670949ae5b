//! What a load test sends and what it must meet: the model (an open rate or a closed
//! concurrency), the thresholds of `--threshold 'p95<300ms,errors<1%'`, and the short
//! SPEC of `deploy --load-test`.

use std::time::Duration;

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Model {
    /// Open: this many requests a second, whatever the answers take (no coordinated omission).
    Rate(f64),
    /// Closed: this many clients, each sending its next request when the last one answered.
    Concurrency(usize),
}

/// One load test.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub url: String,
    pub method: String,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub model: Model,
    pub duration: Duration,
    /// A request without an answer after this long counts as a timeout.
    pub timeout: Duration,
}

/// `50/s`, `50`, `3000/m`: requests a second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, per) = match text.trim().split_once('/') {
        Some((n, unit)) => (n.trim(), unit.trim()),
        None => (text.trim(), "s"),
    };
    let seconds = match per {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        _ => return Err(format!("invalid rate {text:?}: the unit is /s or /m (e.g. 50/s)")),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 && n / seconds <= 1_000_000.0 => Ok(n / seconds),
        _ => Err(format!(
            "invalid rate {text:?}: a number of requests above 0 and at most 1000000/s (e.g. 50/s)"
        )),
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency percentile (50, 90, 95, 99) or the maximum (100), in milliseconds.
    Latency(u8),
    /// Failed requests as a ratio of all (0.01 is 1 %).
    Errors,
    /// Requests a second.
    Throughput,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Below,
    AtMost,
    Above,
    AtLeast,
}

/// `p95<300ms`: the report must show the metric on the right side of the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric: Metric,
    pub op: Op,
    pub value: f64,
}

impl Threshold {
    pub fn holds(&self, measured: f64) -> bool {
        match self.op {
            Op::Below => measured < self.value,
            Op::AtMost => measured <= self.value,
            Op::Above => measured > self.value,
            Op::AtLeast => measured >= self.value,
        }
    }
}

/// `p95<300ms,errors<1%,rps>=100`.
pub fn parse_thresholds(text: &str) -> Result<Vec<Threshold>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(parse_threshold)
        .collect()
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    let bad = |why: &str| {
        format!("invalid threshold {text:?}: {why} (e.g. p95<300ms, p99<=1s, errors<1%, rps>100)")
    };
    let at = text.find(['<', '>']).ok_or_else(|| bad("no comparison"))?;
    let (name, rest) = text.split_at(at);
    let (op, value) = match rest {
        r if r.starts_with("<=") => (Op::AtMost, &r[2..]),
        r if r.starts_with(">=") => (Op::AtLeast, &r[2..]),
        r if r.starts_with('<') => (Op::Below, &r[1..]),
        r => (Op::Above, &r[1..]),
    };
    let metric = match name.trim() {
        "p50" => Metric::Latency(50),
        "p90" => Metric::Latency(90),
        "p95" => Metric::Latency(95),
        "p99" => Metric::Latency(99),
        "max" => Metric::Latency(100),
        "errors" => Metric::Errors,
        "rps" | "throughput" => Metric::Throughput,
        other => return Err(bad(&format!("unknown metric {other:?}"))),
    };
    let value = value.trim();
    let value = match metric {
        Metric::Latency(_) => crate::stack::units::parse_duration(value)
            .map(|d| d.as_secs_f64() * 1000.0)
            .map_err(|e| bad(&e))?,
        Metric::Errors => crate::stack::units::parse_ratio(value).map_err(|e| bad(&e))?,
        Metric::Throughput => value
            .trim_end_matches("/s")
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad("not a number of requests a second"))?,
    };
    Ok(Threshold {
        text: text.to_string(),
        metric,
        op,
        value,
    })
}

/// The SPEC of `deploy --load-test`: `PATH[,rate=N/s|,concurrency=N][,method=M]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployLoad {
    pub path: String,
    pub method: String,
    pub model: Model,
}

pub fn parse_deploy_load(text: &str) -> Result<DeployLoad, String> {
    let mut load = DeployLoad {
        path: "/".into(),
        method: "GET".into(),
        model: Model::Concurrency(2),
    };
    let bad = |why: String| format!("invalid load test {text:?}: {why} (e.g. /api/prices,rate=50/s)");
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            None if part.starts_with('/') => load.path = part.to_string(),
            Some(("rate", v)) => load.model = Model::Rate(parse_rate(v).map_err(bad)?),
            Some(("concurrency", v)) => load.model = Model::Concurrency(parse_concurrency(v).map_err(bad)?),
            Some(("method", v)) => load.method = parse_method(v).map_err(bad)?,
            _ => {
                return Err(bad(format!(
                    "{part:?} is neither a path nor rate=, concurrency= or method="
                )));
            }
        }
    }
    Ok(load)
}

pub fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(format!("invalid concurrency {text:?}: a number from 1 to 10000")),
    }
}

pub fn parse_method(text: &str) -> Result<String, String> {
    let upper = text.trim().to_ascii_uppercase();
    match upper.as_str() {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => Ok(upper),
        _ => Err(format!("unknown HTTP method {text:?}")),
    }
}

/// The host of an http:// URL, or why it is not one this tool sends load to.
pub fn http_host(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "{url:?}: only http:// is sent load (the stack's Nginx answers plain HTTP on this host)"
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url:?} names no host"))?;
    Ok(host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase())
}

/// Load goes only to the stack's own hosts, or to one the operator named: a typo in a URL
/// must never turn into a load test of someone else's server.
pub fn check_host(url: &str, own: &[String], allowed: &[String]) -> Result<(), String> {
    let host = http_host(url)?;
    let known = |list: &[String]| list.iter().any(|h| h.eq_ignore_ascii_case(&host));
    match known(own) || known(allowed) {
        true => Ok(()),
        false => Err(format!(
            "{host} is not one of the stack's own hosts ({})",
            own.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_as_operators_write_them() {
        let t = parse_thresholds("p95<300ms, errors<1%,rps>=100,max<=2s").unwrap();
        assert_eq!(t[0].metric, Metric::Latency(95));
        assert_eq!((t[0].op, t[0].value), (Op::Below, 300.0));
        assert_eq!((t[1].metric, t[1].value), (Metric::Errors, 0.01));
        assert_eq!(
            (t[2].metric, t[2].op, t[2].value),
            (Metric::Throughput, Op::AtLeast, 100.0)
        );
        assert_eq!((t[3].metric, t[3].value), (Metric::Latency(100), 2000.0));
        assert!(t[0].holds(299.0) && !t[0].holds(300.0));
    }

    #[test]
    fn bad_thresholds_say_why() {
        for bad in [
            "p95=300ms",
            "p42<1s",
            "p95<fast",
            "errors<150%",
            "rps>many",
            "errors<-1%",
        ] {
            let e = parse_thresholds(bad).unwrap_err();
            assert!(e.contains("invalid threshold"), "{bad}: {e}");
        }
    }

    #[test]
    fn rates_and_deploy_specs() {
        assert_eq!(parse_rate("50/s"), Ok(50.0));
        assert_eq!(parse_rate("120/m"), Ok(2.0));
        assert!(parse_rate("0/s").is_err() && parse_rate("fast").is_err() && parse_rate("5/h").is_err());
        let spec = parse_deploy_load("/api/version,rate=20/s,method=post").unwrap();
        assert_eq!(spec.path, "/api/version");
        assert_eq!((spec.model, spec.method.as_str()), (Model::Rate(20.0), "POST"));
        assert_eq!(
            parse_deploy_load("concurrency=4").unwrap().model,
            Model::Concurrency(4)
        );
        assert!(parse_deploy_load("rate=lots").is_err());
        assert!(parse_deploy_load("api").is_err());
    }

    #[test]
    fn load_goes_only_to_the_stacks_own_hosts() {
        let own = vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "::1".to_string(),
        ];
        assert!(check_host("http://127.0.0.1:8080/api", &own, &[]).is_ok());
        assert!(check_host("http://[::1]:8080/", &own, &[]).is_ok());
        assert!(check_host("http://LOCALHOST/", &own, &[]).is_ok());
        let e = check_host("http://example.com/", &own, &[]).unwrap_err();
        assert!(
            e.contains("example.com is not one of the stack's own hosts"),
            "{e}"
        );
        assert!(check_host("http://example.com/", &own, &["example.com".into()]).is_ok());
        assert!(
            check_host("https://127.0.0.1/", &own, &[])
                .unwrap_err()
                .contains("only http://")
        );
        assert!(check_host("not a url", &own, &[]).is_err());
    }
}
