//! Applying a set to PostgreSQL and checking a database against a set.
//!
//! Rules that hold everywhere in this module:
//! - Only the simple-query protocol is used (no named prepared statements), and every setting is
//!   `SET LOCAL` inside the transaction that needs it, so it all works behind PgBouncer in
//!   transaction-pooling mode, where consecutive transactions may reach different backends.
//! - Each migration runs in its own transaction together with its tracking row: a failure leaves
//!   the database exactly at the revision before it.
//! - Serialization is a transaction-level advisory lock taken inside each such transaction, with
//!   the tracking table re-read under it (session locks do not survive transaction pooling).

mod lock;
mod session;
mod status;
mod upgrade;

pub use session::{Abandoned, Conn, ConnectError, Session};

use std::fmt;
use std::time::Duration;

pub use crate::state::{AcceptChanged, Applied, Divergence, Status};
pub use upgrade::{Event, FromSchema, UpgradeReport};


use crate::compat::{self, Verdict};
use crate::config;
use crate::diagnostic::Excerpt;
use crate::migration::{Migration, Revision};
use crate::set::SetDef;
use crate::state::Refusal;
use crate::tracking::{quote_ident, TrackingTable, UNNAMED_SET};

/// How to talk to one set in one database: the resolved settings of the CLI, or what an
/// application's generated module says.
#[derive(Clone, Debug)]
pub struct Options {
    /// The set's name (`None`: the one set of a plain `migrations = "dir"`).
    pub set: Option<String>,
    /// The first configured set takes over the unnamed set's rows (see
    /// [`TrackingTable::claim_sql`]).
    pub claim_unnamed: bool,
    /// The `schema` setting: each transaction's `search_path` is this schema alone (`None`: the
    /// server's `search_path`).
    pub schema: Option<String>,
    /// Where the set is tracked.
    pub table: TrackingTable,
    /// `lock_timeout` for each migration's statements.
    pub lock_timeout: Duration,
    /// `statement_timeout` for each migration's statements (`None`: the server's; zero: none).
    pub statement_timeout: Option<Duration>,
    /// How many times a migration that ran out of `lock_timeout` is tried again (backing off
    /// 1 s, 2 s, 4 s... up to 30 s between tries).
    pub lock_retries: u32,
    /// Longest wait for another process's migration lock.
    pub lock_wait: Duration,
    /// Which applied files that changed since `upgrade` may accept (none by default).
    pub accept_changed: AcceptChanged,
    /// Files that sort before applied ones (from a merged branch) are pending, run first, not
    /// a divergence (the `out-of-order` setting; off by default).
    pub out_of_order: bool,
    /// Set (by a signal handler) to stop `upgrade` before its next migration; the migration in
    /// flight is stopped by a cancel request (see `postgres::Client::cancel_token`).
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            set: None,
            claim_unnamed: false,
            schema: None,
            table: TrackingTable::new(config::DEFAULT_VERSION_TABLE, None).expect("valid default"),
            lock_timeout: config::parse_duration(config::DEFAULT_LOCK_TIMEOUT).expect("valid default"),
            lock_wait: config::parse_duration(config::DEFAULT_LOCK_WAIT).expect("valid default"),
            statement_timeout: None,
            lock_retries: 0,
            accept_changed: AcceptChanged::None,
            out_of_order: false,
            interrupt: None,
        }
    }
}

impl Options {
    /// Options for the `schema` and `version-table` settings, defaults otherwise. An
    /// application passes the `SCHEMA` and `VERSION_TABLE` of its generated module.
    pub fn new(schema: Option<&str>, version_table: &str) -> Result<Options, String> {
        Ok(Options {
            schema: schema.map(str::to_string),
            table: TrackingTable::new(version_table, schema)?,
            ..Options::default()
        })
    }

    /// Options for one set of a generated module; `first` when it is the first of its `SETS`.
    pub fn for_set(def: &SetDef, first: bool) -> Result<Options, String> {
        Ok(Options {
            set: def.name.map(str::to_string),
            claim_unnamed: first && def.name.is_some(),
            ..Options::new(def.schema, def.version_table)?
        })
    }

    /// As stored in the tracking table's `set_name`.
    pub fn set_name(&self) -> &str {
        self.set.as_deref().unwrap_or(UNNAMED_SET)
    }

    /// `app@0002` for a named set, `0002` otherwise.
    pub fn label(&self, revision: Option<Revision>) -> String {
        crate::label(self.set.as_deref(), revision)
    }

    /// `SET LOCAL`s that every transaction of ours starts with.
    /// Settings for each of our transactions only (applied by the guard with `set_config(..,
    /// true)`, like `SET LOCAL`), so nothing leaks to the pool's next client.
    fn local_settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = vec![("lock_timeout", self.lock_timeout.as_millis().to_string())];
        if let Some(t) = self.statement_timeout {
            settings.push(("statement_timeout", t.as_millis().to_string()));
        }
        if let Some(schema) = &self.schema {
            // Only the configured schema: unqualified names in upstream files must not find (or
            // drop) objects of another installation in `public`.
            settings.push(("search_path", quote_ident(schema)));
        }
        settings
    }
}

/// What went wrong, in terms a user can act on. The CLI maps each variant to an exit code.
/// `Debug` prints the same text as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>`
/// ends with the message and what to do, not a struct dump.
pub enum Error {
    /// Talking to the server failed outside any migration.
    Db {
        /// What the tool was doing (`cannot commit the tracking table`).
        context: String,
        /// The driver's error.
        source: postgres::Error,
        /// The session gave up waiting for the answer (a bounded [`Conn`]): how long, and why.
        abandoned: Option<Abandoned>,
    },
    /// The database and the files of a set (named, if it has a name) disagree; nothing was changed.
    Diverged {
        /// The set's name, if it has one.
        set: Option<String>,
        /// Every disagreement found.
        divergences: Vec<Divergence>,
    },
    /// A migration failed and was rolled back; earlier ones stay applied.
    Failed(Box<MigrationFailure>),
    /// Another process held the migration lock for longer than `lock-wait`.
    LockWait {
        /// How long this process waited.
        waited: Duration,
        /// The holder (pid, application, user, client address, transaction age); `None` when
        /// it had just let go or cannot be seen.
        holder: Option<String>,
    },
    /// The request makes no sense for this database (a downgrade, a stamp below current).
    Refused(String),
    /// This build may not run on the database (the start-up check): what to do is in the verdict.
    Incompatible(Box<Verdict>),
    /// Stopped by a signal: the migration in flight (if any) was cancelled and rolled back.
    Interrupted {
        /// The set's name, if it has one.
        set: Option<String>,
        /// The migration in flight (revision, file name), cancelled; `None` between migrations.
        stopped: Option<(Revision, String)>,
        /// Where the set is now (`None`: base): `upgrade` again resumes there.
        at: Option<Revision>,
        /// The migration in flight ran outside a transaction (`-- no-transaction`): nothing
        /// rolled back what it did before the cancel.
        outside_transaction: bool,
    },
}

/// A migration that failed, with what the server said and where in the file.
#[derive(Debug)]
pub struct MigrationFailure {
    /// The set's name, if it has one.
    pub set: Option<String>,
    /// The failed migration's revision.
    pub revision: Revision,
    /// The failed migration's file.
    pub file_name: String,
    /// 1-based line in the file of the error's position, or else of the failing statement.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the error's position, when the server gave one.
    pub column: Option<usize>,
    /// The server's message, with what to do about it when the tool knows.
    pub message: String,
    /// The server's DETAIL, HINT and CONTEXT (where in a function or DO block).
    pub detail: Option<String>,
    /// The server's HINT.
    pub hint: Option<String>,
    /// The server's CONTEXT.
    pub context: Option<String>,
    /// The server's five-character error code (`42P01`); `None` when the error did not come
    /// from the server.
    pub sqlstate: Option<String>,
    /// The file's lines around `line`, the position marked.
    pub excerpt: Option<Excerpt>,
    /// The last revision still applied (when [`outcome`](Self::outcome) says it is known).
    pub current: Option<Revision>,
    /// What became of the migration, and so whether `current` is known.
    pub outcome: Outcome,
    /// The session gave up waiting for the answer (a bounded [`Conn`]): how long, and why.
    pub abandoned: Option<Abandoned>,
}

/// What became of a migration that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rolled back with its tracking row: the set is at [`MigrationFailure::current`].
    RolledBack,
    /// It ran outside any transaction (`-- no-transaction`) and is not recorded: what it did
    /// before failing stays (a CREATE INDEX CONCURRENTLY leaves an INVALID index).
    NotRecorded,
    /// The connection was lost while it ran: whether it (and the migrations sent with it)
    /// committed is unknown. `read` is the position read afterwards on a new connection
    /// (`None` when none was read; [`MigrationFailure::current`] is then no position at all).
    Unknown {
        /// The position the tracking table gave on a new connection (`Some(None)`: base).
        read: Option<Option<Revision>>,
    },
}

impl MigrationFailure {
    /// The failure of `m` with the server's error `e`; `at` is where in the file: a byte offset,
    /// exact (the server's position) or the start of the failing statement.
    pub(crate) fn new(
        opts: &Options,
        m: &Migration,
        e: &postgres::Error,
        at: Option<(usize, bool)>,
        current: Option<Revision>,
    ) -> MigrationFailure {
        let db = e.as_db_error();
        let excerpt = at.map(|(offset, exact)| {
            if exact {
                Excerpt::at_offset(&m.sql, offset)
            } else {
                Excerpt::at_line(&m.sql, crate::lexer::line_of(&m.sql, offset))
            }
        });
        let mut message = db.map_or_else(|| describe(e), |d| d.message().to_string());
        // The earlier text of a file upstream replaced: say so, and what replaced it.
        if let Some(edit) = crate::upstream::edit_of(&m.file_name, &m.checksum.to_string()) {
            message.push_str(&format!(
                " (this is the text of {} that {} shipped; upstream replaced it in {} because {}: vendor {} or later)",
                m.file_name, edit.earlier_releases, edit.revised_in, edit.why, edit.revised_in
            ));
        }
        MigrationFailure {
            set: opts.set.clone(),
            revision: m.revision,
            file_name: m.file_name.to_string(),
            line: excerpt.as_ref().map(|x| x.line),
            column: excerpt.as_ref().and_then(|x| x.column),
            message,
            detail: db.and_then(|d| d.detail()).map(str::to_string),
            hint: db.and_then(|d| d.hint()).map(str::to_string),
            context: db.and_then(|d| d.where_()).map(str::to_string),
            sqlstate: db.map(|d| d.code().code().to_string()),
            excerpt,
            current,
            outcome: Outcome::RolledBack,
            abandoned: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Db { context, abandoned: Some(a), .. } => write!(f, "{context}: {} (gave up after {}s)", a.why, a.waited.as_secs()),
            Error::Db { context, source, .. } => write!(f, "{context}: {}", describe(source)),
            Error::Diverged { set, divergences } => {
                let of = set.as_ref().map(|s| format!(" of set `{s}`")).unwrap_or_default();
                write!(f, "the database and the migration files{of} disagree (nothing was changed):")?;
                divergences.iter().try_for_each(|d| write!(f, "\n  {}", d.display_in(set.as_deref())))
            }
            Error::Failed(fail) => {
                let at = match (fail.line, fail.column) {
                    (Some(l), Some(c)) => format!(":{l}:{c}"),
                    (Some(l), None) => format!(":{l}"),
                    _ => String::new(),
                };
                let label = |r: Option<Revision>| crate::label(fail.set.as_deref(), r);
                write!(f, "migration {} failed at {}{at}: {}", label(Some(fail.revision)), fail.file_name, fail.message)?;
                if let Some(code) = &fail.sqlstate {
                    write!(f, " (SQLSTATE {code})")?;
                }
                if let Some(excerpt) = &fail.excerpt {
                    write!(f, "\n  {}", excerpt.to_string().replace('\n', "\n  "))?;
                }
                for (what, text) in [
                    ("detail", &fail.detail),
                    ("hint", &fail.hint),
                    ("context", &fail.context),
                ] {
                    if let Some(text) = text {
                        write!(f, "\n  = {what}: {}", text.replace('\n', "\n    "))?;
                    }
                }
                let now = |r: Option<Revision>| if r.is_none() { format!("{} (nothing applied)", label(None)) } else { label(r) };
                match &fail.outcome {
                    Outcome::RolledBack => write!(f, "\nit was rolled back; the database is at {}", now(fail.current)),
                    Outcome::NotRecorded => write!(
                        f,
                        "\nit ran outside a transaction, so nothing rolled it back: what it did before failing stays, and it is \
                         not recorded; the database is at {}",
                        now(fail.current)
                    ),
                    Outcome::Unknown { read } => {
                        match &fail.abandoned {
                            Some(a) => write!(f, "\nno answer after {}s: {}; so whether it committed is unknown", a.waited.as_secs(), a.why)?,
                            None => write!(f, "\nthe connection was lost while it ran, so whether it committed is unknown")?,
                        }
                        match read {
                            None => write!(f, "; `cargo procrastinate current` says where the database is"),
                            Some(r) => write!(f, "; read again on a new connection, the database is at {}", now(*r)),
                        }
                    }
                }
            }
            Error::LockWait { waited, holder } => {
                write!(f, "gave up after {}s waiting for the migration lock", waited.as_secs())?;
                match holder {
                    Some(h) => write!(f, ", held by {h}"),
                    None => write!(f, " (its holder had just let go, or is not visible to this user)"),
                }?;
                write!(f, "; raise `lock-wait` or retry once that process is done")
            }
            Error::Refused(why) => f.write_str(why),
            Error::Interrupted { set, stopped, at, outside_transaction } => {
                let label = |r: Option<Revision>| crate::label(set.as_deref(), r);
                match stopped {
                    Some((rev, file)) if *outside_transaction => write!(
                        f,
                        "interrupted: migration {} ({file}) was stopped; it ran outside a transaction, so what it did before \
                         stays (a CREATE INDEX CONCURRENTLY leaves an INVALID index: `DROP INDEX CONCURRENTLY` it), and it is \
                         not recorded",
                        label(Some(*rev))
                    )?,
                    Some((rev, file)) => write!(f, "interrupted: migration {} ({file}) was stopped and rolled back", label(Some(*rev)))?,
                    None => write!(f, "interrupted between migrations")?,
                }
                write!(f, "; the database is at {}; `upgrade` again resumes there", label(*at))
            }
            Error::Incompatible(verdict) => match &verdict.set {
                Some(set) => write!(f, "set `{set}`: {verdict}"),
                None => write!(f, "{verdict}"),
            },
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// The server's message with its detail and hint, or the client-side error.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_string();
            if let Some(d) = db.detail() {
                s.push_str(&format!(" (detail: {d})"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!(" (hint: {h})"));
            }
            s
        }
        None => {
            // postgres::Error's Display is terse ("db error", "error connecting to server");
            // the source carries the useful part (e.g. "Connection refused").
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

/// The error of a round trip on `client` that failed, doing `context`: with why the session gave
/// up waiting, when it did. Called after the round trip, so that it sees the session's state.
fn db_err(client: &dyn Session, context: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let context = context.into();
    let abandoned = client.abandoned().cloned();
    move |source| Error::Db { context, source, abandoned }
}

/// Reads what the database records and compares it with `migrations`, changing nothing.
pub fn status(client: &mut dyn Session, migrations: &[Migration], opts: &Options) -> Result<Status, Error> {
    // Two reads, no transaction: the queries name the table in full.
    let applied = status::read_applied(client, opts)?;
    Ok(Status::compare_with(applied, migrations, opts.out_of_order))
}

/// For an application at start-up, one set: Ok when this build may run on the database (see
/// [`crate::compat`]: its head, or its head release's `post` still pending, or the next
/// release's `pre` applied already), with the revision the database is at among the files;
/// otherwise an error that says what to do.
pub fn verify(client: &mut dyn Session, migrations: &'static [Migration], opts: &Options) -> Result<Revision, Error> {
    let def = SetDef {
        name: None,
        migrations,
        schema: None,
        version_table: "",
        window: crate::compat::Window::of(migrations),
    };
    let rows = status::read_applied(client, opts)?;
    let mut verdict = compat::check(&def, rows);
    // The label comes from the options (the set's name is not 'static here).
    match verdict.compatibility {
        compat::Compatibility::Compatible { current, .. } => Ok(current),
        _ => {
            verdict.set = None;
            let prefix = opts.set.as_ref().map(|s| format!("set `{s}`: ")).unwrap_or_default();
            Err(Error::Refused(format!("{prefix}{verdict}")))
        }
    }
}

pub use crate::compat::CHECK_TIMEOUT;

/// The start-up verdict on every set of a generated module (`SETS`), in order, whatever it is;
/// bounded by [`CHECK_TIMEOUT`] (see [`check_sets_within`]).
pub fn check_sets(client: &mut dyn Session, sets: &[SetDef]) -> Result<Vec<Verdict>, Error> {
    check_sets_within(client, sets, CHECK_TIMEOUT)
}

/// [`check_sets`], all of it within `timeout` on the server (each read in a read-only
/// transaction with `statement_timeout` and `lock_timeout`): past it, an error that says the
/// check gave up and why (the exit code of the CLI's `check` for it is 7). A silent server
/// is bounded only by a session that bounds its round trips, such as [`Conn`].
pub fn check_sets_within(client: &mut dyn Session, sets: &[SetDef], timeout: Duration) -> Result<Vec<Verdict>, Error> {
    let started = std::time::Instant::now();
    let left = || Some(timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1)));
    let mut verdicts = Vec::with_capacity(sets.len());
    for (i, def) in sets.iter().enumerate() {
        let opts = Options::for_set(def, i == 0).map_err(Error::Refused)?;
        let rows = status::read_applied_within(client, &opts, left())?;
        let found = if rows.as_ref().is_none_or(Vec::is_empty) { unadopted_within(client, def.migrations, &opts, left())? } else { Vec::new() };
        let verdict = compat::check_adopted(def, rows, found);
        crate::events::verdict(&verdict);
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// The set's objects (relations, types, routines its files create) that exist in its schema,
/// a few: asked when nothing of the set is recorded, to tell an empty database from one built
/// without this tool (see [`compat::adoption_sql`]).
pub fn unadopted(client: &mut dyn Session, migrations: &[Migration], opts: &Options) -> Result<Vec<String>, Error> {
    unadopted_within(client, migrations, opts, None)
}

/// Rows of the tracking table that belong to sets other than this one (a set the run was not
/// told about: a deploy box given one directory where the package configures `sets`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherSet {
    /// The set's name as recorded (`""`: the unnamed set).
    pub name: String,
    /// How many migrations it records.
    pub rows: usize,
    /// How many of them are this set's files (by name): then these files are that set's.
    pub ours: usize,
}

/// The sets the tracking table records besides this one and those in `known` (the run's other
/// sets; see [`OtherSet`]): asked when this set has no rows, so that such a database is not
/// called `base`. Empty for a table of the first layout.
pub fn other_sets(client: &mut dyn Session, migrations: &[Migration], opts: &Options, known: &[&str]) -> Result<Vec<OtherSet>, Error> {
    let mut own: Vec<String> = known.iter().chain([&opts.set_name()]).map(|s| crate::tracking::quote_literal(s)).collect();
    if opts.claim_unnamed {
        own.push(crate::tracking::quote_literal(UNNAMED_SET));
    }
    let files: Vec<String> = migrations.iter().map(|m| crate::tracking::quote_literal(&m.file_name)).collect();
    let sql = format!(
        "SELECT set_name, count(*), count(*) FILTER (WHERE file_name = ANY (ARRAY[{}]::text[])) FROM {} \
         WHERE set_name NOT IN ({}) GROUP BY set_name ORDER BY set_name",
        files.join(", "),
        opts.table.sql(),
        own.join(", ")
    );
    match status::simple_rows(client, &sql) {
        Ok(rows) => Ok(rows
            .into_iter()
            .map(|r| OtherSet {
                name: r[0].clone().unwrap_or_default(),
                rows: r[1].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0),
                ours: r[2].as_deref().and_then(|n| n.parse().ok()).unwrap_or(0),
            })
            .collect()),
        // No table, or the first layout (no sets at all).
        Err(e) if matches!(e.code().map(|c| c.code()), Some("42P01" | "3F000" | "42703")) => Ok(Vec::new()),
        Err(e) => Err(db_err(client, "cannot read the tracking table's other sets")(e)),
    }
}

fn unadopted_within(client: &mut dyn Session, migrations: &[Migration], opts: &Options, within: Option<Duration>) -> Result<Vec<String>, Error> {
    let Some(sql) = compat::adoption_sql(migrations, opts.schema.as_deref()) else { return Ok(Vec::new()) };
    let rows = status::bounded_rows(client, &sql, within).map_err(|e| status::timed_out(client, "cannot look for the set's objects", within, e))?;
    Ok(rows.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect())
}

/// [`check_sets`], failing with the first set this build may not run on
/// ([`Error::Incompatible`]).
pub fn verify_sets(client: &mut dyn Session, sets: &[SetDef]) -> Result<Vec<Verdict>, Error> {
    verify_sets_within(client, sets, CHECK_TIMEOUT)
}

/// [`verify_sets`] within `timeout` (see [`check_sets_within`]).
pub fn verify_sets_within(client: &mut dyn Session, sets: &[SetDef], timeout: Duration) -> Result<Vec<Verdict>, Error> {
    let verdicts = check_sets_within(client, sets, timeout)?;
    match verdicts.iter().find(|v| !v.is_compatible()) {
        Some(bad) => Err(Error::Incompatible(Box::new(bad.clone()))),
        None => Ok(verdicts),
    }
}

impl Error {
    /// The planner's refusal, for the set of `opts`.
    pub fn refused(r: Refusal, opts: &Options) -> Error {
        match r {
            Refusal::Diverged(divergences) => Error::Diverged { set: opts.set.clone(), divergences },
            Refusal::Backwards { current, target } => Error::Refused(format!(
                "the database is at {}, after the target {}: `upgrade` goes forward only; `downgrade {}` undoes \
                 migrations that have down files (or `stamp --purge` to rewrite the records)",
                opts.label(Some(current)),
                opts.label(target),
                opts.label(target)
            )),
            Refusal::NothingToUndo { current, target } => Error::Refused(format!(
                "nothing to undo: the database is at {}, not after {}",
                opts.label(current),
                opts.label(target)
            )),
            Refusal::DownNotWritten { revision, file_name } => Error::Refused(format!(
                "the down file of {} {file_name} is not written yet (it still holds `{}`): write it, then downgrade; nothing was changed",
                opts.label(Some(revision)),
                crate::NOT_WRITTEN
            )),
            Refusal::NoDown { revision, file_name, none_in_set } => {
                let set = opts.set.as_ref().map_or_else(|| "the set".to_string(), |s| format!("set `{s}`"));
                if none_in_set {
                    Error::Refused(format!(
                        "{set} has no down files: its migrations cannot be reversed (Procrastinate's cannot: schema \
                         downgrades can lose data). Restore the database from a backup taken before the migration, \
                         then deploy the previous version of your code"
                    ))
                } else {
                    Error::Refused(format!(
                        "{} {file_name} has no down file (`{}{}`), so it cannot be undone; nothing was changed",
                        opts.label(Some(revision)),
                        file_name.trim_end_matches(".sql"),
                        crate::DOWN_SUFFIX
                    ))
                }
            }
        }
    }
}

pub use upgrade::{build_from_schema, downgrade, record_claimed, repair, stamp, upgrade, upgrade_seen, upgrade_sets, DowngradeReport, Seen};

