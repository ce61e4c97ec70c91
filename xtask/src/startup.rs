//! `cargo xtask bench start-up`: what the start-up check costs an application, in process, on
//! a connection it already has (its pool's): `db::check_sets` of 3.10.0's set on an up-to-date
//! database, against the least a check could send, one simple query reading the tracking table,
//! and `SELECT 1`, all on the same connection, interleaved; then the first check on a new
//! backend (the server's caches cold), against a libpq client's whole first query there.

use std::time::{Duration, Instant};

use procrastinate_migrations::{db, SetDef};

use crate::Result;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn startup(url: &str, migrations: &std::path::Path) -> Result<()> {
    let set = procrastinate_migrations::MigrationSet::from_dir(migrations)?;
    let migrations: &'static [procrastinate_migrations::Migration] = Box::leak(set.migrations.into_boxed_slice());
    let def = SetDef {
        name: None,
        migrations,
        schema: None,
        version_table: procrastinate_migrations::config::DEFAULT_VERSION_TABLE,
        window: procrastinate_migrations::compat::Window::of(migrations),
    };
    let sets = [def];
    let read = format!("SELECT set_name, revision, file_name, checksum FROM {}", procrastinate_migrations::config::DEFAULT_VERSION_TABLE);
    // The first check on a backend of its own: the server's catalog caches are cold.
    let mut first = Vec::new();
    let mut first_read = Vec::new();
    for _ in 0..11 {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let t = Instant::now();
        let verdicts = db::check_sets(&mut client, &sets)?;
        first.push(t.elapsed());
        assert!(verdicts.iter().all(|v| v.is_compatible()), "the database is up to date");
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let t = Instant::now();
        client.simple_query(&read)?;
        first_read.push(t.elapsed());
    }
    // Then on a warm connection, as an application's pool has it.
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let (mut check, mut plain, mut one) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..201 {
        for k in 0..3 {
            let t = Instant::now();
            match (round + k) % 3 {
                0 => {
                    db::check_sets(&mut client, &sets)?;
                    check.push(t.elapsed());
                }
                1 => {
                    client.simple_query(&read)?;
                    plain.push(t.elapsed());
                }
                _ => {
                    client.simple_query("SELECT 1")?;
                    one.push(t.elapsed());
                }
            }
        }
    }
    let median = crate::bench::median;
    let (check, plain, one, first, first_read) = (median(&check), median(&plain), median(&one), median(&first), median(&first_read));
    println!("start-up check of 3.10.0's set, up-to-date database, in process (blocking postgres client)");
    println!(
        "  on a warm connection: check_sets {:.3} ms; one query reading the tracking table {:.3} ms (ratio {:.2}); SELECT 1 {:.3} ms",
        ms(check),
        ms(plain),
        check.as_secs_f64() / plain.as_secs_f64(),
        ms(one)
    );
    println!(
        "  the first on a new backend: check_sets {:.3} ms; one query reading the tracking table {:.3} ms (ratio {:.2})",
        ms(first),
        ms(first_read),
        first.as_secs_f64() / first_read.as_secs_f64()
    );
    Ok(())
}
