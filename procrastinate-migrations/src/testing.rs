//! A fresh, migrated database for each test (feature `testing`), as `#[sqlx::test]` gives:
//! the sets of the generated module (`SETS`) are applied once per test run into a template
//! database, and each test gets a clone of it (`CREATE DATABASE ... TEMPLATE`, a file copy on
//! the server), dropped at the end unless the test failed (then it is kept, and named, for a
//! look).
//!
//! The server comes from `PROCRASTINATE_TEST_DATABASE_URL`, else `DATABASE_URL` (any database
//! on it: the test databases are made beside it; the role needs `CREATEDB`).
//!
//! ```no_run
//! # mod migrations { pub const SETS: &[procrastinate_migrations::SetDef] = &[]; }
//! #[test]
//! fn orders_are_saved() {
//!     let db = procrastinate_migrations::testing::TestDatabase::new(migrations::SETS).unwrap();
//!     let mut client = db.client().unwrap();
//!     client.batch_execute("INSERT INTO orders DEFAULT VALUES").unwrap();
//! }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use crate::db::{self, Options, Session};
use crate::set::SetDef;
use crate::tracking::{quote_ident, quote_literal};

/// The variable that names the server for test databases (else `DATABASE_URL`).
pub const SERVER_ENV: &str = "PROCRASTINATE_TEST_DATABASE_URL";

/// A database for one test, with the sets applied; dropped with this value unless the thread
/// is panicking (a failed test keeps its database, and says its name).
pub struct TestDatabase {
    name: String,
    /// The same server, its maintenance database: where the test database is made and dropped.
    admin: tokio_postgres::Config,
    config: tokio_postgres::Config,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase").field("name", &self.name).finish()
    }
}

/// Why no test database could be made.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err(what: &str) -> impl FnOnce(postgres::Error) -> Error + '_ {
    move |e| Error(format!("{what}: {}", db::describe(&e)))
}

impl TestDatabase {
    /// A fresh database with `sets` applied, on the server of [`SERVER_ENV`] (or `DATABASE_URL`).
    pub fn new(sets: &[SetDef]) -> Result<TestDatabase, Error> {
        let url = std::env::var(SERVER_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .ok_or_else(|| Error(format!("no server for test databases: set {SERVER_ENV} (or DATABASE_URL)")))?;
        TestDatabase::on_server(&url, sets)
    }

    /// [`new`](Self::new) on the server of `url` (a URL or libpq string, as the CLI takes it).
    pub fn on_server(url: &str, sets: &[SetDef]) -> Result<TestDatabase, Error> {
        let env = |k: &str| std::env::var(k).ok();
        let params = crate::conninfo::resolve(crate::conninfo::parse(url).map_err(Error)?, &env, &[("connect_timeout", "10")]).map_err(Error)?;
        let admin = params.config().map_err(Error)?;
        let mut client = connect(&admin)?;
        let template = template(&mut client, &admin, sets)?;
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("pmtest_{}_{}_{nanos:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        client
            .batch_execute(&format!("CREATE DATABASE {} TEMPLATE {}", quote_ident(&name), quote_ident(&template)))
            .map_err(err("cannot create the test database"))?;
        let mut config = admin.clone();
        config.dbname(&name);
        Ok(TestDatabase { name, admin, config })
    }

    /// [`new`](Self::new), for async tests (feature `tokio-postgres`): the work runs on a
    /// thread of its own, as the blocking client must outside a runtime.
    #[cfg(feature = "tokio-postgres")]
    pub async fn new_async(sets: &'static [SetDef]) -> Result<TestDatabase, Error> {
        off_runtime(move || TestDatabase::new(sets)).await
    }

    /// [`on_server`](Self::on_server), for async tests.
    #[cfg(feature = "tokio-postgres")]
    pub async fn new_async_on(url: String, sets: &'static [SetDef]) -> Result<TestDatabase, Error> {
        off_runtime(move || TestDatabase::on_server(&url, sets)).await
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How to connect to it (for a pool, or `tokio_postgres`).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// A blocking client on it (not inside a tokio runtime: use [`config`](Self::config) there).
    pub fn client(&self) -> Result<postgres::Client, Error> {
        postgres::Config::from(self.config.clone()).connect(postgres::NoTls).map_err(err("cannot connect to the test database"))
    }
}

/// Runs `work` on a thread of its own and waits for it without blocking the runtime.
#[cfg(feature = "tokio-postgres")]
async fn off_runtime(work: impl FnOnce() -> Result<TestDatabase, Error> + Send + 'static) -> Result<TestDatabase, Error> {
    crate::db_async::off_runtime(work).await
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "kept test database {} for a look (DROP DATABASE it when done)", self.name);
            return;
        }
        // On a thread of its own: the blocking client cannot run inside an async test's runtime.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = connect(&admin) {
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name)));
            }
        })
        .join();
    }
}

fn connect(config: &tokio_postgres::Config) -> Result<postgres::Client, Error> {
    postgres::Config::from(config.clone()).connect(postgres::NoTls).map_err(err("cannot connect to the test server"))
}

/// The template database of `sets`, built once (on first use, under an advisory lock, so that
/// parallel tests wait for one build) and named after everything it depends on: every set's
/// files and checksums, schema and tracking table.
fn template(client: &mut postgres::Client, admin: &tokio_postgres::Config, sets: &[SetDef]) -> Result<String, Error> {
    let mut key = String::from(env!("CARGO_PKG_VERSION"));
    for def in sets {
        key.push_str(&format!("\0{:?}\0{:?}\0{}", def.name, def.schema, def.version_table));
        for m in def.migrations {
            key.push_str(&format!("\0{}\0{}", m.file_name, m.checksum));
        }
    }
    let hash = crate::Checksum::of(key.as_bytes()).to_string();
    let name = format!("pmtest_template_{}", &hash[..16]);
    let exists = |client: &mut postgres::Client| -> Result<bool, Error> {
        let rows = client
            .simple_query(&format!("SELECT 1 FROM pg_database WHERE datname = {}", quote_literal(&name)))
            .map_err(err("cannot look for the template database"))?;
        Ok(rows.iter().any(|m| matches!(m, postgres::SimpleQueryMessage::Row(_))))
    };
    if exists(client)? {
        return Ok(name);
    }
    client
        .batch_execute("SELECT pg_advisory_lock(hashtext('cargo-procrastinate test template'))")
        .map_err(err("cannot wait for the template database"))?;
    let built = (|| {
        if exists(client)? {
            return Ok(());
        }
        let building = format!("{name}_building");
        // Each alone: neither runs inside a transaction block (a multi-statement message is one).
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&building))).map_err(err("cannot clear an unfinished template database"))?;
        client.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&building))).map_err(err("cannot create the template database"))?;
        let mut config = admin.clone();
        config.dbname(&building);
        let mut db = postgres::Config::from(config).connect(postgres::NoTls).map_err(err("cannot connect to the template database"))?;
        for (i, def) in sets.iter().enumerate() {
            let opts = Options::for_set(def, i == 0).map_err(Error)?;
            let head = def.migrations.last().map(|m| m.revision);
            db::upgrade(&mut db as &mut dyn Session, def.migrations, head, &opts, &mut |_| {}).map_err(|e| Error(format!("the sets do not apply: {e}")))?;
        }
        drop(db);
        // Published whole, under its final name, only once every set is applied.
        client
            .batch_execute(&format!("ALTER DATABASE {} RENAME TO {}", quote_ident(&building), quote_ident(&name)))
            .map_err(err("cannot publish the template database"))
    })();
    let _ = client.batch_execute("SELECT pg_advisory_unlock(hashtext('cargo-procrastinate test template'))");
    built.map(|()| name)
}
