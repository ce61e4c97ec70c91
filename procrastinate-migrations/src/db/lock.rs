//! The migration lock: a transaction-level advisory lock, polled with a bounded wait.
//!
//! Transaction-level because session-level locks do not survive PgBouncer's transaction
//! pooling (the next transaction may run on another backend, and the lock stays behind).
//! Polled with `pg_try_advisory_xact_lock` rather than a blocking call so that the wait is
//! bounded by `lock-wait`, and so we can say who holds it while we wait. A waiting replica
//! polls with that function alone, outside any transaction (the statement's own implicit one
//! takes and lets go of the lock at once): it holds no transaction between polls, so no pooled
//! connection, no transaction left aborted until a `ROLLBACK` arrives, and nothing an
//! `idle_in_transaction_session_timeout` could kill; only a poll that finds the lock free
//! opens the transaction that takes it. Between polls, the caller may look whether there is
//! still anything to do (another replica may have done it all).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Session;

use super::status::statements;
use crate::tracking::{quote_literal, TrackingTable};
use super::{db_err, Error};

/// Rows of each statement of one batch.
pub(super) type Results = Vec<Vec<Vec<Option<String>>>>;

/// What [`begin_locked`] found.
pub(super) enum Locked {
    /// The results of `then`, in a transaction that holds the lock; the caller ends it.
    Held(Results),
    /// While it waited for the lock, `settled` said there is nothing left to do: no lock, no
    /// transaction.
    Settled,
}

/// Sends `BEGIN`, a guard that applies `settings` and takes the lock or raises, and `then`
/// (queries run under the lock) as one batch, one round trip. When another session holds the
/// lock, rolls back and waits, outside any transaction, until a poll finds it free (for at most
/// the waiter's `wait`), asking `settled` between polls whether there is anything left to do.
pub(super) fn begin_locked(
    client: &mut dyn Session,
    settings: &[(&str, String)],
    key: &str,
    then: &[String],
    mut waiter: Waiter,
    on_wait: &mut dyn FnMut(Option<&str>),
    settled: &mut dyn FnMut(&mut dyn Session) -> Result<Poll, Error>,
) -> Result<Locked, Error> {
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
            Ok(results) => return Ok(Locked::Held(results[first..].to_vec())),
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
        if waiter.until_free(client, key, on_wait, settled)? {
            return Ok(Locked::Settled);
        }
    }
}

/// What a poll between two tries of the lock found.
pub(super) enum Poll {
    /// Nothing is left to do: stop waiting.
    Settled,
    /// Something is left, and the lock was free a moment ago: try again.
    Free,
    /// Something is left, and the lock is taken: wait more.
    Taken,
    /// Not known: the waiter polls the lock itself.
    Ask,
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

    /// After a try that found the lock taken (its transaction rolled back): waits until a
    /// poll outside any transaction finds it free, or `settled` says there is nothing left to
    /// do (`Ok(true)`); gives up after `wait`, says who holds it the first time, and sleeps a
    /// little longer between polls each time. Each poll asks `settled` first, which may answer
    /// for the lock too ([`Poll`]: one round trip instead of two).
    pub(super) fn until_free(
        &mut self,
        client: &mut dyn Session,
        key: &str,
        on_wait: &mut dyn FnMut(Option<&str>),
        settled: &mut dyn FnMut(&mut dyn Session) -> Result<Poll, Error>,
    ) -> Result<bool, Error> {
        loop {
            self.pause(client, key, on_wait)?;
            match settled(client)? {
                Poll::Settled => return Ok(true),
                Poll::Free => return Ok(false),
                Poll::Taken => continue,
                Poll::Ask => {}
            }
            // Taken and let go within the statement: nothing stays open whatever it says.
            let free = statements(client, &format!("SELECT pg_try_advisory_xact_lock({key})"))
                .map_err(|e| db_err(client, "cannot poll the migration lock")(e))?;
            if free.first().and_then(|rows| rows.first()).and_then(|r| r[0].as_deref()) == Some("t") {
                return Ok(false);
            }
        }
    }

    /// One wait between polls: gives up after `wait`, says who holds the lock the first time,
    /// then sleeps a little longer each time.
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

/// The tables a migration's statements take a strong lock on (`ALTER TABLE`, `DROP TABLE`,
/// `TRUNCATE`, `LOCK`, `CREATE INDEX ... ON`, `REFRESH MATERIALIZED VIEW`, `CLUSTER`,
/// `REINDEX TABLE`), as `regclass` text, from each statement's first tokens.
pub(super) fn strong_lock_targets(sql: &str) -> Vec<String> {
    let Ok(statements) = crate::lexer::statements(sql) else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    for st in statements {
        let h: Vec<&str> = st.head.iter().map(String::as_str).collect();
        let skip = |mut i: usize, words: &[&str]| {
            while h.get(i).is_some_and(|w| words.contains(w)) {
                i += 1;
            }
            i
        };
        let at = match h.as_slice() {
            ["ALTER", "TABLE", ..] | ["DROP", "TABLE", ..] => Some(skip(2, &["IF", "EXISTS", "ONLY"])),
            ["TRUNCATE", ..] | ["LOCK", ..] => Some(skip(1, &["TABLE", "ONLY"])),
            ["REFRESH", "MATERIALIZED", "VIEW", ..] => Some(skip(3, &["CONCURRENTLY"])),
            ["CLUSTER", ..] => Some(skip(1, &["VERBOSE"])),
            ["REINDEX", "TABLE", ..] => Some(skip(2, &["CONCURRENTLY"])),
            ["CREATE", ..] if h.contains(&"INDEX") => h.iter().position(|w| *w == "ON").map(|i| skip(i + 1, &["ONLY"])),
            _ => None,
        };
        let Some(mut i) = at else { continue };
        let mut parts = vec![crate::lexer::ident(h.get(i).copied().unwrap_or(""))];
        while h.get(i + 1) == Some(&".") {
            i += 2;
            parts.push(crate::lexer::ident(h.get(i).copied().unwrap_or("")));
        }
        if parts.iter().any(|p| p.is_empty() || p == "(" || p == ";") {
            continue;
        }
        let name = parts.iter().map(|p| crate::tracking::quote_ident(p)).collect::<Vec<_>>().join(".");
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// After a migration ran out of `lock_timeout`: waits, without asking for any lock, until the
/// transactions that hold locks on `tables` now have ended (or `wait` has passed), so that its
/// next try does not queue an ACCESS EXCLUSIVE request in front of the application's readers
/// again and again. Tables are resolved in `schema` (or the session's `search_path`).
pub(super) fn until_holders_end(client: &mut dyn Session, tables: &[String], schema: Option<&str>, wait: Duration, interrupt: Option<&Arc<AtomicBool>>) -> Result<(), Error> {
    if tables.is_empty() {
        return Ok(());
    }
    let regclass = |t: &String| match schema {
        Some(s) if !t.contains('.') => format!("to_regclass({})", quote_literal(&format!("{}.{t}", crate::tracking::quote_ident(s)))),
        _ => format!("to_regclass({})", quote_literal(t)),
    };
    let list = tables.iter().map(regclass).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT DISTINCT l.pid::text || ' ' || coalesce(a.xact_start::text, '') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid          WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid() AND l.relation = ANY (ARRAY[{list}]::oid[])"
    );
    let holders = |client: &mut dyn Session| -> Result<Vec<String>, Error> {
        let rows = statements(client, &sql).map_err(|e| db_err(client, "cannot see who holds the migration's tables")(e))?;
        Ok(rows.into_iter().flatten().filter_map(|r| r[0].clone()).collect())
    };
    let first = holders(client)?;
    let started = Instant::now();
    while started.elapsed() < wait {
        if interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
            return Err(Error::Interrupted { set: None, stopped: None, at: None, outside_transaction: false });
        }
        std::thread::sleep(Duration::from_millis(50).min(wait.saturating_sub(started.elapsed())));
        let now = holders(client)?;
        if !first.iter().any(|h| now.contains(h)) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tables_a_migration_locks_strongly() {
        let sql = "ALTER TABLE IF EXISTS ONLY procrastinate_jobs ADD COLUMN x int;
CREATE UNIQUE INDEX i ON public.orders (x);
                   UPDATE orders SET x = 1;
LOCK TABLE \"Weird\";
DROP TABLE t;
";
        assert_eq!(super::strong_lock_targets(sql), ["\"procrastinate_jobs\"", "\"public\".\"orders\"", "\"Weird\"", "\"t\""]);
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

/// The statements that follow [`BEGIN`] in a transaction that takes the lock outside a batch
/// (setting up the tracking table, a `-- no-transaction` file's claim, `stamp`...; a batch's
/// transactions start with [`claim_sql`]): one that applies `settings` for this transaction
/// only (`set_config(.., true)`, as `SET LOCAL`: nothing leaks through a pool) and takes the
/// migration lock without waiting, and, given `(table, set, file)`, a second that re-reads the
/// tracking table under the lock (a statement of its own, so that its snapshot is taken after
/// the lock). The first fails with [`Guard::Busy`] when another session holds the lock, the
/// second with [`Guard::Recorded`] when the file is recorded already: either stops the batch
/// before anything that follows.
///
/// Plain SQL rather than a `DO` block, which PL/pgSQL compiles anew each time (measured at
/// twice the cost per migration, which 1,000 small migrations feel). Plain SQL has no `RAISE`,
/// so it fails by asking for a setting that does not exist, named after what it means:
/// [`guard_failure`] reads the name back.
pub(super) fn guard_sql(key: &str, settings: &[(&str, String)], recorded: Option<(&TrackingTable, &str, &str)>) -> String {
    let mut sql = "SELECT ".to_string();
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

/// The first statements of each transaction of an `upgrade` batch: `SET LOCAL` for each of
/// `settings` (for this transaction only: nothing leaks through a pool; and before anything
/// touches the tracking table, so that even the wait for that table's lock is bounded by
/// `lock_timeout`), `SET` of the batch's session marker to `marker` (a value that stays only if
/// this transaction commits: a session setting changed in a transaction that aborts goes back),
/// then the claim: one statement that takes the migration lock without waiting and writes the
/// migration's row with [`TrackingTable::start_row_sql`], whose primary key refuses a file
/// recorded meanwhile (23505). The lock feeds the value of the row's `stamped` column (`false`),
/// so that it is neither left out nor moved. Fails with [`Guard::Busy`] when another session
/// holds the lock.
///
/// `SET` is a utility statement that the server neither plans nor runs through the executor:
/// 3 us a migration where `SELECT set_config(..)` costs 10 (BENCHMARKS.md).
pub(super) fn claim_sql(key: &str, settings: &[(&str, String)], marker: (&str, &str), row: &dyn Fn(&str) -> String) -> String {
    let mut sql = String::new();
    for (name, value) in settings {
        sql.push_str(&format!("SET LOCAL {name} = {};\n", set_value(name, value)));
    }
    sql.push_str(&format!("SET {} = {};\n", marker.0, quote_literal(marker.1)));
    sql.push_str(&row(&format!("CASE WHEN pg_try_advisory_xact_lock({key}) THEN false ELSE current_setting('{GUARD_BUSY}')::boolean END")));
    sql
}

/// A setting's value as `SET` takes it: `search_path`'s is a list of quoted identifiers already
/// (a string literal would name one schema, quotes and all); any other is a string literal,
/// which the server reads as the setting's type.
fn set_value(name: &str, value: &str) -> String {
    if name == "search_path" {
        value.to_string()
    } else {
        quote_literal(value)
    }
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
