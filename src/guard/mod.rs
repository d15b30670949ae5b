//! The guard (DESIGN §14): what it watches for and when it heals (`watch`, pure), how it
//! heals (`heal`, under the caller's lock), the doctor's signals it only reports (`care`), and the incident reports it writes (`incident`).
//! `commands/guard.rs` drives them from the engine's events.

pub mod care;
pub mod heal;
pub mod incident;
pub mod swarm;
pub mod watch;
