//! Process and file-system helpers every room may use: atomic file writes, signals, systemd units,
//! and the registry of what is undone on the way out. Uses only `error` and `output`.

pub mod fsutil;
pub mod signals;
pub mod systemd;
pub mod undo;
