//! The migration lock: a transaction-level advisory lock, polled with a bounded wait.
//!
//! Transaction-level because session-level locks do not survive PgBouncer's transaction
//! pooling (the next transaction may run on another backend, and the lock stays behind).
//! Polled with `pg_try_advisory_xact_lock` rather than a blocking call so that the wait is
//! bounded by `lock-wait`, and so we can say who holds it while we wait.

use std::time::{Duration, Instant};

use super::status::simple_rows;
use super::{db_err, Error};

/// Takes the lock in the current transaction, or fails after `wait`. `on_wait` is told who holds
/// it, once, when we first have to wait.
pub(super) fn acquire(
    tx: &mut postgres::Transaction<'_>,
    key: i64,
    wait: Duration,
    on_wait: &mut dyn FnMut(Option<&str>),
) -> Result<(), Error> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(20);
    let mut told = false;
    loop {
        let got = simple_rows(tx, &format!("SELECT pg_try_advisory_xact_lock({key})"))
            .map_err(db_err("cannot take the migration lock"))?;
        if got.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) == Some("t") {
            return Ok(());
        }
        // Who holds it is asked only when it is said: once at first, and when giving up.
        if started.elapsed() >= wait {
            return Err(Error::LockWait { waited: started.elapsed(), holder: holder(tx, key)? });
        }
        if !told {
            on_wait(holder(tx, key)?.as_deref());
            told = true;
        }
        std::thread::sleep(delay.min(wait.saturating_sub(started.elapsed())));
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}

/// "pid 1234 (cargo-procrastinate, user app from 10.0.0.5, in its transaction for 12s)".
fn holder(tx: &mut postgres::Transaction<'_>, key: i64) -> Result<Option<String>, Error> {
    // A bigint advisory key is stored as classid = high 32 bits, objid = low 32 bits, objsubid 1.
    let (hi, lo) = ((key as u64 >> 32) as u32, key as u64 as u32);
    let rows = simple_rows(
        tx,
        &format!(
            "SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.usename::text, '?'), \
             coalesce(host(a.client_addr), 'local socket'), \
             coalesce(extract(epoch FROM now() - a.xact_start)::bigint::text, '?') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {hi} AND l.objid = {lo} AND l.objsubid = 1 \
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
    )
    .map_err(db_err("cannot see who holds the migration lock"))?;
    Ok(rows.first().map(|r| {
        let f = |i: usize| r[i].clone().unwrap_or_default();
        format!("pid {} ({}, user {} from {}, in its transaction for {}s)", f(0), f(1), f(2), f(3), f(4))
    }))
}
