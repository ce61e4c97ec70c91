//! Every verdict true: what the tool says about a database is what is in it (issue 20). Real
//! Procrastinate sets (2.15.1, 3.3.0, 3.10.0), real databases, the real binary, and the
//! start-up check through the library as an application calls it.

use std::path::Path;

use procrastinate_migrations::compat::{Compatibility, Window};
use procrastinate_migrations::{db, MigrationSet, SetDef};

use crate::support::*;

/// A database with the 3.10.0 set applied up to `rev`.
fn at(label: &str, rev: &str) -> TestDb {
    let db = TestDb::new(label);
    cli(&db, &v3_10().migrations, &["upgrade", rev]).ok();
    db
}

/// The start-up check of a build of `dir`'s files (one unnamed set), as `db::verify_sets` runs it.
fn startup_check(db: &TestDb, dir: &Path) -> procrastinate_migrations::compat::Verdict {
    let set = MigrationSet::from_dir(dir).unwrap();
    let migrations: &'static [_] = Box::leak(set.migrations.into_boxed_slice());
    let def = SetDef { name: None, migrations, schema: None, version_table: procrastinate_migrations::config::DEFAULT_VERSION_TABLE, window: Window::of(migrations) };
    db::check_sets(&mut db.client(), &[def]).unwrap().remove(0)
}

#[test]
fn a_pre_3_0_build_runs_with_the_next_release_pre_applied() {
    let old = wheels::procrastinate("2.15.1");
    let db = at("verdict_2_15_window", "0030");
    // The recorded name says `pre`: the 2.15.1 files tolerate it, whatever their own markers.
    let probe = cli(&db, &old.migrations, &["check", "--compatible"]).ok();
    assert!(probe.stdout.contains("compatible: the database is at 0029 (this build: 0029)"), "{}", probe.stdout);
    assert!(probe.stdout.contains("the next release's pre migrations are applied already (03.00.00_01_pre_cancel_notification.sql)"), "{}", probe.stdout);
    let verdict = startup_check(&db, &old.migrations);
    assert!(verdict.is_compatible(), "{verdict}");
    let check = cli(&db, &old.migrations, &["check"]).ok();
    assert!(check.stdout.contains("note: the database also has the next release's pre migrations"), "{}", check.stdout);
    // Never a post: with 3.0's post applied, the 2.15.1 build is refused.
    cli(&db, &v3_10().migrations, &["upgrade", "0031"]).ok();
    let too_new = cli(&db, &old.migrations, &["check", "--compatible"]).code(5);
    assert!(too_new.stdout.contains("the database is too new for this build"), "{}", too_new.stdout);
    assert!(matches!(startup_check(&db, &old.migrations).compatibility, Compatibility::TooNew { .. }));
}

#[test]
fn check_compatible_is_the_start_up_check_and_plain_check_stays_strict() {
    let set = &v3_10().migrations;
    let (in_window, before) = (at("verdict_probe_37", "0037"), at("verdict_probe_36", "0036"));
    let probe = cli(&in_window, set, &["--message-format", "json", "check", "--compatible"]).ok().json();
    assert_eq!((probe["verdict"].as_str(), probe["exit_code"].as_i64(), probe["oldest"].as_str()), (Some("compatible"), Some(0), Some("0037")), "{probe}");
    assert!(startup_check(&in_window, set).is_compatible());
    cli(&in_window, set, &["check"]).code(4);
    let behind = cli(&before, set, &["check", "--compatible"]).code(4);
    assert!(behind.stdout.contains("needs an upgrade: the database is at 0036 but this build needs 0037"), "{}", behind.stdout);
    // The text and the JSON say the same.
    let json = cli(&before, set, &["--message-format", "json", "check", "--compatible"]).code(4).json();
    assert_eq!(json["message"].as_str().unwrap(), behind.stdout.trim());
    // --help says which is for what.
    let help = cli_in(&std::env::temp_dir(), &["check", "--help"], &[]).ok().stdout;
    assert!(help.contains("readiness probe") && help.contains("--compatible"), "{help}");
}

#[test]
fn stamp_detect_refuses_a_tie_and_records_nothing() {
    let set = tempfile::tempdir().unwrap();
    write(set.path(), "01.00.00_01_create.sql", "CREATE TABLE plans (id int PRIMARY KEY, price int);\n");
    write(set.path(), "01.00.00_02_backfill.sql", "UPDATE plans SET price = 0 WHERE price IS NULL;\n");
    write(set.path(), "01.00.00_03_seed.sql", "INSERT INTO plans VALUES (1, 10);\n");
    let db = TestDb::new("verdict_tie");
    db.client().batch_execute("CREATE TABLE plans (id int PRIMARY KEY, price int)").unwrap();
    let refused = cli(&db, set.path(), &["stamp", "--detect"]).code(5);
    assert!(refused.stderr.contains("the schema is exactly that of several revisions: 0001, 0002, 0003"), "{}", refused.stderr);
    assert!(refused.stderr.contains("`cargo procrastinate stamp 0001` if they did not run"), "{}", refused.stderr);
    cli(&db, set.path(), &["stamp", "--detect", "--dry-run"]).code(5);
    let table: Option<String> = db.client().query_one("SELECT to_regclass('cargo_procrastinate_migrations')::text", &[]).unwrap().get(0);
    assert_eq!(table, None, "nothing was recorded");
    // The printed command works as printed, and the backfill and the seed then run.
    cli(&db, set.path(), &["stamp", "0001"]).ok();
    cli(&db, set.path(), &["upgrade"]).ok();
    let seeded: i64 = db.client().query_one("SELECT count(*) FROM plans", &[]).unwrap().get(0);
    assert_eq!(seeded, 1);
}

#[test]
fn each_file_records_its_own_duration() {
    let set = tempfile::tempdir().unwrap();
    // Quick files first, so that the slow ones share one round trip (batches grow after quick ones).
    for i in 1..=7 {
        write(set.path(), &format!("01.00.00_{i:02}_quick.sql"), "SELECT 1;\n");
    }
    for i in 8..=11 {
        write(set.path(), &format!("01.00.00_{i:02}_slow.sql"), "SELECT pg_sleep(0.3);\n");
    }
    let db = TestDb::new("verdict_durations");
    // Batches of 1, 2 and 4 quick files, then the four slow ones in one round trip.
    cli(&db, set.path(), &["upgrade"]).ok();
    let history = cli(&db, set.path(), &["--message-format", "json", "history"]).ok().json();
    for row in &history["migrations"].as_array().unwrap()[7..] {
        let ms = row["duration_ms"].as_i64().unwrap();
        assert!((280..900).contains(&ms), "{} took {ms} ms: each file's own time, not the batch's so far", row["file_name"]);
    }
}

#[test]
fn a_database_built_without_the_tool_is_pointed_to_stamp_detect() {
    let up = v3_10();
    let db = TestDb::new("verdict_unadopted");
    psql_file(&db, &up.schema_sql, None).ok();
    let current = cli(&db, &up.migrations, &["current"]).ok();
    assert!(current.stdout.contains("nothing recorded, but the set's objects exist (procrastinate_"), "{}", current.stdout);
    assert!(current.stdout.contains("`cargo procrastinate stamp --detect`"), "{}", current.stdout);
    let check = cli(&db, &up.migrations, &["--message-format", "json", "check"]).code(4).json();
    assert!(!check["unadopted"].as_array().unwrap().is_empty(), "{check}");
    let plan = cli(&db, &up.migrations, &["--message-format", "json", "plan"]).ok().json();
    assert_eq!((plan["steps"][0]["action"].as_str(), plan["steps"][0]["command"].as_str()), (Some("adopt"), Some("cargo procrastinate stamp --detect")));
    let verdict = startup_check(&db, &up.migrations);
    assert!(matches!(verdict.compatibility, Compatibility::Unadopted { .. }), "{verdict}");
    assert!(verdict.to_string().contains("stamp --detect"), "{verdict}");
    // The advice works as printed; an empty database is just base.
    cli(&db, &up.migrations, &["stamp", "--detect"]).ok();
    cli(&db, &up.migrations, &["check"]).ok();
    let empty = TestDb::new("verdict_empty");
    assert_eq!(cli(&empty, &up.migrations, &["current"]).ok().stdout.trim(), "base (nothing recorded: no table cargo_procrastinate_migrations)");
}

#[test]
fn releases_are_labelled_by_what_upstream_published() {
    let up = v3_10();
    let db = TestDb::new("verdict_releases");
    cli(&db, &up.migrations, &["upgrade", "--to-version", "2.14.1"]).ok();
    assert_eq!(cli(&db, &up.migrations, &["current"]).ok().stdout.trim(), "0028");
    let never = cli(&db, &up.migrations, &["upgrade", "--to-version", "3.2.0"]).code(2);
    assert!(never.stderr.contains("Procrastinate 3.2.0 was never published (published near it: 3.1.0, 3.2.1, 3.2.2, 3.3.0)"), "{}", never.stderr);
    cli(&db, &up.migrations, &["upgrade", "--to-version", "2.15.1"]).ok();
    let plan = cli(&db, &up.migrations, &["--message-format", "json", "plan"]).ok().json();
    let deploys: Vec<&str> = plan["steps"].as_array().unwrap().iter().filter(|s| s["action"] == "deploy").map(|s| s["release"].as_str().unwrap()).collect();
    // Never 3.2.0 (unpublished); the last is what is vendored: the newest release of the table here.
    let newest = procrastinate_migrations::upstream::published().last().unwrap().0.human();
    assert_eq!(deploys, ["3.0.2", "3.1.0", "3.2.2", "3.3.0", newest.as_str()]);
    let human = cli(&db, &up.migrations, &["plan"]).ok().stdout;
    assert!(human.starts_with("the database is at 0029 (2.15.0 to 2.15.1); head is 0038"), "{human}");
    // 3.3.0 has a pre and no post: --phase pre from 0035 says to deploy it before the next pre.
    cli(&db, &up.migrations, &["upgrade", "0035"]).ok();
    let pre = cli(&db, &up.migrations, &["upgrade", "--phase", "pre"]).ok();
    assert_eq!(cli(&db, &up.migrations, &["current"]).ok().stdout.trim(), "0036");
    assert!(
        pre.stderr.contains("next: deploy release 3.3.0 of your code (it has no post migrations), then `cargo procrastinate upgrade --phase pre`"),
        "{}",
        pre.stderr
    );
}

#[test]
fn verify_reads_both_schemas_under_the_same_search_path() {
    let up = v3_10();
    for schema in ["procrastinate", "public"] {
        let set = copy_set(&up.migrations);
        std::fs::create_dir_all(set.path().join("reference")).unwrap();
        std::fs::copy(&up.schema_sql, set.path().join("reference/schema.sql")).unwrap();
        let run = cli_in(&std::env::temp_dir(), &["--migrations", set.path().to_str().unwrap(), "--schema", schema, "verify"], &[]);
        assert_eq!(run.code, 0, "schema {schema}:\n{}{}", run.stdout, run.stderr);
        assert!(set.path().join("reference/verified.toml").is_file());
    }
    // 3.0.0's file 30 needs PostgreSQL 16: the failure says upstream replaced it, and with what.
    let old = wheels::procrastinate("3.0.0");
    let run = cli_in(&std::env::temp_dir(), &["--migrations", old.migrations.to_str().unwrap(), "verify", "--schema-sql", old.schema_sql.to_str().unwrap()], &[]);
    let server: i32 = TestDb::new("verdict_version").client().query_one("SELECT current_setting('server_version_num')::int", &[]).unwrap().get(0);
    if server < 160000 {
        assert_ne!(run.code, 0);
        assert!(run.stderr.contains("upstream replaced it in 3.0.2 because its `json_object('key': value)` is syntax that only PostgreSQL 16"), "{}", run.stderr);
    }
}

#[test]
fn upgrade_json_carries_the_crossing_warning_and_dry_run_writes_nothing() {
    let up = v3_10();
    let db = at("verdict_crossing", "0031");
    let dry = cli(&db, &up.migrations, &["--message-format", "json", "upgrade", "--dry-run"]).ok().json();
    assert_eq!((dry["dry_run"].as_bool(), dry["to"].as_str()), (Some(true), Some("0038")));
    assert_eq!(dry["would_apply"].as_array().unwrap().len(), 7);
    assert!(dry["warnings"][0].as_str().unwrap().contains("post migrations of 3.1.0, 3.2.2"), "{dry}");
    assert_eq!(cli(&db, &up.migrations, &["current"]).ok().stdout.trim(), "0031", "the dry run changed nothing");
    let human = cli(&db, &up.migrations, &["upgrade", "--dry-run"]).ok().stdout;
    assert!(human.contains("would apply 0032 pre      03.01.00_01_pre_add_heartbeat.sql") || human.contains("would apply 0032"), "{human}");
    let json = cli(&db, &up.migrations, &["--message-format", "json", "upgrade"]).ok().json();
    let warning = json["warnings"][0].as_str().unwrap();
    assert!(warning.contains("workers still running a release older than 3.2.2 may break"), "{warning}");
    // An unknown flag is refused before anything connects (a bad URL would say exit 3).
    let refused = cli_in(&std::env::temp_dir(), &["--migrations", up.migrations.to_str().unwrap(), "--database-url", "postgres://nobody@127.0.0.1:1/x", "upgrade", "--bogus"], &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    let sql = cli(&db, &up.migrations, &["sql", "--dry-run", "0036:head"]).ok().stdout;
    assert_eq!(sql.lines().count(), 2, "{sql}");
}

#[test]
fn duplicate_tracking_rows_are_counted_and_named() {
    let db = TestDb::new("verdict_duplicates");
    cli(&db, &example_set(), &["upgrade"]).ok();
    db.client()
        .batch_execute(
            "ALTER TABLE cargo_procrastinate_migrations DROP CONSTRAINT cargo_procrastinate_migrations_pkey;
             INSERT INTO cargo_procrastinate_migrations SELECT * FROM cargo_procrastinate_migrations WHERE revision = '0002'",
        )
        .unwrap();
    let check = cli(&db, &example_set(), &["check"]).code(5);
    assert!(check.stdout.contains("is recorded 2 times (the tracking table has lost its primary key)"), "{}", check.stdout);
}

#[test]
fn a_lost_connection_says_the_outcome_is_unknown_then_reads_the_position() {
    let set = tempfile::tempdir().unwrap();
    for i in 1..=3 {
        write(set.path(), &format!("01.00.00_{i:02}_quick.sql"), &format!("CREATE TABLE q{i} (x int);\n"));
    }
    write(set.path(), "01.00.00_04_last_quick.sql", "CREATE TABLE q4 (x int);\n");
    write(set.path(), "01.00.00_05_slow.sql", "SELECT pg_sleep(30);\n");
    let db = TestDb::new("verdict_lost");
    let name = db.name().to_string();
    let killer = std::thread::spawn({
        let mut admin = db.client();
        move || {
            for _ in 0..300 {
                let killed: i64 = admin
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND wait_event = 'PgSleep'",
                        &[&name],
                    )
                    .unwrap()
                    .get(0);
                if killed > 0 {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    });
    let run = cli(&db, set.path(), &["--message-format", "json", "upgrade"]).code(1);
    killer.join().unwrap();
    assert!(run.stderr.contains("whether it committed is unknown; read again on a new connection, the database is at 0004"), "{}", run.stderr);
    assert!(!run.stderr.contains("it was rolled back"), "{}", run.stderr);
    let error = run.json();
    assert_eq!((error["migration"]["outcome"].as_str(), error["migration"]["current"].as_str()), (Some("unknown"), Some("0004")), "{error}");
    assert_eq!(cli(&db, set.path(), &["current"]).ok().stdout.trim(), "0004");
}
