//! The dotenv dialect of Docker Compose: `KEY=value`, `export`, comments, single quotes
//! (literal), double quotes (escapes, interpolation), multi-line quoted values, and bare
//! `KEY` lines that take their value from the process environment.

use super::interpolate::{self, InterpolationError};
use std::fmt;

/// One assignment, with the line it starts on so that errors and `config` can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotenvError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DotenvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses `text`. `lookup` answers for the process environment, which wins over values
/// defined earlier in the file when a value refers to a variable (as in compose-go).
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Entry>, DotenvError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let line_no = index + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        let err = |message: String| DotenvError {
            line: line_no,
            message,
        };
        let Some((key, rest)) = line.split_once('=') else {
            // `DB_PASSWORD: hunter2` is no name: such a line is never quoted back.
            let key = line.trim_end();
            if check_key(key).is_err() {
                return Err(err(NOT_AN_ASSIGNMENT.to_string()));
            }
            if let Some(value) = lookup(key) {
                entries.push(Entry {
                    key: key.to_string(),
                    value,
                    line: line_no,
                });
            }
            continue;
        };
        let key = key.trim_end();
        check_key(key).map_err(err)?;
        // The printer cannot mask a secret it has not been told yet: an error about a value
        // names its key and what is wrong, never the text.
        let err = |reason: &str| err(format!("{key}: {reason}"));
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let body = read_quoted(&rest[1..], q, &mut lines).map_err(|e| err(&e))?;
                if q == '\'' {
                    body
                } else {
                    expand(&unescape(&body), lookup, &entries).map_err(|e| err(&e))?
                }
            }
            // Unquoted, `\$` is no escape: Compose keeps the backslash and the dollar.
            _ => expand(
                &strip_inline_comment(rest).replace("\\$", "\\$$"),
                lookup,
                &entries,
            )
            .map_err(|e| err(&e))?,
        };
        entries.retain(|e| e.key != key);
        entries.push(Entry {
            key: key.to_string(),
            value,
            line: line_no,
        });
    }
    Ok(entries)
}

const NOT_AN_ASSIGNMENT: &str = "not a KEY=value line (the line is not shown: it may hold a secret)";

fn check_key(key: &str) -> Result<(), String> {
    let mut chars = key.chars();
    let valid_start = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    if valid_start && chars.all(|c| c == '_' || c == '.' || c == '-' || c.is_ascii_alphanumeric()) {
        Ok(())
    } else if key.is_empty() {
        Err("missing variable name before '='".to_string())
    } else {
        // Not quoted: what stands before a stray `=` may be part of a secret.
        Err("invalid variable name before '=' (a name is letters, digits and _, not starting with a digit; the line is not shown)".to_string())
    }
}

/// Reads up to the closing quote, across lines if needed. What follows the closing quote
/// may only be blank or a comment.
fn read_quoted<'a>(
    first: &str,
    quote: char,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<String, String> {
    let mut body = String::new();
    let mut current = first.to_string();
    loop {
        if let Some(end) = closing_quote(&current, quote) {
            body.push_str(&current[..end]);
            let tail = current[end + 1..].trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err("unexpected text after the closing quote".to_string());
            }
            return Ok(body);
        }
        body.push_str(&current);
        body.push('\n');
        match lines.next() {
            Some((_, next)) => current = next.to_string(),
            None => return Err(format!("unterminated {quote}-quoted value")),
        }
    }
}

fn closing_quote(s: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// Escapes of double-quoted values. `\$` stays escaped as `$$` so that interpolation
/// leaves it as a literal dollar.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            // `\$` is a literal dollar, as in Compose (`$$` is how interpolation keeps one).
            Some('$') => out.push_str("$$"),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A value as a double-quoted `.env` value that `parse` reads back unchanged.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn strip_inline_comment(s: &str) -> &str {
    let cut = s
        .char_indices()
        .find(|&(i, c)| c == '#' && i > 0 && s[..i].ends_with(char::is_whitespace))
        .map_or(s.len(), |(i, _)| i);
    s[..cut].trim()
}

fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>, earlier: &[Entry]) -> Result<String, String> {
    let resolve =
        |name: &str| lookup(name).or_else(|| earlier.iter().find(|e| e.key == name).map(|e| e.value.clone()));
    interpolate::interpolate(value, &resolve)
        .map(|r| r.value)
        .map_err(|e: InterpolationError| e.without_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_map(text: &str) -> Vec<(String, String)> {
        parse(text, &no_env)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn simple_assignments_comments_and_export() {
        let text = "# comment\n\nA=1\nexport B=two\n  C = spaced  \nD=\nE=x # trailing comment\nF=a#b\n";
        assert_eq!(
            parse_map(text),
            pairs(&[
                ("A", "1"),
                ("B", "two"),
                ("C", "spaced"),
                ("D", ""),
                ("E", "x"),
                ("F", "a#b")
            ])
        );
    }

    #[test]
    fn single_quotes_are_literal() {
        let text = r#"A='$HOME \n # not a comment'"#;
        assert_eq!(parse_map(text), pairs(&[("A", r"$HOME \n # not a comment")]));
    }

    #[test]
    fn double_quotes_unescape_and_interpolate() {
        let text = "USER=bob\nA=\"hi $USER\\n\\t\\\"q\\\" \\$LIT \\\\\" # c\n";
        assert_eq!(parse_map(text)[1], ("A".into(), "hi bob\n\t\"q\" $LIT \\".into()));
    }

    #[test]
    fn multi_line_values() {
        let text = "KEY=\"line1\nline2\"\nNEXT='a\nb'\nLAST=z\n";
        assert_eq!(
            parse_map(text),
            pairs(&[("KEY", "line1\nline2"), ("NEXT", "a\nb"), ("LAST", "z")])
        );
        let entries = parse(text, &no_env).unwrap();
        assert_eq!(entries.iter().map(|e| e.line).collect::<Vec<_>>(), vec![1, 3, 5]);
    }

    #[test]
    fn unquoted_values_interpolate_with_defaults() {
        let text = "HOST=db\nURL=mysql://${HOST}:${PORT:-3306}/x\n";
        assert_eq!(parse_map(text)[1].1, "mysql://db:3306/x");
    }

    #[test]
    fn process_environment_wins_in_references_and_fills_bare_keys() {
        let env = |k: &str| (k == "HOST" || k == "BARE").then(|| format!("env-{k}"));
        let entries = parse("HOST=file\nURL=$HOST\nBARE\nMISSING\n", &env).unwrap();
        let got: Vec<_> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("HOST", "file"), ("URL", "env-HOST"), ("BARE", "env-BARE")]
        );
    }

    #[test]
    fn later_assignment_replaces_earlier() {
        assert_eq!(parse_map("A=1\nA=2\n"), pairs(&[("A", "2")]));
    }

    #[test]
    fn errors_never_quote_a_value_or_a_line() {
        for text in [
            "SECRET_KEY=abc${defgHIDDEN\n",
            "JWT_SECRET_KEY=\"quoted\"HIDDEN\n",
            "DB_PASSWORD=\"HIDDEN\n",
            "DB_PASSWORD: HIDDEN\n",
            "DB_PASSWORD HIDDEN\n",
            "DB PASSWORD HIDDEN=x\n",
            "FLASK_ENV=\"x\"HIDDEN\n",
            "URL=${HIDDEN:-${\n",
        ] {
            let err = parse(text, &no_env).unwrap_err();
            assert!(!err.message.contains("HIDDEN"), "{text:?}: {err}");
            assert_eq!(err.line, 1);
        }
        let colon = parse("A=1\nDB_PASSWORD: hunter2\n", &no_env).unwrap_err();
        assert_eq!((colon.line, colon.message.as_str()), (2, NOT_AN_ASSIGNMENT));
        let named = parse("FLASK_ENV=\"x\"tail\n", &no_env).unwrap_err();
        assert!(named.message.starts_with("FLASK_ENV: "), "{named}");
    }

    #[test]
    fn backslash_dollar_per_quoting_form() {
        // Compose (compose-go): an escape in double quotes, literal elsewhere.
        let text = "B=bee\nU=a\\$b\nD=\"a\\$b\"\nS='a\\$b'\nW=a\\${B}\n";
        assert_eq!(
            parse_map(text),
            pairs(&[
                ("B", "bee"),
                ("U", "a\\$b"),
                ("D", "a$b"),
                ("S", "a\\$b"),
                ("W", "a\\${B}")
            ])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("A=1\nthis is not valid\n", 2),
            ("A=1\nB=\"never closed\nC=3\n", 2),
            ("=value\n", 1),
            ("A='x' junk\n", 1),
            ("A=${B:?B is required}\n", 1),
            ("1A=x\n", 1),
        ];
        for (text, line) in cases {
            let err = parse(text, &no_env).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }
}
