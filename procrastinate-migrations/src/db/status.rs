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
    let (set, claim) = (opts.set_name(), opts.claim_unnamed);
    let failed = |e: postgres::Error| db_err(format!("cannot read the tracking table {table}"))(e);
    // One round trip: the rows, or the error that says there is no table (or schema) yet, or
    // that it has the first layout (then a second query reads that one).
    let rows = match simple_rows(client, &table.current_layout_rows_sql()) {
        Ok(mut rows) => {
            let wanted = |s: &str| s == set || (claim && s == crate::tracking::UNNAMED_SET);
            rows.retain(|r| r[0].as_deref().is_some_and(wanted));
            rows.sort_by(|a, b| a[2].cmp(&b[2]));
            rows
        }
        Err(e) => match e.code().map(|c| c.code()) {
            Some("42P01" | "3F000") => return Ok(None),
            Some("42703") => simple_rows(client, &table.rows_sql(set, claim)).map_err(failed)?,
            _ => return Err(failed(e)),
        },
    };
    let mut applied: Vec<Applied> = rows.iter().map(|r| Applied::from_text(r)).collect();
    // Where the set and the unnamed set both record a file, the set's own row wins.
    let own: std::collections::HashSet<String> = applied.iter().filter(|a| a.set == set).map(|a| a.file_name.clone()).collect();
    applied.retain(|a| a.set == set || !own.contains(&a.file_name));
    Ok(Some(applied))
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
