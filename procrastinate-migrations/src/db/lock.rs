//! The migration lock: a transaction-level advisory lock, polled with a bounded wait.
//!
//! Transaction-level because session-level locks do not survive PgBouncer's transaction
//! pooling (the next transaction may run on another backend, and the lock stays behind).
//! Polled with `pg_try_advisory_xact_lock` rather than a blocking call so that the wait is
//! bounded by `lock-wait`, and so we can say who holds it while we wait. Between polls the
//! transaction is rolled back: a waiting replica holds no transaction, so no pooled
//! connection and nothing an `idle_in_transaction_session_timeout` could kill.

use std::time::{Duration, Instant};

use postgres::Client;

use super::status::statements;
use super::{db_err, Error};

/// Rows of each statement of one batch.
pub(super) type Results = Vec<Vec<Vec<Option<String>>>>;

/// Sends `BEGIN`, `setup` (SET LOCALs), the try-lock and `then` (queries run under the lock)
/// as one batch, one round trip. When another session holds the lock, rolls back, sleeps and
/// tries again, for at most `wait`. Returns the results of `then`, in a transaction that holds
/// the lock; the caller ends it.
pub(super) fn begin_locked(
    client: &mut Client,
    setup: &[String],
    key: i64,
    then: &[String],
    wait: Duration,
    on_wait: &mut dyn FnMut(Option<&str>),
) -> Result<Results, Error> {
    let mut batch = vec!["BEGIN".to_string()];
    batch.extend(setup.iter().cloned());
    let lock_at = batch.len();
    batch.push(format!("SELECT pg_try_advisory_xact_lock({key})"));
    batch.extend(then.iter().cloned());
    let sql = batch.join(";\n");
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    let mut told = false;
    loop {
        // The statements after the lock run only when it is taken: each one its own snapshot,
        // so they see whatever the previous holder committed.
        let results = match statements(client, &sql) {
            Ok(r) => r,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                return Err(db_err("cannot take the migration lock")(e));
            }
        };
        if results.get(lock_at).and_then(|rows| rows.first()).and_then(|r| r.first()).and_then(|v| v.as_deref()) == Some("t") {
            return Ok(results[lock_at + 1..].to_vec());
        }
        client.batch_execute("ROLLBACK").map_err(db_err("cannot end the transaction"))?;
        // Who holds it is asked only when it is said: once at first, and when giving up.
        if started.elapsed() >= wait {
            return Err(Error::LockWait { waited: started.elapsed(), holder: holder(client, key)? });
        }
        if !told {
            on_wait(holder(client, key)?.as_deref());
            told = true;
        }
        std::thread::sleep(delay.min(wait.saturating_sub(started.elapsed())));
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// "pid 1234 (cargo-procrastinate, user app from 10.0.0.5, in its transaction for 12s)".
fn holder(client: &mut Client, key: i64) -> Result<Option<String>, Error> {
    // A bigint advisory key is stored as classid = high 32 bits, objid = low 32 bits, objsubid 1.
    let (hi, lo) = ((key as u64 >> 32) as u32, key as u64 as u32);
    let sql = format!(
        "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.usename::text, '?'), \
         coalesce(host(a.client_addr), 'local socket'), \
         coalesce(extract(epoch FROM now() - a.xact_start)::bigint::text, '?') \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {hi} AND l.objid = {lo} AND l.objsubid = 1 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    );
    let rows = statements(client, &sql).map_err(db_err("cannot see who holds the migration lock"))?;
    Ok(rows.into_iter().flatten().next().map(|r| {
        let f = |i: usize| r[i].clone().unwrap_or_default();
        format!("pid {} ({}, user {} from {}, in its transaction for {}s)", f(0), f(1), f(2), f(3), f(4))
    }))
}
