//! The migration lock: a transaction-level advisory lock, polled with a bounded wait.
//!
//! Transaction-level because session-level locks do not survive PgBouncer's transaction
//! pooling (the next transaction may run on another backend, and the lock stays behind).
//! Polled with `pg_try_advisory_xact_lock` rather than a blocking call so that the wait is
//! bounded by `lock-wait`, and so we can say who holds it while we wait. Between polls the
//! transaction is rolled back: a waiting replica holds no transaction, so no pooled
//! connection and nothing an `idle_in_transaction_session_timeout` could kill.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Session;

use super::status::statements;
use crate::tracking::{quote_literal, TrackingTable};
use super::{db_err, Error};

/// Rows of each statement of one batch.
pub(super) type Results = Vec<Vec<Vec<Option<String>>>>;

/// Sends `BEGIN`, a guard that applies `settings` and takes the lock or raises, and `then`
/// (queries run under the lock) as one batch, one round trip. When another session holds the
/// lock, rolls back, sleeps and tries again, for at most `wait`. Returns the results of `then`, in a transaction that holds
/// the lock; the caller ends it.
pub(super) fn begin_locked(
    client: &mut dyn Session,
    settings: &[(&str, String)],
    key: &str,
    then: &[String],
    mut waiter: Waiter,
    on_wait: &mut dyn FnMut(Option<&str>),
) -> Result<Results, Error> {
    // The guard fails when the lock is taken, so that nothing after it runs without it.
    // Without a file to re-read, the guard is one statement.
    // First, whether this server can take writes at all: a hot standby (or a read-only
    // primary) is named as such here, before any migration fails on it.
    let writable = format!(
        "SELECT CASE WHEN pg_is_in_recovery() THEN current_setting('{GUARD_STANDBY}') \
         WHEN current_setting('transaction_read_only') = 'on' THEN current_setting('{GUARD_READ_ONLY}') END"
    );
    let mut batch = vec![BEGIN.to_string(), writable, guard_sql(key, settings, None)];
    let first = batch.len();
    batch.extend(then.iter().cloned());
    // A bounded session's tag first: this transaction stays open for the caller's next round
    // trip, and a second connection must be able to find (and end) it if that one is lost.
    let sql = format!("{}{}", client.tag().map(|t| format!("{t}\n")).unwrap_or_default(), batch.join(";\n"));
    loop {
        // Each statement after the guard has its own snapshot, so it sees whatever the
        // previous holder committed.
        match statements(client, &sql) {
            Ok(results) => return Ok(results[first..].to_vec()),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                match (e.code().map(|c| c.code()), e.as_db_error().and_then(guard_failure)) {
                    (_, Some(Guard::Busy)) => {}
                    (_, Some(Guard::Standby)) => {
                        return Err(Error::Refused(
                            "this server is a hot standby (in recovery): it takes no writes; connect to the primary".into(),
                        ))
                    }
                    (Some("25006"), _) | (_, Some(Guard::ReadOnly)) => {
                        return Err(Error::Refused(
                            "the server is read-only (default_transaction_read_only, or a read-only role): connect to the primary, \
                             or as a role that can write"
                                .into(),
                        ))
                    }
                    _ => return Err(db_err(client, "cannot take the migration lock")(e)),
                }
            }
        }
        waiter.pause(client, key, on_wait)?;
    }
}

/// The bounded wait between two tries of the lock, outside any transaction.
pub(super) struct Waiter {
    started: Instant,
    delay: Duration,
    told: bool,
    wait: Duration,
    /// Set by a signal: the wait ends at once ([`Error::Interrupted`], which the caller
    /// completes with where the set is).
    interrupt: Option<Arc<AtomicBool>>,
}

impl Waiter {
    pub(super) fn new(wait: Duration, interrupt: Option<Arc<AtomicBool>>) -> Waiter {
        Waiter { started: Instant::now(), delay: Duration::from_millis(20), told: false, wait, interrupt }
    }

    fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    /// After a try that found the lock taken (its transaction rolled back): gives up after
    /// `wait`, says who holds it the first time, then sleeps a little longer each time.
    pub(super) fn pause(&mut self, client: &mut dyn Session, key: &str, on_wait: &mut dyn FnMut(Option<&str>)) -> Result<(), Error> {
        // Who holds it is asked only when it is said: once at first, and when giving up.
        if self.started.elapsed() >= self.wait {
            return Err(Error::LockWait { waited: self.started.elapsed(), holder: holder(client, key)? });
        }
        if !self.told {
            on_wait(holder(client, key)?.as_deref());
            self.told = true;
        }
        // In short slices, so that a signal ends the wait at once.
        let until = Instant::now() + self.delay.min(self.wait.saturating_sub(self.started.elapsed()));
        while Instant::now() < until {
            if self.interrupted() {
                return Err(Error::Interrupted { set: None, stopped: None, at: None, outside_transaction: false });
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
        }
        self.delay = (self.delay * 2).min(Duration::from_millis(500));
        Ok(())
    }
}

/// "pid 1234 (cargo-procrastinate, user app from 10.0.0.5, in its transaction for 12s)".
fn holder(client: &mut dyn Session, key: &str) -> Result<Option<String>, Error> {
    // A bigint advisory key is stored as classid = high 32 bits, objid = low 32 bits, objsubid 1.
    let sql = format!(
        "WITH k AS (SELECT {key} AS key) \
         SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.usename::text, '?'), \
         coalesce(host(a.client_addr), 'local socket'), \
         coalesce(extract(epoch FROM now() - a.xact_start)::bigint::text, '?') \
         FROM k, pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ((k.key >> 32) & 4294967295)::oid \
         AND l.objid = (k.key & 4294967295)::oid AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    );
    let rows = statements(client, &sql).map_err(|e| db_err(client, "cannot see who holds the migration lock")(e))?;
    Ok(rows.into_iter().flatten().next().map(|r| {
        let f = |i: usize| r[i].clone().unwrap_or_default();
        format!("pid {} ({}, user {} from {}, in its transaction for {}s)", f(0), f(1), f(2), f(3), f(4))
    }))
}

/// What opens each of `upgrade`'s transactions: `BEGIN` at READ COMMITTED, so that each
/// statement after the lock has a snapshot taken under it, even where the database defaults to
/// REPEATABLE READ.
pub(super) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// The statements that follow [`BEGIN`] in each of `upgrade`'s transactions: one that applies
/// `settings` for this transaction only (`set_config(.., true)`, as `SET LOCAL`: nothing leaks
/// through a pool) and takes the migration lock without waiting, and, given
/// `(table, set, file)`, a second that re-reads the tracking table under the lock (a statement
/// of its own, so that its snapshot is taken after the lock). The first fails with
/// [`Guard::Busy`] when another session holds the lock, the second with [`Guard::Recorded`]
/// when the file is recorded already: either stops the batch before anything that follows.
///
/// Plain SQL rather than a `DO` block, which PL/pgSQL compiles anew each time (measured at
/// twice the cost per migration, which 1,000 small migrations feel). Plain SQL has no `RAISE`,
/// so it fails by asking for a setting that does not exist, named after what it means:
/// [`guard_failure`] reads the name back.
pub(super) fn guard_sql(key: &str, settings: &[(&str, String)], recorded: Option<(&TrackingTable, &str, &str)>) -> String {
    let mut sql = format!("SELECT set_config('{}', extract(epoch FROM clock_timestamp())::text, true), ", crate::tracking::STARTED);
    for (name, value) in settings {
        sql.push_str(&format!("set_config({}, {}, true), ", quote_literal(name), quote_literal(value)));
    }
    sql.push_str(&format!("CASE WHEN pg_try_advisory_xact_lock({key}) THEN NULL ELSE current_setting('{GUARD_BUSY}') END"));
    if let Some((table, set, file)) = recorded {
        sql.push_str(&format!(
            ";\nSELECT current_setting('{GUARD_RECORDED}' || checksum) FROM {} WHERE set_name = {} AND file_name = {}",
            table.sql(),
            quote_literal(set),
            quote_literal(file)
        ));
    }
    sql
}

/// Why a guard stopped its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Guard {
    /// Another session holds the migration lock.
    Busy,
    /// The server is a hot standby.
    Standby,
    /// The server (or the role) is read-only.
    ReadOnly,
    /// The file is recorded already, with this checksum (or a `claimed:<pid>` claim).
    Recorded(String),
}

/// The guard's failure, told from any other by SQLSTATE 42704 and the setting's name, which
/// the server quotes as given whatever the language of its messages.
pub(super) fn guard_failure(e: &postgres::error::DbError) -> Option<Guard> {
    if e.code().code() != "42704" {
        return None;
    }
    let message = e.message();
    for (name, guard) in [(GUARD_BUSY, Guard::Busy), (GUARD_STANDBY, Guard::Standby), (GUARD_READ_ONLY, Guard::ReadOnly)] {
        if message.contains(&format!("\"{name}\"")) {
            return Some(guard);
        }
    }
    let at = message.find(&format!("\"{GUARD_RECORDED}"))? + GUARD_RECORDED.len() + 1;
    Some(Guard::Recorded(message[at..].strip_suffix('"').unwrap_or(&message[at..]).to_string()))
}

/// The setting the guard asks for when the migration lock is taken.
const GUARD_BUSY: &str = "cargo_procrastinate.the migration lock is taken";
/// The setting asked for on a hot standby.
const GUARD_STANDBY: &str = "cargo_procrastinate.this server is a hot standby";
/// The setting asked for on a read-only server.
const GUARD_READ_ONLY: &str = "cargo_procrastinate.this server is read-only";
/// The setting the guard asks for when the file is recorded: the checksum follows.
const GUARD_RECORDED: &str = "cargo_procrastinate.recorded:";
