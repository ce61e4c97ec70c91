//! stderr, for people: colour (`--color`, `CARGO_TERM_COLOR`, `NO_COLOR`), `-q`/`-v`, and a
//! spinner for the migration in flight when stderr is a terminal (plain lines otherwise, so CI
//! logs and pipes read the same as before). Data never goes through here: it is on stdout.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use clap::ValueEnum;

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal.
    Auto,
    /// Colour even into a pipe or file.
    Always,
    /// No colour.
    Never,
}

/// How stderr is written for this run.
#[derive(Clone, Copy, Debug)]
pub struct Term {
    /// Whether stderr gets colour, `--color` resolved against the terminal.
    pub color: bool,
    /// `-q`: no progress, only errors.
    pub quiet: bool,
    /// `-v` count.
    pub verbose: u8,
    /// stderr is a terminal: progress may redraw a line.
    pub interactive: bool,
}

static TERM: OnceLock<Term> = OnceLock::new();

impl ColorChoice {
    /// The flag, else `CARGO_TERM_COLOR` (as cargo passes it on), else `NO_COLOR`, else auto.
    pub fn resolve(flag: Option<ColorChoice>) -> ColorChoice {
        flag.or_else(|| {
            std::env::var("CARGO_TERM_COLOR")
                .ok()
                .and_then(|v| ColorChoice::from_str(v.trim(), true).ok())
        })
        .or_else(|| {
            std::env::var_os("NO_COLOR")
                .filter(|v| !v.is_empty())
                .map(|_| ColorChoice::Never)
        })
        .unwrap_or(ColorChoice::Auto)
    }
}

/// Decides once, at start-up; later calls to [`get`] see it.
pub fn init(color: ColorChoice, quiet: bool, verbose: u8) -> Term {
    let interactive = std::io::stderr().is_terminal();
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => interactive,
    };
    *TERM.get_or_init(|| Term {
        color,
        quiet,
        verbose,
        interactive,
    })
}

/// This run's settings (plain, not quiet, when [`init`] was not called: tests of the library).
pub fn get() -> Term {
    *TERM.get_or_init(|| Term {
        color: false,
        quiet: false,
        verbose: 0,
        interactive: false,
    })
}

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();
const NOTE: Style = AnsiColor::Cyan.on_default().bold();
const GOOD: Style = AnsiColor::Green.on_default().bold();
const MARKER: Style = AnsiColor::Blue.on_default().bold();

fn paint(style: Style, text: &str) -> String {
    if get().color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// A line on stderr. A stderr that is closed or full (`2>&1 | head -1`, `2>/dev/full`) is not
/// a reason to stop: the work goes on (a migration half-told is worse than an unread line).
fn to_stderr(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `error: ...` (always shown, also with `-q`).
pub fn error(message: &str) {
    to_stderr(&format!("{} {}", paint(ERROR, "error:"), colour_body(message)));
}

/// A warning shown even with `-q` (a password on the command line).
pub fn warn(message: &str) {
    to_stderr(&colour_line(&format!("warning: {message}")));
}

/// A log line (not with `-q`): `warning:`, `note:`, `hint:`, `next:` and `applied` are coloured.
pub fn log(line: &str) {
    if !get().quiet {
        to_stderr(&colour_line(line));
    }
}

/// A line only `-v` shows.
pub fn verbose(line: &str) {
    if get().verbose > 0 && !get().quiet {
        to_stderr(&colour_line(line));
    }
}

/// What became of stdout: `None` while every write went through.
static STDOUT: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// Data on stdout (the command's result: text or JSON), never a panic. A reader that left
/// (`| head -1`) or a full disk stops further output; the command itself goes on, and
/// [`stdout_error`] says at the end whether that was a failure.
pub fn data(text: &str) {
    use std::io::Write;
    let mut failed = STDOUT.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        *failed = Some(e);
    }
}

/// [`data`] and a newline.
pub fn data_line(text: &str) {
    data(&format!("{text}\n"));
}

/// Why stdout could not be written, if it could not and that is a failure (a closed pipe is
/// not: the reader has what it wanted).
pub fn stdout_error() -> Option<String> {
    STDOUT.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe).map(ToString::to_string)
}

fn colour_line(line: &str) -> String {
    if !get().color {
        return line.to_string();
    }
    for (prefix, style) in [
        ("warning:", WARNING),
        ("note:", NOTE),
        ("hint:", NOTE),
        ("next:", NOTE),
        ("applied", GOOD),
        ("upgraded", GOOD),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return format!("{}{}", paint(style, prefix), colour_body(rest));
        }
    }
    colour_body(line)
}

/// The gutter and marker of an excerpt (`12 | ...`, `   |     ^`), and `= detail:` lines.
fn colour_body(text: &str) -> String {
    if !get().color {
        return text.to_string();
    }
    let lines: Vec<String> = text
        .split('\n')
        .map(|l| {
            match l
                .find(" | ")
                .or_else(|| l.ends_with(" |").then(|| l.len() - 2))
            {
                Some(bar) if l[..bar].trim().chars().all(|c| c.is_ascii_digit()) => {
                    let (gutter, rest) = l.split_at(bar + 2);
                    let rest = if rest.trim_start().starts_with('^') {
                        paint(ERROR, rest)
                    } else {
                        rest.to_string()
                    };
                    format!("{}{rest}", paint(MARKER, gutter))
                }
                _ => match l.trim_start().strip_prefix("= ") {
                    Some(_) => {
                        let indent = l.len() - l.trim_start().len();
                        format!("{}{}", &l[..indent], paint(MARKER, &l[indent..indent + 1]))
                            + &l[indent + 1..]
                    }
                    None => l.to_string(),
                },
            }
        })
        .collect();
    lines.join("\n")
}

/// What a long step shows while it runs: a spinner with the elapsed time on a terminal,
/// nothing otherwise (the line that says it finished is printed either way).
pub struct Spinner(Option<indicatif::ProgressBar>);

impl Spinner {
    /// Shows `message` with a spinner, unless `-q` or stderr is not a terminal.
    pub fn start(message: String) -> Spinner {
        let t = get();
        if t.quiet || !t.interactive {
            return Spinner(None);
        }
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .expect("a valid template");
        bar.set_style(style.tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "));
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }

    /// Removes the spinner (then say how it ended with [`log`]).
    pub fn clear(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_beats_cargo_term_color_which_beats_no_color() {
        // One test: the environment is process-wide.
        std::env::set_var("CARGO_TERM_COLOR", "always");
        std::env::set_var("NO_COLOR", "1");
        assert_eq!(
            ColorChoice::resolve(Some(ColorChoice::Never)),
            ColorChoice::Never
        );
        assert_eq!(ColorChoice::resolve(None), ColorChoice::Always);
        std::env::remove_var("CARGO_TERM_COLOR");
        assert_eq!(ColorChoice::resolve(None), ColorChoice::Never);
        std::env::remove_var("NO_COLOR");
        assert_eq!(ColorChoice::resolve(None), ColorChoice::Auto);
    }
}
