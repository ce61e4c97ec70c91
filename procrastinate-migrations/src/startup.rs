//! The start-up check over any async driver (`db_async` for tokio-postgres, `db_sqlx` for a
//! sqlx pool): the reads, bounded on the server, and the verdicts, with the driver's own way of
//! running SQL passed in. Pure: nothing here knows a driver.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use crate::compat::{self, Verdict};
use crate::set::SetDef;
use crate::state::Applied;

/// Why the check could not say yes; `E` is the driver's error.
#[derive(Debug)]
pub enum CheckError<E> {
    /// Reading the tracking table failed.
    Db(E),
    /// A set's settings are invalid (checked by the build already, so rare).
    Config(String),
    /// This build may not run on the database: what to do is in the verdict.
    Incompatible(Box<Verdict>),
    /// The check gave up after this long: the tracking table is locked by another session, or
    /// the server is too slow.
    TimedOut(Duration),
}

impl<E: fmt::Display> fmt::Display for CheckError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Db(e) => write!(f, "cannot read the tracking table: {e}"),
            CheckError::Config(e) => f.write_str(e),
            CheckError::TimedOut(d) => write!(
                f,
                "the start-up check gave up after {}s: the tracking table is locked by another session (an ALTER, a \
                 migration in progress?), or the server is too slow; try again, or look at pg_locks",
                d.as_secs()
            ),
            CheckError::Incompatible(v) => match &v.set {
                Some(set) => write!(f, "set `{set}`: {v}"),
                None => write!(f, "{v}"),
            },
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for CheckError<E> {}

/// Text rows, as the simple-query protocol gives them.
pub type Rows = Vec<Vec<Option<String>>>;

/// `sql` in a read-only transaction bounded by `within` on the server: `statement_timeout`
/// and, shorter, `lock_timeout` (so that a locked table is said as such). Its first row is the
/// settings', which [`check_sets_with`] drops.
pub fn bounded(sql: &str, within: Duration) -> String {
    let ms = within.as_millis().clamp(1, i32::MAX as u128 / 2);
    format!(
        "BEGIN READ ONLY;\nSELECT set_config('statement_timeout', '{}', true), set_config('lock_timeout', '{ms}', true);\n{sql};\nCOMMIT",
        ms + ms / 2 + 1
    )
}

/// Whether a server error is the bound of [`bounded`] running out (SQLSTATE 55P03 or 57014).
pub fn is_timeout(sqlstate: Option<&str>) -> bool {
    matches!(sqlstate, Some("55P03" | "57014"))
}

/// Whether a server error says the tracking table (or its schema) does not exist (SQLSTATE
/// 42P01 or 3F000): nothing recorded yet, which [`Reader::read`] gives as `None`.
pub fn is_missing(sqlstate: Option<&str>) -> bool {
    matches!(sqlstate, Some("42P01" | "3F000"))
}

/// What a read that failed with `error` (SQLSTATE `sqlstate`) says: no table yet (`Ok(None)`),
/// the bound of `timeout` ran out, or the driver's error. Each driver's [`Reader`] ends here,
/// after rolling back.
pub fn failed_read<E>(sqlstate: Option<&str>, error: E, timeout: Duration) -> Result<Option<Rows>, CheckError<E>> {
    if is_missing(sqlstate) {
        Ok(None)
    } else if is_timeout(sqlstate) {
        Err(CheckError::TimedOut(timeout))
    } else {
        Err(CheckError::Db(error))
    }
}

/// How a driver runs one [`bounded`] batch: its text rows, `None` when the table it reads does
/// not exist ([`is_missing`]), or [`CheckError::TimedOut`] when the bound ran out on the server.
pub trait Reader {
    /// The driver's error.
    type Error;
    /// Runs `sql` (one batch, simple-query protocol) and gives every row as text.
    fn read(&mut self, sql: String) -> impl Future<Output = Result<Option<Rows>, CheckError<Self::Error>>>;
}

/// The verdict on every set, in order, within `timeout` on the server, read through `reader`.
pub async fn check_sets_with<R: Reader>(sets: &[SetDef], timeout: Duration, reader: &mut R) -> Result<Vec<Verdict>, CheckError<R::Error>> {
    let started = Instant::now();
    let mut verdicts = Vec::with_capacity(sets.len());
    for (i, def) in sets.iter().enumerate() {
        let (_, rows) = compat::queries(def, i == 0).map_err(CheckError::Config)?;
        let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        // One round trip: the rows, or the error that says there is no table yet.
        let rows: Option<Vec<Applied>> = rows_of(reader, &rows, left).await?.map(|rows| rows.iter().map(|r| Applied::from_text(r)).collect());
        // Nothing recorded: an empty database, or one built without this tool?
        let mut objects = Vec::new();
        if rows.as_ref().is_none_or(Vec::is_empty) {
            if let Some(sql) = compat::adoption_sql(def.migrations, def.schema) {
                objects = rows_of(reader, &sql, left).await?.unwrap_or_default().into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            }
        }
        let verdict = compat::check_adopted(def, rows, objects);
        crate::events::verdict(&verdict);
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// The rows of `sql`, bounded, without the settings' row; `None` when its table is missing.
async fn rows_of<R: Reader>(reader: &mut R, sql: &str, within: Duration) -> Result<Option<Rows>, CheckError<R::Error>> {
    Ok(reader.read(bounded(sql, within)).await?.map(|mut rows| rows.split_off(1.min(rows.len()))))
}

/// The first verdict this build may not run on, as an error.
pub fn first_incompatible<E>(verdicts: Vec<Verdict>) -> Result<Vec<Verdict>, CheckError<E>> {
    match verdicts.iter().find(|v| !v.is_compatible()) {
        Some(bad) => Err(CheckError::Incompatible(Box::new(bad.clone()))),
        None => Ok(verdicts),
    }
}
