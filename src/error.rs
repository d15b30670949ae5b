//! The error type that carries its exit code (DESIGN §4), and the exit codes themselves.

use crate::stack::ConfigError;
use std::fmt;

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
