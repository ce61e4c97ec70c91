//! Reading what the tracking table records for one set (the comparison itself is
//! [`crate::state`], which needs no database).

use postgres::SimpleQueryMessage;

use super::{db_err, Error, Options};
use crate::state::Applied;

/// The rows of `opts`'s set, or `None` when the tracking table does not exist yet. Reads a
/// table of the first layout (no `set_name`) too, without changing it: its rows are the
/// unnamed set's.
pub(super) fn read_applied(tx: &mut postgres::Transaction<'_>, opts: &Options) -> Result<Option<Vec<Applied>>, Error> {
    let table = &opts.table;
    let exists = simple_rows(tx, &table.exists_sql()).map_err(db_err(format!("cannot look for the tracking table {table}")))?;
    if exists.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) != Some("t") {
        return Ok(None);
    }
    let rows = simple_rows(tx, &table.rows_sql(opts.set_name(), opts.claim_unnamed))
        .map_err(db_err(format!("cannot read the tracking table {table}")))?;
    Ok(Some(rows.iter().map(|r| Applied::from_text(r)).collect()))
}

/// Rows of a simple query as text (the simple protocol is what PgBouncer pools safely).
pub(super) fn simple_rows(tx: &mut postgres::Transaction<'_>, sql: &str) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    Ok(tx
        .simple_query(sql)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}
