//! Reading what the tracking table records for one set (the comparison itself is
//! [`crate::state`], which needs no database).

use postgres::SimpleQueryMessage;

use super::Session;

use super::{db_err, Error, Options};
use crate::state::Applied;

/// The rows of `opts`'s set, or `None` when the tracking table does not exist yet. Reads a
/// table of the first layout (no `set_name`) too, without changing it: its rows are the
/// unnamed set's.
pub(super) fn read_applied(client: &mut dyn Session, opts: &Options) -> Result<Option<Vec<Applied>>, Error> {
    read_applied_within(client, opts, None)
}

/// [`read_applied`], each query bounded by `within` on the server (`statement_timeout` and
/// `lock_timeout`, in a read-only transaction of its own): what the start-up check uses, so
/// that a locked tracking table gives an answer in time rather than a hang.
pub(super) fn read_applied_within(client: &mut dyn Session, opts: &Options, within: Option<std::time::Duration>) -> Result<Option<Vec<Applied>>, Error> {
    let table = &opts.table;
    let (set, claim) = (opts.set_name(), opts.claim_unnamed);
    let context = format!("cannot read the tracking table {table}");
    // One round trip: the rows, or the error that says there is no table (or schema) yet, or
    // that it has the first layout (then a second query reads that one).
    let rows = match bounded_rows(client, &table.current_layout_rows_sql(), within) {
        Ok(rows) => rows,
        Err(e) => match e.code().map(|c| c.code()) {
            Some("42P01" | "3F000") => return Ok(None),
            Some("42703") => bounded_rows(client, &table.rows_sql(set, claim), within).map_err(|e| timed_out(client, &context, within, e))?,
            _ => return Err(timed_out(client, &context, within, e)),
        },
    };
    Ok(Some(set_rows(rows, set, claim)))
}

/// The set's rows among `rows` (every row of a table of the current layout, as
/// `current_layout_rows_sql` reads them, or a set's as `rows_sql` does), in bytewise order of
/// their file names: with `claim`, the unnamed set's too, where the set's own row wins.
pub(super) fn set_rows(mut rows: Vec<Vec<Option<String>>>, set: &str, claim: bool) -> Vec<Applied> {
    let wanted = |s: &str| s == set || (claim && s == crate::tracking::UNNAMED_SET);
    rows.retain(|r| r[0].as_deref().is_some_and(wanted));
    rows.sort_by(|a, b| a[2].cmp(&b[2]));
    let mut applied: Vec<Applied> = rows.iter().map(|r| Applied::from_text(r)).collect();
    let own: std::collections::HashSet<String> = applied.iter().filter(|a| a.set == set).map(|a| a.file_name.clone()).collect();
    applied.retain(|a| a.set == set || !own.contains(&a.file_name));
    applied
}

/// The rows of `sql`, bounded on the server by `within` when given (a read-only transaction
/// with `statement_timeout` and `lock_timeout` set for it alone: nothing leaks to a pool).
pub(super) fn bounded_rows(client: &mut dyn Session, sql: &str, within: Option<std::time::Duration>) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    let Some(within) = within else { return simple_rows(client, sql) };
    // The lock wait gives up first, so that a locked table is said as such.
    let ms = within.as_millis().clamp(1, i32::MAX as u128 / 2);
    let wrapped = format!(
        "BEGIN READ ONLY;\nSELECT set_config('statement_timeout', '{}', true), set_config('lock_timeout', '{ms}', true);\n{sql};\nCOMMIT",
        ms + ms / 2 + 1
    );
    match statements(client, &wrapped) {
        Ok(mut results) => Ok(results.swap_remove(2)),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// The error of a bounded read: a server-side timeout (the table locked, the query too slow)
/// is a wait given up, with why.
pub(super) fn timed_out(client: &dyn Session, context: &str, within: Option<std::time::Duration>, e: postgres::Error) -> Error {
    let why = match e.code().map(|c| c.code()) {
        Some("55P03") => Some("a lock on it is held by another session (an ALTER, a VACUUM FULL, a migration in progress?)"),
        Some("57014") => Some("the query ran out of time"),
        _ => None,
    };
    match (why, within) {
        (Some(why), Some(within)) => Error::Db {
            context: context.to_string(),
            source: e,
            abandoned: Some(super::Abandoned { waited: within, why: why.to_string() }),
        },
        _ => db_err(client, context)(e),
    }
}

/// Rows of a simple query as text (the simple protocol is what PgBouncer pools safely).
pub(super) fn simple_rows(client: &mut dyn Session, sql: &str) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    Ok(statements(client, sql)?.into_iter().flatten().collect())
}

/// The rows of each statement of a batch, in order (one entry per statement, rows or not).
pub(super) fn statements(client: &mut dyn Session, sql: &str) -> Result<Vec<Vec<Vec<Option<String>>>>, postgres::Error> {
    let mut out = vec![Vec::new()];
    for m in client.simple_query(sql)? {
        match m {
            SimpleQueryMessage::Row(row) => {
                out.last_mut().expect("never empty").push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect())
            }
            SimpleQueryMessage::CommandComplete(_) => out.push(Vec::new()),
            _ => {}
        }
    }
    out.pop(); // the entry opened after the last statement
    Ok(out)
}
