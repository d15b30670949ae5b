//! Turning the engine's log chunks into whole lines. With timestamps on, every log message
//! starts with its RFC 3339 time; a line longer than the logging driver's limit arrives as
//! several messages, each with its own time, so a message that does not end in a newline
//! continues in the next one of the same output.

use crate::engine::Output;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Nanoseconds since the epoch, for ordering; 0 when the message had no timestamp.
    pub nanos: i64,
    /// The engine's timestamp as it sent it.
    pub stamp: String,
    pub text: String,
}

#[derive(Default)]
pub struct Assembler {
    /// A line still waiting for its end, per output.
    pending: HashMap<Output, (i64, String, Vec<u8>)>,
}

/// `2026-11-25T09:20:37.123456789Z rest` → (stamp, rest).
fn split_stamp(chunk: &[u8]) -> Option<(&str, &[u8])> {
    let space = chunk.iter().take(40).position(|&b| b == b' ')?;
    let stamp = std::str::from_utf8(&chunk[..space]).ok()?;
    let looks_like_time = stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' && stamp.as_bytes()[10] == b'T';
    looks_like_time.then(|| (stamp, &chunk[space + 1..]))
}

/// Nanoseconds since the epoch of the engine's `YYYY-MM-DDTHH:MM:SS.fffffffffZ`. Parsed by
/// hand on the hot path (one call per log line); other RFC 3339 forms go through chrono.
pub fn parse_nanos(stamp: &str) -> i64 {
    fast_nanos(stamp.as_bytes()).unwrap_or_else(|| {
        chrono::DateTime::parse_from_rfc3339(stamp)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .unwrap_or(0)
    })
}

fn fast_nanos(b: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let secs = hh * 3600 + mm * 60 + ss;
    let mut nanos = 0i64;
    let rest = match b.get(19) {
        Some(b'.') => {
            let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
            let frac = num(20..20 + digits.min(9))?;
            nanos = frac * 10i64.pow(9 - digits.min(9) as u32);
            &b[20 + digits..]
        }
        _ => &b[19..],
    };
    if rest != b"Z" {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // Checked: i64 nanoseconds end in 1677 and 2262, and a garbled year is no panic.
    days.checked_mul(86_400)?
        .checked_add(secs)?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

impl Assembler {
    /// Feeds one chunk; calls `emit` for every line it completes.
    pub fn push(&mut self, output: Output, chunk: &[u8], emit: &mut impl FnMut(LogLine)) {
        let (stamp, mut rest) = match split_stamp(chunk) {
            Some((stamp, rest)) => (Some(stamp), rest),
            None => (None, chunk),
        };
        let entry = self
            .pending
            .entry(output)
            .or_insert_with(|| (0, String::new(), Vec::new()));
        // A new line takes the time of its first message.
        if let Some(s) = stamp.filter(|_| entry.2.is_empty()) {
            *entry = (parse_nanos(s), s.to_string(), Vec::new());
        }
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            entry.2.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let bytes = std::mem::take(&mut entry.2);
            emit(LogLine {
                nanos: entry.0,
                stamp: entry.1.clone(),
                text: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        entry.2.extend_from_slice(rest);
    }

    /// Emits what is left when the stream ends (a last line without a newline).
    pub fn finish(&mut self, emit: &mut impl FnMut(LogLine)) {
        for (_, (nanos, stamp, bytes)) in self.pending.drain() {
            if !bytes.is_empty() {
                emit(LogLine {
                    nanos,
                    stamp,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[(Output, &[u8])]) -> Vec<LogLine> {
        let mut a = Assembler::default();
        let mut out = Vec::new();
        for (o, c) in chunks {
            a.push(*o, c, &mut |l| out.push(l));
        }
        a.finish(&mut |l| out.push(l));
        out
    }

    #[test]
    fn one_message_per_chunk() {
        let got = lines(&[
            (Output::Stdout, b"2026-11-25T09:00:00.000000001Z hello\n"),
            (Output::Stderr, b"2026-11-25T09:00:00.5Z oops\n"),
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].text, "hello");
        assert_eq!(got[0].stamp, "2026-11-25T09:00:00.000000001Z");
        assert_eq!(got[1].text, "oops");
        assert!(got[1].nanos > got[0].nanos);
    }

    #[test]
    fn a_long_line_cut_into_several_messages_is_joined() {
        let got = lines(&[
            (Output::Stdout, b"2026-11-25T09:00:00Z part one, "),
            (Output::Stdout, b"2026-11-25T09:00:00.1Z part two, "),
            (Output::Stdout, b"2026-11-25T09:00:00.2Z end\n"),
        ]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text, "part one, part two, end");
        assert_eq!(got[0].stamp, "2026-11-25T09:00:00Z");
    }

    #[test]
    fn stdout_and_stderr_do_not_mix_partial_lines() {
        let got = lines(&[
            (Output::Stdout, b"2026-11-25T09:00:00Z out-"),
            (Output::Stderr, b"2026-11-25T09:00:01Z err\n"),
            (Output::Stdout, b"2026-11-25T09:00:02Z tail\n"),
        ]);
        let texts: Vec<&str> = got.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["err", "out-tail"]);
    }

    #[test]
    fn invalid_utf8_and_a_missing_final_newline_survive() {
        let got = lines(&[(Output::Stdout, b"2026-11-25T09:00:00Z bad \xff byte\nlast")]);
        assert_eq!(got[0].text, "bad \u{fffd} byte");
        assert_eq!(got[1].text, "last");
    }

    #[test]
    fn fast_timestamp_parsing_agrees_with_chrono() {
        for stamp in [
            "2026-11-25T09:20:37.123456789Z",
            "2000-02-29T23:59:59Z",
            "1970-01-01T00:00:00.5Z",
            "2038-01-19T03:14:08.000001Z",
        ] {
            let expected = chrono::DateTime::parse_from_rfc3339(stamp)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(fast_nanos(stamp.as_bytes()), Some(expected), "{stamp}");
        }
        assert_eq!(fast_nanos(b"2026-11-25T09:20:37+01:00"), None);
        // Past what i64 nanoseconds hold, or garbled: no panic, no timestamp.
        for stamp in [
            "3000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "1000-01-01T00:00:00Z",
            "2026-99-99T99:99:99Z",
            "2262-04-11T23:47:16.854775808Z",
        ] {
            assert_eq!(parse_nanos(stamp), 0, "{stamp}");
        }
        assert_eq!(
            parse_nanos("2026-11-25T10:20:37+01:00"),
            parse_nanos("2026-11-25T09:20:37Z")
        );
    }

    #[test]
    fn chunks_without_timestamps_still_split() {
        let got = lines(&[(Output::Stdout, b"a\nb\n")]);
        assert_eq!(
            got.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(got[0].nanos, 0);
    }
}
