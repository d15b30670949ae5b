//! The command-line contract (DESIGN §3): flags and commands scripts rely on. A change here
//! shows up as a snapshot diff that has to be accepted on purpose.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pricescan-ctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!(help(&["--help"]));
}

#[test]
fn setup_help() {
    insta::assert_snapshot!(help(&["setup", "--help"]));
}
