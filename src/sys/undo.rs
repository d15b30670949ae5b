//! What is still to be undone on the way out. A step that leaves something behind until it
//! completes (a one-off container, a stopped API, a held lock) registers how to undo it here,
//! and disarms that when it completes. `main` runs whatever is left, newest first, after the
//! command ends by any path: success, error, or a signal that dropped it half-way. So a
//! failure and a Ctrl-C take the same clean-up path (DESIGN §8).

use crate::error::Result;
use crate::output::Printer;
use futures_util::future::BoxFuture;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

type Action = Box<dyn FnOnce(Printer) -> BoxFuture<'static, Result<()>> + Send>;

struct Entry {
    key: u64,
    what: String,
    /// Routine on every exit (releasing the lock): not announced.
    routine: bool,
    action: Action,
}

static PENDING: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

/// A registered undo step. Dropping it keeps it registered (that is the point: a dropped
/// future still gets its clean-up); `disarm` once the step needs no undoing.
#[must_use = "disarm it when the step completes, or it is undone on exit"]
pub struct Pending {
    key: u64,
}

fn push(what: String, routine: bool, action: Action) -> Pending {
    let key = NEXT.fetch_add(1, Ordering::SeqCst);
    lock().push(Entry {
        key,
        what,
        routine,
        action,
    });
    Pending { key }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    PENDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `action` to undo `what` on the way out, unless disarmed first.
pub fn on_exit<F>(what: impl Into<String>, action: F) -> Pending
where
    F: FnOnce(Printer) -> BoxFuture<'static, Result<()>> + Send + 'static,
{
    push(what.into(), false, Box::new(action))
}

/// Like `on_exit`, for a step that is undone on every exit and needs no announcement.
pub fn routine<F>(what: impl Into<String>, action: F) -> Pending
where
    F: FnOnce(Printer) -> BoxFuture<'static, Result<()>> + Send + 'static,
{
    push(what.into(), true, Box::new(action))
}

impl Pending {
    /// The step completed; there is nothing to undo.
    pub fn disarm(self) {
        lock().retain(|e| e.key != self.key);
    }

    /// Undoes the step now rather than on exit.
    pub async fn run_now(self, printer: &Printer) -> Result<()> {
        let entry = {
            let mut pending = lock();
            let at = pending.iter().position(|e| e.key == self.key);
            at.map(|i| pending.remove(i))
        };
        match entry {
            Some(e) => (e.action)(printer.clone()).await,
            None => Ok(()),
        }
    }
}

/// What is still registered, newest first.
pub fn descriptions() -> Vec<String> {
    lock().iter().rev().map(|e| e.what.clone()).collect()
}

/// Runs everything still registered, newest first. A signal that arrives meanwhile does not
/// stop it: it is told what is still being undone. Returns whether every step succeeded.
pub async fn run_all(printer: &Printer) -> bool {
    let mut ok = true;
    loop {
        let Some(entry) = lock().pop() else { return ok };
        if !entry.routine {
            printer.warn(&format!("undoing: {}", entry.what));
        }
        let step = (entry.action)(printer.clone());
        if let Err(e) = despite_signals(&entry.what, step, printer).await {
            ok = false;
            printer.warn(&format!("could not undo {}: {}", entry.what, e.what));
            for cause in &e.causes {
                printer.warn(&format!("  cause: {cause}"));
            }
        }
    }
}

/// Runs `step` to its end. Each further signal is answered with what is still being undone
/// (this step, then whatever is registered), instead of abandoning it half-way.
pub async fn despite_signals<T>(what: &str, step: impl Future<Output = T>, printer: &Printer) -> T {
    let mut step = std::pin::pin!(step);
    loop {
        let seen = crate::sys::signals::count();
        tokio::select! {
            out = &mut step => return out,
            _ = crate::sys::signals::another_after(seen) => {
                let mut left = vec![what.to_string()];
                left.extend(descriptions());
                printer.warn(&format!("still undoing, please wait: {}", left.join("; then ")));
            }
        }
    }
}
