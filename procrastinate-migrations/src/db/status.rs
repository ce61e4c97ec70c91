//! Reading what the tracking table records for one set (the comparison itself is
//! [`crate::state`], which needs no database).

use postgres::SimpleQueryMessage;

use super::{db_err, Error, Options};
use crate::state::Applied;
use crate::tracking::{quote_literal, UNNAMED_SET};

/// The rows of `opts`'s set, or `None` when the tracking table does not exist yet. Reads a
/// table of the first layout (no `set_name`) too, without changing it: its rows are the
/// unnamed set's.
pub(super) fn read_applied(tx: &mut postgres::Transaction<'_>, opts: &Options) -> Result<Option<Vec<Applied>>, Error> {
    let table = &opts.table;
    let lit = quote_literal(&table.sql());
    let found = simple_rows(
        tx,
        &format!(
            "SELECT to_regclass({lit}) IS NOT NULL, EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass({lit}) \
             AND attname = 'set_name' AND NOT attisdropped)"
        ),
    )
    .map_err(db_err(format!("cannot look for the tracking table {table}")))?;
    let flag = |i: usize| found.first().and_then(|r| r[i].as_deref()) == Some("t");
    if !flag(0) {
        return Ok(None);
    }
    let set = opts.set_name();
    let (set_column, filter) = if flag(1) {
        let mut names = vec![quote_literal(set)];
        if opts.claim_unnamed {
            names.push(quote_literal(UNNAMED_SET));
        }
        ("set_name", format!("WHERE set_name IN ({})", names.join(", ")))
    } else if set == UNNAMED_SET || opts.claim_unnamed {
        ("''", String::new())
    } else {
        return Ok(Some(Vec::new()));
    };
    let rows = simple_rows(
        tx,
        &format!(
            "SELECT {set_column}, revision, file_name, checksum, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             duration_ms, applied_by, stamped FROM {} {filter} ORDER BY file_name",
            table.sql()
        ),
    )
    .map_err(db_err(format!("cannot read the tracking table {table}")))?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(Some(
        rows.into_iter()
            .map(|r| Applied {
                set: text(&r[0]),
                revision: text(&r[1]),
                file_name: text(&r[2]),
                checksum: text(&r[3]),
                applied_at: text(&r[4]),
                duration_ms: r[5].as_deref().and_then(|d| d.parse().ok()),
                applied_by: text(&r[6]),
                stamped: r[7].as_deref() == Some("t"),
            })
            .collect(),
    ))
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
