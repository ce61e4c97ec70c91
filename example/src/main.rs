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
