//! pricescan-ctl: the operations CLI of the PriceScan production stack.
//! ARCHITECTURE.md draws the rooms and the arrows allowed between them.

pub mod backup;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod guard;
pub mod load;
pub mod monitor;
pub mod notify;
pub mod output;
pub mod stack;
pub mod sys;
pub mod targets;
