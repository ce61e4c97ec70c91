//! What happens when things go wrong: each case names what is wrong, exits with its documented
//! code, and leaves nothing half-applied.

use crate::support::*;

use procrastinate_migrations::config::DEFAULT_VERSION_TABLE as TABLE;

#[test]
fn a_failing_migration_rolls_back_whole_and_upgrade_resumes_there() {
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_01_pre_broken.sql", "CREATE TABLE half_done (x int);\n\nINSERT INTO accounts (email)\n  VALUES (1 / 0);\n");
    write(set.path(), "03.00.00_50_post_after.sql", "CREATE TABLE after_broken (x int);\n");
    let db = TestDb::new("failing");
    let run = cli(&db, set.path(), &["upgrade"]).code(1);
    assert!(
        run.stderr.contains("migration 0004 failed at 03.00.00_01_pre_broken.sql:3: division by zero (SQLSTATE 22012)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("the database is at 0003"), "{}", run.stderr);
    assert_eq!(cli(&db, set.path(), &["current"]).ok().stdout.trim(), "0003");
    let half: Option<String> = db.client().query_one("SELECT to_regclass('half_done')::text", &[]).unwrap().get(0);
    assert_eq!(half, None, "the failed file's first statement was rolled back with it");
    // A syntax error is placed by the server's position, on its own line.
    write(set.path(), "03.00.00_01_pre_broken.sql", "CREATE TABLE half_done (x int);\nSELECT 1;\nSELEC 2;\n");
    let syntax = cli(&db, set.path(), &["upgrade"]).code(1);
    assert!(
        syntax
            .stderr
            .contains("03.00.00_01_pre_broken.sql:3:1: syntax error at or near \"SELEC\""),
        "{}",
        syntax.stderr
    );
    // Fixed, it resumes at 0004 (and re-records nothing before it).
    write(set.path(), "03.00.00_01_pre_broken.sql", "CREATE TABLE half_done (x int);\n");
    let resumed = cli(&db, set.path(), &["--message-format", "json", "upgrade"]).ok().json();
    assert_eq!(resumed["from"], "0003");
    assert_eq!(resumed["applied"].as_array().unwrap().len(), 2);
}

#[test]
fn check_fails_after_an_applied_file_is_edited() {
    let set = copy_set(&example_set());
    let db = TestDb::new("edited");
    cli(&db, set.path(), &["upgrade"]).ok();
    cli(&db, set.path(), &["check"]).ok();
    let file = set.path().join("01.00.00_01_create_accounts.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("email      text", "email      varchar(200)")).unwrap();
    let check = cli(&db, set.path(), &["check"]).code(5);
    assert!(check.stdout.contains("0001 01.00.00_01_create_accounts.sql changed after it was applied"), "{}", check.stdout);
    let json = cli(&db, set.path(), &["--message-format", "json", "check"]).code(5).json();
    assert_eq!(json["divergences"][0]["kind"], "changed");
    // upgrade refuses too, even with nothing pending, and changes nothing.
    write(set.path(), "03.00.00_50_post_more.sql", "CREATE TABLE more (x int);\n");
    cli(&db, set.path(), &["upgrade"]).code(5);
    assert_eq!(tracking_rows(&db, TABLE).len(), 3);
}

#[test]
fn a_database_ahead_of_the_files_is_an_error_and_is_left_alone() {
    let db = TestDb::new("ahead");
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_50_post_more.sql", "CREATE TABLE more (x int);\n");
    cli(&db, set.path(), &["upgrade"]).ok();
    let run = cli(&db, &example_set(), &["upgrade"]).code(5);
    assert!(run.stderr.contains("the database is ahead of the files by 1: `03.00.00_50_post_more.sql`"), "{}", run.stderr);
    cli(&db, &example_set(), &["check"]).code(5);
    // Never called head: `current` says it is ahead, and by what.
    let current = cli(&db, &example_set(), &["--message-format", "json", "current"]).ok().json();
    assert_eq!((current["current"].as_str(), current["at_head"].as_bool()), (Some("0003"), Some(false)), "{current}");
    assert_eq!(current["ahead"], serde_json::json!(["03.00.00_50_post_more.sql"]));
    let human = cli(&db, &example_set(), &["current"]).ok().stdout;
    assert!(human.starts_with("0003, and ahead of the files by 1: 03.00.00_50_post_more.sql"), "{human}");
    assert_eq!(tracking_rows(&db, TABLE).len(), 4);
}

#[test]
fn a_wrong_password_is_a_clear_error_without_the_password() {
    let db = TestDb::new("password");
    let good = db.url();
    let secret = "correct-horse-battery-staple";
    // postgres://postgres:<pw>@host:port/db -> same with a wrong password.
    let (head, tail) = good.split_once('@').unwrap();
    let bad = format!("{}:{secret}@{tail}", head.rsplit_once(':').unwrap().0);
    let dir = example_set();
    let dir = dir.to_str().unwrap();
    for extra in [&["current"][..], &["--message-format", "json", "upgrade"][..]] {
        let mut all = vec!["--migrations", dir, "--database-url", &bad];
        all.extend_from_slice(extra);
        let run = cli_in(&std::env::temp_dir(), &all, &[]).code(3);
        if extra.contains(&"json") {
            assert_eq!(run.json()["exit_code"], 3);
        }
        assert!(run.stderr.contains("password authentication failed for user \"postgres\""), "{}", run.stderr);
        assert!(run.stderr.contains("cannot connect to postgres://postgres@127.0.0.1:"), "{}", run.stderr);
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret), "password leaked: {run:?}");
    }
    // The same through DATABASE_URL and the SQLAlchemy spelling.
    let alchemy = bad.replacen("postgres://", "postgresql+psycopg://", 1);
    let run = cli_in(&std::env::temp_dir(), &["--migrations", example_set().to_str().unwrap(), "current"], &[("DATABASE_URL", &alchemy)]).code(3);
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
}

#[test]
fn nothing_to_connect_to_says_how_to_configure() {
    let run = cli_in(&std::env::temp_dir(), &["--migrations", example_set().to_str().unwrap(), "current"], &[]).code(2);
    assert!(run.stderr.contains("no database configured") && run.stderr.contains("--scratch"), "{}", run.stderr);
}

#[test]
fn lock_timeout_fails_fast_instead_of_hanging() {
    let set = copy_set(&example_set());
    let db = TestDb::new("lock_timeout");
    cli(&db, set.path(), &["upgrade"]).ok();
    write(set.path(), "03.00.00_01_pre_touch_accounts.sql", "ALTER TABLE accounts ADD COLUMN note text;\n");
    let mut blocker = db.client();
    let pid: i32 = blocker.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE accounts IN ACCESS SHARE MODE").unwrap();
    let run = cli(&db, set.path(), &["--lock-timeout", "200ms", "upgrade"]).code(1);
    assert!(run.stderr.contains("lock-timeout (200ms) ran out"), "{}", run.stderr);
    // The message names the table and the session that holds it.
    assert!(run.stderr.contains(&format!("holding locks on this schema's tables now: pid {pid} (")), "{}", run.stderr);
    assert!(run.stderr.contains("on accounts (AccessShareLock)"), "{}", run.stderr);
    assert!(run.stderr.contains("SQLSTATE 55P03"), "{}", run.stderr);
    // With lock-retries, the migration is tried again once the session holding its table has
    // ended its transaction, and not before: meanwhile no ACCESS EXCLUSIVE request waits in the
    // queue, so the application's readers of that table are never held up behind one.
    let (retried, blocked_reads) = std::thread::scope(|s| {
        let run = s.spawn(|| cli(&db, set.path(), &["--lock-timeout", "200ms", "--lock-retries", "5", "upgrade"]));
        let reader = s.spawn(|| {
            let mut c = db.client();
            c.batch_execute("SET statement_timeout = '150ms'").unwrap();
            let started = std::time::Instant::now();
            let mut blocked = 0;
            // After the first try's own lock_timeout, until the blocker lets go.
            std::thread::sleep(std::time::Duration::from_millis(400));
            while started.elapsed() < std::time::Duration::from_millis(2400) {
                if c.simple_query("SELECT count(*) FROM accounts").is_err() {
                    blocked += 1;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            blocked
        });
        std::thread::sleep(std::time::Duration::from_millis(2500));
        tx.rollback().unwrap();
        (run.join().unwrap(), reader.join().unwrap())
    });
    let retried = retried.ok();
    assert!(retried.stderr.contains("trying again once the transactions holding its tables end") && retried.stderr.contains("(at most 10m; 1 of 5)"), "{}", retried.stderr);
    assert_eq!(retried.stderr.matches("trying again").count(), 1, "one try after the holder ended, not one every few seconds: {}", retried.stderr);
    assert_eq!(blocked_reads, 0, "no reader waited behind a retry's lock request");
    assert!(retried.stderr.contains("applied 0004"), "{}", retried.stderr);
}

#[test]
fn waiting_for_another_upgrade_is_bounded_and_names_the_holder() {
    let db = TestDb::new("lock_wait");
    cli(&db, &example_set(), &["upgrade", "0001"]).ok();
    let key = procrastinate_migrations::tracking::TrackingTable::new(TABLE, None).unwrap().lock_key();
    let mut holder = db.client();
    let pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({key})")).unwrap();
    let run = cli(&db, &example_set(), &["--lock-wait", "1s", "upgrade"]).code(6);
    assert!(run.stderr.contains(&format!("waiting for the migration lock, held by pid {pid}")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("gave up after 1s waiting for the migration lock, held by pid {pid}")), "{}", run.stderr);
    tx.rollback().unwrap();
    assert_eq!(cli(&db, &example_set(), &["current"]).ok().stdout.trim(), "0001");
}

#[test]
fn downgrade_is_refused_with_the_advice() {
    // A set without down files (the example's, as Procrastinate's): refused, nothing changed.
    let db = TestDb::new("downgrade_refused");
    cli(&db, &example_set(), &["upgrade"]).ok();
    let run = cli(&db, &example_set(), &["downgrade", "-1"]).code(2);
    assert!(run.stderr.contains("has no down files") && run.stderr.contains("backup"), "{}", run.stderr);
    assert_eq!(cli(&db, &example_set(), &["current"]).ok().stdout.trim(), "0003 (head)");
}

#[test]
fn a_malformed_set_is_refused_before_connecting() {
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_01_pre_Bad-Name.sql", "SELECT 1;");
    write(set.path(), "03.00.00_02_pre_psql.sql", "SELECT 1;\n\\gset\n");
    // Refused before anything is sent: the connection, made while the files are read, fails
    // (exit 3), but the set's errors come first.
    let nowhere = "postgres://u:p@127.0.0.1:1/db";
    let run = cli_in(&std::env::temp_dir(), &["--migrations", set.path().to_str().unwrap(), "--database-url", nowhere, "upgrade"], &[]).code(2);
    assert!(run.stderr.contains("03.00.00_01_pre_Bad-Name.sql: upper case in description"), "{}", run.stderr);
    assert!(run.stderr.contains("03.00.00_02_pre_psql.sql:2: psql meta-command `\\gset`"), "{}", run.stderr);
    assert!(run.stderr.contains("(the directory is set by --migrations)"), "{}", run.stderr);
}

/// Replicas waiting for the migration lock hold no transaction between polls: a role with a
/// short `idle_in_transaction_session_timeout` (or PgBouncer's pool) does not see them.
#[test]
fn waiters_hold_no_transaction() {
    let db = TestDb::new("idle_waiters");
    let set = copy_set(&example_set());
    write(set.path(), "03.00.00_01_pre_slow.sql", "SELECT pg_sleep(1.5);\nCREATE TABLE slow (x int);\n");
    db.client().batch_execute(&format!("ALTER DATABASE {} SET idle_in_transaction_session_timeout = '300ms'", db.name())).unwrap();
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| cli(&db, set.path(), &["upgrade"]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in runs {
        run.ok();
    }
    assert_eq!(tracking_rows(&db, TABLE).len(), 4, "each migration once");
}

/// Ctrl-C during a long migration: the server is asked to cancel it, so it rolls back and lets
/// go of its locks now; the tool says where the database is, exits 130, and the next `upgrade`
/// resumes there.
#[test]
fn sigint_cancels_the_migration_in_flight() {
    let db = TestDb::new("sigint");
    let set = copy_set(&example_set());
    let slow = "03.00.00_01_pre_slow.sql";
    write(set.path(), slow, "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(20);\n");
    cli(&db, set.path(), &["upgrade", "0003"]).ok();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
        .args(["--migrations", set.path().to_str().unwrap(), "--database-url", &db.url(), "upgrade"])
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = db.client();
    let sleeping = |client: &mut postgres::Client| -> bool {
        client.query_one("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND state = 'active' AND pid <> pg_backend_pid()", &[]).unwrap().get::<_, i64>(0) > 0
    };
    let started = std::time::Instant::now();
    while !sleeping(&mut client) {
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the slow migration never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let signalled = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    // Cancelled, not waited out: the migration would have slept for 20 s.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(signalled.elapsed() < std::time::Duration::from_secs(10), "exited {:?} after the signal:\n{stderr}", signalled.elapsed());
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains(&format!("interrupted: migration 0004 ({slow}) was stopped and rolled back; the database is at 0003")), "{stderr}");
    // Nothing is left holding the table: an application query gets through at once.
    client.batch_execute("SET statement_timeout = '1s'").unwrap();
    client.query_one("SELECT count(*) FROM accounts", &[]).unwrap();
    assert!(!sleeping(&mut client));
    write(set.path(), slow, "CREATE TABLE slow (x int);\n");
    cli(&db, set.path(), &["upgrade"]).ok();
    assert_eq!(cli(&db, set.path(), &["current"]).ok().stdout.trim(), "0004 (head)");
}

/// The same files checked out with CRLF line endings (and a BOM) are the same migrations:
/// checksums ignore line endings, and what earlier releases recorded keeps passing.
#[test]
fn a_crlf_checkout_of_an_applied_set_passes_check() {
    let db = TestDb::new("crlf");
    let lf = copy_set(&example_set());
    cli(&db, lf.path(), &["upgrade"]).ok();
    let checkout = |bom: &str| {
        let dir = copy_set(&example_set());
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, format!("{bom}{}", text.replace('\n', "\r\n"))).unwrap();
        }
        dir
    };
    let with_bom = checkout("\u{feff}");
    cli(&db, with_bom.path(), &["check"]).ok();
    cli(&db, with_bom.path(), &["upgrade"]).ok();
    let crlf = checkout("");
    // A database that recorded the CRLF bytes' checksum (as releases before this did) passes too.
    let db2 = TestDb::new("crlf_recorded");
    cli(&db2, crlf.path(), &["upgrade"]).ok();
    let raw = procrastinate_migrations::Checksum::of(&std::fs::read(crlf.path().join("01.00.00_01_create_accounts.sql")).unwrap()).to_string();
    db2.client().execute(&format!("UPDATE {TABLE} SET checksum = $1 WHERE file_name = '01.00.00_01_create_accounts.sql'"), &[&raw]).unwrap();
    cli(&db2, crlf.path(), &["check"]).ok();
    cli(&db2, lf.path(), &["check"]).code(5);
}

/// Input that used to be accepted, or skipped, without a word.
#[test]
fn hostile_input_is_named_not_skipped() {
    let db = TestDb::new("hostile");
    let set = copy_set(&example_set());
    let dir = set.path().to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--migrations", dir];
        all.extend_from_slice(args);
        cli_in(&std::env::temp_dir(), &all, &[("DATABASE_URL", &db.url())])
    };
    let empty = run(&["--database-url", "", "current"]).code(2);
    assert!(empty.stderr.contains("--database-url is empty"), "{}", empty.stderr);
    for bad in ["0", "1000h"] {
        let r = run(&["--lock-timeout", bad, "upgrade"]).code(2);
        assert!(r.stderr.contains(&format!("setting `lock-timeout`: `{bad}` is out of range")), "{}", r.stderr);
    }
    run(&["upgrade"]).ok();
    let unknown = run(&["upgrade", "--accept-changed", "9999"]).code(2);
    assert!(unknown.stderr.contains("--accept-changed 9999: there is no such revision (head is 0003)"), "{}", unknown.stderr);
    std::fs::create_dir(set.path().join("03.00.00_01_pre_folder.sql")).unwrap();
    let folder = run(&["current"]).code(2);
    assert!(folder.stderr.contains("03.00.00_01_pre_folder.sql is a directory, not a migration file"), "{}", folder.stderr);

    // A .env beside the manifest that cannot be read is an error naming it.
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("Cargo.toml"), format!("[package]\nname = \"x\"\nversion = \"0.1.0\"\n[package.metadata.procrastinate]\nmigrations = {:?}\n", example_set().to_str().unwrap())).unwrap();
    std::fs::write(pkg.path().join(".env"), "DATABASE_URL='unterminated\n").unwrap();
    let env = cli_in(pkg.path(), &["current"], &[]).code(2);
    assert!(env.stderr.contains(".env is malformed"), "{}", env.stderr);
}

/// A role's or database's statement_timeout would kill a long migration: `statement-timeout`
/// (setting, flag, or a file's own header) says how long a migration's statement may run.
#[test]
fn statement_timeout_per_run_and_per_file() {
    let db = TestDb::new("statement_timeout");
    db.client().batch_execute(&format!("ALTER DATABASE {} SET statement_timeout = '500ms'", db.name())).unwrap();
    let set = copy_set(&example_set());
    cli(&db, set.path(), &["upgrade"]).ok();
    write(set.path(), "03.00.00_01_pre_slow.sql", "SELECT pg_sleep(1);\n");
    let killed = cli(&db, set.path(), &["upgrade"]).code(1);
    assert!(killed.stderr.contains("statement timeout"), "{}", killed.stderr);
    cli(&db, set.path(), &["--statement-timeout", "5s", "upgrade"]).ok();
    write(set.path(), "03.00.00_02_pre_slower.sql", "-- Long on big tables.\n-- statement-timeout: 0\nSELECT pg_sleep(1);\n");
    cli(&db, set.path(), &["upgrade"]).ok();
    write(set.path(), "03.00.00_03_pre_bad.sql", "-- statement-timeout: soon\nSELECT 1;\n");
    let bad = cli(&db, set.path(), &["upgrade"]).code(2);
    assert!(bad.stderr.contains("03.00.00_03_pre_bad.sql:1: header setting `statement-timeout`: `soon` is not a duration"), "{}", bad.stderr);
}

/// Each migration's transaction gets the run's settings (`SET LOCAL`): a schema whose name
/// needs quoting is one schema, not a list or a name with quotes in it, and files find their
/// objects there; the settings end with the transaction.
#[test]
fn a_schema_name_that_needs_quoting_holds_every_migration() {
    let db = TestDb::new("quoted_schema");
    let schema = "My \"odd\", schema";
    cli(&db, &example_set(), &["--schema", schema, "upgrade"]).ok();
    let mut c = db.client();
    let tables: Vec<String> = c
        .query("SELECT relname::text FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND relkind = 'r' ORDER BY 1", &[&schema])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tables, ["accounts", "cargo_procrastinate_migrations"]);
    let elsewhere: i64 = c.query_one("SELECT count(*) FROM pg_class WHERE relname = 'accounts' AND relnamespace <> (SELECT oid FROM pg_namespace WHERE nspname = $1)", &[&schema]).unwrap().get(0);
    assert_eq!(elsewhere, 0);
    assert_eq!(cli(&db, &example_set(), &["--schema", schema, "current"]).ok().stdout.trim(), "0003 (head)");
}

/// A read-only server (a hot standby, or default_transaction_read_only) is named as such, and a
/// password given on the command line draws a warning (`ps` shows it to every user).
#[test]
fn a_read_only_server_is_named_and_a_password_flag_warned_about() {
    let db = TestDb::new("read_only");
    db.client().batch_execute(&format!("ALTER DATABASE {} SET default_transaction_read_only = on", db.name())).unwrap();
    let run = cli(&db, &example_set(), &["upgrade"]).code(2);
    assert!(run.stderr.contains("the server is read-only (default_transaction_read_only, or a read-only role): connect to the primary"), "{}", run.stderr);
    assert!(db.url().contains(':') && run.stderr.contains("warning: the password in --database-url is visible"), "{}", run.stderr);
}

/// `-- no-transaction` files (CREATE INDEX CONCURRENTLY): run on their own, outside any
/// transaction, once even with replicas racing (the others wait on the claim), recorded after
/// success; offline they run without BEGIN/COMMIT; a failure says what may be left behind.
#[test]
fn no_transaction_files_run_concurrently_built_indexes() {
    let db = TestDb::new("no_transaction");
    let set = copy_set(&example_set());
    let file = "03.00.00_01_pre_email_index.sql";
    write(set.path(), file, "-- no-transaction\nCREATE INDEX CONCURRENTLY accounts_email_idx ON accounts (email);\n");
    write(set.path(), "03.00.00_02_pre_after.sql", "CREATE TABLE after_index (x int);\n");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| cli(&db, set.path(), &["upgrade"]))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let applied: usize = runs.into_iter().map(|r| r.ok().stderr.matches(&format!("pre      {file}")).count()).sum();
    assert_eq!(applied, 1, "applied once");
    let valid: bool = db.client().query_one("SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_idx'::regclass", &[]).unwrap().get(0);
    assert!(valid);
    let history = cli(&db, set.path(), &["history"]).ok().stdout;
    assert!(history.contains(&format!("0004 pre      applied  {file}")), "{history}");
    cli(&db, set.path(), &["check"]).ok();
    // Offline: the same file without BEGIN/COMMIT, and psql builds the same.
    let script = cli_in(&std::env::temp_dir(), &["--migrations", set.path().to_str().unwrap(), "sql", "--offline"], &[]).ok().stdout;
    assert!(script.contains("-- no-transaction: runs on its own, outside any transaction\n-- no-transaction\nCREATE INDEX CONCURRENTLY"), "{script}");
    let offline = TestDb::new("no_transaction_offline");
    let path = set.path().join("offline.sql.txt");
    std::fs::write(&path, &script).unwrap();
    psql_file(&offline, &path, None).ok();
    cli(&offline, set.path(), &["check"]).ok();
    // Two statements cannot share such a file; a failing one names what it may leave.
    write(set.path(), "03.00.00_03_pre_two.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY a1 ON accounts (id);\nSELECT 1;\n");
    let two = cli(&db, set.path(), &["check"]).code(2);
    assert!(two.stderr.contains("03.00.00_03_pre_two.sql:3: a `-- no-transaction` file holds one statement only"), "{}", two.stderr);
    std::fs::remove_file(set.path().join("03.00.00_03_pre_two.sql")).unwrap();
    write(set.path(), "03.00.00_03_pre_broken.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY broken_idx ON no_such_table (x);\n");
    let failed = cli(&db, set.path(), &["upgrade"]).code(1);
    assert!(failed.stderr.contains("it ran outside a transaction") && failed.stderr.contains("INVALID index"), "{}", failed.stderr);
    assert!(!failed.stderr.contains("it was rolled back"), "nothing rolled it back: {}", failed.stderr);
    assert!(failed.stderr.contains("nothing rolled it back: what it did before failing stays, and it is not recorded; the database is at 0005"), "{}", failed.stderr);
    let json = cli(&db, set.path(), &["--message-format", "json", "upgrade"]).code(1).json();
    assert_eq!(json["migration"]["outcome"], "not_recorded");
    assert_eq!(cli(&db, set.path(), &["current"]).ok().stdout.trim(), "0005", "no claim left behind");
}

/// A row added by hand beside the real ones cannot pass for a migration: the same file twice
/// is refused by the key (set, file name), and another name is a divergence.
#[test]
fn a_hand_added_tracking_row_does_not_pass_check() {
    let db = TestDb::new("hand_row");
    cli(&db, &example_set(), &["upgrade"]).ok();
    let mut client = db.client();
    let twice = client.batch_execute(&format!(
        "INSERT INTO {TABLE} (revision, file_name, checksum) SELECT '1', file_name, checksum FROM {TABLE} WHERE revision = '0001'"
    ));
    assert!(twice.is_err(), "the same file cannot be recorded twice");
    client.batch_execute(&format!("INSERT INTO {TABLE} (revision, file_name, checksum) VALUES ('30', '01.00.00_02_by_hand.sql', 'x')")).unwrap();
    let check = cli(&db, &example_set(), &["check"]).code(5);
    assert!(check.stdout.contains("`01.00.00_02_by_hand.sql` was applied (as 30) but its file is gone"), "{}", check.stdout);
}

/// A first run that fails on its first migration leaves no empty tracking table behind.
#[test]
fn a_failed_first_run_leaves_no_empty_tracking_table() {
    let db = TestDb::new("failed_first");
    let set = tempfile::tempdir().unwrap();
    write(set.path(), "01.00.00_01_broken.sql", "SELECT 1 / 0;\n");
    cli(&db, set.path(), &["upgrade"]).code(1);
    assert!(db.client().query_one(&format!("SELECT to_regclass('{TABLE}') IS NULL"), &[]).unwrap().get::<_, bool>(0));
    assert!(cli(&db, set.path(), &["current"]).ok().stdout.contains("nothing recorded: no table"));
    // Nor the schema it created for the set; a schema that was there before stays.
    cli(&db, set.path(), &["--schema", "fresh", "upgrade"]).code(1);
    assert!(db.client().query_one("SELECT to_regnamespace('fresh') IS NULL", &[]).unwrap().get::<_, bool>(0), "the schema it created is gone");
    db.client().batch_execute("CREATE SCHEMA kept").unwrap();
    cli(&db, set.path(), &["--schema", "kept", "upgrade"]).code(1);
    assert!(db.client().query_one("SELECT to_regnamespace('kept') IS NOT NULL", &[]).unwrap().get::<_, bool>(0), "a schema it did not create stays");
}

/// Shell completions come from the same definition as the parser, with no manifest needed.
#[test]
fn completions_for_the_common_shells() {
    for (shell, mark) in [("bash", "complete -F"), ("zsh", "#compdef cargo-procrastinate"), ("fish", "complete -c cargo-procrastinate")] {
        let out = cli_in(&std::env::temp_dir(), &["completions", shell], &[]).ok().stdout;
        assert!(out.contains(mark), "{shell}: {}", &out[..out.len().min(300)]);
        assert!(out.contains("upgrade") && out.contains("stamp"), "{shell}");
    }
}

/// Small migrations share round trips (one, then two, then four...): a failure inside such a
/// batch is still pinned to its file and line, with the ones before it applied and recorded
/// and nothing of it or after it left behind.
#[test]
fn a_failure_inside_a_batch_names_its_file_and_keeps_the_ones_before() {
    let set = tempfile::tempdir().unwrap();
    for i in 1..=8 {
        write(set.path(), &format!("01.00.00_{i:02}_t{i}.sql"), &format!("CREATE TABLE t{i} (id int);\n"));
    }
    // The third round trip carries 0004..0007: 0006 fails at run time, without a position.
    write(set.path(), "01.00.00_06_t6.sql", "CREATE TABLE t6 (id int);\nINSERT INTO t6 VALUES (1 / 0);\n");
    let db = TestDb::new("batched_failure");
    let run = cli(&db, set.path(), &["--message-format", "json", "upgrade"]).code(1);
    assert!(run.stderr.contains("migration 0006 failed at 01.00.00_06_t6.sql:2: division by zero"), "{}", run.stderr);
    assert!(run.stderr.contains("the database is at 0005"), "{}", run.stderr);
    let events = run.json_lines();
    let applied: Vec<&str> = events.iter().filter(|e| e["event"] == "applied").map(|e| e["revision"].as_str().unwrap()).collect();
    assert_eq!(applied, ["0001", "0002", "0003", "0004", "0005"], "{}", run.stdout);
    let recorded: Vec<String> = tracking_rows(&db, TABLE).into_iter().map(|r| r.1).collect();
    assert_eq!(recorded.len(), 5, "{recorded:?}");
    let exists = |t: &str| db.client().query_one("SELECT to_regclass($1)::text", &[&t]).unwrap().get::<_, Option<String>>(0).is_some();
    assert!(exists("t5") && !exists("t6") && !exists("t7"), "0006 rolled back and nothing after it ran");
    // A syntax error in the middle of a batch: placed by the server's position in the batch.
    write(set.path(), "01.00.00_06_t6.sql", "CREATE TABLE t6 (id int);\n  SELEC 1;\n");
    let fresh = TestDb::new("batched_syntax");
    let syntax = cli(&fresh, set.path(), &["upgrade"]).code(1);
    assert!(syntax.stderr.contains("01.00.00_06_t6.sql:2:3: syntax error at or near \"SELEC\""), "{}", syntax.stderr);
    assert_eq!(cli(&fresh, set.path(), &["current"]).ok().stdout.trim(), "0005");
    // Fixed, both resume at 0006.
    write(set.path(), "01.00.00_06_t6.sql", "CREATE TABLE t6 (id int);\n");
    for db in [&db, &fresh] {
        let done = cli(db, set.path(), &["--message-format", "json", "upgrade"]).ok().json();
        assert_eq!((done["from"].as_str(), done["to"].as_str()), (Some("0005"), Some("0008")));
    }
}

/// A file another process records while this one works (its first file records the second
/// here, as a replica would between two of our transactions) is not run again: the claim's
/// primary key stops it before its SQL runs, the same text passes as applied elsewhere, and
/// another text is a divergence that names the file. The files after it still run.
#[test]
fn a_file_recorded_meanwhile_is_not_run_again() {
    for (case, same) in [("recorded_meanwhile", true), ("recorded_otherwise", false)] {
        let set = tempfile::tempdir().unwrap();
        let second = "CREATE TABLE b (id int);\n";
        let checksum = if same {
            let files = vec![("01.00.00_02_b.sql".to_string(), second.as_bytes().to_vec())];
            procrastinate_migrations::MigrationSet::from_files(set.path().into(), files).unwrap().migrations[0].checksum.to_string()
        } else {
            "0".repeat(64)
        };
        write(
            set.path(),
            "01.00.00_01_a.sql",
            &format!("CREATE TABLE a (id int);\nINSERT INTO {TABLE} (set_name, revision, file_name, checksum) VALUES ('', '0002', '01.00.00_02_b.sql', '{checksum}');\n"),
        );
        write(set.path(), "01.00.00_02_b.sql", second);
        write(set.path(), "01.00.00_03_c.sql", "CREATE TABLE c (id int);\n");
        let db = TestDb::new(case);
        let exists = |t: &str| db.client().query_one("SELECT to_regclass($1)::text", &[&t]).unwrap().get::<_, Option<String>>(0).is_some();
        if same {
            let run = cli(&db, set.path(), &["--message-format", "json", "upgrade"]).ok();
            let events = run.json_lines();
            let of = |kind: &str| -> Vec<String> { events.iter().filter(|e| e["event"] == kind).map(|e| e["revision"].as_str().unwrap().to_string()).collect() };
            assert_eq!((of("applied"), of("applied_elsewhere")), (vec!["0001".to_string(), "0003".to_string()], vec!["0002".to_string()]), "{}", run.stdout);
            assert!(exists("a") && !exists("b") && exists("c"), "0002 did not run");
            // Present and null: unknown, not left out.
            let took = |rev: &str| events.iter().find(|e| e["event"] == "applied" && e["revision"] == rev).and_then(|e| e.get("duration_ms").cloned());
            assert!(took("0001").is_some_and(|d| d.is_null()) && took("0003").is_some_and(|d| d.is_u64()), "{}", run.stdout);
        } else {
            let run = cli(&db, set.path(), &["upgrade"]).code(5);
            assert!(run.stderr.contains("01.00.00_02_b.sql"), "{}", run.stderr);
            assert!(exists("a") && !exists("b") && !exists("c"), "nothing ran after the divergence");
        }
        // The three files went in one round trip. 0001's end was the start of 0002's
        // transaction, which the primary key stopped and which took it back: unknown, and
        // said so (NULL, and null in its event), not made up. 0003 ran in a round trip that
        // ended well: its row is complete.
        let rows: Vec<(String, Option<i64>)> = db
            .client()
            .query(&format!("SELECT file_name, duration_ms FROM {TABLE} WHERE file_name <> '01.00.00_02_b.sql' ORDER BY 1"), &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let durations: Vec<(&str, bool)> = rows.iter().map(|(f, d)| (f.as_str(), d.is_some())).collect();
        let expected: &[(&str, bool)] = if same { &[("01.00.00_01_a.sql", false), ("01.00.00_03_c.sql", true)] } else { &[("01.00.00_01_a.sql", false)] };
        assert_eq!(durations, expected, "{rows:?}");
    }
}

/// What the two tests below start from: the example set read before the lock on a database
/// without a tracking table (`seen`); then, before that read is a second old (after which
/// `upgrade_seen` reads again), another process (`other`) creates the table and applies 0001
/// from another text (its row's checksum is zeros).
struct Stale {
    set: procrastinate_migrations::MigrationSet,
    db: TestDb,
    client: postgres::Client,
    other: postgres::Client,
    seen: procrastinate_migrations::db::Seen,
}

fn read_then_recorded_elsewhere(label: &str, opts: &procrastinate_migrations::db::Options) -> Stale {
    let set = procrastinate_migrations::MigrationSet::from_dir(example_set()).unwrap();
    let db = TestDb::new(label);
    let (mut client, mut other) = (db.client(), db.client());
    let read = std::time::Instant::now();
    let seen = procrastinate_migrations::db::Seen::read(&mut client, opts);
    let table = procrastinate_migrations::tracking::TrackingTable::new(TABLE, None).unwrap();
    other.batch_execute(&table.create_sql(false)).unwrap();
    other.batch_execute(&set.migrations[0].sql).unwrap();
    other
        .execute(&format!("INSERT INTO {TABLE} (revision, file_name, checksum) VALUES ('0001', $1, $2)"), &[&&*set.migrations[0].file_name, &"0".repeat(64)])
        .unwrap();
    assert!(read.elapsed() < std::time::Duration::from_millis(500), "{:?}", read.elapsed());
    Stale { set, db, client, other, seen }
}

/// The read before the lock finds no tracking table, so step 1 plans to commit in the same
/// round trip as its read under the lock. Meanwhile another process applied 0001 from another
/// text, which `--accept-changed 0001` accepts: that needs the lock after the read, so step 1
/// runs again the usual way. The change is accepted under the lock, and the rest applied once.
#[test]
fn a_read_before_the_lock_that_went_stale_is_planned_again_under_the_lock() {
    use procrastinate_migrations::db;
    let accept = db::AcceptChanged::Only(vec![procrastinate_migrations::Revision::new(1)]);
    let opts = db::Options { accept_changed: accept, ..db::Options::default() };
    let Stale { set, db: dbase, mut client, mut other, seen } = read_then_recorded_elsewhere("stale_read", &opts);
    let mut events = Vec::new();
    let head = set.migrations.last().map(|m| m.revision);
    // What another session sees while the change is accepted: the migration lock, held.
    let held_sql = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
    let report = db::upgrade_seen(&mut client, &set.migrations, head, &opts, Some(seen), &mut |e| {
        events.push(match e {
            db::Event::Accepted { migration, .. } => {
                let held: i64 = other.query_one(held_sql, &[]).unwrap().get(0);
                format!("accepted {} under {held} lock", migration.revision)
            }
            db::Event::Applied { migration, .. } => format!("applied {}", migration.revision),
            _ => String::new(),
        })
    })
    .unwrap();
    events.retain(|e| !e.is_empty());
    assert_eq!(events, ["accepted 0001 under 1 lock", "applied 0002", "applied 0003"]);
    assert_eq!(report.applied.len(), 2);
    let checksum: String = dbase.client().query_one(&format!("SELECT checksum FROM {TABLE} WHERE revision = '0001'"), &[]).unwrap().get(0);
    assert_eq!(checksum, set.migrations[0].checksum.to_string());
    assert_eq!(cli(&dbase, &example_set(), &["current"]).ok().stdout.trim(), "0003 (head)");
}

/// The first set takes over the unnamed set's rows under the lock. When the read before the
/// lock found no table, and another process created it meanwhile with an unnamed row that
/// diverges, the refusal leaves those rows as they were: that claim is never committed early.
#[test]
fn a_refused_first_set_leaves_the_unnamed_rows_it_found_meanwhile() {
    use procrastinate_migrations::db;
    let opts = db::Options { set: Some("app".into()), claim_unnamed: true, ..db::Options::default() };
    let Stale { set, db: _db, mut client, mut other, seen } = read_then_recorded_elsewhere("stale_unnamed", &opts);
    let head = set.migrations.last().map(|m| m.revision);
    let refused = db::upgrade_seen(&mut client, &set.migrations, head, &opts, Some(seen), &mut |_| {}).unwrap_err();
    assert!(matches!(refused, db::Error::Diverged { .. }), "{refused}");
    let sets: Vec<String> = other.query(&format!("SELECT set_name FROM {TABLE}"), &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(sets, [""]);
}

/// The durations are written in one statement whose file names go in an array literal. A set's
/// names hold only `a-z`, `0-9`, `_` and `.`, but the statement does not count on it: names
/// with quotes, a backslash, braces, a comma and spaces are each their own element.
#[test]
fn the_durations_statement_takes_any_file_name() {
    let db = TestDb::new("odd_names");
    cli(&db, &example_set(), &["upgrade"]).ok();
    let names = ["it's", "say \"hi\"", "a\\b", "{x},y", "NULL", "x\\"];
    let mut c = db.client();
    for n in names {
        c.execute(&format!("INSERT INTO {TABLE} (revision, file_name, checksum) VALUES ('9999', $1, 'x')"), &[&n]).unwrap();
    }
    let table = procrastinate_migrations::tracking::TrackingTable::new(TABLE, None).unwrap();
    let done: Vec<(&str, u64, f64)> = names.iter().enumerate().map(|(i, n)| (*n, i as u64 + 1, 1.7e9)).collect();
    c.batch_execute(&table.finish_rows_sql("", &done)).unwrap();
    let mut written: Vec<(String, i64)> = c
        .query(&format!("SELECT file_name, duration_ms FROM {TABLE} WHERE revision = '9999' AND applied_at = to_timestamp(1.7e9)"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    written.sort_by_key(|(_, d)| *d);
    let expected: Vec<(String, i64)> = names.iter().enumerate().map(|(i, n)| (n.to_string(), i as i64 + 1)).collect();
    assert_eq!(written, expected);
}

/// A tracking table that lost its primary key (restored without constraints, say) no longer
/// keeps two processes from applying one file: nothing runs, and the message says what to add.
#[test]
fn a_tracking_table_without_its_primary_key_is_refused() {
    let set = tempfile::tempdir().unwrap();
    write(set.path(), "01.00.00_01_a.sql", "CREATE TABLE a (id int);\n");
    let db = TestDb::new("no_primary_key");
    db.client()
        .batch_execute(&format!(
            "CREATE TABLE {TABLE} (set_name text NOT NULL DEFAULT '', revision text NOT NULL, file_name text NOT NULL, \
             checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms bigint, \
             applied_by text NOT NULL DEFAULT current_user, stamped boolean NOT NULL DEFAULT false)"
        ))
        .unwrap();
    let run = cli(&db, set.path(), &["upgrade"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("has no primary key on (set_name, file_name)") && run.stderr.contains("ADD PRIMARY KEY"), "{}", run.stderr);
    let exists: Option<String> = db.client().query_one("SELECT to_regclass('a')::text", &[]).unwrap().get(0);
    assert_eq!(exists, None, "nothing ran");
    assert!(tracking_rows(&db, TABLE).is_empty());
}

/// A replica that finds the set at head learns it from one read: it does not queue for the
/// migration lock another process holds (nor hold a transaction while it would).
#[test]
fn a_replica_at_head_does_not_wait_for_the_lock() {
    let db = TestDb::new("replica_at_head");
    cli(&db, &example_set(), &["upgrade"]).ok();
    let key = procrastinate_migrations::tracking::TrackingTable::new(TABLE, None).unwrap().lock_key();
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({key})")).unwrap();
    let run = cli(&db, &example_set(), &["--lock-wait", "5s", "upgrade"]).ok();
    assert!(run.stderr.contains("already at 0003 (head); nothing to do"), "{}", run.stderr);
    assert!(!run.stderr.contains("waiting for the migration lock"), "{}", run.stderr);
    tx.rollback().unwrap();
}
