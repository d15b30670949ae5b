//! Compose variable interpolation, written against the Compose specification
//! (`12-interpolation.md`): `$VAR`, `${VAR}`, `:-`, `-`, `:?`, `?`, `:+`, `+`, nesting and `$$`.
//! A `$` that does not start a valid name or a `${` is kept as it is, as Compose does.

use std::fmt;

/// Why a string could not be interpolated. The caller adds the file and key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${VAR:?msg}` or `${VAR?msg}` with VAR missing.
    Required { var: String, message: String },
    /// An unterminated `${`, a bad name or an unknown operator.
    Syntax { text: String, reason: String },
    /// `${A:-${A:-...}}` nested past [`MAX_DEPTH`].
    TooDeep,
}

/// How deeply `${...}` may nest. Real files nest two or three levels; the limit keeps a
/// hostile one from exhausting the stack.
pub const MAX_DEPTH: usize = 64;

impl InterpolationError {
    /// The same error without the text it was found in, for values that may be secrets.
    pub fn without_text(&self) -> String {
        match self {
            Self::Syntax { reason, .. } => format!("invalid interpolation format: {reason}"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Required { var, message } if message.is_empty() => {
                write!(f, "required variable {var} is missing a value")
            }
            Self::Required { var, message } => {
                write!(f, "required variable {var} is missing a value: {message}")
            }
            Self::Syntax { text, reason } => {
                write!(
                    f,
                    "invalid interpolation format in {}: {reason}",
                    super::units::quoted(text)
                )
            }
            Self::TooDeep => write!(f, "interpolation nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

/// Result of interpolating one string: the value and the variables that were unset and had
/// no default, which Compose reports as warnings and replaces with "".
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    pub unset: Vec<String>,
}

pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolationError> {
    let mut out = Interpolated::default();
    let mut parser = Parser {
        src: input,
        pos: 0,
        depth: 0,
        lookup,
        unset: &mut out.unset,
    };
    out.value = parser.expand_until(None)?;
    Ok(out)
}

/// True when the string holds anything interpolation would change.
pub fn has_substitution(input: &str) -> bool {
    input.contains('$')
}

struct Parser<'a, 'b> {
    src: &'a str,
    pos: usize,
    depth: usize,
    lookup: &'b dyn Fn(&str) -> Option<String>,
    unset: &'b mut Vec<String>,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

impl Parser<'_, '_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn syntax(&self, reason: &str) -> InterpolationError {
        InterpolationError::Syntax {
            text: self.src.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Expands text up to the closing `}` of the current `${...}` (when `close` is set) or the end.
    fn expand_until(&mut self, close: Option<char>) -> Result<String, InterpolationError> {
        let mut out = String::new();
        while let Some(c) = self.rest().chars().next() {
            if Some(c) == close {
                return Ok(out);
            }
            if c == '$' {
                self.pos += 1;
                out.push_str(&self.dollar()?);
            } else {
                out.push(c);
                self.pos += c.len_utf8();
            }
        }
        match close {
            Some(_) => Err(self.syntax("missing closing brace")),
            None => Ok(out),
        }
    }

    /// Skips an unexpanded operand (the branch not taken). Like compose-go, every `${` opens a
    /// level, even after `$`, and a bare `{` does not.
    fn skip_until_close(&mut self) -> Result<(), InterpolationError> {
        let mut depth = 0usize;
        while let Some(c) = self.rest().chars().next() {
            match c {
                '$' if self.rest().starts_with("${") => {
                    depth += 1;
                    self.pos += 1;
                }
                '}' if depth == 0 => return Ok(()),
                '}' => depth -= 1,
                _ => {}
            }
            self.pos += c.len_utf8();
        }
        Err(self.syntax("missing closing brace"))
    }

    /// Called just after a `$`.
    fn dollar(&mut self) -> Result<String, InterpolationError> {
        match self.rest().chars().next() {
            Some('$') => {
                self.pos += 1;
                Ok("$".to_string())
            }
            Some('{') => {
                self.pos += 1;
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(InterpolationError::TooDeep);
                }
                let value = self.braced();
                self.depth -= 1;
                value
            }
            Some(c) if is_name_start(c) => {
                let name = self.name();
                Ok(self.value_or_warn(&name))
            }
            // Not a variable: Compose keeps the `$` literally.
            _ => Ok("$".to_string()),
        }
    }

    fn name(&mut self) -> String {
        let len = self
            .rest()
            .find(|c: char| !is_name_char(c))
            .unwrap_or(self.rest().len());
        let name = self.rest()[..len].to_string();
        self.pos += len;
        name
    }

    fn value_or_warn(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                if !self.unset.iter().any(|u| u == name) {
                    self.unset.push(name.to_string());
                }
                String::new()
            }
        }
    }

    /// Called just after `${`.
    fn braced(&mut self) -> Result<String, InterpolationError> {
        if !self.rest().starts_with(is_name_start) {
            return Err(self.syntax("a variable name must start with a letter or _"));
        }
        let name = self.name();
        let value = (self.lookup)(&name);
        let op = ["}", ":-", "-", ":?", "?", ":+", "+"]
            .into_iter()
            .find(|op| self.rest().starts_with(op))
            .ok_or_else(|| self.syntax("unsupported operator after the variable name"))?;
        self.pos += op.len();
        if op == "}" {
            return Ok(self.value_or_warn(&name));
        }
        let set = value.is_some();
        let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
        let ok = if op.starts_with(':') { non_empty } else { set };
        let result = match (op.trim_start_matches(':'), ok) {
            ("-", true) | ("?", true) => {
                self.skip_until_close()?;
                value.unwrap_or_default()
            }
            ("-", false) | ("+", true) => self.expand_until(Some('}'))?,
            ("+", false) => {
                self.skip_until_close()?;
                String::new()
            }
            _ => {
                let message = self.expand_until(Some('}'))?;
                return Err(InterpolationError::Required { var: name, message });
            }
        };
        self.pos += 1; // the closing brace
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "FOO" => Some("foo".into()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    fn run(s: &str) -> String {
        interpolate(s, &env).unwrap().value
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(run("no variables here"), "no variables here");
        assert_eq!(run(""), "");
        assert_eq!(run("ünïcødé"), "ünïcødé");
    }

    #[test]
    fn direct_forms() {
        assert_eq!(run("$SET"), "value");
        assert_eq!(run("${SET}"), "value");
        assert_eq!(run("a-$SET-b"), "a-value-b");
        assert_eq!(run("$SET.x"), "value.x");
        assert_eq!(run("${SET}x"), "valuex");
        assert_eq!(run("$SETx"), "");
    }

    #[test]
    fn unset_without_default_is_empty_and_reported() {
        let r = interpolate("x${NOPE}y$NOPE2", &env).unwrap();
        assert_eq!(r.value, "xy");
        assert_eq!(r.unset, vec!["NOPE".to_string(), "NOPE2".to_string()]);
    }

    #[test]
    fn default_forms_distinguish_unset_and_empty() {
        assert_eq!(run("${SET:-d}"), "value");
        assert_eq!(run("${EMPTY:-d}"), "d");
        assert_eq!(run("${NOPE:-d}"), "d");
        assert_eq!(run("${SET-d}"), "value");
        assert_eq!(run("${EMPTY-d}"), "");
        assert_eq!(run("${NOPE-d}"), "d");
        assert_eq!(run("${NOPE:-}"), "");
        assert_eq!(run("${NOPE:-mysql:8.0}"), "mysql:8.0");
        assert_eq!(run("${NOPE:-a b:c-d}"), "a b:c-d");
    }

    #[test]
    fn alternative_forms() {
        assert_eq!(run("${SET:+alt}"), "alt");
        assert_eq!(run("${EMPTY:+alt}"), "");
        assert_eq!(run("${NOPE:+alt}"), "");
        assert_eq!(run("${SET+alt}"), "alt");
        assert_eq!(run("${EMPTY+alt}"), "alt");
        assert_eq!(run("${NOPE+alt}"), "");
    }

    #[test]
    fn required_forms() {
        assert_eq!(run("${SET:?boom}"), "value");
        assert_eq!(run("${EMPTY?boom}"), "");
        let err = interpolate("${EMPTY:?must be set}", &env).unwrap_err();
        assert_eq!(
            err,
            InterpolationError::Required {
                var: "EMPTY".into(),
                message: "must be set".into()
            }
        );
        let err = interpolate("${NOPE?}", &env).unwrap_err();
        assert_eq!(err.to_string(), "required variable NOPE is missing a value");
        let err = interpolate("${NOPE?set $FOO}", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "required variable NOPE is missing a value: set foo"
        );
    }

    #[test]
    fn nesting() {
        assert_eq!(run("${NOPE:-${FOO}}"), "foo");
        assert_eq!(run("${NOPE:-${NOPE2:-deep}}"), "deep");
        assert_eq!(run("${NOPE:-$FOO:${PORT}}"), "foo:8080");
        assert_eq!(run("${SET:-${NOPE:?not evaluated}}"), "value");
        assert_eq!(run("${SET:+${FOO}-${PORT}}"), "foo-8080");
        assert_eq!(run("${NOPE:+${NOPE2:?not evaluated}}"), "");
        assert_eq!(run("${SET:-{literal}}"), "value}");
    }

    #[test]
    fn dollar_escapes_and_literals() {
        assert_eq!(run("$$"), "$");
        assert_eq!(run("$$SET"), "$SET");
        assert_eq!(run("$${SET}"), "${SET}");
        assert_eq!(run("price $5"), "price $5");
        assert_eq!(run("end $"), "end $");
        assert_eq!(run("a $ b"), "a $ b");
        assert_eq!(run("${NOPE:-$$}"), "$");
        assert_eq!(run("${NOPE:-a$$b}"), "a$b");
        assert_eq!(run("${SET:-$${x}}"), "value");
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "${",
            "${SET",
            "${SET:-x",
            "${1X}",
            "${}",
            "${SET/a/b}",
            "${NOPE:-${FOO}",
        ] {
            assert!(
                matches!(interpolate(bad, &env), Err(InterpolationError::Syntax { .. })),
                "{bad} should be a syntax error"
            );
        }
    }

    #[test]
    fn nesting_is_bounded_and_the_error_names_the_limit() {
        let nested = |levels: usize| format!("{}x{}", "${NOPE:-".repeat(levels), "}".repeat(levels));
        assert_eq!(run(&nested(MAX_DEPTH)), "x");
        let err = interpolate(&nested(MAX_DEPTH + 1), &env).unwrap_err();
        assert_eq!(err, InterpolationError::TooDeep);
        assert!(err.to_string().contains("64"), "{err}");
        // Deep enough to overflow any stack if each level recursed without a limit.
        let err = interpolate(&nested(200_000), &env).unwrap_err();
        assert_eq!(err, InterpolationError::TooDeep);
        // An unterminated deep one is an error too, and its message stays short.
        let err = interpolate(&"${NOPE:-".repeat(50), &env).unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }
}
