//! Which configuration values are secrets (`error::is_secret_key` names them), which are
//! generated, and which are still placeholders.

use crate::error::is_secret_key;

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

/// Parts of secret values that could reach output on their own: a URL's password and path.
pub fn secret_parts(value: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(value) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    if let Some(p) = url.password() {
        parts.push(p.to_string());
    }
    if url.path().len() > 8 {
        parts.push(url.path().to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
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
    fn secret_parts_of_urls() {
        assert_eq!(secret_parts("smtp://u:pw123@h:587"), vec!["pw123".to_string()]);
        assert_eq!(
            secret_parts("https://hooks.slack.com/services/T0/B0/XYZ"),
            vec!["/services/T0/B0/XYZ".to_string()]
        );
        assert!(secret_parts("not a url").is_empty());
    }
}
