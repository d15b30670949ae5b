//! The typed Compose model (`file`: the file and its services; `fields`: a service's parts;
//! `syntax`: the value syntaxes they share). Short and long syntaxes are normalised into one
//! form while deserialising, so the rest of the program sees a single shape for each field.

mod fields;
mod file;
mod syntax;

pub use fields::*;
pub use file::*;
pub use syntax::{ByteSize, ComposeDuration, parse_bytes, parse_duration};
