//! The start-up check for async applications (feature `tokio-postgres`): the same verdicts as
//! [`db::check_sets`](crate::db) without the blocking client, which cannot run inside a tokio
//! runtime. It reads with the simple-query protocol, so it works behind PgBouncer too.
//!
//! ```no_run
//! # async fn f(client: &tokio_postgres::Client, sets: &[procrastinate_migrations::SetDef]) {
//! // `sets` is the generated module's `SETS`.
//! match procrastinate_migrations::db_async::verify_sets(client, sets).await {
//!     Ok(verdicts) => verdicts.iter().for_each(|v| println!("{v}")),
//!     Err(e) => panic!("refusing to start: {e}"),
//! }
//! # }
//! ```

use std::fmt;

use tokio_postgres::SimpleQueryMessage;

use crate::compat::{self, Verdict};
use crate::set::SetDef;
use crate::state::Applied;

/// Why the check could not say yes.
#[derive(Debug)]
pub enum CheckError {
    /// Reading the tracking table failed.
    Db(tokio_postgres::Error),
    /// A set's settings are invalid (checked by the build already, so rare).
    Config(String),
    /// This build may not run on the database: what to do is in the verdict.
    Incompatible(Box<Verdict>),
    /// The check gave up after this long: the tracking table is locked by another session, or
    /// the server is too slow.
    TimedOut(std::time::Duration),
}

impl fmt::Display for CheckError {
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

impl std::error::Error for CheckError {}

/// The verdict on every set (`SETS`), in order, whatever it is; bounded on the server by
/// [`CHECK_TIMEOUT`](crate::compat::CHECK_TIMEOUT) (see [`check_sets_within`]).
pub async fn check_sets(client: &tokio_postgres::Client, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    check_sets_within(client, sets, crate::compat::CHECK_TIMEOUT).await
}

/// [`check_sets`] within `timeout` on the server: the reads run in read-only transactions
/// with `statement_timeout` and `lock_timeout`, so a locked tracking table gives
/// [`CheckError::TimedOut`] in time. A silent server is bounded by the application's own
/// timer (`tokio::time::timeout` around this call), which needs the runtime's time driver.
pub async fn check_sets_within(client: &tokio_postgres::Client, sets: &[SetDef], timeout: std::time::Duration) -> Result<Vec<Verdict>, CheckError> {
    let started = std::time::Instant::now();
    let mut verdicts = Vec::with_capacity(sets.len());
    for (i, def) in sets.iter().enumerate() {
        let (exists, rows) = compat::queries(def, i == 0).map_err(CheckError::Config)?;
        let left = timeout.saturating_sub(started.elapsed()).max(std::time::Duration::from_millis(1));
        let found = bounded_rows(client, &exists, left, timeout).await?;
        let rows: Option<Vec<Applied>> = if found.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) == Some("t") {
            Some(bounded_rows(client, &rows, left, timeout).await?.iter().map(|r| Applied::from_text(r)).collect())
        } else {
            None
        };
        // Nothing recorded: an empty database, or one built without this tool?
        let mut objects = Vec::new();
        if rows.as_ref().is_none_or(Vec::is_empty) {
            if let Some(sql) = compat::adoption_sql(def.migrations, def.schema) {
                objects = bounded_rows(client, &sql, left, timeout).await?.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            }
        }
        verdicts.push(compat::check_adopted(def, rows, objects));
    }
    Ok(verdicts)
}

/// The rows of `sql` in a read-only transaction bounded by `within` on the server.
async fn bounded_rows(client: &tokio_postgres::Client, sql: &str, within: std::time::Duration, timeout: std::time::Duration) -> Result<Vec<Vec<Option<String>>>, CheckError> {
    // The lock wait gives up first, so that a locked table is said as such.
    let ms = within.as_millis().clamp(1, i32::MAX as u128 / 2);
    let wrapped = format!(
        "BEGIN READ ONLY;\nSELECT set_config('statement_timeout', '{}', true), set_config('lock_timeout', '{ms}', true);\n{sql};\nCOMMIT",
        ms + ms / 2 + 1
    );
    match text_rows(client, &wrapped).await {
        // The set_config row comes first.
        Ok(mut rows) => Ok(rows.split_off(1.min(rows.len()))),
        Err(CheckError::Db(e)) => {
            let _ = client.batch_execute("ROLLBACK").await;
            match e.code().map(|c| c.code()) {
                Some("55P03" | "57014") => Err(CheckError::TimedOut(timeout)),
                _ => Err(CheckError::Db(e)),
            }
        }
        Err(other) => Err(other),
    }
}

/// [`check_sets`], failing with the first set this build may not run on.
pub async fn verify_sets(client: &tokio_postgres::Client, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    verify_sets_within(client, sets, crate::compat::CHECK_TIMEOUT).await
}

/// [`verify_sets`] within `timeout` (see [`check_sets_within`]).
pub async fn verify_sets_within(client: &tokio_postgres::Client, sets: &[SetDef], timeout: std::time::Duration) -> Result<Vec<Verdict>, CheckError> {
    let verdicts = check_sets_within(client, sets, timeout).await?;
    match verdicts.iter().find(|v| !v.is_compatible()) {
        Some(bad) => Err(CheckError::Incompatible(Box::new(bad.clone()))),
        None => Ok(verdicts),
    }
}

async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, CheckError> {
    Ok(client
        .simple_query(sql)
        .await
        .map_err(CheckError::Db)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}
