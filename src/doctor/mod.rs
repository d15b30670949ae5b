//! `doctor` (DESIGN §12): the old guide's security and maintenance sections as checks of this
//! server. Every group runs concurrently; each finding is ok, warn or fail, with the fix.

//!
//! Uses `targets` (the lock, status), `backup` (the catalog, off-site), `deploy` (releases),
//! `engine`, `stack`, `error` and `output`. `reclaim` is what `cleanup` may free.

mod backups;
mod engine;
mod examine;
mod exposure;
mod files;
pub mod finding;
mod pitr;
pub mod reclaim;
mod tls;

pub use examine::examine;
pub use finding::{Finding, Level};
