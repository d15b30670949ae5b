//! The error type that carries its exit code (DESIGN §4), the exit codes themselves, the
//! configuration error of the stack model, and the masking that keeps a secret out of every
//! message: which names are secrets, and how their values are hidden.

use std::fmt;
use std::path::Path;

/// Exit codes that scripts rely on. Never change the meaning of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success = 0,
    Failure = 1,
    Usage = 2,
    Degraded = 3,
    RolledBack = 4,
    RollbackFailed = 5,
    EngineUnreachable = 69,
    /// EX_SOFTWARE: pricescan-ctl itself went wrong (a panic), not the operator or the engine.
    Internal = 70,
    Locked = 75,
    HungUp = 129,
    Interrupted = 130,
    Terminated = 143,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The command was stopped by a signal (130, 143, 129), not failed.
    pub fn is_signal(self) -> bool {
        matches!(self, Self::Interrupted | Self::Terminated | Self::HungUp)
    }
}

/// An error for the operator: what failed, why, and what to do about it.
#[derive(Debug, Clone)]
pub struct CtlError {
    pub status: ExitStatus,
    pub what: String,
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

pub type Result<T, E = CtlError> = std::result::Result<T, E>;

impl CtlError {
    pub fn new(status: ExitStatus, what: impl Into<String>) -> Self {
        Self {
            status,
            what: what.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    pub fn failure(what: impl Into<String>) -> Self {
        Self::new(ExitStatus::Failure, what)
    }

    pub fn usage(what: impl Into<String>) -> Self {
        Self::new(ExitStatus::Usage, what)
    }

    pub fn cause(mut self, cause: impl fmt::Display) -> Self {
        self.causes.push(cause.to_string());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What happened and why, on one line.
    pub fn summary(&self) -> String {
        std::iter::once(self.what.as_str())
            .chain(self.causes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(": ")
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// A problem with the stack's configuration: always the operator's to fix (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File and, where known, `:line[:column]`.
    pub location: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            location: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The error with every occurrence of a secret value masked.
    pub fn masked(self, secrets: &[String]) -> Self {
        let mask = |text: String| mask_text(&text, secrets);
        Self {
            location: self.location.map(mask),
            message: mask(self.message),
            hint: self.hint.map(mask),
        }
    }

    pub fn in_file(path: &Path) -> impl Fn(String) -> Self + '_ {
        move |message| Self::new(message).at(path.display().to_string())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

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

/// Masks every run of 16 or more letters and digits that mixes upper case, lower case and
/// digits: what generated secrets look like, and what no setting's value does. For values
/// that a damaged file may have filled with a secret whose key it broke.
pub fn mask_random_tokens(text: &str) -> String {
    let pattern = regex::Regex::new(r"[A-Za-z0-9]{16,}").expect("a valid pattern");
    pattern
        .replace_all(text, |c: &regex::Captures| {
            let t = &c[0];
            let has = |f: fn(&char) -> bool| t.chars().any(|ch| f(&ch));
            match has(char::is_ascii_uppercase) && has(char::is_ascii_lowercase) && has(char::is_ascii_digit)
            {
                true => MASK.to_string(),
                false => t.to_string(),
            }
        })
        .into_owned()
}

impl From<ConfigError> for CtlError {
    fn from(e: ConfigError) -> Self {
        let mut err = CtlError::usage(e.to_string());
        err.hint = e.hint;
        err
    }
}

/// Adds context to I/O and other low-level errors as a `cause:` line.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| CtlError::failure(what()).cause(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_looking_tokens_are_masked_and_settings_are_not() {
        assert_eq!(
            super::mask_random_tokens("x ukhvGkAX0pgEzhD4q y"),
            format!("x {MASK} y")
        );
        for plain in [
            "pricescan-test/api:v1",
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "PriceScanProductionStack",
            "redis://pricescan-redis:6379/0",
        ] {
            assert_eq!(super::mask_random_tokens(plain), plain);
        }
    }

    #[test]
    fn assignments_to_secret_keys_are_masked() {
        let text = "bad line DB_PASSWORD: hunter2 and SECRET_KEY=abc, PORT=80";
        assert_eq!(
            super::mask_assignments(text),
            "bad line DB_PASSWORD: ******** and SECRET_KEY=******** PORT=80"
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
