//! One finding of `doctor`: a check's name, ok, warn or fail, what was seen, and the fix.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// An operator-care signal (a backup overdue, a disk filling, a certificate expiring, the
    /// binlog archive lagging) that the guard reports when it is not ok (DESIGN §14).
    #[serde(skip)]
    pub care: bool,
}

impl Finding {
    pub fn ok(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            status: Level::Ok,
            message: message.into(),
            fix: None,
            care: false,
        }
    }

    /// Marks it as an operator-care signal.
    pub fn care(mut self) -> Self {
        self.care = true;
        self
    }

    pub fn warn(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Level::Warn,
            fix: Some(fix.into()),
            ..Self::ok(check, message)
        }
    }

    pub fn fail(check: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Level::Fail,
            ..Self::warn(check, message, fix)
        }
    }
}
