//! Backup: taking one, the catalog on disk, retention, restoring through a shadow schema, and
//! the off-site copies with their bucket and sealing (DESIGN §8, §9).
//!
//! Uses `deploy` (convergence, Nginx's read-only mode, waiting), `engine`, `stack`, `sys`,
//! `error` and `output`. The catalog depends on neither taking nor restoring.

pub mod binlog;
pub mod bucket;
pub mod catalog;
pub mod coordinates;
pub mod events;
pub mod metrics;
pub mod offsite;
pub mod pitr_plan;
pub mod pitr_source;
pub mod replay;
pub mod restore;
pub mod retention;
pub mod root_sql;
pub mod seal;
pub mod shadow;
pub mod ship_watch;
pub mod shipping;
pub mod sqlcount;
pub mod take;
