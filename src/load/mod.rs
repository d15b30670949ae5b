//! Generating HTTP load and measuring it (DESIGN §15): `loadtest`, and the load that
//! `deploy --load-test` drives during its analysis window.

pub mod generate;
pub mod report;
pub mod spec;
