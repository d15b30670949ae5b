//! pricescan-ctl: the operations CLI of the PriceScan production stack.
//!
//! - `cli`: the clap command tree.
//! - `commands`: one module per command, orchestrating the others.
//! - `stack`: compose file, `.env.prod`, interpolation, templates, dependency graph; no Docker.
//! - `engine`: the only module that talks to Docker (bollard).
//! - `ops`: operations several commands share (converge a service, wait, move Nginx).
//! - `tui`: the monitor's full-screen view.
//! - `signals`, `cleanup`: SIGINT/SIGTERM/SIGHUP, and what is undone on the way out.
//! - `output`: everything shown to the operator: tables, progress, colour, JSON, errors.

pub mod bucket;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod notify;
pub mod ops;
pub mod output;
#[cfg(test)]
mod proptests;
pub mod seal;
pub mod signals;
pub mod stack;
pub mod tui;
