//! The swarm target (DESIGN §11): the cluster's services, networks, secrets and configs,
//! rolling deploys, the restore hold, the nodes' own engines and status.

pub mod cluster;
pub mod deploy;
pub mod hold;
pub mod nodes;
pub mod status;
pub mod tasks;
