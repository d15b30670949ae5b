//! The stack model: the compose file, `.env.prod`, interpolation and the dependency graph.
//! Nothing here talks to Docker; the engine module turns this model into containers.

pub mod alerting;
pub mod compose;
pub mod dockerignore;
pub mod dotenv;
pub mod embedded;
pub mod envfile;
pub mod environment;
pub mod graph;
pub mod interpolate;
pub mod names;
pub mod node_engines;
pub mod notify;
pub mod offsite;
mod parse;
pub mod paths;
pub mod pitr;
pub mod project;
pub mod rollout;
pub mod secrets;
pub mod swarm;
pub mod templates;
pub mod units;
mod validate;
pub mod yaml_lines;

pub use environment::Environment;
pub use paths::resolve_path;
pub use project::{Project, ProjectOptions};
