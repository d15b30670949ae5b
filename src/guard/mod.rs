//! The guard (DESIGN §14): what it watches for and when it heals (`watch`, pure), how it
//! heals (`heal`, under the caller's lock), and the incident reports it writes (`incident`).
//! `commands/guard.rs` drives them from the engine's events.

pub mod heal;
pub mod incident;
pub mod watch;
