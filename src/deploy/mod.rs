//! Deploy on one engine: the start-first rollout behind Nginx, the release record, Nginx
//! switching, converging a service to its configuration, waiting for readiness, the build
//! context and image pulls (DESIGN §5).
//!
//! Uses `engine`, `stack`, `sys`, `error` and `output`; never `backup` or `targets`.

pub mod buildctx;
pub mod converge;
pub mod images;
pub mod nginx;
pub mod release;
pub mod rollout;
pub mod wait;
