//! The engines of the swarm's nodes, reached directly: backups and restores run on the data
//! node's engine, and a deploy checks the image on every node before the update starts.

use crate::engine::{Engine, NodeInfo};
use crate::error::{CtlError, ExitStatus, Result};
use crate::stack::Project;
use crate::stack::node_engines::NodeEngines;
use crate::stack::swarm::data_node_label;

/// How to reach each node, checked against the swarm's node list.
pub struct Nodes {
    pub all: Vec<NodeInfo>,
    engines: NodeEngines,
    project: String,
    /// The node whose engine pricescan-ctl already talks to (the manager).
    here: String,
}

impl Nodes {
    /// Reads `SWARM_NODE_ENGINES` and the node list; an entry for a node the swarm does not
    /// have is exit 2, since a typo would otherwise be reached over ssh without a word.
    pub async fn load(manager: &Engine, project: &Project) -> Result<Self> {
        let here = manager.require_manager().await?;
        let engines = NodeEngines::from_project(project)?;
        let all = manager.nodes().await?;
        let ids: Vec<&str> = all.iter().map(|n| n.id.as_str()).collect();
        if let Some(id) = engines.unknown(&ids).first() {
            return Err(CtlError::usage(format!(
                "SWARM_NODE_ENGINES names node {id}, which is not in this swarm"
            ))
            .hint("`docker node ls` on a manager lists the node IDs; the key is the full ID"));
        }
        Ok(Self {
            all,
            engines,
            here,
            project: project.name.clone(),
        })
    }

    /// The engine of `node`: the manager's own connection for itself (unless an entry says
    /// otherwise), else its URL. Unreachable is exit 69, naming the node.
    pub async fn connect(&self, manager: &Engine, node: &NodeInfo) -> Result<Engine> {
        if self.is_here(&node.id) {
            return Ok(manager.clone());
        }
        let url = self.engines.url(&node.id, &node.addr);
        Engine::connect(Some(&url)).await.map_err(|e| {
            let mut error = CtlError::new(
                ExitStatus::EngineUnreachable,
                format!("cannot reach the engine of node {} ({}) at {url}", node.id, node.hostname),
            );
            for cause in std::iter::once(&e.what).chain(&e.causes) {
                error = error.cause(cause);
            }
            error.hint("set SWARM_NODE_ENGINES=NODE_ID=URL for it, or make `ssh NODE docker version` work (keys, SWARM_SSH_USER)")
        })
    }

    /// Whether `id`'s engine is the manager's own connection.
    pub fn is_here(&self, id: &str) -> bool {
        id == self.here && !self.engines.given.contains_key(id)
    }

    /// The node labelled as the data node; a data node that is down is exit 1, naming it.
    pub fn data_node(&self) -> Result<&NodeInfo> {
        let node = self
            .all
            .iter()
            .find(|n| n.labels.contains_key(&data_node_label(&self.project)))
            .ok_or_else(|| {
                CtlError::usage("no node of this swarm is the data node")
                    .hint("run `pricescan-ctl setup --target swarm --data-node NODE`")
            })?;
        if node.state != "ready" {
            return Err(CtlError::failure(format!(
                "the data node {} ({}) is {}: MySQL and Redis run nowhere else",
                node.id, node.hostname, node.state
            ))
            .hint("bring that server back (its data volumes are there), then try again"));
        }
        Ok(node)
    }

    /// Nodes that can run tasks now.
    pub fn schedulable(&self) -> impl Iterator<Item = &NodeInfo> {
        self.all
            .iter()
            .filter(|n| n.state == "ready" && n.availability == "active")
    }
}

/// The engine where the stack's MySQL and Redis containers run.
pub async fn data_engine(manager: &Engine, project: &Project) -> Result<Engine> {
    let nodes = Nodes::load(manager, project).await?;
    let node = nodes.data_node()?;
    nodes.connect(manager, node).await
}

/// Fails with exit 2 naming every schedulable node that lacks `image`: there is no registry,
/// so a task placed there could never start.
pub async fn require_image_everywhere(manager: &Engine, project: &Project, image: &str) -> Result<()> {
    let nodes = Nodes::load(manager, project).await?;
    let nodes = &nodes;
    let checks = nodes.schedulable().map(|node| async move {
        let engine = nodes.connect(manager, node).await?;
        Ok::<_, CtlError>((node, engine.image_exists(image).await?))
    });
    let mut missing = Vec::new();
    for found in futures_util::future::join_all(checks).await {
        let (node, present) = found?;
        if !present {
            missing.push(format!("{} ({})", node.id, node.hostname));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(CtlError::usage(format!(
        "image {image} is missing on {} of the swarm's nodes",
        missing.len()
    ))
    .cause(format!("missing on: {}", missing.join(", ")))
    .hint(format!(
        "load it on each of them (`docker save {image} | docker -H NODE load`), or push it to a registry every node can pull from"
    )))
}
