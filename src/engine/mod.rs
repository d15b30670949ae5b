//! All Docker Engine access. This is the only module that imports bollard: the rest of the
//! program speaks in terms of the stack model and the small types defined here.

mod build;
mod client;
mod containers;
mod errors;
pub mod labels;
mod lock;
pub mod loglines;
mod resources;
pub mod spec;
mod streams;
mod swarm;
mod swarm_spec;
mod transfer;

pub use client::{Engine, EngineInfo, MIN_ENGINE, parse_version};
pub use containers::deadline_error;
pub use containers::{ContainerDetail, ContainerInfo, ExecOutput, PublishedPort, Sample};
pub use errors::engine_error;
pub use lock::{LockRecord, LockScope};
pub use resources::{Ensured, ImageItem, PullEvent};
pub use spec::{ContainerPlan, container_name};
pub use streams::{Event, LogQuery, LogSource, Output};
pub use swarm::{NodeInfo, ServiceInfo, SwarmRole, TaskInfo};
pub use transfer::ExecStream;
