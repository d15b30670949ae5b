//! Durations and byte sizes as people write them, with checked arithmetic: a value past the
//! limit is an error that names the limit, never a panic, a wrap or a silent clamp.

use std::time::Duration;

/// The longest duration any setting or flag may hold. Far beyond every real timeout or
/// retention, and well inside what `Instant`, tokio's timers and chrono can add.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);
pub const MAX_DURATION_TEXT: &str = "100 years";

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Compose's duration format (Go's `time.ParseDuration`): a sequence of number+unit with
/// units ns, us, µs, ms, s, m, h, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {} (expected e.g. 30s, 1m30s, 500ms)",
            quoted(text)
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u128 = rest.parse().map_err(|_| too_long(text))?;
        return from_nanos(seconds.checked_mul(NANOS_PER_SEC), text);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let nanos_per_unit: u128 = match &tail[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            _ => return Err(bad()),
        };
        let part = scaled(number, nanos_per_unit).ok_or_else(bad)?;
        total = total
            .checked_add(part.ok_or_else(|| too_long(text))?)
            .ok_or_else(|| too_long(text))?;
        rest = &tail[unit_len..];
    }
    from_nanos(Some(total), text)
}

/// `number` (decimal, with an optional fraction) times `unit` nanoseconds. None when it is
/// not a number; Some(None) when it overflows.
fn scaled(number: &str, unit: u128) -> Option<Option<u128>> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u128 = match whole {
        "" => 0,
        w => match w.parse() {
            Ok(v) => v,
            Err(_) => return Some(None),
        },
    };
    // Twenty fraction digits are past any unit's precision, and keep the product in a u128.
    let fraction = &fraction[..fraction.len().min(20)];
    let part = match fraction {
        "" => 0,
        f => f.parse::<u128>().ok()? * unit / 10u128.pow(f.len() as u32),
    };
    Some(whole.checked_mul(unit).and_then(|v| v.checked_add(part)))
}

fn from_nanos(nanos: Option<u128>, text: &str) -> Result<Duration, String> {
    let nanos = nanos.ok_or_else(|| too_long(text))?;
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long(text));
    }
    let secs = (nanos / NANOS_PER_SEC) as u64;
    Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

fn too_long(text: &str) -> String {
    format!(
        "duration {} is longer than the limit of {MAX_DURATION_TEXT}",
        quoted(text)
    )
}

/// A duration as flags and settings take it (`30s`, `5m`, `1h 30m`, `2days`), bounded by
/// [`MAX_DURATION`].
pub fn parse_human_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d > MAX_DURATION => Err(too_long(text)),
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Err(too_long(text)),
        Err(e) => Err(format!("{e} (expected e.g. 30s, 5m, 1h)")),
    }
}

/// The largest size: what a u64 counts in bytes.
pub const MAX_BYTES_TEXT: &str = "16 EiB (2^64 - 1 bytes)";

/// A byte size: a number with an optional unit b, k, m, g, t (powers of 1024), with or
/// without a trailing `b` (`512m`, `1GB`, `1048576`).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid byte size {} (expected e.g. 512m, 2g)", quoted(text));
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().strip_suffix('b').unwrap_or(unit.trim()) {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let bytes = scaled(number, 1u128 << shift).ok_or_else(bad)?;
    match bytes.and_then(|b| u64::try_from(b).ok()) {
        Some(b) => Ok(b),
        None => Err(format!(
            "byte size {} is larger than the limit of {MAX_BYTES_TEXT}",
            quoted(text)
        )),
    }
}

/// The offending text in an error, cut short: an error line is no place for a megabyte.
pub fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// `1%` or `0.01`: a ratio between 0 and 1.
pub fn parse_ratio(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (text, 1.0),
    };
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && (0.0..=scale).contains(&n) => Ok(n / scale),
        _ => Err(format!("{text:?} is not a ratio (e.g. 1% or 0.01)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration(".5h").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("250ns").unwrap(), Duration::from_nanos(250));
        assert_eq!(parse_duration("1h0.000000001s").unwrap(), Duration::new(3600, 1));
        for bad in ["ten seconds", "", "s", "1x", ".s", "1..2s", "-1s", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn huge_durations_are_errors_naming_the_limit() {
        for huge in [
            "99999999999999999999s",
            "99999999999999999999",
            "999999999999999999999999999999999999999999h",
            "876001h",
            "3000000000000000000s3000000000000000000s3000000000000000000s",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(err.contains("100 years"), "{huge}: {err}");
        }
        assert_eq!(parse_duration("876000h").unwrap(), MAX_DURATION);
        for huge in ["300000000000y", "99999999999999999999999s", "101years"] {
            let err = parse_human_duration(huge).unwrap_err();
            assert!(err.contains("100 years"), "{huge}: {err}");
        }
        assert_eq!(parse_human_duration("5m").unwrap(), Duration::from_secs(300));
    }

    #[test]
    fn sizes_are_exact_or_rejected() {
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("18446744073709551615").unwrap(), u64::MAX);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("").is_err());
        for huge in ["18446744073709551616", "99999999999999999999g", "16384p", "1e400"] {
            let err = parse_bytes(huge).unwrap_err();
            assert!(err.contains("16 EiB") || err.contains("invalid"), "{huge}: {err}");
        }
        assert!(
            parse_bytes("18446744073709551616")
                .unwrap_err()
                .contains("16 EiB")
        );
    }

    #[test]
    fn quoting_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(100);
        let q = quoted(&long);
        assert!(q.ends_with('…') && q.chars().count() < 50, "{q}");
    }
}
