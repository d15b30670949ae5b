//! The off-site backup settings of `.env.prod` (DESIGN §9), checked as a whole: where the
//! copies go, with which credentials, and to whom they are encrypted. Pure: nothing here
//! talks to the storage server.

use super::environment::Environment;
use super::paths::resolve_path;
use crate::error::ConfigError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the off-site copies go, and how to reach it.
#[derive(Clone)]
pub struct Offsite {
    pub bucket: String,
    /// No leading or trailing slash; empty for the bucket's root.
    pub prefix: String,
    /// None means AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// age public keys; empty means the copies are not encrypted.
    pub recipients: Vec<String>,
    pub identity_file: Option<PathBuf>,
    /// One request's deadline: a hung server fails instead of holding the lock.
    pub timeout: Duration,
}

// By hand, so that the secret can never reach a log through `{:?}`.
impl fmt::Debug for Offsite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offsite")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &crate::error::MASK)
            .field("recipients", &self.recipients)
            .field("identity_file", &self.identity_file)
            .finish()
    }
}

impl Offsite {
    /// The settings, or None when BACKUP_REMOTE_URL is empty (off-site copies are off).
    pub fn from_env(env: &Environment, project_dir: &Path) -> Result<Option<Self>, ConfigError> {
        let get = |key: &str| env.get(key).map(|v| v.trim().to_string()).unwrap_or_default();
        let at = |key: &str| env.location_of(key);
        let url = get("BACKUP_REMOTE_URL");
        if url.is_empty() {
            return Ok(None);
        }
        let (bucket, prefix) = parse_url(&url).map_err(|e| e.at(at("BACKUP_REMOTE_URL")))?;
        let endpoint = Some(get("BACKUP_REMOTE_ENDPOINT")).filter(|e| !e.is_empty());
        if let Some(e) = &endpoint {
            check_endpoint(e).map_err(|err| err.at(at("BACKUP_REMOTE_ENDPOINT")))?;
        }
        let mut missing = Vec::new();
        for key in ["BACKUP_REMOTE_ACCESS_KEY_ID", "BACKUP_REMOTE_SECRET_ACCESS_KEY"] {
            if get(key).is_empty() {
                missing.push(key);
            }
        }
        if !missing.is_empty() {
            return Err(ConfigError::new(format!(
                "BACKUP_REMOTE_URL is set but {} {} empty",
                missing.join(" and "),
                if missing.len() == 1 { "is" } else { "are" }
            ))
            .at(env.path.display().to_string())
            .hint("set the storage provider's access key, or empty BACKUP_REMOTE_URL to turn off-site copies off"));
        }
        let recipients = parse_recipients(&get("BACKUP_ENCRYPTION_RECIPIENTS"))
            .map_err(|e| e.at(at("BACKUP_ENCRYPTION_RECIPIENTS")))?;
        let identity = get("BACKUP_ENCRYPTION_IDENTITY_FILE");
        let timeout = match get("BACKUP_REMOTE_TIMEOUT").as_str() {
            "" => Duration::from_secs(60),
            v => humantime::parse_duration(v).map_err(|e| {
                ConfigError::new(format!("BACKUP_REMOTE_TIMEOUT is not a duration: {e}"))
                    .at(at("BACKUP_REMOTE_TIMEOUT"))
                    .hint("write it like 60s or 2m")
            })?,
        };
        Ok(Some(Self {
            bucket,
            prefix,
            endpoint,
            region: Some(get("BACKUP_REMOTE_REGION"))
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: get("BACKUP_REMOTE_ACCESS_KEY_ID"),
            secret_access_key: get("BACKUP_REMOTE_SECRET_ACCESS_KEY"),
            recipients,
            identity_file: (!identity.is_empty()).then(|| resolve_path(project_dir, Path::new(&identity))),
            timeout,
        }))
    }

    /// `s3://bucket/prefix/`, for messages.
    pub fn location(&self) -> String {
        match self.prefix.is_empty() {
            true => format!("s3://{}/", self.bucket),
            false => format!("s3://{}/{}/", self.bucket, self.prefix),
        }
    }

    /// The object key of `name` in backup `id`.
    pub fn key(&self, id: &str, name: &str) -> String {
        match self.prefix.is_empty() {
            true => format!("{id}/{name}"),
            false => format!("{}/{id}/{name}", self.prefix),
        }
    }
}

/// `s3://BUCKET/PREFIX` into the bucket and the prefix (trimmed of slashes).
pub fn parse_url(url: &str) -> Result<(String, String), ConfigError> {
    let shown = super::units::quoted(&crate::error::without_credentials(url));
    let hint = "write it as s3://BUCKET/PREFIX, for example s3://pricescan-backups/prod";
    let Some(rest) = url.strip_prefix("s3://") else {
        return Err(
            ConfigError::new(format!("BACKUP_REMOTE_URL must start with s3:// (got {shown})")).hint(hint),
        );
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        let bucket = super::units::quoted(&crate::error::without_credentials(bucket));
        return Err(ConfigError::new(format!(
            "BACKUP_REMOTE_URL names an invalid bucket {bucket}: 3 to 63 lower-case letters, digits, dots and hyphens"
        ))
        .hint(hint));
    }
    let prefix = prefix.trim_matches('/');
    let prefix_ok = prefix
        .split('/')
        .all(|seg| prefix.is_empty() || (!seg.is_empty() && seg != "." && seg != ".."))
        && !prefix.chars().any(|c| c.is_control() || c == '\\');
    if !prefix_ok {
        return Err(ConfigError::new(format!(
            "BACKUP_REMOTE_URL has an invalid prefix {prefix:?}: no empty, . or .. segments"
        ))
        .hint(hint));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

fn check_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let ok = ["http://", "https://"].iter().any(|s| {
        endpoint.strip_prefix(s).is_some_and(|host| {
            !host.is_empty() && !host.contains(char::is_whitespace) && !host.contains('@')
        })
    });
    match ok {
        true => Ok(()),
        false => Err(ConfigError::new(format!(
            "BACKUP_REMOTE_ENDPOINT must be an http:// or https:// URL without credentials (got {})",
            super::units::quoted(&crate::error::without_credentials(endpoint))
        ))
        .hint("for example https://s3.eu-central-003.backblazeb2.com; leave it empty for AWS")),
    }
}

/// Comma-separated age public keys. Checked for shape here; the age crate parses them.
pub fn parse_recipients(value: &str) -> Result<Vec<String>, ConfigError> {
    let keys: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    match keys.iter().find(|k| !k.starts_with("age1")) {
        // A private key pasted by mistake is never echoed.
        Some(bad) if bad.to_ascii_uppercase().starts_with("AGE-SECRET-KEY") => Err(ConfigError::new(
            "BACKUP_ENCRYPTION_RECIPIENTS holds an age secret key (AGE-SECRET-KEY-...); it takes only public keys (age1...), and the secret key belongs off this server",
        )
        .hint("`pricescan-ctl setup --backup-key` creates a key pair and prints its public key")),
        Some(bad) => Err(ConfigError::new(format!(
            "BACKUP_ENCRYPTION_RECIPIENTS holds {}, which is not an age public key (age1...)",
            super::units::quoted(bad)
        ))
        .hint("`pricescan-ctl setup --backup-key` creates a key pair and prints its public key")),
        None => Ok(keys),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://backups/prod").unwrap(),
            ("backups".into(), "prod".into())
        );
        assert_eq!(parse_url("s3://backups").unwrap(), ("backups".into(), "".into()));
        assert_eq!(
            parse_url("s3://my.bucket-1/a/b/").unwrap(),
            ("my.bucket-1".into(), "a/b".into())
        );
        for bad in [
            "backups/prod",
            "https://x/y",
            "s3://",
            "s3://B",
            "s3://ab",
            "s3://a_b/x",
            "s3://b-/x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        for bad in ["s3://bucket/a//b", "s3://bucket/../x", "s3://bucket/a/./b"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_and_recipients() {
        assert!(check_endpoint("http://127.0.0.1:8333").is_ok());
        assert!(check_endpoint("https://s3.wasabisys.com").is_ok());
        for bad in ["127.0.0.1:8333", "ftp://x", "http://", "https://key:secret@host"] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_recipients(" age1a , age1b,").unwrap(),
            vec!["age1a", "age1b"]
        );
        assert!(parse_recipients("").unwrap().is_empty());
        assert!(parse_recipients("ssh-ed25519 AAAA").is_err());
    }

    fn env(text: &str) -> Environment {
        Environment::parse(Path::new("/p/.env.prod"), text).unwrap()
    }

    #[test]
    fn settings() {
        assert!(
            Offsite::from_env(&env("BACKUP_REMOTE_URL=\n"), Path::new("/p"))
                .unwrap()
                .is_none()
        );
        let text = "BACKUP_REMOTE_URL=s3://bkt/prod\nBACKUP_REMOTE_ACCESS_KEY_ID=AK\nBACKUP_REMOTE_SECRET_ACCESS_KEY=SK123456\nBACKUP_ENCRYPTION_IDENTITY_FILE=keys/backup.age\n";
        let o = Offsite::from_env(&env(text), Path::new("/p")).unwrap().unwrap();
        assert_eq!(o.key("ID", "manifest.json"), "prod/ID/manifest.json");
        assert_eq!(o.identity_file, Some(PathBuf::from("/p/keys/backup.age")));
        assert_eq!(
            (o.region.as_str(), o.timeout),
            ("us-east-1", Duration::from_secs(60))
        );
        assert!(!format!("{o:?}").contains("SK123456"));
        let err = Offsite::from_env(&env("BACKUP_REMOTE_URL=s3://bkt/prod\n"), Path::new("/p")).unwrap_err();
        assert!(
            err.message
                .contains("BACKUP_REMOTE_ACCESS_KEY_ID and BACKUP_REMOTE_SECRET_ACCESS_KEY are empty")
        );
        let err = Offsite::from_env(&env("BACKUP_REMOTE_URL=bk/prod\n"), Path::new("/p")).unwrap_err();
        assert_eq!(err.location.as_deref(), Some("/p/.env.prod:1"));
    }
}
