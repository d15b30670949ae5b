//! Finds the line of a key path (`services.api.healthcheck.interval`) in a YAML text, so that
//! errors found after parsing (interpolation, types, limits) can still point at a line. The
//! parsed value keeps no positions; block-style YAML, as people write compose files, shows
//! its structure by indentation, and a flow mapping (`{a: 1}`) is found on its parent's line.

/// The 1-based line of the deepest key of `path` that can be found; list indices (`[2]`) are
/// followed into block sequences.
pub fn line_of(text: &str, path: &[String]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found: Option<usize> = None;
    // The block being searched: lines after `start` indented deeper than `indent`.
    let (mut start, mut indent) = (0usize, -1isize);
    for segment in path {
        let hit = match segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(index) => nth_item(&lines, start, indent, index.parse().ok()?),
            None => find_key(&lines, start, indent, segment),
        };
        match hit {
            Some((line, item_indent)) => {
                found = Some(line + 1);
                start = line + 1;
                indent = item_indent;
            }
            // A flow mapping or a scalar on the parent's line: that line is the answer.
            None => break,
        }
    }
    found
}

fn indent_of(line: &str) -> isize {
    (line.len() - line.trim_start().len()) as isize
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The lines of the block that starts at `start` and is indented deeper than `indent`.
fn block<'a>(
    lines: &'a [&'a str],
    start: usize,
    indent: isize,
) -> impl Iterator<Item = (usize, &'a str)> + 'a {
    lines
        .iter()
        .enumerate()
        .skip(start)
        .filter(|(_, l)| is_content(l))
        .take_while(move |(_, l)| indent_of(l) > indent)
        .map(|(i, l)| (i, *l))
}

fn find_key(lines: &[&str], start: usize, indent: isize, key: &str) -> Option<(usize, isize)> {
    let mut own_indent = None;
    for (i, line) in block(lines, start, indent) {
        let here = indent_of(line);
        // Only keys of this mapping, not of the mappings nested in it; `- key:` opens an item.
        let text = line.trim_start().trim_start_matches("- ");
        let here = here + (line.trim_start().len() - text.len()) as isize;
        if *own_indent.get_or_insert(here) != here {
            continue;
        }
        let name = text.split(':').next().unwrap_or_default().trim();
        let name = name.trim_matches(|c| c == '"' || c == '\'');
        if name == key && text.contains(':') {
            return Some((i, here));
        }
    }
    None
}

fn nth_item(lines: &[&str], start: usize, indent: isize, index: usize) -> Option<(usize, isize)> {
    let mut items = block(lines, start, indent).filter(|(_, l)| l.trim_start().starts_with('-'));
    let first = items.next()?;
    let item_indent = indent_of(first.1);
    std::iter::once(first)
        .chain(items.filter(|(_, l)| indent_of(l) == item_indent))
        .nth(index)
        // Keys of a `- key: v` item sit two columns in from its dash.
        .map(|(i, l)| (i, indent_of(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    const TEXT: &str = "name: x\nservices:\n  # comment\n  api:\n    image: a\n    healthcheck:\n      test: [CMD, true]\n      interval: 10s\n    ports:\n      - \"80:80\"\n      - \"443:443\"\n    environment:\n      - A=1\n  db:\n    healthcheck: {interval: 99s}\n    \"stop_grace_period\": 3s\n";

    #[test]
    fn finds_block_keys_items_and_flow_parents() {
        assert_eq!(line_of(TEXT, &path("services.api.healthcheck.interval")), Some(8));
        assert_eq!(line_of(TEXT, &path("services.api.ports.[1]")), Some(11));
        assert_eq!(line_of(TEXT, &path("services.db.healthcheck.interval")), Some(15));
        assert_eq!(line_of(TEXT, &path("services.db.stop_grace_period")), Some(16));
        assert_eq!(line_of(TEXT, &path("services.api.environment.[0]")), Some(13));
        // A key the file does not have: the deepest one found.
        assert_eq!(line_of(TEXT, &path("services.api.nope")), Some(4));
        assert_eq!(line_of(TEXT, &path("nope")), None);
        // `interval` under db is not taken for api's.
        assert_eq!(
            line_of(
                "services:\n  api:\n    image: a\n  db:\n    interval: 1\n",
                &path("services.api.interval")
            ),
            Some(2)
        );
    }

    #[test]
    fn hostile_text_is_no_panic() {
        for text in ["", "\n\n", "- a\n- b", "a:\n\t- b", "é: é\n  é:", ":::\n  :"] {
            let _ = line_of(text, &path("a.[0].é"));
            let _ = line_of(text, &path("[99999999999999999999]"));
        }
    }
}
