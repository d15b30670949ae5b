//! The rules of ARCHITECTURE.md that a program can check, read off the source text: the
//! rooms and the arrows between them, no import circle, the clap layer kept to the top,
//! the only importers of bollard, object_store and age, the only writer to the terminal,
//! and the size limits.

use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Rooms from the bottom up: a room may use only rooms of a lower rank.
const RANKS: &[(&str, u32)] = &[
    ("error", 0),
    ("output", 1),
    ("sys", 2),
    ("stack", 3),
    ("engine", 4),
    ("notify", 5),
    ("load", 5),
    ("deploy", 6),
    ("backup", 7),
    ("targets", 8),
    ("doctor", 9),
    ("monitor", 9),
    ("guard", 9),
    ("cli", 10),
    ("commands", 11),
];

struct Source {
    /// Path under src/, with `/` separators.
    rel: String,
    /// The module path (`["targets", "swarm", "cluster"]`; empty for lib.rs).
    module: Vec<String>,
    text: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let mut module: Vec<String> = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
            if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            Source { rel, module, text }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without comments and string literals, so that neither counts as an import.
fn code_of(text: &str) -> String {
    let comments = Regex::new(r"//[^\n]*").unwrap();
    let strings = Regex::new(r#""(\\.|[^"\\])*""#).unwrap();
    strings
        .replace_all(&comments.replace_all(text, ""), "\"\"")
        .into_owned()
}

/// Every path this file names through `crate::`, `super::`, `self::` or a child module,
/// as a module path from the crate root, with use-groups expanded.
fn paths_named(source: &Source) -> Vec<Vec<String>> {
    let code = code_of(&source.text);
    let tests_at = Regex::new(r"#\[cfg\(test\)\]\s*mod tests\s*\{")
        .unwrap()
        .find(&code)
        .map(|m| m.start());
    let children: BTreeSet<String> = Regex::new(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
        .unwrap()
        .captures_iter(&code)
        .map(|c| c[1].to_string())
        .collect();
    let mut named = Vec::new();
    let group = Regex::new(r"\buse\s+([\w:]+)::\{").unwrap();
    for m in group.captures_iter(&code) {
        let start = m.get(0).unwrap().end();
        let body = balanced(&code[start..]);
        let prefix: Vec<String> = m[1].split("::").map(String::from).collect();
        for path in expand(prefix, body) {
            named.push((m.get(0).unwrap().start(), path));
        }
    }
    let plain =
        Regex::new(r"(?:^|[^\w:])((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)+)")
            .unwrap();
    for c in plain.captures_iter(&code) {
        let m = c.get(1).unwrap();
        if code[m.end()..].starts_with("::{") {
            continue;
        }
        named.push((m.start(), m.as_str().split("::").map(String::from).collect()));
    }
    named
        .into_iter()
        .filter_map(|(at, segs)| {
            let in_tests = tests_at.is_some_and(|t| at > t);
            absolute(&source.module, &segs, in_tests, &children)
        })
        .collect()
}

fn balanced(text: &str) -> &str {
    let mut depth = 1;
    for (i, ch) in text.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

fn expand(prefix: Vec<String>, body: &str) -> Vec<Vec<String>> {
    let mut items = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for ch in body.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    items.push(current);
    let mut out = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if let Some((head, rest)) = item.split_once("::{") {
            let mut p = prefix.clone();
            p.extend(head.split("::").map(String::from));
            out.extend(expand(p, rest.strip_suffix('}').unwrap_or(rest)));
        } else {
            let mut p = prefix.clone();
            let item = item.split(" as ").next().unwrap_or(item);
            p.extend(
                item.split("::")
                    .filter(|s| *s != "self" && *s != "*")
                    .map(String::from),
            );
            out.push(p);
        }
    }
    out
}

fn absolute(
    module: &[String],
    segs: &[String],
    in_tests: bool,
    children: &BTreeSet<String>,
) -> Option<Vec<String>> {
    let mut base: Vec<String> = module.to_vec();
    if in_tests {
        base.push("tests".into());
    }
    let first = segs.first()?.as_str();
    let mut rest = segs;
    let mut full = match first {
        "crate" => {
            rest = &segs[1..];
            Vec::new()
        }
        "super" | "self" => {
            while let Some(s) = rest.first() {
                match s.as_str() {
                    "super" => base.pop(),
                    "self" => None,
                    _ => break,
                };
                rest = &rest[1..];
            }
            base
        }
        child if children.contains(child) && !in_tests => module.to_vec(),
        _ => return None,
    };
    full.extend(rest.iter().cloned());
    Some(full)
}

/// Which file each named path lands in: the deepest module along it that is a file.
fn import_graph(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let by_module: BTreeMap<&[String], &str> = sources
        .iter()
        .filter(|s| s.rel != "main.rs")
        .map(|s| (s.module.as_slice(), s.rel.as_str()))
        .collect();
    sources
        .iter()
        .filter(|s| s.rel != "main.rs")
        .map(|s| {
            let targets = paths_named(s)
                .into_iter()
                .filter_map(|path| {
                    (1..=path.len())
                        .rev()
                        .find_map(|n| by_module.get(&path[..n]).copied())
                })
                .filter(|t| *t != s.rel)
                .map(String::from)
                .collect();
            (s.rel.clone(), targets)
        })
        .collect()
}

fn room(rel: &str) -> &str {
    rel.split('/').next().unwrap().trim_end_matches(".rs")
}

fn rank(room: &str) -> Option<u32> {
    RANKS.iter().find(|(r, _)| *r == room).map(|(_, n)| *n)
}

/// A circle in the graph, if any, found depth-first.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if !done.insert(node.to_string()) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_file_imports_another_in_a_circle() {
    let graph = import_graph(&sources());
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 200,
        "the import graph looks empty"
    );
    assert_eq!(
        circle(&graph),
        None,
        "files must not import each other in a circle"
    );
}

#[test]
fn rooms_use_only_the_rooms_below_them() {
    let graph = import_graph(&sources());
    let mut wrong = Vec::new();
    for (file, targets) in &graph {
        let Some(from) = rank(room(file)) else {
            assert_eq!(file, "lib.rs", "{file} is in no room of ARCHITECTURE.md");
            continue;
        };
        for target in targets {
            let to = rank(room(target)).unwrap_or_else(|| panic!("{target} is in no room"));
            if room(file) != room(target) && to >= from {
                wrong.push(format!("{file} -> {target}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows against the order of ARCHITECTURE.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_the_top_uses_the_clap_layer() {
    let cli = Regex::new(r"\bcrate::cli\b").unwrap();
    for s in sources() {
        let top = s.rel.starts_with("commands/") || s.rel == "cli.rs" || s.rel == "main.rs";
        assert!(
            top || !cli.is_match(&code_of(&s.text)),
            "{} uses crate::cli",
            s.rel
        );
    }
}

#[test]
fn commands_never_import_each_other() {
    for s in sources().iter().filter(|s| s.rel.starts_with("commands/")) {
        let own = s.module.get(1).cloned().unwrap_or_default();
        for path in paths_named(s) {
            let other = path.get(1).map(String::as_str).unwrap_or("context");
            if path.first().is_some_and(|p| p == "commands") && s.rel != "commands/mod.rs" {
                assert!(
                    other == "context" || other == own,
                    "{} imports commands::{other}",
                    s.rel
                );
            }
        }
    }
}

#[test]
fn the_root_holds_only_the_entry_points_and_the_bottom() {
    let allowed = ["main.rs", "lib.rs", "cli.rs", "error.rs", "output.rs"];
    for s in sources() {
        assert!(
            s.rel.contains('/') || allowed.contains(&s.rel.as_str()),
            "src/{} has no room",
            s.rel
        );
    }
}

#[test]
fn each_outside_library_has_one_importer() {
    let only = [
        ("bollard", "engine/"),
        ("object_store", "backup/bucket.rs"),
        ("age", "backup/seal.rs"),
        ("lettre", "notify/mail.rs"),
    ];
    for s in sources() {
        let code = code_of(&s.text);
        for (krate, home) in only {
            let used = Regex::new(&format!(r"(?:^|[^\w:]){krate}::"))
                .unwrap()
                .is_match(&code);
            assert!(
                !used || s.rel.starts_with(home),
                "{} uses {krate}, which only {home} may",
                s.rel
            );
        }
    }
}

#[test]
fn only_the_printer_writes_to_the_terminal() {
    let writes = Regex::new(
        r"\b(e?print(ln)?!|std::io::stdout\(\)|std::io::stderr\(\)|io::stdout\(\)|io::stderr\(\))",
    )
    .unwrap();
    for s in sources().iter().filter(|s| s.rel != "output.rs") {
        let code = code_of(&s.text);
        assert!(
            !writes.is_match(&code),
            "{} writes to the terminal past the Printer",
            s.rel
        );
    }
}

#[test]
fn no_file_over_700_lines() {
    for s in sources() {
        let lines = s.text.lines().count();
        assert!(lines <= 700, "src/{} has {lines} lines", s.rel);
    }
}

#[test]
fn no_function_over_80_lines() {
    let start = Regex::new(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)").unwrap();
    for s in sources() {
        let lines: Vec<&str> = s.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(c) = start.captures(line) else { continue };
            let Some(open) = (i..lines.len())
                .find(|&j| lines[j].trim_end().ends_with('{') || lines[j].trim_end().ends_with(';'))
            else {
                continue;
            };
            if lines[open].trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{}}}", &c[1]);
            let end = (open + 1..lines.len())
                .find(|&k| lines[k] == close)
                .unwrap_or(lines.len());
            let length = end - i + 1;
            assert!(length <= 80, "src/{}: fn {} is {length} lines", s.rel, &c[6]);
        }
    }
}

#[test]
fn the_architecture_names_every_directory() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    assert!(
        map.lines().count() < 150,
        "ARCHITECTURE.md is meant to stay short"
    );
    let mut dirs = BTreeSet::new();
    for s in sources() {
        let parts: Vec<&str> = s.rel.split('/').collect();
        for n in 1..parts.len() {
            dirs.insert(parts[n - 1].to_string());
        }
    }
    for dir in dirs {
        assert!(
            map.contains(&format!("`{dir}/")) || map.contains(&format!("{dir}/`")),
            "ARCHITECTURE.md does not name {dir}/"
        );
    }
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains("(ARCHITECTURE.md)"),
        "the README links ARCHITECTURE.md"
    );
}
