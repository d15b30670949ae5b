//! Sending one event to every configured channel (DESIGN §10): concurrently, each with a
//! deadline and one retry. The result names each channel and why it failed, in words that
//! never carry a channel's URL, token or password.

pub mod events;
mod http;
mod mail;
mod message;
mod send;

pub use message::Event;
pub use send::send;
