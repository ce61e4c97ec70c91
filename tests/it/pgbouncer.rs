//! The concurrency claim, behind a real PgBouncer in transaction-pooling mode with fewer server
//! connections than clients: consecutive transactions of one client land on different backends,
//! and PgBouncer 1.18 has no prepared-statement support. Session state of any kind would break.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;
use procrastinate_tests::pgbouncer::Bouncer;

/// PgBouncer in front of the server of `db` (URL `postgres://postgres:PW@HOST:PORT/DB`).
fn bouncer(db: &TestDb) -> Bouncer {
    let url = db.url();
    let rest = url.strip_prefix("postgres://").unwrap();
    let (auth, rest) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let (hostport, _) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    procrastinate_tests::pgbouncer::start(host, port.parse().unwrap(), user, password).unwrap()
}

#[test]
fn concurrent_upgrades_through_pgbouncer_transaction_pooling() {
    let up = v3_10();
    let db = TestDb::new("pgbouncer");
    let bouncer = bouncer(&db);
    let via = format!("postgres://postgres@127.0.0.1:{}/{}?sslmode=disable", bouncer.port, db.name());
    let dir = up.migrations.to_str().unwrap();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &via, "--message-format", "json", "upgrade"], &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut applied: Vec<String> = Vec::new();
    for run in runs {
        let json = run.ok().json();
        assert_eq!(json["to"], "0038");
        applied.extend(json["applied"].as_array().unwrap().iter().map(|a| a["revision"].as_str().unwrap().to_string()));
    }
    applied.sort();
    assert_eq!(applied, (1..=38).map(|n| format!("{n:04}")).collect::<Vec<_>>());
    // And the rest of the commands work through it too.
    cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &via, "check"], &[]).ok();
    // search_path is SET LOCAL in every transaction, so it holds whichever backend runs it.
    let other = cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &via, "--schema", "other", "upgrade", "0004"], &[]).ok();
    assert!(other.stderr.contains("upgraded base -> 0004"), "{}", other.stderr);
    let jobs: Option<String> = db.client().query_one("SELECT to_regclass('other.procrastinate_jobs')::text", &[]).unwrap().get(0);
    assert_eq!(jobs.as_deref(), Some("other.procrastinate_jobs"));
    assert_eq!(tracking_rows(&db, "other.cargo_procrastinate_migrations").len(), 4);
}

/// Ctrl-C behind PgBouncer in transaction pooling: the cancel request reaches the server (its
/// socket stays open until PgBouncer closes it; 1.18 drops one closed at once), the migration
/// is rolled back and not recorded, and the tool exits 130 with the position it read.
#[test]
fn sigint_cancels_a_migration_through_pgbouncer() {
    let db = TestDb::new("pgbouncer_sigint");
    let bouncer = bouncer(&db);
    let via = format!("postgres://postgres@127.0.0.1:{}/{}?sslmode=disable", bouncer.port, db.name());
    let set = copy_set(&example_set());
    let slow = "03.00.00_01_pre_slow.sql";
    write(set.path(), slow, "CREATE TABLE slow_done (x int);\nSELECT pg_sleep(20);\n");
    let args = ["--migrations", set.path().to_str().unwrap(), "--database-url", via.as_str()];
    cli_in(&std::env::temp_dir(), &[&args[..], &["upgrade", "0003"]].concat(), &[]).ok();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
        .args([&args[..], &["upgrade"]].concat())
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    let started = Instant::now();
    while client.query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'", &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "the slow migration never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let signalled = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(signalled.elapsed() < Duration::from_secs(10), "exited {:?} after the signal: {stderr}", signalled.elapsed());
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains(&format!("interrupted: migration 0004 ({slow}) was stopped and rolled back; the database is at 0003")), "{stderr}");
    let done: Option<String> = client.query_one("SELECT to_regclass('slow_done')::text", &[]).unwrap().get(0);
    assert_eq!(done, None, "rolled back, not committed 20 s later");
    assert_eq!(tracking_rows(&db, "cargo_procrastinate_migrations").len(), 3, "not recorded");
}
