//! The seam's types: which target the stack runs on, and the `Stack` every operation is
//! handed. The two implementations (`host`, `swarm`) take a `&Stack` from here; `seam`
//! picks between them.

use crate::engine::{Engine, LockScope, LogSource};
use crate::error::{CtlError, Result};
use crate::output::Printer;
use crate::stack::Project;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Compose,
    Swarm,
}

impl TargetKind {
    /// The flag, else `STACK_TARGET` of `.env.prod` (or the process environment), else compose.
    pub fn resolve(flag: Option<TargetKind>, project: &Project) -> Result<TargetKind> {
        if let Some(kind) = flag {
            return Ok(kind);
        }
        match project.env.get("STACK_TARGET").as_deref().map(str::trim) {
            None | Some("") | Some("compose") => Ok(TargetKind::Compose),
            Some("swarm") => Ok(TargetKind::Swarm),
            Some(other) => Err(CtlError::usage(format!(
                "STACK_TARGET={other} at {}: expected compose or swarm",
                project.env.location_of("STACK_TARGET")
            ))),
        }
    }

    /// Where the operation lock lives: a swarm's lock must hold for clients of every manager.
    pub fn lock_scope(self) -> LockScope {
        match self {
            TargetKind::Compose => LockScope::Engine,
            TargetKind::Swarm => LockScope::Swarm,
        }
    }
}

/// The stack on its target, with what every operation needs.
pub struct Stack<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub printer: &'a Printer,
    pub kind: TargetKind,
}

/// What `setup` asks of the target beyond the files.
pub struct Prepare<'a> {
    pub init: bool,
    pub data_node: Option<&'a str>,
}

/// One log to read: where from, the prefix its lines get (the service; on swarm the
/// service and task slot, so every task's lines are told apart), and its name for notes.
pub struct LogTarget {
    pub source: LogSource,
    pub label: String,
    pub name: String,
}

/// Where each container's engine is: this one on one host; on swarm, each node's engine,
/// reached as backups reach the data node (SWARM_NODE_ENGINES, else ssh).
pub struct Engines {
    pub(super) here: Engine,
    pub(super) nodes: Option<super::swarm::nodes::Nodes>,
}

impl Engines {
    /// One key per distinct engine: "" for this one, else the node ID.
    pub fn key(&self, node: Option<&str>) -> String {
        match (node, &self.nodes) {
            (Some(id), Some(nodes)) if !nodes.is_here(id) => id.to_string(),
            _ => String::new(),
        }
    }

    /// The engine of `node` (None: the one pricescan-ctl talks to). Unreachable is exit 69.
    pub async fn of(&self, node: Option<&str>) -> Result<Engine> {
        let (Some(id), Some(nodes)) = (node, &self.nodes) else {
            return Ok(self.here.clone());
        };
        let Some(info) = nodes.all.iter().find(|n| n.id == id) else {
            return Err(CtlError::failure(format!("node {id} left the swarm")));
        };
        nodes.connect(&self.here, info).await
    }
}
