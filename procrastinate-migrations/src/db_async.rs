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

use tokio_postgres::SimpleQueryMessage;

use crate::compat::Verdict;
use crate::set::SetDef;
use crate::startup::{self, Rows};

/// Why the check could not say yes (see [`startup::CheckError`]).
pub type CheckError = startup::CheckError<tokio_postgres::Error>;

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
    startup::check_sets_with(sets, timeout, &mut Reader { client, timeout }).await
}

/// The check's reads on a tokio-postgres client.
struct Reader<'a> {
    client: &'a tokio_postgres::Client,
    timeout: std::time::Duration,
}

impl startup::Reader for Reader<'_> {
    type Error = tokio_postgres::Error;

    async fn read(&mut self, sql: String) -> Result<Option<Rows>, CheckError> {
        match text_rows(self.client, &sql).await {
            Ok(rows) => Ok(Some(rows)),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                let code = e.code().map(|c| c.code().to_string());
                startup::failed_read(code.as_deref(), e, self.timeout)
            }
        }
    }
}

/// [`check_sets`], failing with the first set this build may not run on.
pub async fn verify_sets(client: &tokio_postgres::Client, sets: &[SetDef]) -> Result<Vec<Verdict>, CheckError> {
    verify_sets_within(client, sets, crate::compat::CHECK_TIMEOUT).await
}

/// [`verify_sets`] within `timeout` (see [`check_sets_within`]).
pub async fn verify_sets_within(client: &tokio_postgres::Client, sets: &[SetDef], timeout: std::time::Duration) -> Result<Vec<Verdict>, CheckError> {
    startup::first_incompatible(check_sets_within(client, sets, timeout).await?)
}

async fn text_rows(client: &tokio_postgres::Client, sql: &str) -> Result<Rows, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}

/// Brings every set of `sets` to its head, as `cargo procrastinate upgrade` does (same tracking
/// table, same lock, one transaction per migration), from an async application (feature
/// `postgres` too). The engine is the blocking one: it runs on a thread of its own, on a
/// connection of its own made from `config` and `tls`, while this future waits without blocking
/// the runtime.
#[cfg(feature = "postgres")]
pub async fn upgrade<T>(config: &tokio_postgres::Config, tls: T, sets: &'static [SetDef]) -> Result<Vec<crate::db::UpgradeReport>, crate::db::Error>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let config = postgres::Config::from(config.clone());
    off_runtime(move || {
        let mut client = config
            .connect(tls)
            .map_err(|source| crate::db::Error::Db { context: "cannot connect to apply the migrations".into(), source, abandoned: None })?;
        crate::db::upgrade_sets(&mut client, sets, &mut |_| {})
    })
    .await
}

/// Runs blocking `work` on a thread of its own (the blocking client starts its own runtime,
/// which it cannot do inside this one) and waits for it without blocking the runtime.
#[cfg(feature = "postgres")]
pub(crate) async fn off_runtime<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The application's subscriber sees the thread's events too.
    #[cfg(feature = "tracing")]
    let dispatch = tracing::dispatcher::get_default(|d| d.clone());
    std::thread::spawn(move || {
        #[cfg(feature = "tracing")]
        let result = tracing::dispatcher::with_default(&dispatch, work);
        #[cfg(not(feature = "tracing"))]
        let result = work();
        let _ = tx.send(result);
    });
    rx.await.expect("the migration thread ends by sending its result")
}
