//! Deploy on one engine: the start-first rollout behind Nginx, the release record, Nginx
//! switching, converging a service to its configuration, waiting for readiness, the build
//! context and image pulls (DESIGN §5), and the judgement of a release by its traffic after
//! the switch (`analysis`, `traffic`; DESIGN §15).
//!
//! Uses `load`, `engine`, `stack`, `sys`, `error` and `output`; never `backup` or `targets`.

pub mod analysis;
pub mod buildctx;
pub mod canary;
pub mod converge;
pub mod images;
pub mod nginx;
pub mod release;
pub mod rollout;
pub mod traffic;
pub mod wait;
