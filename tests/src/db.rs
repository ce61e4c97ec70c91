//! One throwaway cluster per test binary, a fresh database per test.
//!
//! Tests in one binary run on parallel threads, so the cluster is started once behind
//! a `OnceLock` and every test gets its own database with a unique name.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use pg_scratch::Scratch;

/// Use this server (a `postgres://` URL of a user allowed to CREATE DATABASE) instead
/// of a scratch cluster, e.g. in CI with a service container.
pub const SERVER_ENV: &str = "PROCRASTINATE_TEST_DATABASE_URL";

enum Server {
    Scratch(Scratch),
    External(String),
}

/// Started on first use and never dropped: pg-scratch's exit handler and parent-death
/// signal stop it when the test binary ends. The error is kept so that, when the
/// cluster cannot start, each test fails fast with the reason instead of retrying.
static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

fn server() -> &'static Server {
    let server = SERVER.get_or_init(|| match std::env::var(SERVER_ENV) {
        Ok(url) if !url.is_empty() => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                // Not quoted back: the URL may hold a password.
                return Err(format!("{SERVER_ENV} must be a postgres:// or postgresql:// URL"));
            }
            Ok(Server::External(url))
        }
        _ => Scratch::start()
            .map(Server::Scratch)
            .map_err(|e| format!("could not start a scratch PostgreSQL cluster: {e}\n(or set {SERVER_ENV})")),
    });
    match server {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}

impl Server {
    fn admin(&self) -> Result<postgres::Client, postgres::Error> {
        match self {
            Server::Scratch(s) => s.config("postgres").connect(postgres::NoTls),
            Server::External(url) => postgres::Client::connect(url, postgres::NoTls),
        }
    }

    fn url(&self, dbname: &str) -> String {
        match self {
            Server::Scratch(s) => s.url(dbname),
            Server::External(url) => with_dbname(url, dbname),
        }
    }

    fn config(&self, dbname: &str) -> postgres::Config {
        match self {
            // The unix socket with trust auth skips SCRAM's deliberately slow hashing.
            Server::Scratch(s) => s.config(dbname),
            Server::External(url) => {
                let mut config: postgres::Config = url.parse().expect("checked when the database was created");
                config.dbname(dbname);
                config
            }
        }
    }
}

/// A database that exists for the lifetime of this value (dropped with `WITH (FORCE)`).
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Creates a fresh, empty database; `label` (usually the test name) makes it recognizable.
    /// Panics with the reason if no server is available.
    pub fn new(label: &str) -> TestDb {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = db_name(label, std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let server = server();
        let created = match server {
            Server::Scratch(s) => s.create_database(&name).map_err(|e| e.to_string()),
            Server::External(url) => {
                if let Err(e) = url.parse::<postgres::Config>() {
                    panic!("{SERVER_ENV} is not a valid connection URL: {e}");
                }
                server
                    .admin()
                    .and_then(|mut c| c.batch_execute(&format!("CREATE DATABASE \"{name}\"")))
                    .map_err(|e| format!("{e} (server from {SERVER_ENV})"))
            }
        };
        if let Err(e) = created {
            panic!("could not create test database {name}: {e}");
        }
        TestDb { url: server.url(&name), name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `postgres://` URL with password, usable by the CLI (`--database-url`, `DATABASE_URL`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A new connection to this database.
    pub fn client(&self) -> postgres::Client {
        server()
            .config(&self.name)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("could not connect to test database {}: {e}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Best effort, and never a panic (we may be unwinding from a failed test).
        if let Some(Ok(server)) = SERVER.get() {
            if let Ok(mut admin) = server.admin() {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
            }
        }
    }
}

/// `t_<label>_<pid>_<counter>`: lowercase `[a-z0-9_]` (so quoting never matters), at
/// most 63 bytes (PostgreSQL's identifier limit, longer names are silently truncated),
/// unique across parallel tests and concurrently running test binaries.
fn db_name(label: &str, pid: u32, counter: u64) -> String {
    let suffix = format!("_{pid}_{counter}");
    let room = 63 - "t_".len() - suffix.len();
    let label: String = label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .take(room)
        .collect();
    format!("t_{label}{suffix}")
}

/// Replaces the database (the URL path) in a `postgres://` URL, keeping the query.
fn with_dbname(url: &str, dbname: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let rest = &url[authority_end..];
    let query = rest.find(['?', '#']).map_or("", |i| &rest[i..]);
    format!("{}/{dbname}{query}", &url[..authority_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_and_bounded() {
        assert_eq!(db_name("Upgrade::From 3.0", 42, 7), "t_upgrade__from_3_0_42_7");
        let long = db_name(&"x".repeat(100), u32::MAX, u64::MAX);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with(&format!("_{}_{}", u32::MAX, u64::MAX)));
    }

    #[test]
    fn dbname_replaced_in_urls() {
        assert_eq!(with_dbname("postgres://u:p@h:5432/app", "t_1"), "postgres://u:p@h:5432/t_1");
        assert_eq!(with_dbname("postgres://u:p@h", "t_1"), "postgres://u:p@h/t_1");
        assert_eq!(with_dbname("postgresql://h/app?sslmode=disable", "t_1"), "postgresql://h/t_1?sslmode=disable");
        assert_eq!(with_dbname("postgres://h?sslmode=disable", "t_1"), "postgres://h/t_1?sslmode=disable");
    }

    #[test]
    fn databases_are_separate_and_dropped() {
        let (a, b) = (TestDb::new("db_a"), TestDb::new("db_b"));
        assert_ne!(a.name(), b.name());
        a.client().batch_execute("CREATE TABLE only_in_a ()").unwrap();
        let in_b = b.client().query_one("SELECT to_regclass('only_in_a') IS NULL", &[]).unwrap();
        assert!(in_b.get::<_, bool>(0));
        // The URL (TCP + password) reaches the same database.
        let mut by_url = postgres::Client::connect(&a.url(), postgres::NoTls).unwrap();
        let row = by_url.query_one("SELECT current_database()::text", &[]).unwrap();
        assert_eq!(row.get::<_, String>(0), a.name());
        let name = a.name().to_owned();
        drop(a); // FORCE: the open connection does not prevent the drop
        let mut check = b.client();
        let exists = check.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).unwrap();
        assert_eq!(exists.get::<_, i64>(0), 0);
        drop(by_url);
    }
}
