//! The real thing: Procrastinate 3.10.0's migrations from its wheel, on real PostgreSQL.

use procrastinate_migrations::{MigrationSet, Phase};

use crate::support::*;

use procrastinate_migrations::config::DEFAULT_VERSION_TABLE as TABLE;

#[test]
fn the_3_10_set_resolves_as_measured() {
    let up = v3_10();
    let set = MigrationSet::from_dir(&up.migrations).unwrap();
    assert_eq!(set.migrations.len(), 38);
    assert_eq!(set.head().to_string(), "0038");
    let m = |n: usize| &set.migrations[n - 1];
    assert_eq!(m(1).file_name, "00.00.00_01_initial.sql");
    assert_eq!(m(30).file_name, "03.00.00_01_pre_cancel_notification.sql");
    assert_eq!((m(30).phase, m(31).phase), (Phase::Pre, Phase::Post));
    // 0036 is a pre whose release has no post.
    assert_eq!(m(36).phase, Phase::Pre);
    assert!(set.migrations.iter().filter(|x| x.version == m(36).version).all(|x| x.phase == Phase::Pre));
    // Before 3.0 there is no marker; from 3.0 on every file has one.
    assert!(set.migrations[..29].iter().all(|x| x.phase == Phase::Unmarked));
    assert!(set.migrations[29..].iter().all(|x| x.phase != Phase::Unmarked));
}

/// A database built from schema.sql, the reference the migrations must reproduce.
fn from_schema_sql(label: &str, schema: Option<&str>) -> TestDb {
    let db = TestDb::new(label);
    if let Some(s) = schema {
        db.client().batch_execute(&format!("CREATE SCHEMA {s}")).unwrap();
    }
    psql_file(&db, &v3_10().schema_sql, schema).ok();
    db
}

#[test]
fn upgrade_reaches_head_with_the_catalog_of_schema_sql() {
    let up = v3_10();
    let db = TestDb::new("upgrade_head");
    let run = cli(&db, &up.migrations, &["upgrade"]).ok();
    assert_eq!(run.stderr.matches("\napplied ").count() + usize::from(run.stderr.starts_with("applied ")), 38, "{}", run.stderr);
    assert!(run.stderr.contains("upgraded base -> 0038 (head)"), "{}", run.stderr);
    // Nothing runs against a fresh database: no zero-downtime warning.
    assert!(!run.stderr.contains("may break"), "{}", run.stderr);
    assert_eq!(cli(&db, &up.migrations, &["current"]).ok().stdout.trim(), "0038 (head)");
    let reference = from_schema_sql("upgrade_head_ref", None);
    assert_same_catalog(&catalog(&db, "public"), &catalog(&reference, "public"));
    // Every file ran once, recorded with its checksum.
    let set = MigrationSet::from_dir(&up.migrations).unwrap();
    let rows = tracking_rows(&db, TABLE);
    let expected: Vec<_> = set.migrations.iter().map(|m| (m.revision.to_string(), m.file_name.to_string(), m.checksum.to_string(), false)).collect();
    assert_eq!(rows, expected);
    // Each row has its duration (written when the run ends, from the starts the claims
    // returned), and the output says what the row says.
    let said: Vec<(String, i64)> = run
        .stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("applied ")?;
            let (head, ms) = rest.rsplit_once(" in ")?;
            Some((head.split_whitespace().last()?.to_string(), ms.strip_suffix(" ms")?.parse().ok()?))
        })
        .collect();
    let recorded: Vec<(String, i64)> = db
        .client()
        .query(&format!("SELECT file_name, duration_ms FROM {TABLE} ORDER BY file_name COLLATE \"C\""), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get::<_, Option<i64>>(1).expect("every duration is known")))
        .collect();
    assert_eq!(said, recorded);
    // Again: nothing to do, exit 0.
    let again = cli(&db, &up.migrations, &["upgrade"]).ok();
    assert!(again.stderr.contains("already at 0038 (head); nothing to do"), "{}", again.stderr);
    cli(&db, &up.migrations, &["check"]).ok();
}

#[test]
fn upgrade_in_steps_then_to_head() {
    let up = v3_10();
    let db = TestDb::new("upgrade_steps");
    cli(&db, &up.migrations, &["upgrade", "0029"]).ok();
    assert_eq!(cli(&db, &up.migrations, &["current"]).ok().stdout.trim(), "0029");
    let window = cli(&db, &up.migrations, &["history", "-r", "0028:0031"]).ok().stdout;
    assert_eq!(
        window.lines().collect::<Vec<_>>(),
        [
            "0029 unmarked applied  02.14.01_01_add_indexes_for_fetch_job.sql (current)",
            "0030 pre      pending  03.00.00_01_pre_cancel_notification.sql",
            "0031 post     pending  03.00.00_50_post_cancel_notification.sql",
        ]
    );
    let verbose = cli(&db, &up.migrations, &["history", "-v", "-r", ":0001"]).ok().stdout;
    let set = MigrationSet::from_dir(&up.migrations).unwrap();
    assert!(verbose.contains(&format!("sha256 {}", set.migrations[0].checksum)), "{verbose}");
    assert!(verbose.contains("     applied 20") && verbose.contains("Z by postgres in "), "{verbose}");
    let json = cli(&db, &up.migrations, &["--message-format", "json", "history"]).ok().json();
    let rows = json["migrations"].as_array().unwrap();
    assert_eq!((rows.len(), json["current"].as_str()), (38, Some("0029")));
    assert_eq!((rows[29]["phase"].as_str(), rows[29]["state"].as_str()), (Some("pre"), Some("pending")));
    assert_eq!(rows[28]["state"], "applied");
    let heads = cli(&db, &up.migrations, &["heads"]).ok().stdout;
    assert_eq!(heads.trim(), "0038 (head) 03.04.00_50_post_add_retry_failed_job_procedure.sql\n  the database is at 0029, 9 pending");
    let pending = cli(&db, &up.migrations, &["pending"]).ok().stdout;
    assert_eq!(pending.lines().count(), 9, "{pending}");
    assert!(pending.lines().next().unwrap().starts_with("0030 pre      pending  03.00.00_01_pre_cancel_notification.sql"), "{pending}");
    // Stopping after a pre whose release has a post: the tool says what to do next.
    let step = cli(&db, &up.migrations, &["upgrade", "+1"]).ok();
    assert!(step.stderr.contains("next: deploy release 3.0.2 of your code, then apply its post migrations with `cargo procrastinate upgrade --phase post`"), "{}", step.stderr);
    cli(&db, &up.migrations, &["check"]).code(4);
    let rest = cli(&db, &up.migrations, &["--message-format", "json", "upgrade"]).ok().json();
    assert_eq!((rest["from"].as_str(), rest["to"].as_str()), (Some("0030"), Some("0038")));
    assert_eq!(rest["applied"].as_array().unwrap().len(), 8);
    let reference = from_schema_sql("upgrade_steps_ref", None);
    assert_same_catalog(&catalog(&db, "public"), &catalog(&reference, "public"));
    // Asking for an earlier revision is a downgrade: refused, nothing changed.
    let back = cli(&db, &up.migrations, &["upgrade", "0010"]).code(2);
    assert!(back.stderr.contains("`upgrade` goes forward only; `downgrade 0010` undoes migrations that have down files"), "{}", back.stderr);
}

#[test]
fn stamp_head_on_a_schema_sql_database() {
    let up = v3_10();
    let db = from_schema_sql("stamp_head", None);
    cli(&db, &up.migrations, &["check"]).code(4);
    // Upgrading it instead fails on the first file, rolled back, with the way out.
    let wrong = cli(&db, &up.migrations, &["upgrade"]).code(1);
    assert!(wrong.stderr.contains("migration 0001 failed at 00.00.00_01_initial.sql"), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("cargo procrastinate stamp <revision>"), "{}", wrong.stderr);
    let stamped = cli(&db, &up.migrations, &["stamp", "head"]).ok();
    assert_eq!(stamped.stdout.trim(), "stamped 0038");
    let noop = cli(&db, &up.migrations, &["upgrade"]).ok();
    assert!(noop.stderr.contains("nothing to do"), "{}", noop.stderr);
    let check = cli(&db, &up.migrations, &["--message-format", "json", "check"]).ok().json();
    assert_eq!(check["ok"], true);
    assert!(tracking_rows(&db, TABLE).iter().all(|r| r.3), "stamped rows say so");
    // A lower stamp needs --purge; with it, the records restart.
    cli(&db, &up.migrations, &["stamp", "0010"]).code(2);
    let refused = cli(&db, &up.migrations, &["stamp", "0010", "--purge"]).code(5);
    assert!(refused.stderr.contains("the database's schema is not the schema of 0010"), "{}", refused.stderr);
    cli(&db, &up.migrations, &["stamp", "0010", "--purge", "--force"]).ok();
    assert_eq!(tracking_rows(&db, TABLE).len(), 10);
}

#[test]
fn concurrent_upgrades_apply_each_migration_once() {
    let up = v3_10();
    let db = TestDb::new("concurrent");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| cli(&db, &up.migrations, &["--message-format", "json", "upgrade"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut applied = Vec::new();
    for run in runs {
        let run = run.ok();
        let json = run.json();
        assert_eq!(json["to"], "0038");
        applied.extend(json["applied"].as_array().unwrap().iter().map(|a| a["revision"].as_str().unwrap().to_string()));
    }
    applied.sort();
    let expected: Vec<String> = (1..=38).map(|n| format!("{n:04}")).collect();
    assert_eq!(applied, expected, "every migration applied exactly once across the 8 processes");
    assert_eq!(tracking_rows(&db, TABLE).len(), 38);
}

#[test]
fn a_non_public_schema_holds_objects_and_tracking() {
    let up = v3_10();
    let db = TestDb::new("schema_jobs");
    let run = cli(&db, &up.migrations, &["--schema", "jobs", "upgrade"]).ok();
    assert!(run.stderr.contains("schema jobs"), "{}", run.stderr);
    let current = cli(&db, &up.migrations, &["--schema", "jobs", "--message-format", "json", "current"]).ok().json();
    assert_eq!((current["current"].as_str(), current["tracking_table"].as_str()), (Some("0038"), Some("jobs.cargo_procrastinate_migrations")));
    // Nothing leaked into public, and without the setting the database looks untouched.
    let leaked: i64 = db.client().query_one("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace", &[]).unwrap().get(0);
    assert_eq!(leaked, 0);
    assert!(cli(&db, &up.migrations, &["current"]).ok().stdout.starts_with("base"));
    let reference = from_schema_sql("schema_jobs_ref", Some("jobs"));
    assert_same_catalog(&catalog(&db, "jobs"), &catalog(&reference, "jobs"));
    assert_eq!(tracking_rows(&db, "jobs.cargo_procrastinate_migrations").len(), 38);
}

#[test]
fn offline_script_builds_the_same_database_as_upgrade() {
    let up = v3_10();
    let script = cli_in(&std::env::temp_dir(), &["--migrations", up.migrations.to_str().unwrap(), "sql", "--offline"], &[]).ok().stdout;
    let again = cli_in(&std::env::temp_dir(), &["--migrations", up.migrations.to_str().unwrap(), "sql", "--offline"], &[]).ok().stdout;
    assert_eq!(script, again, "deterministic");
    assert!(script.contains("Do NOT add -1 / --single-transaction"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();

    let offline = TestDb::new("offline_psql");
    psql_file(&offline, file.path(), None).ok();
    let online = TestDb::new("offline_ref");
    cli(&online, &up.migrations, &["upgrade"]).ok();
    assert_same_catalog(&catalog(&offline, "public"), &catalog(&online, "public"));
    assert_eq!(tracking_rows(&offline, TABLE), tracking_rows(&online, TABLE));
    assert_eq!(cli(&offline, &up.migrations, &["current"]).ok().stdout.trim(), "0038 (head)");
    cli(&offline, &up.migrations, &["check"]).ok();
    // Running the script twice stops at the first block, changing nothing.
    let twice = psql_file(&offline, file.path(), None);
    assert_ne!(twice.code, 0);
    assert!(twice.stderr.contains("revision 0001 (00.00.00_01_initial.sql) is already applied"), "{}", twice.stderr);
}

#[test]
fn offline_tail_script_from_0029() {
    let up = v3_10();
    let db = TestDb::new("offline_tail");
    cli(&db, &up.migrations, &["upgrade", "0029"]).ok();
    let dir = up.migrations.to_str().unwrap();
    let script = cli_in(&std::env::temp_dir(), &["--migrations", dir, "sql", "--offline", "0029:head"], &[]).ok().stdout;
    assert!(!script.contains("-- Revision 0029:") && script.contains("-- Revision 0030:") && script.contains("-- Revision 0038:"));
    assert_eq!(script, cli_in(&std::env::temp_dir(), &["--migrations", dir, "sql", "--offline", "--from", "0029"], &[]).ok().stdout);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();
    psql_file(&db, file.path(), None).ok();
    assert_eq!(cli(&db, &up.migrations, &["current"]).ok().stdout.trim(), "0038 (head)");
    cli(&db, &up.migrations, &["check"]).ok();
    // Online, `sql` defaults to what is pending: nothing now.
    let pending = cli(&db, &up.migrations, &["sql"]).ok().stdout;
    assert!(!pending.contains("-- Revision"), "{pending}");
    // Offline, `current` is refused with a way out.
    let refused = cli_in(&std::env::temp_dir(), &["--migrations", dir, "sql", "--offline", "current:head"], &[]).code(2);
    assert!(refused.stderr.contains("--from"), "{}", refused.stderr);
}

#[test]
fn offline_script_in_a_schema() {
    let up = v3_10();
    let dir = up.migrations.to_str().unwrap();
    let script = cli_in(&std::env::temp_dir(), &["--migrations", dir, "--schema", "jobs", "sql", "--offline"], &[]).ok().stdout;
    assert!(script.contains("SET search_path TO \"jobs\";"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &script).unwrap();
    let db = TestDb::new("offline_schema");
    psql_file(&db, file.path(), None).ok();
    assert_eq!(cli(&db, &up.migrations, &["--schema", "jobs", "current"]).ok().stdout.trim(), "0038 (head)");
}

/// Upstream edited 03.00.00_01_pre_cancel_notification.sql in place after 3.0.0 (its
/// `json_object('k': v)` is PostgreSQL 16 syntax); databases migrated with the old wheel exist.
#[test]
fn a_database_migrated_with_an_older_wheel() {
    let old = wheels::procrastinate("3.0.0");
    let new = v3_10();
    let db = TestDb::new("older_wheel");
    let version: i32 = db.client().query_one("SELECT current_setting('server_version_num')::int", &[]).unwrap().get(0);
    let run = cli(&db, &old.migrations, &["upgrade"]);
    if version < 160000 {
        // The old file cannot run here: rolled back whole, named with its line, earlier ones kept.
        let run = run.code(1);
        assert!(
            run.stderr
                .contains("migration 0030 failed at 03.00.00_01_pre_cancel_notification.sql:266:")
                && run.stderr.contains(": syntax error at or near \":\""),
            "{}",
            run.stderr
        );
        assert_eq!(cli(&db, &old.migrations, &["current"]).ok().stdout.trim(), "0029");
        // What a PostgreSQL 16 database migrated with 3.0.0 records: the old file's checksum.
        cli(&db, &new.migrations, &["upgrade", "0031"]).ok();
        let old_sum = MigrationSet::from_dir(&old.migrations).unwrap().migrations[29].checksum.to_string();
        db.client()
            .execute(&format!("UPDATE {TABLE} SET checksum = $1 WHERE revision = '0030'"), &[&old_sum])
            .unwrap();
    } else {
        run.ok();
    }
    // Upstream's own edit, not drift: check passes and says why; upgrade records it and goes on.
    let check = cli(&db, &new.migrations, &["check"]).code(4);
    assert!(
        check.stdout.contains("note: 0030 03.00.00_01_pre_cancel_notification.sql: upstream revised this file in 3.0.2; your database has the earlier text (from 3.0.0)"),
        "{}",
        check.stdout
    );
    assert!(!check.stdout.contains("disagree"), "{}", check.stdout);
    assert_eq!(cli(&db, &new.migrations, &["current"]).ok().stdout.trim(), "0031");
    let upgraded = cli(&db, &new.migrations, &["upgrade"]).ok();
    assert!(upgraded.stderr.contains("upstream revised this file in 3.0.2") && upgraded.stderr.contains("done: recorded"), "{}", upgraded.stderr);
    assert!(upgraded.stderr.contains("upgraded 0031 -> 0038 (head)"), "{}", upgraded.stderr);
    let check = cli(&db, &new.migrations, &["check"]).ok();
    assert!(!check.stdout.contains("note:"), "{}", check.stdout);
}

/// The other in-place edit: 3.5.2 removed `public.` from 0038's function, which 3.5.1 created
/// in `public` whatever the schema. A database migrated with 3.5.1 is at head with one changed
/// file.
#[test]
fn a_database_migrated_with_the_3_5_1_wheel() {
    let old = wheels::procrastinate("3.5.1");
    let new = v3_10();
    let db = TestDb::new("wheel_3_5_1");
    cli(&db, &old.migrations, &["upgrade"]).ok();
    // In `public` both texts give the same schema: check passes and says why.
    let check = cli(&db, &new.migrations, &["--message-format", "json", "check"]).ok().json();
    assert_eq!(check["divergences"], serde_json::json!([]), "{check}");
    let revised = &check["revised_upstream"][0];
    assert_eq!((revised["revision"].as_str(), revised["revised_in"].as_str(), revised["needs_rerun"].as_bool()), (Some("0038"), Some("3.5.2"), Some(false)));
    let upgraded = cli(&db, &new.migrations, &["upgrade"]).ok();
    assert!(upgraded.stderr.contains("0038 03.04.00_50_post_add_retry_failed_job_procedure.sql: upstream revised this file in 3.5.2"), "{}", upgraded.stderr);
    assert!(upgraded.stderr.contains("already at 0038 (head); nothing to do"), "{}", upgraded.stderr);
    assert_eq!(tracking_rows(&db, TABLE)[37].2, procrastinate_migrations::MigrationSet::from_dir(&new.migrations).unwrap().migrations[37].checksum.to_string());
}

/// Outside `public`, 3.5.1's text left its trigger on the old function and a stray copy in
/// `public`: check says exactly that, and upgrade repairs it by running the revised file again.
#[test]
fn the_3_5_1_text_outside_public_is_named_and_repaired() {
    let old = wheels::procrastinate("3.5.1");
    let new = v3_10();
    let db = TestDb::new("wheel_3_5_1_jobs");
    cli(&db, &old.migrations, &["--schema", "jobs", "upgrade"]).ok();
    let reference = from_schema_sql("wheel_3_5_1_jobs_ref", Some("jobs"));
    let before = catalog(&db, "jobs");
    assert_ne!(before, catalog(&reference, "jobs"), "the earlier text leaves the schema different");
    let check = cli(&db, &new.migrations, &["--schema", "jobs", "check"]).code(5);
    assert!(check.stdout.contains("In schema `jobs`, the earlier text created procrastinate_trigger_function_status_events_update_v1() in `public`"), "{}", check.stdout);
    assert!(check.stdout.contains("`cargo procrastinate upgrade` runs the revised file again"), "{}", check.stdout);
    let upgraded = cli(&db, &new.migrations, &["--schema", "jobs", "upgrade"]).ok();
    assert!(upgraded.stderr.contains("done: the revised file ran again and is recorded"), "{}", upgraded.stderr);
    assert_same_catalog(&catalog(&db, "jobs"), &catalog(&reference, "jobs"));
    cli(&db, &new.migrations, &["--schema", "jobs", "check"]).ok();
}

/// The data behind those notes is the real wheels' text.
#[test]
fn known_upstream_edits_match_the_wheels() {
    use procrastinate_migrations::{upstream::EDITS, Checksum};
    for (version, edit) in [("3.0.0", 0), ("3.4.0", 1), ("3.5.1", 1)] {
        let e = &EDITS[edit];
        let text = std::fs::read(wheels::procrastinate(version).migrations.join(e.file_name)).unwrap();
        assert!(e.earlier.contains(&Checksum::of(&text).to_string().as_str()), "{version} {}", e.file_name);
        let now = std::fs::read(v3_10().migrations.join(e.file_name)).unwrap();
        assert!(!e.earlier.contains(&Checksum::of(&now).to_string().as_str()));
    }
}

/// `sql --offline | head -1`: a reader that stops early is not a failure (and no panic).
#[test]
fn a_closed_pipe_ends_the_offline_script_quietly() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
        .args(["--migrations", v3_10().migrations.to_str().unwrap(), "sql", "--offline"])
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("-- cargo-procrastinate offline upgrade script"), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
