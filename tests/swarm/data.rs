//! Backups on the swarm lab (DESIGN §11): they run on the data node's engine, reached through
//! SWARM_NODE_ENGINES, and land in the project directory here.
