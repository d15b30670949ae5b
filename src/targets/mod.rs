//! Where the stack runs (DESIGN §11): the one seam, `Stack`, and its two implementations,
//! `host` (containers on one engine) and `swarm` (services of a swarm). Also what every
//! target shares: the operation lock, the status types, and the debris sweep.
//!
//! Uses `backup`, `deploy`, `notify`, `engine`, `stack`, `sys`, `error` and `output`.
//! `context` defines the seam's types and `seam` dispatches; the implementations take a
//! `&Stack` from `context` and never import `seam`.

pub mod context;
pub mod debris;
pub mod host;
pub mod lock;
pub mod seam;
pub mod status;
pub mod swarm;

pub use context::{Stack, TargetKind};
