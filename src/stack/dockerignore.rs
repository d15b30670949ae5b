//! `.dockerignore` exactly as Docker reads it, so the build context holds what `docker build`
//! would send. Ported from moby/patternmatcher (`ignorefile.ReadAll`, `New`,
//! `MatchesOrParentMatches`): every pattern is cleaned like Go's `filepath.Clean`, checked
//! like `filepath.Match`, and matched segment by segment (`*` and `?` never cross `/`, `**`
//! does); braces are literal; a rule on a directory covers what is under it; the last
//! matching rule wins, `!` making it an exception.

use regex::Regex;

pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

struct Pattern {
    exclusion: bool,
    kind: Kind,
}

/// The four ways patternmatcher's `compile` matches a cleaned pattern.
enum Kind {
    Exact(String),
    /// `dir/**`: the text before the `**`.
    Prefix(String),
    /// `**/name`, `**name`: the text after the `**`.
    Suffix(String),
    Regex(Regex),
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            // Only a `#` in the first column starts a comment, as in Docker.
            if line.starts_with('#') {
                continue;
            }
            let Some(pattern) = read_line(line) else { continue };
            let pattern =
                new_pattern(&pattern).map_err(|why| format!(".dockerignore:{}: {why}", index + 1))?;
            patterns.push(pattern);
        }
        Ok(Self { patterns })
    }

    /// True when some rule is an exception (`!`): an excluded directory may then still hold
    /// files that go in, and must be walked.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative, with `/`) stays out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let file = clean(path);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(end) => file[..end]
                .match_indices('/')
                .map(|(i, _)| &file[..i])
                .chain([&file[..end]])
                .collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            // As patternmatcher: an inclusion only matters while unmatched, an exception
            // only while matched.
            if pattern.exclusion != matched {
                continue;
            }
            if pattern.kind.matches(&file) || parents.iter().any(|p| pattern.kind.matches(p)) {
                matched = !pattern.exclusion;
            }
        }
        matched
    }
}

/// One line as `ignorefile.ReadAll` leaves it: trimmed, cleaned, without a leading `/`.
fn read_line(line: &str) -> Option<String> {
    let pattern = line.trim();
    if pattern.is_empty() {
        return None;
    }
    let (invert, pattern) = match pattern.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, pattern),
    };
    let mut pattern = match pattern.is_empty() {
        true => String::new(),
        false => clean(pattern),
    };
    if pattern.len() > 1 && pattern.starts_with('/') {
        pattern.remove(0);
    }
    Some(match invert {
        true => format!("!{pattern}"),
        false => pattern,
    })
}

/// patternmatcher's `New` for one pattern.
fn new_pattern(p: &str) -> Result<Pattern, String> {
    let p = clean(p.trim());
    let (exclusion, p) = match p.strip_prefix('!') {
        Some("") => return Err("illegal exclusion pattern: \"!\"".into()),
        Some(rest) => (true, rest.to_string()),
        None => (false, p),
    };
    check_syntax(&p).map_err(|why| format!("syntax error in pattern {}: {why}", super::units::quoted(&p)))?;
    let kind = compile(&p).map_err(|why| format!("pattern {}: {why}", super::units::quoted(&p)))?;
    Ok(Pattern { exclusion, kind })
}

impl Kind {
    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => path == p,
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Self::Regex(re) => re.is_match(path),
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// patternmatcher's `compile`: the pattern as a regular expression, or as a plain
/// comparison when it has no wildcard.
fn compile(pattern: &str) -> Result<Kind, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut detected = Detected::Exact;
    let mut in_class = false;
    let mut pos = 0;
    let mut step = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                detected = double_star(pos == chars.len(), step == 0, detected, &mut re);
            }
            '*' if !in_class => {
                re.push_str("[^/]*");
                detected = Detected::Regex;
            }
            '?' if !in_class => {
                re.push_str("[^/]");
                detected = Detected::Regex;
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    re.push('\\');
                    re.push(next);
                    detected = Detected::Regex;
                }
                None => re.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                re.push('[');
                detected = Detected::Regex;
            }
            ']' => {
                in_class = false;
                re.push(']');
                detected = Detected::Regex;
            }
            c if ".+()|{}$".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            // Go's regexp takes these literally in a class; Rust's would read nested
            // classes and set operations.
            '[' | '&' | '~' | '-' if in_class && !(ch == '[' && chars.get(pos) == Some(&':')) => {
                let lone_dash =
                    ch == '-' && chars.get(pos) != Some(&'-') && chars.get(pos.wrapping_sub(2)) != Some(&'-');
                if !lone_dash {
                    re.push('\\');
                }
                re.push(ch);
            }
            c => re.push(c),
        }
        step += 1;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact(pattern.to_string()),
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&re).map_err(|e| format!("cannot be matched ({e})"))?)
        }
    })
}

/// A `**` (with its `/`): at the end of the pattern a prefix match, or anything; before
/// more pattern, any number of directories; at the start, a suffix match.
fn double_star(at_end: bool, at_start: bool, detected: Detected, re: &mut String) -> Detected {
    let detected = if !at_end {
        re.push_str("(.*/)?");
        Detected::Regex
    } else if detected == Detected::Exact {
        Detected::Prefix
    } else {
        re.push_str(".*");
        Detected::Regex
    };
    if at_start { Detected::Suffix } else { detected }
}

/// The syntax `filepath.Match` accepts: a `\` escapes the next character, and a class is
/// `[`, an optional `^`, then one or more characters or ranges `a-z` up to `]`, where `-`
/// and `]` must be escaped.
fn check_syntax(pattern: &str) -> Result<(), &'static str> {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return Err("a trailing \\ escapes nothing"),
            '[' => {
                chars.next_if_eq(&'^');
                let mut ranges = 0;
                loop {
                    if ranges > 0 && chars.next_if_eq(&']').is_some() {
                        break;
                    }
                    class_char(&mut chars)?;
                    if chars.next_if_eq(&'-').is_some() {
                        class_char(&mut chars)?;
                    }
                    ranges += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Go's `getEsc`: one (possibly escaped) character of a class, which something must follow.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<(), &'static str> {
    const BAD: &str = "a character class is empty, unterminated or has an unescaped - or ]";
    match chars.next() {
        None | Some('-') | Some(']') => return Err(BAD),
        Some('\\') if chars.next().is_none() => return Err(BAD),
        _ => {}
    }
    match chars.peek() {
        Some(_) => Ok(()),
        None => Err(BAD),
    }
}

/// Go's `filepath.Clean` on Unix: no empty or `.` segments, `..` resolved lexically (kept at
/// the start of a relative path), "." for nothing.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(patterns: &[&str], path: &str) -> Result<bool, String> {
        Ok(DockerIgnore::parse(&patterns.join("\n"))?.excludes(path))
    }

    #[test]
    fn patterns_exceptions_and_directories() {
        let ig = DockerIgnore::parse(
            "# comment\n.git\n*.log\n**/__pycache__\nbuild/\n!build/keep.txt\nsecret?.env\n",
        )
        .unwrap();
        assert!(ig.excludes(".git/config"));
        assert!(ig.excludes("debug.log"));
        assert!(ig.excludes("app/__pycache__/x.pyc"));
        assert!(ig.excludes("build/out.bin"));
        assert!(!ig.excludes("build/keep.txt"));
        assert!(ig.excludes("secret1.env"));
        assert!(!ig.excludes("app/main.py"));
        assert!(!ig.excludes("Dockerfile.prod"));
        assert!(ig.has_exceptions());
    }

    #[test]
    fn the_three_differences_the_issue_found() {
        // `*` stays within a segment.
        assert_eq!(matches(&["*.md"], "docs/keep.md"), Ok(false));
        assert_eq!(matches(&["*.md"], "README.md"), Ok(true));
        // Braces are literal.
        assert_eq!(matches(&["{a,b}.txt"], "a.txt"), Ok(false));
        assert_eq!(matches(&["{a,b}.txt"], "{a,b}.txt"), Ok(true));
        // Patterns are cleaned.
        assert_eq!(matches(&["x/../secret.txt"], "secret.txt"), Ok(true));
        assert_eq!(matches(&["./a//b/"], "a/b/c"), Ok(true));
        assert_eq!(matches(&["/abs"], "abs"), Ok(true));
    }

    #[test]
    fn docker_file_rules() {
        // A BOM, CRLF, an indented `#` (a pattern, not a comment), and a lone `!`.
        assert_eq!(matches(&["\u{feff}a", "b\r"], "a"), Ok(true));
        assert_eq!(matches(&["a", "b\r"], "b"), Ok(true));
        assert_eq!(matches(&[" #x"], "#x"), Ok(true));
        assert!(matches(&["!"], "a").is_err());
        assert!(
            matches(&["ok", "["], "a")
                .unwrap_err()
                .starts_with(".dockerignore:2:")
        );
    }

    /// The table of moby/patternmatcher's `patternmatcher_test.go` (TestMatches, the
    /// multi-pattern cases, and TestMatch, which came from Go's filepath tests), at commit
    /// 5a6d842: pattern, path, whether it matches; None where Docker rejects the pattern.
    const SINGLE: &[(&str, &str, Option<bool>)] = &[
        ("**", "file", Some(true)),
        ("**", "file/", Some(true)),
        ("**/", "file", Some(true)),
        ("**/", "file/", Some(true)),
        ("**", "/", Some(true)),
        ("**/", "/", Some(true)),
        ("**", "dir/file", Some(true)),
        ("**/", "dir/file", Some(true)),
        ("**", "dir/file/", Some(true)),
        ("**/", "dir/file/", Some(true)),
        ("**/**", "dir/file", Some(true)),
        ("**/**", "dir/file/", Some(true)),
        ("dir/**", "dir/file", Some(true)),
        ("dir/**", "dir/file/", Some(true)),
        ("dir/**", "dir/dir2/file", Some(true)),
        ("dir/**", "dir/dir2/file/", Some(true)),
        ("**/dir", "dir", Some(true)),
        ("**/dir", "dir/file", Some(true)),
        ("**/dir2/*", "dir/dir2/file", Some(true)),
        ("**/dir2/*", "dir/dir2/file/", Some(true)),
        ("**/dir2/**", "dir/dir2/dir3/file", Some(true)),
        ("**/dir2/**", "dir/dir2/dir3/file/", Some(true)),
        ("**file", "file", Some(true)),
        ("**file", "dir/file", Some(true)),
        ("**/file", "dir/file", Some(true)),
        ("**file", "dir/dir/file", Some(true)),
        ("**/file", "dir/dir/file", Some(true)),
        ("**/file*", "dir/dir/file", Some(true)),
        ("**/file*", "dir/dir/file.txt", Some(true)),
        ("**/file*txt", "dir/dir/file.txt", Some(true)),
        ("**/file*.txt", "dir/dir/file.txt", Some(true)),
        ("**/file*.txt*", "dir/dir/file.txt", Some(true)),
        ("**/**/*.txt", "dir/dir/file.txt", Some(true)),
        ("**/**/*.txt2", "dir/dir/file.txt", Some(false)),
        ("**/*.txt", "file.txt", Some(true)),
        ("**/**/*.txt", "file.txt", Some(true)),
        ("a**/*.txt", "a/file.txt", Some(true)),
        ("a**/*.txt", "a/dir/file.txt", Some(true)),
        ("a**/*.txt", "a/dir/dir/file.txt", Some(true)),
        ("a/*.txt", "a/dir/file.txt", Some(false)),
        ("a/*.txt", "a/file.txt", Some(true)),
        ("a/*.txt**", "a/file.txt", Some(true)),
        ("a[b-d]e", "ae", Some(false)),
        ("a[b-d]e", "ace", Some(true)),
        ("a[b-d]e", "aae", Some(false)),
        ("a[^b-d]e", "aze", Some(true)),
        (".*", ".foo", Some(true)),
        (".*", "foo", Some(false)),
        ("abc.def", "abcdef", Some(false)),
        ("abc.def", "abc.def", Some(true)),
        ("abc.def", "abcZdef", Some(false)),
        ("abc?def", "abcZdef", Some(true)),
        ("abc?def", "abcdef", Some(false)),
        (r"a\\", r"a\", Some(true)),
        ("**/foo/bar", "foo/bar", Some(true)),
        ("**/foo/bar", "dir/foo/bar", Some(true)),
        ("**/foo/bar", "dir/dir2/foo/bar", Some(true)),
        ("abc/**", "abc", Some(false)),
        ("abc/**", "abc/def", Some(true)),
        ("abc/**", "abc/def/ghi", Some(true)),
        ("**/.foo", ".foo", Some(true)),
        ("**/.foo", "bar.foo", Some(false)),
        ("a(b)c/def", "a(b)c/def", Some(true)),
        ("a(b)c/def", "a(b)c/xyz", Some(false)),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", Some(true)),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Some(true),
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            Some(true),
        ),
        (r"a\*b", "a*b", Some(true)),
        // TestMatch (Go's filepath.Match cases).
        ("abc", "abc", Some(true)),
        ("*", "abc", Some(true)),
        ("*c", "abc", Some(true)),
        ("a*", "a", Some(true)),
        ("a*", "abc", Some(true)),
        ("a*", "ab/c", Some(true)),
        ("a*/b", "abc/b", Some(true)),
        ("a*/b", "a/c/b", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
        ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
        ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
        ("ab[c]", "abc", Some(true)),
        ("ab[b-d]", "abc", Some(true)),
        ("ab[e-g]", "abc", Some(false)),
        ("ab[^c]", "abc", Some(false)),
        ("ab[^b-d]", "abc", Some(false)),
        ("ab[^e-g]", "abc", Some(true)),
        (r"a\*b", "ab", Some(false)),
        ("a?b", "a☺b", Some(true)),
        ("a[^a]b", "a☺b", Some(true)),
        ("a???b", "a☺b", Some(false)),
        ("a[^a][^a][^a]b", "a☺b", Some(false)),
        ("[a-ζ]*", "α", Some(true)),
        ("*[a-ζ]", "A", Some(false)),
        ("a?b", "a/b", Some(false)),
        ("a*b", "a/b", Some(false)),
        (r"[\]a]", "]", Some(true)),
        (r"[\-]", "-", Some(true)),
        (r"[x\-]", "x", Some(true)),
        (r"[x\-]", "-", Some(true)),
        (r"[x\-]", "z", Some(false)),
        (r"[\-x]", "x", Some(true)),
        (r"[\-x]", "-", Some(true)),
        (r"[\-x]", "a", Some(false)),
        ("[]a]", "]", None),
        ("[-]", "-", None),
        ("[x-]", "x", None),
        ("[x-]", "-", None),
        ("[x-]", "z", None),
        ("[-x]", "x", None),
        ("[-x]", "-", None),
        ("[-x]", "a", None),
        ("\\", "a", None),
        ("[a-b-c]", "a", None),
        ("[", "a", None),
        ("[^", "a", None),
        ("[^bc", "a", None),
        ("a[", "a", None),
        ("a[", "ab", None),
        ("*x", "xxx", Some(true)),
    ];

    const MULTI: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        // Their folder-exception tests.
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["*.go"], ".", false),
        (&[], "/any/path/there", false),
    ];

    #[test]
    fn agrees_with_dockers_own_table() {
        for &(pattern, path, want) in SINGLE {
            // The Go tests call New directly; the file reader cleans the same way.
            let got = new_pattern(pattern).map(|p| DockerIgnore { patterns: vec![p] }.excludes(path));
            assert_eq!(got.ok(), want, "pattern {pattern:?}, path {path:?}");
        }
        for &(patterns, path, want) in MULTI {
            assert_eq!(
                matches(patterns, path),
                Ok(want),
                "patterns {patterns:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn clean_is_gos() {
        for (input, want) in [
            ("", "."),
            ("a/b/../c", "a/c"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/../a", "/a"),
            ("//a//b/", "/a/b"),
            ("./", "."),
            ("!x/../y", "y"),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }
}
