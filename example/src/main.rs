//! An application that embeds its migration set at build time and refuses to start against a
//! database that is not at the revision it was compiled for.
//!
//! `cargo run -p procrastinate-example` lists the embedded set; with `DATABASE_URL` set it also
//! checks that database (exit 1 when it does not match).

mod migrations {
    procrastinate_migrations::include_migrations!();
}

use procrastinate_migrations::db;

fn main() {
    for m in migrations::MIGRATIONS {
        println!("{} {:<8} {}", m.revision, m.phase, m.file_name);
    }
    println!("head {}", migrations::HEAD);
    // Typed constants: a reference to a revision that no longer exists fails to compile.
    assert_eq!(migrations::REV_0002_PRE_ADD_ACCOUNT_STATUS.phase, procrastinate_migrations::Phase::Pre);

    let Ok(url) = std::env::var("DATABASE_URL") else { return };
    // The same schema and tracking table as `cargo procrastinate`, from the build's settings.
    let options = db::Options::new(migrations::SCHEMA, migrations::VERSION_TABLE).expect("checked by the build");
    let result = postgres::Client::connect(&url, postgres::NoTls)
        .map_err(|e| db::describe(&e))
        .and_then(|mut client| db::verify(&mut client, migrations::MIGRATIONS, &options).map_err(|e| e.to_string()));
    match result {
        Ok(head) => println!("database is at {head}: ok"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
