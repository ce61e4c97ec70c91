//! An application that embeds its migration sets at build time and, at start-up, refuses a
//! database it cannot run on.
//!
//! - `cargo run -p procrastinate-example` lists the embedded sets.
//! - With `DATABASE_URL` set, it checks that database inside a tokio runtime (the async check,
//!   as an async service would), prints the verdict of each set, and exits 0 when this build
//!   may run on it, 1 otherwise. The check allows the zero-downtime window: the build's head
//!   release's `post` migrations may still be pending, and the next release's `pre` migrations
//!   may be applied already.
//! - With `--migrate` as well, it first applies its own migrations, as `sqlx migrate!().run()`
//!   does, for deploy boxes without cargo. That uses the blocking client, so it runs before the
//!   runtime starts.

use std::process::ExitCode;

mod migrations {
    procrastinate_migrations::include_migrations!();
}

use procrastinate_migrations::db;

fn main() -> ExitCode {
    for set in migrations::SETS {
        let w = set.window;
        println!(
            "set {}: {} migrations, head {}, runs on databases from {} to {} plus the next release's pre migrations",
            set.name.unwrap_or("(unnamed)"),
            set.migrations.len(),
            w.head,
            w.oldest,
            w.head,
        );
    }
    let Ok(url) = std::env::var("DATABASE_URL") else { return ExitCode::SUCCESS };
    if std::env::args().any(|a| a == "--migrate") {
        if let Err(e) = migrate(&url) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    start(&url)
}

/// Applies every set to its head, set by set, each migration in its own transaction, with the
/// same tracking table and lock as `cargo procrastinate upgrade`.
fn migrate(url: &str) -> Result<(), String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| db::describe(&e))?;
    for (i, set) in migrations::SETS.iter().enumerate() {
        let options = db::Options::for_set(set, i == 0)?;
        let report = db::upgrade(&mut client, set.migrations, Some(set.window.head), &options, &mut |event| {
            if let db::Event::Applied { migration, .. } = event {
                println!("applied {}", migration.label());
            }
        })
        .map_err(|e| e.to_string())?;
        println!("set {}: at {}", set.name.unwrap_or("(unnamed)"), report.to.map_or("base".into(), |r| r.to_string()));
    }
    Ok(())
}

/// The start-up check, inside a tokio runtime.
#[tokio::main(flavor = "current_thread")]
async fn start(url: &str) -> ExitCode {
    let (client, connection) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(connection);
    match procrastinate_migrations::db_async::check_sets(&client, migrations::SETS).await {
        Ok(verdicts) => {
            for v in &verdicts {
                println!("{}: {v}", v.set.as_deref().unwrap_or("database"));
            }
            if verdicts.iter().all(|v| v.is_compatible()) {
                ExitCode::SUCCESS
            } else {
                eprintln!("error: this build cannot run on that database (see above)");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Each test gets a fresh database with the embedded sets applied (`testing::TestDatabase`: a
/// template built once per run, cloned per test), as `#[sqlx::test]` gives sqlx users.
#[cfg(test)]
mod tests {
    use procrastinate_migrations::testing::TestDatabase;

    /// The server: `PROCRASTINATE_TEST_DATABASE_URL` when set, else a throwaway cluster for this
    /// test binary.
    fn server() -> String {
        static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SERVER
            .get_or_init(|| match std::env::var(procrastinate_migrations::testing::SERVER_ENV) {
                Ok(url) if !url.is_empty() => url,
                _ => {
                    let scratch = Box::leak(Box::new(pg_scratch::Scratch::start().expect("a throwaway PostgreSQL")));
                    scratch.url("postgres")
                }
            })
            .clone()
    }

    fn database() -> TestDatabase {
        TestDatabase::on_server(&server(), super::migrations::SETS).expect("a test database")
    }

    #[test]
    fn each_test_gets_a_fresh_migrated_database() {
        let (a, b) = (database(), database());
        assert_ne!(a.name(), b.name());
        let mut client = a.client().unwrap();
        // The sets are applied: the start-up check passes, and the app's tables are there.
        procrastinate_migrations::db::verify_sets(&mut client, super::migrations::SETS).unwrap();
        client.batch_execute("INSERT INTO accounts (email, status) VALUES ('a@example.com', 'active')").unwrap();
        let count = |db: &TestDatabase| -> i64 { db.client().unwrap().query_one("SELECT count(*) FROM accounts", &[]).unwrap().get(0) };
        assert_eq!((count(&a), count(&b)), (1, 0), "each test has its own database");
        let name = a.name().to_string();
        drop(client);
        drop(a);
        let mut admin = b.client().unwrap();
        let left: i64 = admin.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).unwrap().get(0);
        assert_eq!(left, 0, "dropped at the end of a test that passed");
    }

    #[test]
    fn a_failed_test_keeps_its_database_for_a_look() {
        let (tx, rx) = std::sync::mpsc::channel();
        let failed = std::thread::spawn(move || {
            let db = database();
            tx.send(db.name().to_string()).unwrap();
            panic!("this test fails on purpose");
        })
        .join();
        assert!(failed.is_err());
        let name = rx.recv().unwrap();
        let other = database();
        let mut admin = other.client().unwrap();
        let kept: i64 = admin.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).unwrap().get(0);
        assert_eq!(kept, 1, "the failed test's database is kept");
        admin.batch_execute(&format!("DROP DATABASE \"{name}\"")).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn async_tests_get_one_too() {
        // The first test to ask starts the server, with a blocking client: not on this runtime.
        let url = std::thread::spawn(server).join().unwrap();
        let db = TestDatabase::new_async_on(url, super::migrations::SETS).await.unwrap();
        let (client, connection) = db.config().connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        procrastinate_migrations::db_async::verify_sets(&client, super::migrations::SETS).await.unwrap();
    }
}
