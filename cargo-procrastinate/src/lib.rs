//! `cargo procrastinate`: the library behind the thin binary.
//!
//! - [`cli`]: the clap surface.
//! - [`settings`]: metadata, environment and flags into one [`settings::Resolved`].
//! - [`connect`]: database URL precedence, URL spellings, TLS, password-free display.
//! - [`commands`]: one module per subcommand, on top of `procrastinate_migrations::db`.
//! - [`exit`]: the documented exit codes.

#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod connect;
pub mod exit;
pub mod json;
pub mod lint;
pub mod proof;
pub mod release;
pub mod scratchpad;
pub mod settings;
pub mod signals;
pub mod term;
pub mod tls;

use std::fmt;

/// An error on its way to stderr, with the exit code it ends the process with.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code, one of [`exit`]'s.
    pub code: i32,
    /// What is printed as the error, and what JSON output carries as `message`.
    pub message: String,
    /// What JSON output carries besides the message: a failing migration's place and the
    /// server's fields, or every problem of a malformed set.
    pub migration: Option<Box<json::FailedMigration>>,
    /// Every problem of a malformed migration set; empty otherwise.
    pub problems: Vec<json::ProblemJson>,
}

impl Failure {
    /// A failure with only a message.
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            migration: None,
            problems: Vec::new(),
        }
    }

    /// Bad arguments, settings or migration set, or a refused request ([`exit::USAGE`]).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(exit::USAGE, message)
    }

    /// Cannot connect or authenticate ([`exit::CONNECT`]).
    pub fn connect(message: impl Into<String>) -> Failure {
        Failure::new(exit::CONNECT, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<procrastinate_migrations::db::Error> for Failure {
    fn from(e: procrastinate_migrations::db::Error) -> Failure {
        use procrastinate_migrations::db::Error as E;
        let code = match &e {
            E::Db { abandoned: Some(_), .. } => exit::TIMED_OUT,
            E::Failed(f) if f.abandoned.is_some() => exit::TIMED_OUT,
            E::Db { .. } | E::Failed(_) => exit::FAILED,
            E::Diverged { .. } => exit::DIVERGED,
            E::LockWait { .. } => exit::LOCKED,
            E::Refused(_) => exit::USAGE,
            E::Incompatible(_) => exit::DIVERGED,
            E::Interrupted { .. } => exit::INTERRUPTED,
        };
        let mut failure = Failure::new(code, e.to_string());
        if let E::Failed(f) = &e {
            failure.migration = Some(Box::new(json::FailedMigration::from(&**f)));
        }
        failure
    }
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = cli::parse();
    term::init(
        term::ColorChoice::resolve(cli.global.color),
        cli.global.quiet,
        cli.global.verbose,
    );
    let json = cli.global.message_format == cli::MessageFormat::Json;
    let result = commands::run(cli);
    // Output that could not be written (a full disk; a closed pipe is not a failure) is a
    // failure of its own, said on stderr, never a panic.
    if let Some(why) = term::stdout_error() {
        term::error(&format!("cannot write to stdout: {why}"));
        return match result {
            Ok(code) if code != exit::OK => code,
            Err(f) => f.code,
            Ok(_) => exit::FAILED,
        };
    }
    match result {
        Ok(code) => code,
        Err(f) => {
            // Every message is built from settings and server replies, never from the URL
            // itself, so no password reaches here.
            term::error(&f.message);
            if json {
                // Scripts reading stdout get a document on failure too.
                let error = json::Error {
                    message: f.message,
                    exit_code: f.code,
                    migration: f.migration.map(|m| *m),
                    problems: f.problems,
                };
                json::emit("error", &error);
            }
            f.code
        }
    }
}

/// The README's Rust snippets that stand alone, compiled as doctests (with this crate's
/// dev-dependencies: the library's `sqlx` and `tokio-postgres` sides) so that they cannot go
/// stale; those that need a build script are built by `tests/it/build.rs`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
