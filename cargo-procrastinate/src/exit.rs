//! Exit codes: the one place they are defined. README.md's table is checked against this list
//! by the tidy test, so the two cannot drift.

/// Success (for `check`: at head, every applied file unchanged).
pub const OK: i32 = 0;
/// A migration failed and was rolled back (earlier ones stay applied), or the database failed.
pub const FAILED: i32 = 1;
/// Bad arguments, settings or migration set; a refused request (downgrade, stamp backwards).
pub const USAGE: i32 = 2;
/// Cannot connect or authenticate.
pub const CONNECT: i32 = 3;
/// `check`: the database is behind head (pending migrations, or none recorded).
pub const BEHIND: i32 = 4;
/// The database and the files disagree (a changed, inserted, gone or renamed file, a database
/// ahead of the files), or they disagree with a schema: `verify`'s reference, `stamp`'s check.
pub const DIVERGED: i32 = 5;
/// Gave up waiting for another process's migration lock (`lock-wait`).
pub const LOCKED: i32 = 6;

/// A wait on the server exceeded its bound (`round-trip-timeout`, with the server unreachable
/// or the answer lost): the connection was given up; the message says what is known.
pub const TIMED_OUT: i32 = 7;

/// `lint` found an error-level finding (or `upgrade --lint` did, and applied nothing).
pub const LINT: i32 = 8;

/// Interrupted by SIGINT or SIGTERM: the migration in flight was cancelled and rolled back.
pub const INTERRUPTED: i32 = 130;

/// `(code, meaning)` for docs and the tidy test.
pub const ALL: &[(i32, &str)] = &[
    (OK, "success; for `check`, the database is at head and every applied file is unchanged"),
    (FAILED, "a migration failed and was rolled back (earlier ones stay applied), or the database failed"),
    (USAGE, "bad arguments, settings or migration set; a refused request (downgrade, stamp backwards)"),
    (CONNECT, "cannot connect or authenticate"),
    (BEHIND, "`check`: the database is behind head"),
    (DIVERGED, "the database and the files disagree (changed, inserted, gone or renamed file; the database is ahead), or a schema does not match (`verify`, `stamp`, `check --schema`, `diff`, an unproved `new --autogenerate`); nothing else was changed"),
    (LOCKED, "gave up waiting for another process's migration lock (`lock-wait`)"),
    (TIMED_OUT, "gave up waiting for the server's answer (`round-trip-timeout`: the server or a proxy stopped answering, or the answer was lost); the message says what is known of the database"),
    (LINT, "`lint` found an error-level finding; with `upgrade --lint`, nothing was applied"),
    (INTERRUPTED, "interrupted (SIGINT, SIGTERM): the migration in flight was cancelled and rolled back; a second signal exits at once"),
];
