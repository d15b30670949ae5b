//! The TLS certificate Nginx serves when NGINX_TLS=on: days to expiry (warn under 21, fail
//! under 7) and whether it names SERVER_NAME.

use super::finding::Finding;
use crate::stack::{Project, resolve_path};
use x509_parser::prelude::*;

const CHECK: &str = "tls";
const WARN_DAYS: i64 = 21;
const FAIL_DAYS: i64 = 7;

pub fn check(project: &Project) -> Vec<Finding> {
    let env = &project.env;
    if env.get("NGINX_TLS").as_deref().map(str::trim) != Some("on") {
        return vec![Finding::warn(
            CHECK,
            "TLS is off: Nginx serves plain HTTP",
            "put fullchain.pem and privkey.pem in TLS_CERT_DIR, set NGINX_TLS=on, then `pricescan-ctl restart pricescan-nginx`",
        )];
    }
    let dir = env.get("TLS_CERT_DIR").unwrap_or_else(|| "./config/tls".into());
    let path = resolve_path(&project.dir, std::path::Path::new(&dir)).join("fullchain.pem");
    match std::fs::read(&path) {
        Ok(pem) => judge(
            &pem,
            &env.get("SERVER_NAME").unwrap_or_default(),
            chrono::Utc::now().timestamp(),
        ),
        Err(e) => vec![Finding::fail(
            CHECK,
            format!("NGINX_TLS=on but {} cannot be read: {e}", path.display()),
            "put the certificate chain there (fullchain.pem), or set NGINX_TLS=off",
        )],
    }
}

/// The first certificate of a PEM chain against `server_name` at `now` (Unix seconds).
pub fn judge(pem: &[u8], server_name: &str, now: i64) -> Vec<Finding> {
    let parsed = parse_x509_pem(pem)
        .map_err(|e| e.to_string())
        .and_then(|(_, pem)| {
            let (_, cert) = parse_x509_certificate(&pem.contents).map_err(|e| e.to_string())?;
            Ok((cert.validity().not_after.timestamp(), names(&cert)))
        });
    let (not_after, names) = match parsed {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding::fail(
                CHECK,
                format!("the certificate cannot be read: {e}"),
                "put a PEM certificate chain in TLS_CERT_DIR/fullchain.pem",
            )];
        }
    };
    vec![expiry(not_after, now), matches(&names, server_name)]
}

fn names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if out.is_empty() {
        out.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    out
}

fn expiry(not_after: i64, now: i64) -> Finding {
    let days = (not_after - now).div_euclid(86_400);
    let date = chrono::DateTime::from_timestamp(not_after, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let fix = "renew it (e.g. `certbot renew`), copy it to TLS_CERT_DIR, then `pricescan-ctl restart pricescan-nginx`";
    let found = match days {
        d if not_after <= now => Finding::fail(
            CHECK,
            format!("the certificate expired on {date}, {} days ago", -d),
            fix,
        ),
        d if d < FAIL_DAYS => Finding::fail(
            CHECK,
            format!("the certificate expires {} ({date})", within(d)),
            fix,
        ),
        d if d < WARN_DAYS => Finding::warn(
            CHECK,
            format!("the certificate expires {} ({date})", within(d)),
            fix,
        ),
        d => Finding::ok(
            CHECK,
            format!("the certificate is valid for {d} more days ({date})"),
        ),
    };
    found.care()
}

fn within(days: i64) -> String {
    match days {
        0 => "within a day".into(),
        1 => "in 1 day".into(),
        d => format!("in {d} days"),
    }
}

fn matches(names: &[String], server_name: &str) -> Finding {
    let server = server_name.trim().to_ascii_lowercase();
    if server.is_empty() || server == "_" {
        return Finding::warn(
            CHECK,
            format!(
                "SERVER_NAME is '{server_name}': the certificate ({}) cannot be matched to it",
                names.join(", ")
            ),
            "set SERVER_NAME in .env.prod to the name clients use",
        );
    }
    let covered = names
        .iter()
        .any(|n| name_covers(&n.to_ascii_lowercase(), &server));
    match covered {
        true => Finding::ok(CHECK, format!("the certificate names {server}")),
        false => Finding::fail(
            CHECK,
            format!(
                "the certificate names {}, not {server}: browsers will refuse it",
                names.join(", ")
            ),
            format!("get a certificate for {server}, or correct SERVER_NAME"),
        ),
    }
}

/// `*.example.com` covers one label in front of example.com, as browsers match.
fn name_covers(name: &str, server: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(base) => server
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == base),
        None => name == server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::finding::Level;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("*.example.com", "shop.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(name_covers("example.com", "example.com"));
    }

    #[test]
    fn expiry_levels() {
        let day = 86_400;
        assert_eq!(expiry(100 * day, 0).status, Level::Ok);
        assert_eq!(expiry(20 * day, 0).status, Level::Warn);
        assert_eq!(expiry(6 * day, 0).status, Level::Fail);
        assert_eq!(expiry(day, 2 * day).status, Level::Fail);
    }
}
