//! Which configuration values are secrets, which are still placeholders, and how to mask
//! them wherever configuration is shown.

/// Variable names whose values are secrets.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    // A channel's URL carries its secret: a webhook's path, SMTP's password.
    if k.starts_with("NOTIFY_") && k.ends_with("_URL") {
        return true;
    }
    [
        "PASSWORD",
        "SECRET",
        "TOKEN",
        "PASSPHRASE",
        "PRIVATE_KEY",
        "API_KEY",
    ]
    .iter()
    .any(|marker| k.contains(marker))
}

/// Secrets that an outside service issues (storage credentials, channel tokens): empty means
/// the feature is off, and `setup` never invents one.
pub fn is_issued_elsewhere(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    is_secret_key(&k) && (k.starts_with("BACKUP_REMOTE_") || k.starts_with("NOTIFY_"))
}

/// Secrets that `setup` generates: every secret but those issued elsewhere.
pub fn is_generated(key: &str) -> bool {
    is_secret_key(key) && !is_issued_elsewhere(key)
}

/// A value that was never filled in: the old guide's `VOTRE_...`, `changeme` and friends.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.starts_with("votre_")
        || v.starts_with("your_")
        || v.contains("changeme")
        || v.contains("change_me")
        || v.contains("change-me")
        || v == "secret"
        || v == "password"
        || (v.starts_with('<') && v.ends_with('>'))
}

/// Why a secret variable cannot be used as it is, if it cannot.
pub fn secret_problem(key: &str, value: &str) -> Option<&'static str> {
    if !is_secret_key(key) {
        return is_placeholder(value).then_some("is still a placeholder");
    }
    if value.is_empty() {
        (!is_issued_elsewhere(key)).then_some("is an empty secret")
    } else if is_placeholder(value) {
        Some("is still a placeholder")
    } else {
        None
    }
}

pub const MASK: &str = "********";

/// Replaces every occurrence of any secret value in `text` with the mask. Longest first, so
/// that a secret containing another is masked whole. Very short values are skipped: masking
/// every "1" in the output would hide more than it protects.
pub fn mask_text(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    sorted
        .iter()
        .fold(text.to_string(), |acc, s| acc.replace(s.as_str(), MASK))
}

/// A URL fit for an error: credentials before an `@` (`s3://KEY:SECRET@host`) become the
/// mask, since they are the one part an operator must never see echoed.
pub fn without_credentials(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{MASK}{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// Masks the value of every `KEY=value` or `KEY: value` whose key names a secret, for text
/// whose secrets are not known (a panic message, a line that failed to parse).
pub fn mask_assignments(text: &str) -> String {
    let pattern = regex::Regex::new(r"([A-Za-z_][A-Za-z0-9_.-]*)(\s*[=:]\s*)(\S+)").expect("a valid pattern");
    pattern
        .replace_all(text, |c: &regex::Captures| match is_secret_key(&c[1]) {
            true => format!("{}{}{MASK}", &c[1], &c[2]),
            false => c[0].to_string(),
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn assignments_to_secret_keys_are_masked() {
        let text = "bad line DB_PASSWORD: hunter2 and SECRET_KEY=abc, PORT=80";
        assert_eq!(
            super::mask_assignments(text),
            "bad line DB_PASSWORD: ******** and SECRET_KEY=******** PORT=80"
        );
    }

    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "DB_PASSWORD",
            "SECRET_KEY",
            "JWT_SECRET_KEY",
            "MYSQL_ROOT_PASSWORD",
            "GRAFANA_ADMIN_PASSWORD",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        assert!(is_secret_key("NOTIFY_SLACK_WEBHOOK_URL") && is_secret_key("NOTIFY_SMTP_URL"));
        assert!(is_issued_elsewhere("NOTIFY_WEBHOOK_URL"));
        for k in [
            "DB_HOST",
            "REDIS_PORT",
            "LOG_LEVEL",
            "MYSQL_IMAGE",
            "KEYBOARD",
            "NOTIFY_TELEGRAM_API",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn placeholders() {
        for v in [
            "VOTRE_MOT_DE_PASSE",
            "changeme",
            "CHANGEME_please",
            "<your secret>",
            "your_password",
        ] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in ["x8Fq2LmZ0pWc", "production", "mysql:8.0"] {
            assert!(!is_placeholder(v), "{v}");
        }
        assert_eq!(secret_problem("DB_PASSWORD", ""), Some("is an empty secret"));
        assert_eq!(secret_problem("DB_HOST", ""), None);
        assert_eq!(secret_problem("BACKUP_REMOTE_SECRET_ACCESS_KEY", ""), None);
        assert_eq!(
            secret_problem("BACKUP_REMOTE_SECRET_ACCESS_KEY", "changeme"),
            Some("is still a placeholder")
        );
        assert!(!is_generated("BACKUP_REMOTE_SECRET_ACCESS_KEY") && is_generated("DB_PASSWORD"));
        assert_eq!(
            secret_problem("DB_HOST", "VOTRE_HOTE"),
            Some("is still a placeholder")
        );
    }

    #[test]
    fn masking_replaces_every_occurrence_longest_first() {
        let secrets = vec!["abcd".to_string(), "abcdefgh".to_string(), "x".to_string()];
        assert_eq!(
            mask_text("p=abcdefgh q=abcd x", &secrets),
            format!("p={MASK} q={MASK} x")
        );
    }
}
