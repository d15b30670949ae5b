//! Everything the program shows goes through the `Printer`: it decides human, quiet or
//! JSON output, colour, tables and progress in one place, so commands never print directly.

use crate::error::CtlError;

use comfy_table::{ContentArrangement, Table, presets};
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Ok,
    Warn,
    Bad,
    Dim,
    Bold,
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: OutputFormat,
    pub quiet: bool,
    pub verbose: bool,
    color_out: bool,
    color_err: bool,
    /// Secret values to scrub from anything shown, as a last line of defence; shared by clones.
    secrets: std::sync::Arc<std::sync::RwLock<Vec<String>>>,
}

/// Secrets known to any printer, for the panic hook, which has no printer at hand.
static PANIC_SECRETS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

fn remember_for_panics(secrets: &[String]) {
    let mut known = PANIC_SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for s in secrets {
        if !known.contains(s) {
            known.push(s.clone());
        }
    }
}

/// The last resort for a panic that the parsers and checks did not turn into an error: one
/// `internal error` line asking for a bug report, with known secrets and anything that looks
/// like `SECRET_KEY=value` masked, and no backtrace unless RUST_BACKTRACE asks for one.
pub fn install_panic_hook() {
    // Never the default hook: it prints the message unmasked.
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let known = PANIC_SECRETS.read().map(|k| k.clone()).unwrap_or_default();
        let masked = crate::error::mask_assignments(&crate::error::mask_text(&message, &known));
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "error: internal error: {masked}{place}\n  hint: this is a bug in pricescan-ctl {}; please report it with the command you ran",
            env!("CARGO_PKG_VERSION")
        );
        // Frames name functions and files, never values.
        let trace = std::backtrace::Backtrace::capture();
        if trace.status() == std::backtrace::BacktraceStatus::Captured {
            let _ = writeln!(err, "backtrace:\n{trace}");
        }
    }));
}

impl Printer {
    pub fn new(format: OutputFormat, quiet: bool, verbose: bool, color: ColorChoice) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let decide = |tty: bool| match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color,
        };
        Self {
            format,
            quiet,
            verbose,
            color_out: decide(std::io::stdout().is_terminal()),
            color_err: decide(std::io::stderr().is_terminal()),
            secrets: Default::default(),
        }
    }

    /// A printer that shows nothing but errors: for undo steps run where nobody needs a word.
    pub fn silent() -> Self {
        Self::new(OutputFormat::Human, true, false, ColorChoice::Never)
    }

    pub fn with_secrets(&mut self, secrets: Vec<String>) {
        remember_for_panics(&secrets);
        let mut known = self.secrets.write().unwrap_or_else(|p| p.into_inner());
        for s in secrets {
            if !known.contains(&s) {
                known.push(s);
            }
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    pub fn stdout_is_tty(&self) -> bool {
        std::io::stdout().is_terminal()
    }

    fn scrub(&self, text: &str) -> String {
        let known = self.secrets.read().unwrap_or_else(|p| p.into_inner());
        crate::error::mask_text(text, &known)
    }

    fn paint(&self, on: bool, style: Style, text: &str) -> String {
        if !on {
            return text.to_string();
        }
        let code = match style {
            Style::Ok => "32",
            Style::Warn => "33",
            Style::Bad => "31",
            Style::Dim => "2",
            Style::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// Styled text for stdout.
    pub fn style(&self, style: Style, text: &str) -> String {
        self.paint(self.color_out, style, text)
    }

    fn out(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = writeln!(stdout, "{}", self.scrub(text));
    }

    fn err(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{}", self.scrub(text));
    }

    /// A normal progress or result line: silent with --quiet and with --json.
    pub fn info(&self, text: &str) {
        if !self.quiet && !self.is_json() {
            self.out(text);
        }
    }

    /// Detail shown only with --verbose, on stderr so that it never mixes with results.
    pub fn debug(&self, text: &str) {
        if self.verbose {
            self.err(&self.paint(self.color_err, Style::Dim, text));
        }
    }

    pub fn warn(&self, text: &str) {
        if !self.quiet {
            self.err(&format!(
                "{} {text}",
                self.paint(self.color_err, Style::Warn, "warning:")
            ));
        }
    }

    /// The command's main output (e.g. `config`'s YAML): shown even with --quiet.
    pub fn result(&self, text: &str) {
        self.out(text.trim_end_matches('\n'));
    }

    /// One line on stdout; true when the reader has gone (a closed pipe), so that a stream of
    /// documents can stop cleanly.
    pub fn line_or_closed(&self, text: &str) -> bool {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", self.scrub(text))
            .and_then(|_| stdout.flush())
            .is_err()
    }

    pub fn json(&self, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        self.out(&text);
    }

    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) {
        if self.quiet {
            return;
        }
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Dynamic);
        table.set_header(header.iter().map(|h| self.style(Style::Bold, h)));
        for row in rows {
            table.add_row(row);
        }
        self.out(&table.to_string());
    }

    /// One `doctor` finding: its status word (painted by `style`), its check, what was found,
    /// and the fix on an indented line.
    pub fn finding(&self, style: Style, status: &str, check: &str, message: &str, fix: Option<&str>) {
        if self.quiet && style == Style::Ok {
            return;
        }
        let word = self.paint(self.color_out, style, &format!("{status:<5}"));
        let mut text = format!("{word} {check:<9} {message}");
        if let Some(fix) = fix {
            text.push_str(&format!(
                "\n{:16}{} {fix}",
                "",
                self.paint(self.color_out, Style::Dim, "fix:")
            ));
        }
        self.out(&text);
    }

    /// Asks `question` on the terminal and reads y/yes; None when stdin is not a terminal.
    pub fn confirm(&self, question: &str) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        self.err_inline(&format!("{question} [y/N] "));
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        let answer = answer.trim();
        Some(answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes"))
    }

    fn err_inline(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "{}", self.scrub(text));
        let _ = stderr.flush();
    }

    /// `error: WHAT`, indented `cause:` lines, then `hint:` (DESIGN §4).
    pub fn error(&self, e: &CtlError) {
        let mut text = format!("{} {}", self.paint(self.color_err, Style::Bad, "error:"), e.what);
        for cause in &e.causes {
            text.push_str(&format!("\n  cause: {cause}"));
        }
        if let Some(hint) = &e.hint {
            text.push_str(&format!(
                "\n{} {hint}",
                self.paint(self.color_err, Style::Dim, "hint:")
            ));
        }
        self.err(&text);
    }

    /// A status line redrawn in place on a terminal; None elsewhere (a pipe, a log, --json,
    /// --quiet), where the caller prints a line now and then instead.
    pub fn live_line(&self) -> Option<LiveLine> {
        if self.quiet || self.is_json() || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        Some(LiveLine {
            bar,
            printer: self.clone(),
        })
    }

    /// A progress bar on a terminal, nothing otherwise.
    pub fn progress(&self, len: u64, message: &str) -> indicatif::ProgressBar {
        if self.quiet || self.is_json() || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(len);
        let style = indicatif::ProgressStyle::with_template(
            "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.to_string());
        bar
    }
}

/// A line redrawn in place; cleared when dropped.
pub struct LiveLine {
    bar: indicatif::ProgressBar,
    printer: Printer,
}

impl LiveLine {
    pub fn set(&self, text: &str) {
        self.bar.set_message(self.printer.scrub(text));
    }
}

impl Drop for LiveLine {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Per-layer progress of an image pull: bars on a terminal, one line per image otherwise.
pub struct PullProgress {
    bars: Option<(
        indicatif::MultiProgress,
        std::collections::HashMap<String, indicatif::ProgressBar>,
    )>,
    printer: Printer,
    image: String,
}

impl Printer {
    pub fn pull_progress(&self, image: &str) -> PullProgress {
        let live = !self.quiet && !self.is_json() && std::io::stderr().is_terminal();
        let bars = live.then(|| (indicatif::MultiProgress::new(), std::collections::HashMap::new()));
        if !live {
            self.info(&format!("  pulling  {image}"));
        }
        PullProgress {
            bars,
            printer: self.clone(),
            image: image.to_string(),
        }
    }
}

impl PullProgress {
    pub fn update(&mut self, layer: Option<&str>, status: &str, current: u64, total: u64) {
        let Some((multi, bars)) = self.bars.as_mut() else {
            return;
        };
        let Some(layer) = layer else { return };
        let bar = bars.entry(layer.to_string()).or_insert_with(|| {
            let bar = multi.add(indicatif::ProgressBar::new(total.max(1)));
            let style = indicatif::ProgressStyle::with_template(
                "  {prefix:12} {msg:18} [{bar:30}] {bytes}/{total_bytes}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(layer.chars().take(12).collect::<String>());
            bar
        });
        if total > 0 {
            bar.set_length(total);
            bar.set_position(current);
        }
        bar.set_message(status.to_string());
    }

    pub fn finish(self, ok: bool) {
        if let Some((multi, bars)) = self.bars {
            for bar in bars.values() {
                bar.finish_and_clear();
            }
            let _ = multi.clear();
        }
        let word = if ok { "pulled" } else { "failed" };
        self.printer.info(&format!("  {word:8} {}", self.image));
    }
}

/// One live line per service while the stack converges: spinners on a terminal, a plain
/// line per state change otherwise, nothing with --quiet or --json.
pub struct ServiceBoard {
    printer: Printer,
    live: Option<(
        indicatif::MultiProgress,
        std::collections::HashMap<String, indicatif::ProgressBar>,
    )>,
    width: usize,
    /// Last state printed per service, so a plain line appears only on a change.
    shown: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Printer {
    pub fn service_board(&self, services: &[String]) -> ServiceBoard {
        let width = services.iter().map(|s| s.len()).max().unwrap_or(0);
        let show = !self.quiet && !self.is_json();
        let live = (show && std::io::stderr().is_terminal()).then(|| {
            let multi = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed:>4}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            let bars = services
                .iter()
                .map(|s| {
                    let bar = multi.add(indicatif::ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{s:width$}"));
                    bar.set_message("waiting");
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    (s.clone(), bar)
                })
                .collect();
            (multi, bars)
        });
        ServiceBoard {
            printer: self.clone(),
            live,
            width,
            shown: Default::default(),
        }
    }
}

impl ServiceBoard {
    pub fn update(&self, service: &str, state: &str) {
        match &self.live {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(service) {
                    bar.set_message(state.to_string());
                }
            }
            None => {
                let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
                if shown.get(service).map(String::as_str) != Some(state) {
                    shown.insert(service.to_string(), state.to_string());
                    self.printer
                        .info(&format!("{service:w$}  {state}", w = self.width));
                }
            }
        }
    }

    /// The final word on a service: kept on screen.
    pub fn done(&self, service: &str, ok: bool, text: &str) {
        let style = if ok { Style::Ok } else { Style::Bad };
        match &self.live {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(service) {
                    bar.set_style(
                        indicatif::ProgressStyle::with_template("  {prefix} {msg}")
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                    );
                    bar.finish_with_message(self.printer.paint(self.printer.color_err, style, text));
                }
            }
            None => self
                .printer
                .info(&format!("{service:w$}  {text}", w = self.width)),
        }
    }
}

impl Printer {
    /// Why a service failed: its last health-check output and last log lines, on stderr.
    pub fn service_failure(&self, service: &str, reason: &str, health: Option<&str>, logs: &[String]) {
        let mut text = format!(
            "{} {service}: {reason}",
            self.paint(self.color_err, Style::Bad, "failed:")
        );
        if let Some(h) = health.map(str::trim).filter(|h| !h.is_empty()) {
            text.push_str("\n  last health check:");
            for line in h.lines() {
                text.push_str(&format!("\n    {line}"));
            }
        }
        if !logs.is_empty() {
            text.push_str(&format!("\n  last {} log lines:", logs.len()));
            for line in logs {
                text.push_str(&format!("\n    {line}"));
            }
        }
        self.err(&text);
    }
}

/// 1536 → "1.5 KiB".
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// 3725 → "1h2m"; short and exact enough for an uptime or an age.
pub fn human_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h{}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{}h", secs / 86400, secs % 86400 / 3600),
    }
}

/// Colours that stay readable on dark and light terminals, one per service by name.
const SERVICE_COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "91"];

/// Writes log lines to stdout through a buffer, with an optional coloured service prefix.
/// A closed pipe (`| head`) comes back as an error so that the caller can stop cleanly.
pub struct LogWriter {
    out: std::io::BufWriter<std::io::Stdout>,
    color: bool,
    width: usize,
    prefix: bool,
    timestamps: bool,
}

impl Printer {
    pub fn log_writer(&self, services: &[String], prefix: bool, timestamps: bool) -> LogWriter {
        LogWriter {
            out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            color: self.color_out,
            width: services.iter().map(|s| s.len()).max().unwrap_or(0),
            prefix,
            timestamps,
        }
    }
}

impl LogWriter {
    fn colour(service: &str) -> &'static str {
        let hash = service
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        SERVICE_COLOURS[hash % SERVICE_COLOURS.len()]
    }

    pub fn line(&mut self, service: &str, stamp: &str, text: &str) -> std::io::Result<()> {
        if self.prefix {
            // A swarm task's label (`pricescan-api.2`) is longer than the service's name.
            self.width = self.width.max(service.len());
            let w = self.width;
            match self.color {
                true => write!(self.out, "\x1b[{}m{service:w$} |\x1b[0m ", Self::colour(service))?,
                false => write!(self.out, "{service:w$} | ")?,
            }
        }
        if self.timestamps {
            write!(self.out, "{stamp} ")?;
        }
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// A note inside the stream (a container was replaced), dimmed on a terminal.
    pub fn note(&mut self, service: &str, text: &str) -> std::io::Result<()> {
        let text = if self.color {
            format!("\x1b[2m-- {text}\x1b[0m")
        } else {
            format!("-- {text}")
        };
        self.line(service, "", &text)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// True once whoever read stdout has gone (`| head` exited). A quiet `logs -f` would
    /// otherwise only notice at its next write.
    pub fn reader_gone(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let stdout = std::io::stdout();
        let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&stdout), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
            Err(_) => false,
        }
    }
}

/// The terminal beyond lines of text: generated files and a full screen.
impl Printer {
    /// Text generated from the clap tree (completions, the man page), written to stdout as
    /// it is: it carries no configuration, so there is nothing to mask.
    /// A reader that went away (`| head`) is not an error.
    pub fn raw(&self, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        match write(&mut out).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            done => done,
        }
    }

    /// The alternate screen for a live view, until `leave_full_screen`. ratatui's init also
    /// installs a panic hook that gives the terminal back before ours reports.
    pub fn full_screen(&self) -> ratatui::DefaultTerminal {
        ratatui::init()
    }

    pub fn leave_full_screen(&self) {
        ratatui::restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(3725), "1h2m");
        assert_eq!(human_age(90000), "1d1h");
    }
}
