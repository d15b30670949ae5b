//! Property tests of every parser that reads hand-edited files or script-filled flags:
//! no input panics, and what pricescan-ctl prints it reads back unchanged. Case counts are
//! bounded so that the suite stays in seconds; `fuzz/` runs the same parsers without bound.

use pricescan_ctl::stack::environment::Environment;
use pricescan_ctl::stack::project::Project;
use pricescan_ctl::stack::{dockerignore, dotenv, embedded, interpolate, offsite, units};
use proptest::prelude::*;
use std::path::Path;

fn no_env(_: &str) -> Option<String> {
    None
}

/// Text that leans on what the parsers treat specially.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("${".to_string()),
        Just("}".to_string()),
        Just(":-".to_string()),
        Just("$$".to_string()),
        Just("\\".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("=".to_string()),
        Just("\n".to_string()),
        Just("**/".to_string()),
        Just("[!a-".to_string()),
        Just("99999999999999999999".to_string()),
        "[a-zA-Z_]{1,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

/// The shipped compose file with some bytes replaced, cut or repeated.
fn mutated_compose() -> impl Strategy<Value = String> {
    let len = embedded::COMPOSE.len();
    (0..len, 0..64usize, hostile_text()).prop_map(move |(at, cut, insert)| {
        let bytes = embedded::COMPOSE.as_bytes();
        let end = (at + cut).min(len);
        let mut out = bytes[..at].to_vec();
        out.extend_from_slice(insert.as_bytes());
        out.extend_from_slice(&bytes[end..]);
        String::from_utf8_lossy(&out).into_owned()
    })
}

const REQUIRED: &str = "SECRET_KEY=k1\nJWT_SECRET_KEY=k2\nDB_PASSWORD=p1\nMYSQL_ROOT_PASSWORD=p2\nREDIS_PASSWORD=p3\nGRAFANA_ADMIN_PASSWORD=p4\n";

fn project(compose: &str, env: &str) -> Result<Project, pricescan_ctl::error::ConfigError> {
    let env = Environment::parse(Path::new(".env.prod"), env)?;
    Project::from_text(compose, "c.yml".into(), true, "/srv/p".into(), env, None)
}

/// What `config` prints of a project.
fn printed(p: &Project) -> String {
    pricescan_ctl::stack::compose::to_compose_text(&p.file).expect("a loaded project prints")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn interpolation_never_panics(s in hostile_text()) {
        let _ = interpolate::interpolate(&s, &|k| (k == "A").then(|| "a".to_string()));
    }

    #[test]
    fn dotenv_never_panics_and_errors_quote_nothing(s in hostile_text(), secret in "[a-z]{12}") {
        let text = format!("{s}\nDB_PASSWORD: {secret}\n{s}");
        if let Err(e) = dotenv::parse(&text, &no_env) {
            prop_assert!(!e.to_string().contains(&secret));
        }
    }

    #[test]
    fn dotenv_reads_back_what_quote_writes(key in "[A-Z_][A-Z0-9_]{0,12}", value in any::<String>()) {
        let value = value.replace('\0', "");
        let text = format!("{key}={}\n", dotenv::quote(&value));
        let entries = dotenv::parse(&text, &no_env).expect("a quoted value parses");
        prop_assert_eq!(entries.len(), 1);
        prop_assert_eq!(&entries[0].value, &value);
    }

    #[test]
    fn durations_and_sizes_never_panic(s in hostile_text(), n in any::<u128>(), unit in "(ns|us|ms|s|m|h|y|d|k|g|t|p|b)?") {
        let number = format!("{n}{unit}");
        for text in [&s, &number] {
            let _ = units::parse_duration(text);
            let _ = units::parse_human_duration(text);
            let _ = units::parse_bytes(text);
        }
    }

    #[test]
    fn log_timestamps_never_panic(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?Z?", t in any::<String>()) {
        let _ = pricescan_ctl::engine::loglines::parse_nanos(&s);
        let _ = pricescan_ctl::engine::loglines::parse_nanos(&t);
    }

    #[test]
    fn dockerignore_never_panics(pattern in hostile_text(), path in "[a-z./*?\\[\\]!-]{0,20}") {
        if let Ok(ignore) = dockerignore::DockerIgnore::parse(&pattern) {
            let _ = ignore.excludes(&path);
        }
        let _ = dockerignore::clean(&path);
    }

    #[test]
    fn release_logs_urls_and_recipients_never_panic(s in hostile_text(), bytes in any::<Vec<u8>>()) {
        let _ = pricescan_ctl::deploy::release::parse(s.as_bytes());
        let _ = pricescan_ctl::deploy::release::parse(&bytes);
        let _ = offsite::parse_url(&s);
        let _ = offsite::parse_recipients(&s);
        let _ = serde_json::from_slice::<pricescan_ctl::backup::catalog::Manifest>(&bytes);
        let _ = pricescan_ctl::stack::node_engines::parse(&s);
    }
}

proptest! {
    // A whole project per case: fewer cases, each of them larger.
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_compose_file_never_panics(compose in mutated_compose()) {
        let _ = project(&compose, REQUIRED);
    }

    #[test]
    fn config_output_reads_back_the_same(level in any::<String>(), size in "[1-9][0-9]{0,3}[kmg]") {
        let env = format!("{REQUIRED}LOG_LEVEL={}\nLOG_MAX_SIZE={size}\n", dotenv::quote(&level.replace('\0', "")));
        let first = project(embedded::COMPOSE, &env).expect("the shipped stack loads");
        let text = printed(&first);
        let again = project(&text, REQUIRED).expect("config output loads");
        prop_assert_eq!(printed(&again), text);
    }
}
