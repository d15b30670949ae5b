//! Any bytes as a compose file, with the required secrets set: an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pricescan_ctl::stack::environment::Environment;
use pricescan_ctl::stack::project::Project;
use std::path::Path;

const ENV: &str = "SECRET_KEY=k1\nJWT_SECRET_KEY=k2\nDB_PASSWORD=p1\nMYSQL_ROOT_PASSWORD=p2\nREDIS_PASSWORD=p3\nGRAFANA_ADMIN_PASSWORD=p4\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = Environment::parse(Path::new(".env.prod"), ENV).expect("the fixed env parses");
    let _ = Project::from_text(text, "c.yml".into(), true, "/srv/p".into(), env, None);
});
