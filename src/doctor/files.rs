//! The secrets on disk: `.env.prod`'s mode and owner, `config/`'s mode, and secrets that
//! are placeholders or too short to resist guessing.

use super::finding::Finding;
use crate::stack::Project;
use crate::stack::secrets;
use crate::stack::templates::CONFIG_DIR;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const CHECK: &str = "secrets";
/// Shorter than this, a generated-style secret is guessable; setup makes 40.
const MIN_SECRET: usize = 16;

pub fn check(project: &Project) -> Vec<Finding> {
    let mut found = vec![
        env_file(&project.env.path),
        config_dir(&project.dir.join(CONFIG_DIR)),
    ];
    found.extend(values(project));
    found
}

fn env_file(path: &Path) -> Finding {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Finding::fail(
                CHECK,
                format!("cannot read {shown}: {e}"),
                "run `pricescan-ctl setup`",
            );
        }
    };
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Finding::fail(
            CHECK,
            format!("{shown} is mode {mode:04o}: other users can read the secrets"),
            format!("chmod 600 {shown}"),
        );
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Finding::warn(
            CHECK,
            format!(
                "{shown} belongs to uid {}, not to the operator (uid {me}) or root",
                meta.uid()
            ),
            format!("chown {me} {shown}"),
        );
    }
    Finding::ok(
        CHECK,
        format!("{shown} is mode {mode:04o}, owned by uid {}", meta.uid()),
    )
}

fn config_dir(path: &Path) -> Finding {
    let shown = path.display();
    let Ok(meta) = std::fs::metadata(path) else {
        return Finding::fail(CHECK, format!("{shown} is missing"), "run `pricescan-ctl setup`");
    };
    let mode = meta.mode() & 0o777;
    match mode & 0o022 {
        0 => Finding::ok(CHECK, format!("{shown}/ is mode {mode:04o}")),
        _ => Finding::fail(
            CHECK,
            format!("{shown}/ is mode {mode:04o}: other users can change what the containers run"),
            format!("chmod -R go-w {shown}"),
        ),
    }
}

/// Placeholders and short values among the secrets that setup generates.
fn values(project: &Project) -> Vec<Finding> {
    let env = &project.env;
    let mut found = Vec::new();
    let mut checked = 0;
    for entry in env.entries.iter().filter(|e| crate::error::is_secret_key(&e.key)) {
        let value = env.get(&entry.key).unwrap_or_default();
        let at = env.location_of(&entry.key);
        if let Some(problem) = secrets::secret_problem(&entry.key, &value) {
            found.push(Finding::fail(
                CHECK,
                format!("{} {problem} ({at})", entry.key),
                "put a random value there (`openssl rand -hex 20`); for a database password, change it in the database too",
            ));
        } else if secrets::is_generated(&entry.key) && value.chars().count() < MIN_SECRET {
            found.push(Finding::warn(
                CHECK,
                format!(
                    "{} has only {} characters ({at})",
                    entry.key,
                    value.chars().count()
                ),
                format!("use {MIN_SECRET} or more random characters (`openssl rand -hex 20`)"),
            ));
        }
        checked += 1;
    }
    if found.is_empty() {
        found.push(Finding::ok(
            CHECK,
            format!("{checked} secrets set, none a placeholder or shorter than {MIN_SECRET}"),
        ));
    }
    found
}
