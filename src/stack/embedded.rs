//! The stack definition compiled into the binary, so that a binary copied alone onto a
//! server can `setup` a project. Files on disk always win over these copies.

use include_dir::{Dir, include_dir};

pub const COMPOSE_FILE_NAME: &str = "docker-compose.prod.yml";
pub const ENV_EXAMPLE_NAME: &str = ".env.prod.example";

pub static COMPOSE: &str = include_str!("../../docker-compose.prod.yml");
pub static ENV_EXAMPLE: &str = include_str!("../../.env.prod.example");
pub static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
