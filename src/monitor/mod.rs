//! The monitor (DESIGN §12): its state, fed by the engine's streams and status snapshots, and
//! the full-screen view that only draws that state.
//!
//! Uses `targets` (status types), `engine`, `error` and `output`.

pub mod state;
pub mod tui;
