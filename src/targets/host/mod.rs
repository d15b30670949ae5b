//! The compose target: the stack as containers on one engine, with Compose's names and
//! labels, started and stopped in dependency order (DESIGN §2).

pub mod lifecycle;
pub mod resources;
