//! Never hang, never harm (issue 21): a server that stops answering, a connection lost at the
//! worst moment, a standby, signals, hostile settings and inputs, closed pipes. Real components:
//! a TCP proxy that can go silent (`procrastinate_tests::proxy`), a hot standby made with
//! `pg_basebackup -R`, PgBouncer (in `pgbouncer.rs`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use procrastinate_tests::proxy::{Mode, Proxy};

use crate::support::*;

/// `(password, port, dbname)` of a test database's URL (`postgres://postgres:PW@127.0.0.1:PORT/DB`).
fn parts(db: &TestDb) -> (String, u16, String) {
    let url = db.url();
    let rest = url.strip_prefix("postgres://postgres:").unwrap();
    let (password, rest) = rest.split_once("@127.0.0.1:").unwrap();
    let (port, name) = rest.split_once('/').unwrap();
    (password.to_string(), port.parse().unwrap(), name.to_string())
}

/// A proxy in front of the test server, and the URL through it (`connect_timeout` 2 s).
fn proxied(db: &TestDb) -> (Proxy, String) {
    let (password, port, name) = parts(db);
    let proxy = Proxy::start(([127, 0, 0, 1], port).into());
    let url = format!("postgres://postgres:{password}@127.0.0.1:{}/{name}?sslmode=disable&connect_timeout=2", proxy.port);
    (proxy, url)
}

fn run_with(url: &str, set: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec!["--migrations", set.to_str().unwrap()];
    all.extend_from_slice(args);
    cli_in(&std::env::temp_dir(), &all, &[("DATABASE_URL", url)])
}

#[test]
fn a_server_that_accepts_and_never_answers_is_given_up_within_connect_timeout() {
    let db = TestDb::new("faults_silent_connect");
    let (proxy, url) = proxied(&db);
    proxy.set(Mode::Silent);
    let started = Instant::now();
    let run = run_with(&url, &example_set(), &["current"]).code(3);
    assert!(started.elapsed() < Duration::from_secs(7), "took {:?}", started.elapsed());
    assert!(run.stderr.contains("no connection within 2s (connect_timeout)"), "{}", run.stderr);
}

#[test]
fn a_silent_drop_mid_upgrade_is_bounded_and_says_what_is_known() {
    let db = TestDb::new("faults_silent_upgrade");
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_01_pre_slow.sql", "SELECT pg_sleep(3);\n");
    cli(&db, set.path(), &["upgrade", "0003"]).ok();
    let (proxy, url) = proxied(&db);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
        .args(["--migrations", set.path().to_str().unwrap(), "--round-trip-timeout", "1s", "upgrade"])
        .env("DATABASE_URL", &url)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut admin = db.client();
    let started = Instant::now();
    while admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'", &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(started.elapsed() < Duration::from_secs(15), "the slow migration never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.set(Mode::Silent);
    let silenced = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(silenced.elapsed() < Duration::from_secs(30), "still waiting after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("a second connection could not reach the server either") && stderr.contains("whether it committed is unknown"), "{stderr}");
    assert!(stderr.contains("`cargo procrastinate current` says where the database is"), "{stderr}");
    // The server finished on its own: what `current` reads once the way is open again.
    assert_eq!(cli(&db, set.path(), &["current"]).ok().stdout.trim(), "0004 (head)");
}

#[test]
fn a_lost_commit_is_found_and_the_lock_let_go() {
    let db = TestDb::new("faults_lost_commit");
    let (proxy, url) = proxied(&db);
    proxy.set(Mode::DropCommit);
    let started = Instant::now();
    // A tracking table in a schema of its own goes through step 1's plpgsql set-up, whose
    // transaction ends with a COMMIT of its own (a plain first run commits step 1 in the same
    // round trip as its read).
    let table = ["--version-table", "ops.migrations"];
    let run = run_with(&url, &example_set(), &[&table[..], &["--round-trip-timeout", "1s", "upgrade"]].concat()).code(7);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(run.stderr.contains("the server had our transaction open, waiting for a message that was lost"), "{}", run.stderr);
    // Nobody holds the migration lock or sits idle in a transaction: the next run goes through.
    let idle: i64 = db.client().query_one("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'", &[]).unwrap().get(0);
    assert_eq!(idle, 0);
    cli(&db, &example_set(), &[&table[..], &["upgrade"]].concat()).ok();
}

#[test]
fn a_hot_standby_is_named_before_anything_runs() {
    let primary = pg_scratch::Scratch::start().unwrap();
    primary.create_database("app").unwrap();
    let standby = primary.standby().unwrap();
    let started = Instant::now();
    let mut client = standby.config("postgres").connect(postgres::NoTls).unwrap();
    while client.query_one("SELECT count(*) FROM pg_database WHERE datname = 'app'", &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "the standby never replayed the database");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Tracked already on the primary: the first write on the standby is not the tracking table's.
    let on_primary = primary.url("app");
    run_with(&on_primary, &example_set(), &["upgrade", "0002"]).ok();
    std::thread::sleep(Duration::from_millis(300));
    let run = run_with(&standby.url("app"), &example_set(), &["upgrade"]).code(2);
    assert!(run.stderr.contains("this server is a hot standby (in recovery): it takes no writes; connect to the primary"), "{}", run.stderr);
    assert!(!run.stderr.contains("read-only transaction"), "{}", run.stderr);
}

#[test]
fn a_crafted_schema_changes_nothing_with_standard_conforming_strings_off() {
    let db = TestDb::new("faults_scs");
    db.client()
        .batch_execute(&format!("CREATE TABLE victim (x int); ALTER DATABASE {} SET standard_conforming_strings = off", db.name()))
        .unwrap();
    let crafted = r"x\'; DROP TABLE victim; --";
    let _ = cli(&db, &example_set(), &["--schema", crafted, "upgrade"]);
    let _ = cli(&db, &example_set(), &["--schema", crafted, "current"]);
    let victim: Option<String> = db.client().query_one("SELECT to_regclass('public.victim')::text", &[]).unwrap().get(0);
    assert_eq!(victim.as_deref(), Some("victim"), "the crafted value ran as SQL");
}

#[test]
fn closed_pipes_and_full_disks_never_panic() {
    let db = TestDb::new("faults_pipes");
    let bin = env!("CARGO_BIN_EXE_cargo-procrastinate");
    let set = example_set();
    let script = format!(
        "'{bin}' --migrations '{}' --database-url '{}' upgrade 2>&1 | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        set.display(),
        db.url()
    );
    let out = Command::new("bash").arg("-c").arg(&script).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cli(&db, &set, &["current"]).ok().stdout.trim(), "0003 (head)", "the upgrade went on to its end");
    let full = Command::new(bin)
        .args(["--migrations", set.to_str().unwrap(), "--database-url", &db.url(), "-v", "history"])
        .stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout: No space left on device (os error 28)") && !stderr.contains("panicked"), "{stderr}");
    let completions = Command::new("bash").arg("-c").arg(format!("'{bin}' completions bash | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&completions.stdout).trim(), "0");
}

#[test]
fn inputs_that_would_hang_or_be_skipped_are_named() {
    let set = copy_set(&example_set());
    let fifo = set.path().join("03.00.00_01_pre_pipe.sql");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let here = std::env::temp_dir();
    let dir = set.path().to_str().unwrap();
    let started = Instant::now();
    let run = cli_in(&here, &["--migrations", dir, "heads"], &[]).code(2);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(run.stderr.contains("03.00.00_01_pre_pipe.sql is not a regular file"), "{}", run.stderr);
    std::fs::remove_file(&fifo).unwrap();
    std::os::unix::fs::symlink("/dev/zero", set.path().join("03.00.00_01_pre_zero.sql")).unwrap();
    assert!(cli_in(&here, &["--migrations", dir, "heads"], &[]).code(2).stderr.contains("03.00.00_01_pre_zero.sql is not a regular file"));
    std::fs::remove_file(set.path().join("03.00.00_01_pre_zero.sql")).unwrap();
    write(set.path(), "03.00.00_01_pre_shout.SQL", "SELECT 1;\n");
    let upper = cli_in(&here, &["--migrations", dir, "heads"], &[]).code(2);
    assert!(upper.stderr.contains("03.00.00_01_pre_shout.SQL ends in `.SQL`"), "{}", upper.stderr);
    std::fs::remove_file(set.path().join("03.00.00_01_pre_shout.SQL")).unwrap();
    let empty = cli_in(&here, &["--migrations", dir, "--schema", "", "heads"], &[]).code(2);
    assert!(empty.stderr.contains("setting `schema` is empty"), "{}", empty.stderr);
    let long = "s".repeat(64);
    let too_long = cli_in(&here, &["--migrations", dir, "--schema", &long, "heads"], &[]).code(2);
    assert!(too_long.stderr.contains("setting `schema` is 64 bytes long"), "{}", too_long.stderr);
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join(".env")).unwrap();
    let dotenv = cli_in(project.path(), &["--migrations", dir, "current"], &[]).code(2);
    assert!(dotenv.stderr.contains(".env is not a file"), "{}", dotenv.stderr);
    let url = format!("postgres://u@h/db?application_name={}", "x".repeat(100_000));
    let huge = cli_in(&here, &["--migrations", dir, "--database-url", &url, "current"], &[]).code(2);
    assert!(huge.stderr.contains("bytes long (at most 16384)"), "{}", huge.stderr);
    let services = tempfile::tempdir().unwrap();
    std::fs::write(services.path().join("pg_service.conf"), "[ops\nhost=x\n").unwrap();
    let svc = cli_in(&here, &["--migrations", dir, "current"], &[("PGSERVICE", "ops"), ("PGSERVICEFILE", services.path().join("pg_service.conf").to_str().unwrap())]).code(2);
    assert!(svc.stderr.contains("pg_service.conf:1: a service section needs its closing `]`"), "{}", svc.stderr);
}

#[test]
fn libpq_strings_connect_as_psql_takes_them() {
    let db = TestDb::new("faults_libpq");
    let (password, port, name) = parts(&db);
    let keywords = format!(
        "host = 127.0.0.1  port= {port} user =postgres password = '{password}' dbname = '{name}' \
         sslmode = disable gssencmode=disable application_name = 'my deploy'"
    );
    cli(&db, &example_set(), &["upgrade"]).ok();
    let run = cli_in(&std::env::temp_dir(), &["--migrations", example_set().to_str().unwrap(), "current"], &[("DATABASE_URL", &keywords)]).ok();
    assert_eq!(run.stdout.trim(), "0003 (head)");
    // `--server` reads the environment too: PGPASSWORD instead of a password in argv.
    let server = format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=disable");
    let set = copy_set(&example_set());
    std::fs::create_dir_all(set.path().join("reference")).unwrap();
    std::fs::write(set.path().join("reference/schema.sql"), "CREATE TABLE nothing (x int);\n").unwrap();
    let verify = cli_in(&std::env::temp_dir(), &["--migrations", set.path().to_str().unwrap(), "verify", "--server", &server], &[("PGPASSWORD", &password)]);
    assert_eq!(verify.code, 5, "connected with PGPASSWORD, built, and compared:\n{}", verify.stderr);
}

#[test]
fn two_spellings_of_one_tracking_table_take_one_lock() {
    let up = v3_10();
    let db = TestDb::new("faults_spellings");
    let dir = up.migrations.to_str().unwrap();
    let url = db.url();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let url = url.clone();
                s.spawn(move || {
                    let mut args = vec!["--migrations", dir, "--database-url", url.as_str()];
                    if i % 2 == 0 {
                        args.extend(["--schema", "public"]);
                    }
                    args.push("upgrade");
                    cli_in(&std::env::temp_dir(), &args, &[])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in runs {
        run.ok();
    }
    assert_eq!(tracking_rows(&db, "cargo_procrastinate_migrations").len(), 38);
}

#[test]
fn a_no_transaction_file_whose_run_died_after_it_finished_can_be_recorded() {
    let db = TestDb::new("faults_stale_claim");
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_01_pre_email_index.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);\n");
    cli(&db, set.path(), &["upgrade", "0003"]).ok();
    // What a SIGKILL right after the index was built leaves: the index, and the claim.
    db.client()
        .batch_execute(
            "CREATE INDEX accounts_email_idx ON accounts (email);
             INSERT INTO cargo_procrastinate_migrations (set_name, revision, file_name, checksum) VALUES ('', '0004', '03.00.00_01_pre_email_index.sql', 'claimed:999999')",
        )
        .unwrap();
    let refused = cli(&db, set.path(), &["upgrade"]).code(2);
    assert!(refused.stderr.contains("index accounts_email_idx. It ran to completion but was not recorded"), "{}", refused.stderr);
    assert!(refused.stderr.contains("`cargo procrastinate stamp --claimed 0004`"), "{}", refused.stderr);
    cli(&db, set.path(), &["stamp", "--claimed", "0004"]).ok();
    cli(&db, set.path(), &["check"]).ok();
}

#[test]
fn the_start_up_check_gives_up_in_time_on_a_locked_tracking_table() {
    let db = TestDb::new("faults_check_timeout");
    cli(&db, &example_set(), &["upgrade"]).ok();
    let mut holder = db.client();
    holder.batch_execute("BEGIN; LOCK TABLE cargo_procrastinate_migrations IN ACCESS EXCLUSIVE MODE").unwrap();
    let set = procrastinate_migrations::MigrationSet::from_dir(example_set()).unwrap();
    let migrations: &'static [_] = Box::leak(set.migrations.into_boxed_slice());
    let def = procrastinate_migrations::SetDef {
        name: None,
        migrations,
        schema: None,
        version_table: procrastinate_migrations::config::DEFAULT_VERSION_TABLE,
        window: procrastinate_migrations::compat::Window::of(migrations),
    };
    let started = Instant::now();
    let err = procrastinate_migrations::db::check_sets_within(&mut db.client(), &[def], Duration::from_millis(500)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(err.to_string().contains("a lock on it is held by another session"), "{err}");
    holder.batch_execute("ROLLBACK").unwrap();
    // And through the CLI: `check --compatible` says the same, with its own exit code.
    holder.batch_execute("BEGIN; LOCK TABLE cargo_procrastinate_migrations IN ACCESS EXCLUSIVE MODE").unwrap();
    let run = cli(&db, &example_set(), &["--round-trip-timeout", "1s", "check", "--compatible"]).code(7);
    assert!(run.stderr.contains("no answer within 1s"), "{}", run.stderr);
}

#[test]
fn signals_stop_a_lock_wait_and_a_no_transaction_file_with_130() {
    let db = TestDb::new("faults_signals");
    let set = copy_set(&example_set());
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
            .args(["--migrations", set.path().to_str().unwrap(), "--database-url", &db.url()])
            .args(args)
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let interrupt = |child: std::process::Child, after: Duration| -> (Option<i32>, String, Duration) {
        std::thread::sleep(after);
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let signalled = Instant::now();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), signalled.elapsed())
    };
    // Another upgrade holds the migration lock: the waiting one stops at the signal.
    let table = procrastinate_migrations::tracking::TrackingTable::new(procrastinate_migrations::config::DEFAULT_VERSION_TABLE, None).unwrap();
    let mut holder = db.client();
    holder.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({})", table.lock_key())).unwrap();
    let (code, stderr, took) = interrupt(spawn(&["upgrade"]), Duration::from_millis(800));
    assert!(took < Duration::from_secs(3), "took {took:?}: {stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("the database is at base"), "{stderr}");
    holder.batch_execute("ROLLBACK").unwrap();
    // A `-- no-transaction` file in flight.
    cli(&db, set.path(), &["upgrade"]).ok();
    write(set.path(), "03.00.00_01_pre_slow.sql", "-- no-transaction\nSELECT pg_sleep(20);\n");
    let (code, stderr, took) = interrupt(spawn(&["upgrade"]), Duration::from_millis(800));
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("it ran outside a transaction"), "{stderr}");
    assert_eq!(cli(&db, set.path(), &["current"]).ok().stdout.trim(), "0003", "not recorded");
}
