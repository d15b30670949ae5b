//! SIGINT, SIGTERM and SIGHUP lead to one clean-up path (DESIGN §8). The first signal is
//! remembered; `received()` resolves once one has arrived, for every waiter, so a command
//! can race its work against it and `main` can pick the exit code.

use crate::error::{CtlError, ExitStatus};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Hangup,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::Hangup => "SIGHUP",
        }
    }

    /// 128 + the signal number, as shells report it (130, 143, 129).
    pub fn exit_status(self) -> ExitStatus {
        match self {
            Self::Interrupt => ExitStatus::Interrupted,
            Self::Terminate => ExitStatus::Terminated,
            Self::Hangup => ExitStatus::HungUp,
        }
    }

    fn code(self) -> i32 {
        match self {
            Self::Interrupt => 2,
            Self::Terminate => 15,
            Self::Hangup => 1,
        }
    }

    fn from_code(code: i32) -> Option<Self> {
        [Self::Interrupt, Self::Terminate, Self::Hangup]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

static FIRST: AtomicI32 = AtomicI32::new(0);
static COUNT: AtomicI32 = AtomicI32::new(0);
static CHANNEL: OnceLock<watch::Sender<u32>> = OnceLock::new();

fn channel() -> &'static watch::Sender<u32> {
    CHANNEL.get_or_init(|| watch::channel(0).0)
}

/// Installs the handlers; call once, inside the runtime, before the command runs.
pub fn install() -> std::io::Result<()> {
    for (kind, sig) in [
        (SignalKind::interrupt(), Signal::Interrupt),
        (SignalKind::terminate(), Signal::Terminate),
        (SignalKind::hangup(), Signal::Hangup),
    ] {
        let mut stream = signal(kind)?;
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                let _ = FIRST.compare_exchange(0, sig.code(), Ordering::SeqCst, Ordering::SeqCst);
                let n = COUNT.fetch_add(1, Ordering::SeqCst) as u32 + 1;
                channel().send_replace(n);
            }
        });
    }
    Ok(())
}

/// The first signal received, if any.
pub fn first() -> Option<Signal> {
    Signal::from_code(FIRST.load(Ordering::SeqCst))
}

/// How many signals have arrived so far.
pub fn count() -> u32 {
    COUNT.load(Ordering::SeqCst).max(0) as u32
}

/// The error of a command stopped by a signal: exit 130, 143 or 129 after the clean-up,
/// named after the signal that arrived.
pub fn interrupted(what: impl std::fmt::Display) -> CtlError {
    let signal = first().unwrap_or(Signal::Interrupt);
    CtlError::new(
        signal.exit_status(),
        format!("interrupted by {}: {what}", signal.name()),
    )
}

/// Resolves when a signal has arrived (at once if one already has).
pub async fn received() -> Signal {
    wait_for_count(1).await;
    first().unwrap_or(Signal::Interrupt)
}

/// Resolves when more than `seen` signals have arrived: the second signal during clean-up.
pub async fn another_after(seen: u32) {
    wait_for_count(seen + 1).await
}

async fn wait_for_count(n: u32) {
    let mut rx = channel().subscribe();
    let _ = rx.wait_for(|c| *c >= n).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Signal::Interrupt.exit_status().code(), 130);
        assert_eq!(Signal::Terminate.exit_status().code(), 143);
        assert_eq!(Signal::Hangup.exit_status().code(), 129);
        for s in [Signal::Interrupt, Signal::Terminate, Signal::Hangup] {
            assert_eq!(Signal::from_code(s.code()), Some(s));
        }
    }
}
