//! The guard (DESIGN §14): what it watches for, when it heals, and the incident reports it
//! writes. Pure decisions and files; `commands/guard.rs` drives the engine.

pub mod incident;
pub mod watch;
