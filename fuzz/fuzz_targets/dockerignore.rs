//! Any `.dockerignore` and path: matched or refused, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pricescan_ctl::stack::dockerignore::{DockerIgnore, clean};

fuzz_target!(|data: (&str, &str)| {
    let (patterns, path) = data;
    if let Ok(ignore) = DockerIgnore::parse(patterns) {
        let _ = ignore.excludes(&clean(path));
    }
});
