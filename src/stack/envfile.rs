//! Writing `.env.prod`: filling the example's secrets with fresh random values, adding
//! variables a newer example introduced, and regenerating secrets on request. Pure text
//! work: comments and layout of the file are kept.

use super::dotenv::{self, Entry};
use super::secrets;
use rand::Rng;
use rand::distr::Alphanumeric;

/// Length of generated secrets: alphanumeric, so shell-, URL- and SQL-safe.
pub const SECRET_LEN: usize = 40;

/// A fresh secret from the thread's CSPRNG (ChaCha, seeded from the OS).
pub fn generate_secret() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn entries(text: &str) -> Vec<Entry> {
    // The example and a file we wrote are known to parse; a broken .env.prod is reported
    // by Environment::load before anything here runs.
    dotenv::parse(text, &no_env).unwrap_or_default()
}

/// Rewrites the value on each entry's line for the keys `pick` chooses.
fn rewrite(text: &str, mut pick: impl FnMut(&Entry) -> Option<String>) -> (String, Vec<String>) {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut changed = Vec::new();
    for entry in entries(text) {
        let line = &mut lines[entry.line - 1];
        // Only simple one-line assignments are rewritten; quoted multi-line values are left.
        if line.contains('"') || line.contains('\'') {
            continue;
        }
        if let Some(value) = pick(&entry) {
            let prefix = if line.trim_start().starts_with("export ") {
                "export "
            } else {
                ""
            };
            *line = format!("{prefix}{}={value}", entry.key);
            changed.push(entry.key.clone());
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    (out, changed)
}

/// The example with every secret variable set to a fresh value. Returns the keys filled.
pub fn from_example(example: &str, generate: &mut dyn FnMut() -> String) -> (String, Vec<String>) {
    rewrite(example, |e| secrets::is_generated(&e.key).then(&mut *generate))
}

/// New values for the secret keys in `keys`.
pub fn regenerate(
    current: &str,
    keys: &[String],
    generate: &mut dyn FnMut() -> String,
) -> (String, Vec<String>) {
    rewrite(current, |e| keys.contains(&e.key).then(&mut *generate))
}

/// `current` with these variables set to these values (where they are assigned).
pub fn set(current: &str, values: &[(&str, String)]) -> (String, Vec<String>) {
    rewrite(current, |e| {
        values.iter().find(|(k, _)| *k == e.key).map(|(_, v)| v.clone())
    })
}

/// Variables of the example that `current` lacks, secrets freshly generated.
pub fn missing(example: &str, current: &str, generate: &mut dyn FnMut() -> String) -> Vec<(String, String)> {
    let have: Vec<String> = entries(current).into_iter().map(|e| e.key).collect();
    entries(example)
        .into_iter()
        .filter(|e| !have.contains(&e.key))
        .map(|e| {
            let value = if secrets::is_generated(&e.key) {
                generate()
            } else {
                e.value
            };
            (e.key, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("gen{n}")
        }
    }

    const EXAMPLE: &str = "# header\nDB_HOST=db\nDB_PASSWORD=VOTRE_MOT_DE_PASSE\n\n# key\nexport SECRET_KEY=changeme\nLOG_LEVEL=INFO\n";

    #[test]
    fn example_secrets_are_filled_and_layout_kept() {
        let (text, keys) = from_example(EXAMPLE, &mut counter());
        assert_eq!(keys, vec!["DB_PASSWORD", "SECRET_KEY"]);
        assert_eq!(
            text,
            "# header\nDB_HOST=db\nDB_PASSWORD=gen1\n\n# key\nexport SECRET_KEY=gen2\nLOG_LEVEL=INFO\n"
        );
    }

    #[test]
    fn generated_secrets_are_long_random_and_safe() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), SECRET_LEN);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn missing_variables_are_found() {
        let current = "DB_HOST=other\nSECRET_KEY=kept\n";
        let added = missing(EXAMPLE, current, &mut counter());
        assert_eq!(
            added,
            vec![
                ("DB_PASSWORD".to_string(), "gen1".to_string()),
                ("LOG_LEVEL".to_string(), "INFO".to_string())
            ]
        );
    }

    #[test]
    fn regenerate_touches_only_the_named_keys() {
        let current = "DB_PASSWORD=old1\nSECRET_KEY=old2\nREDIS_PASSWORD='quoted'\n";
        let keys = vec!["SECRET_KEY".to_string(), "REDIS_PASSWORD".to_string()];
        let (text, changed) = regenerate(current, &keys, &mut counter());
        assert_eq!(changed, vec!["SECRET_KEY"]);
        assert_eq!(
            text,
            "DB_PASSWORD=old1\nSECRET_KEY=gen1\nREDIS_PASSWORD='quoted'\n"
        );
    }
}
