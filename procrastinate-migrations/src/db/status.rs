//! Reading what the tracking table records for one set (the comparison itself is
//! [`crate::state`], which needs no database).

use postgres::{GenericClient, SimpleQueryMessage};

use super::{db_err, Error, Options};
use crate::state::Applied;

/// The rows of `opts`'s set, or `None` when the tracking table does not exist yet. Reads a
/// table of the first layout (no `set_name`) too, without changing it: its rows are the
/// unnamed set's.
pub(super) fn read_applied(client: &mut impl GenericClient, opts: &Options) -> Result<Option<Vec<Applied>>, Error> {
    let table = &opts.table;
    let exists = simple_rows(client, &table.exists_sql()).map_err(db_err(format!("cannot look for the tracking table {table}")))?;
    if exists.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) != Some("t") {
        return Ok(None);
    }
    let rows = simple_rows(client, &table.rows_sql(opts.set_name(), opts.claim_unnamed))
        .map_err(db_err(format!("cannot read the tracking table {table}")))?;
    Ok(Some(rows.iter().map(|r| Applied::from_text(r)).collect()))
}

/// Rows of a simple query as text (the simple protocol is what PgBouncer pools safely).
pub(super) fn simple_rows(client: &mut impl GenericClient, sql: &str) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    Ok(statements(client, sql)?.into_iter().flatten().collect())
}

/// The rows of each statement of a batch, in order (one entry per statement, rows or not).
pub(super) fn statements(client: &mut impl GenericClient, sql: &str) -> Result<Vec<Vec<Vec<Option<String>>>>, postgres::Error> {
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
