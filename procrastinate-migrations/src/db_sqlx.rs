//! The start-up check and the upgrade for applications on sqlx (feature `sqlx`, sqlx 0.9, which
//! needs Rust 1.94): the check reads over the application's `PgPool`, with the same verdicts as
//! [`db::check_sets`](crate::db); [`upgrade`] applies the sets as `cargo procrastinate upgrade`
//! does.
//!
//! ```no_run
//! # async fn f(pool: &sqlx::PgPool, url: &str) -> Result<(), Box<dyn std::error::Error>> {
//! # mod migrations { pub const SETS: &[procrastinate_migrations::SetDef] = &[]; }
//! // At start: refuse to run on a database this build does not suit.
//! procrastinate_migrations::db_sqlx::verify_sets(pool, migrations::SETS).await?;
//! // Or bring it to the build's head first (a deploy box without cargo).
//! procrastinate_migrations::db_sqlx::upgrade(url, migrations::SETS).await?;
//! # Ok(()) }
//! ```

use sqlx::{Row, ValueRef};

use crate::compat::Verdict;
use crate::set::SetDef;
use crate::startup::{self, Rows};

/// Why the check could not say yes (see [`startup::CheckError`]).
pub type CheckError = startup::CheckError<sqlx::Error>;

/// The verdict on every set (`SETS`), in order, whatever it is, read over `pool`; bounded on the
/// server by [`CHECK_TIMEOUT`](crate::compat::CHECK_TIMEOUT).
pub async fn check_sets(pool: &sqlx::PgPool, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    check_sets_within(pool, sets, crate::compat::CHECK_TIMEOUT).await
}

/// [`check_sets`] within `timeout` on the server (read-only transactions with
/// `statement_timeout` and `lock_timeout`: a locked tracking table gives
/// [`CheckError::TimedOut`]).
pub async fn check_sets_within(pool: &sqlx::PgPool, sets: &[SetDef], timeout: std::time::Duration) -> Result<Vec<Verdict>, CheckError> {
    let mut conn = pool.acquire().await.map_err(CheckError::Db)?;
    startup::check_sets_with(sets, timeout, &mut Reader { conn: &mut conn, timeout }).await
}

/// The check's reads on one connection of the pool.
struct Reader<'a> {
    conn: &'a mut sqlx::PgConnection,
    timeout: std::time::Duration,
}

impl startup::Reader for Reader<'_> {
    type Error = sqlx::Error;

    async fn read(&mut self, sql: String) -> Result<Option<Rows>, CheckError> {
        match text_rows(self.conn, &sql).await {
            Ok(rows) => Ok(Some(rows)),
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *self.conn).await;
                let code = e.as_database_error().and_then(|d| d.code().map(|c| c.into_owned()));
                startup::failed_read(code.as_deref(), e, self.timeout)
            }
        }
    }
}

/// [`check_sets`], failing with the first set this build may not run on.
pub async fn verify_sets(pool: &sqlx::PgPool, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    startup::first_incompatible(check_sets(pool, sets).await?)
}

/// The text rows of a simple-query batch (every column read as the text the server sent).
async fn text_rows(conn: &mut sqlx::PgConnection, sql: &str) -> Result<Rows, sqlx::Error> {
    // The tool's own SQL: built from the settings, quoted where it holds them.
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            (0..row.columns().len())
                .map(|i| {
                    let value = row.try_get_raw(i)?;
                    if value.is_null() {
                        return Ok(None);
                    }
                    Ok(Some(value.as_str().map_err(sqlx::Error::Decode)?.to_string()))
                })
                .collect()
        })
        .collect()
}

/// Brings every set of `sets` to its head, as `cargo procrastinate upgrade` does (the same
/// tracking table and lock, one transaction per migration), on a connection of its own to the
/// database `url` names (the URL the pool was built from: sqlx does not give a pool's password
/// back), without TLS; with TLS, use [`db_async::upgrade`](crate::db_async::upgrade) and your
/// connector. The engine runs on a thread of its own; this future waits without blocking the
/// runtime.
pub async fn upgrade(url: &str, sets: &'static [SetDef]) -> Result<Vec<crate::db::UpgradeReport>, crate::db::Error> {
    let env = |k: &str| std::env::var(k).ok();
    let params = crate::conninfo::resolve(crate::conninfo::parse(url).map_err(crate::db::Error::Refused)?, &env, &[]).map_err(crate::db::Error::Refused)?;
    let config = params.config().map_err(crate::db::Error::Refused)?;
    crate::db_async::upgrade(&config, tokio_postgres::NoTls, sets).await
}
