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
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Db(e) => write!(f, "cannot read the tracking table: {e}"),
            CheckError::Config(e) => f.write_str(e),
            CheckError::Incompatible(v) => match &v.set {
                Some(set) => write!(f, "set `{set}`: {v}"),
                None => write!(f, "{v}"),
            },
        }
    }
}

impl std::error::Error for CheckError {}

/// The verdict on every set (`SETS`), in order, whatever it is.
pub async fn check_sets(client: &tokio_postgres::Client, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    let mut verdicts = Vec::with_capacity(sets.len());
    for (i, def) in sets.iter().enumerate() {
        let (exists, rows) = compat::queries(def, i == 0).map_err(CheckError::Config)?;
        let found = text_rows(client, &exists).await?;
        let rows: Option<Vec<Applied>> = if found.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) == Some("t") {
            Some(text_rows(client, &rows).await?.iter().map(|r| Applied::from_text(r)).collect())
        } else {
            None
        };
        // Nothing recorded: an empty database, or one built without this tool?
        let mut objects = Vec::new();
        if rows.as_ref().is_none_or(Vec::is_empty) {
            if let Some(sql) = compat::adoption_sql(def.migrations, def.schema) {
                objects = text_rows(client, &sql).await?.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            }
        }
        verdicts.push(compat::check_adopted(def, rows, objects));
    }
    Ok(verdicts)
}

/// [`check_sets`], failing with the first set this build may not run on.
pub async fn verify_sets(client: &tokio_postgres::Client, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    let verdicts = check_sets(client, sets).await?;
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
