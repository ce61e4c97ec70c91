//! Several migration sets in one database: Procrastinate's real files beside an application's
//! own, each its own chain (revisions `NAME@REV`), one tracking table keyed by (set, file).

use std::path::Path;

use procrastinate_migrations::config::DEFAULT_VERSION_TABLE as TABLE;

use crate::support::*;

const ORDERS: &str = "01.00.00_01_create_orders.sql";
const ORDER_JOBS: &str = "01.00.00_02_order_jobs.sql";

/// A package with `sets = [procrastinate, app]`: 3.10.0's files up to `upto` in
/// db/procrastinate, two application files in db/app (the second refers to
/// `procrastinate_jobs`).
fn package(upto: usize) -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    write_package(root, "shop", TWO_SETS);
    copy_first(&v3_10().migrations, &root.join("db/procrastinate"), upto);
    let app = root.join("db/app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join(ORDERS), "CREATE TABLE orders (id bigserial PRIMARY KEY, total numeric NOT NULL);\n").unwrap();
    std::fs::write(
        app.join(ORDER_JOBS),
        "CREATE TABLE order_jobs (\n    order_id bigint NOT NULL REFERENCES orders,\n    \
         job_id bigint NOT NULL REFERENCES procrastinate_jobs (id) ON DELETE CASCADE\n);\n",
    )
    .unwrap();
    pkg
}

/// A package `name` whose `[package.metadata.procrastinate]` is `metadata`.
/// The example set as set `example`, one application file as set `app` (with `app_extra`).
fn example_and_app(root: &Path, metadata: &str, app_extra: &str) {
    write_package(
        root,
        "with-app",
        &format!(
            "{metadata}sets = [\n  {{ name = \"example\", migrations = \"db/example\" }},\n  \
             {{ name = \"app\", migrations = \"db/app\"{app_extra} }},\n]\n"
        ),
    );
    copy_files(&example_set(), &root.join("db/example"));
    std::fs::create_dir_all(root.join("db/app")).unwrap();
    std::fs::write(root.join("db/app").join(ORDERS), "CREATE TABLE orders (id int);\n").unwrap();
}

/// Copies the first `n` migrations of a set, in revision order.
fn copy_first(from: &Path, to: &Path, n: usize) {
    std::fs::create_dir_all(to).unwrap();
    for name in sorted(from).into_iter().take(n) {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

fn sorted(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

fn run(pkg: &Path, db: &TestDb, args: &[&str]) -> Run {
    cli_in(pkg, args, &[("DATABASE_URL", &db.url())])
}

/// `(set, file_name)` of every tracking row.
fn rows(db: &TestDb) -> Vec<(String, String)> {
    db.client()
        .query(&format!("SELECT set_name, file_name FROM {TABLE} ORDER BY set_name, file_name"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn a_new_procrastinate_release_leaves_the_application_set_alone() {
    let pkg = package(36);
    let root = pkg.path();
    let db = TestDb::new("sets_release");
    let up = run(root, &db, &["upgrade"]).ok();
    assert!(up.stderr.contains("applied procrastinate@0036 pre      03.03.00_01_pre_priority_lock_fetch_job.sql"), "{}", up.stderr);
    assert!(up.stderr.contains("applied app@0002 unmarked 01.00.00_02_order_jobs.sql"), "{}", up.stderr);
    assert_eq!(run(root, &db, &["current"]).ok().stdout, "procrastinate 0036 (head)\napp 0002 (head)\n");

    // The next release's files go into their own directory: nothing of `app` moves.
    let all = sorted(&v3_10().migrations);
    for name in &all[36..] {
        std::fs::copy(v3_10().migrations.join(name), root.join("db/procrastinate").join(name)).unwrap();
    }
    let check = run(root, &db, &["check"]).code(4);
    assert!(check.stdout.contains("procrastinate: behind: the database is at procrastinate@0036, head is procrastinate@0038; 2 pending"), "{}", check.stdout);
    assert!(check.stdout.contains("app: ok: at head app@0002"), "{}", check.stdout);
    let json = run(root, &db, &["--message-format", "json", "upgrade"]).ok().json();
    let sets = json["sets"].as_array().unwrap();
    let applied = |i: usize| -> Vec<String> {
        sets[i]["applied"].as_array().unwrap().iter().map(|a| a["file_name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(applied(0), all[36..].to_vec());
    assert_eq!(applied(1), Vec::<String>::new());
    assert_eq!((sets[1]["set"].as_str(), sets[1]["to"].as_str()), (Some("app"), Some("0002")));
    run(root, &db, &["check"]).ok();
    assert_eq!(run(root, &db, &["current"]).ok().stdout, "procrastinate 0038 (head)\napp 0002 (head)\n");

    // The catalog of the procrastinate set is exactly what 3.10.0's schema.sql builds.
    let reference = TestDb::new("sets_release_ref");
    psql_file(&reference, &v3_10().schema_sql, None).ok();
    let ours = catalog(&db, "public").only(|o| !o.name.contains("order"));
    assert_same_catalog(&ours, &catalog(&reference, "public"));

    // One set at a time, and `NAME@REV` everywhere.
    let heads = run(root, &db, &["heads"]).ok().stdout;
    assert_eq!(heads, "procrastinate@0038 (head) 03.04.00_50_post_add_retry_failed_job_procedure.sql\napp@0002 (head) 01.00.00_02_order_jobs.sql\n");
    assert_eq!(run(root, &db, &["--set", "app", "current"]).ok().stdout, "app 0002 (head)\n");
    let history = run(root, &db, &["history", "-r", "app@0001:head"]).ok().stdout;
    assert_eq!(history, format!("app@0002 unmarked applied  {ORDER_JOBS} (current, head)\n"));
    let ambiguous = run(root, &db, &["upgrade", "0002"]).code(2);
    assert!(ambiguous.stderr.contains("name the set, e.g. `procrastinate@0002`"), "{}", ambiguous.stderr);
}

#[test]
fn targets_name_a_set_and_move_only_that_set() {
    let pkg = package(38);
    let root = pkg.path();
    let db = TestDb::new("sets_targets");
    run(root, &db, &["upgrade", "procrastinate@0029"]).ok();
    run(root, &db, &["upgrade", "procrastinate@+1"]).ok();
    assert_eq!(run(root, &db, &["current"]).ok().stdout, "procrastinate 0030\napp base (nothing recorded)\n");
    run(root, &db, &["upgrade", "procrastinate@head"]).ok();
    run(root, &db, &["upgrade", "app@0001"]).ok();
    assert_eq!(run(root, &db, &["current"]).ok().stdout, "procrastinate 0038 (head)\napp 0001\n");
    run(root, &db, &["--set", "app", "upgrade"]).ok();
    // stamp one set; the other keeps its rows.
    run(root, &db, &["stamp", "--purge", "procrastinate@0029"]).code(5);
    run(root, &db, &["stamp", "--purge", "--force", "procrastinate@0029"]).ok();
    let recorded = rows(&db);
    assert_eq!(recorded.iter().filter(|(s, _)| s == "procrastinate").count(), 29);
    assert_eq!(recorded.iter().filter(|(s, _)| s == "app").count(), 2);
    let json = run(root, &db, &["--message-format", "json", "current"]).ok().json();
    assert_eq!(json["at_head"], false);
    assert_eq!((json["sets"][0]["current"].as_str(), json["sets"][1]["current"].as_str()), (Some("0029"), Some("0002")));
}

#[test]
fn an_inserted_or_deleted_file_is_one_line_and_changes_nothing() {
    let pkg = package(36);
    let root = pkg.path();
    let db = TestDb::new("sets_divergent");
    run(root, &db, &["upgrade"]).ok();
    let before = rows(&db);

    // A file that sorts before an applied one: one line naming both files.
    let early = "00.09.00_01_add_customers.sql";
    std::fs::write(root.join("db/app").join(early), "CREATE TABLE customers (id int);\n").unwrap();
    let refused = run(root, &db, &["upgrade"]).code(5);
    let lines: Vec<&str> = refused.stderr.lines().filter(|l| l.contains(early)).collect();
    assert_eq!(lines.len(), 1, "{}", refused.stderr);
    assert!(lines[0].contains(&format!("`{early}` sorts before the applied `{ORDERS}`")), "{}", refused.stderr);
    assert!(lines[0].contains(&format!("rename it to sort after `{ORDER_JOBS}`")), "{}", refused.stderr);
    assert!(refused.stderr.contains("of set `app` disagree"), "{}", refused.stderr);
    let check = run(root, &db, &["check"]).code(5);
    assert_eq!(check.stdout.lines().filter(|l| l.starts_with("  ")).count(), 1, "never a cascade:\n{}", check.stdout);
    assert_eq!(rows(&db), before);
    assert!(db.client().query("SELECT to_regclass('customers') IS NULL", &[]).unwrap()[0].get::<_, bool>(0));
    std::fs::remove_file(root.join("db/app").join(early)).unwrap();

    // An applied file's copy deleted: one line naming it.
    let gone = "02.14.01_01_add_indexes_for_fetch_job.sql";
    std::fs::remove_file(root.join("db/procrastinate").join(gone)).unwrap();
    let check = run(root, &db, &["--message-format", "json", "check"]).code(5).json();
    let divergences = check["sets"][0]["divergences"].as_array().unwrap();
    assert_eq!(divergences.len(), 1, "{check}");
    assert_eq!(divergences[0]["kind"], "gone");
    assert!(divergences[0]["message"].as_str().unwrap().starts_with(&format!("`{gone}` was applied (as 0029) but its file is gone")));
    run(root, &db, &["upgrade"]).code(5);
    assert_eq!(rows(&db), before);
    let history = run(root, &db, &["--set", "procrastinate", "history"]).ok().stdout;
    assert!(history.contains(&format!("procrastinate@0029 recorded (no such file) {gone}")), "{history}");
    // One directory for one set: --migrations needs --set, and then replaces only that one.
    let url = db.url();
    let env = [("DATABASE_URL", url.as_str())];
    let refused = cli_in(root, &["--migrations", "db/procrastinate", "current"], &env).code(2);
    assert!(refused.stderr.contains("add --set NAME"), "{}", refused.stderr);
    let full = v3_10().migrations;
    let replaced = cli_in(root, &["--set", "procrastinate", "--migrations", full.to_str().unwrap(), "current"], &env).ok();
    assert_eq!(replaced.stdout, "procrastinate 0036\n");
}

#[test]
fn the_offline_script_covers_every_set_in_order() {
    let pkg = package(38);
    let root = pkg.path();
    let script = cli_in(root, &["sql", "--offline"], &[]).ok().stdout;
    let first = script.find("-- Revision procrastinate@0038:").unwrap();
    let second = script.find(&format!("-- Revision app@0001: {ORDERS}")).unwrap();
    assert!(first < second);
    let file = root.join("upgrade.sql");
    std::fs::write(&file, &script).unwrap();
    let db = TestDb::new("sets_offline");
    psql_file(&db, &file, None).ok();
    run(root, &db, &["check"]).ok();
    assert_eq!(rows(&db).len(), 40);
    // Run twice: the first guard stops it, nothing changes.
    let again = psql_file(&db, &file, None);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("revision procrastinate@0001 (00.00.00_01_initial.sql) is already applied"), "{}", again.stderr);
    // One set only, from where the database is.
    let only_app = cli_in(root, &["sql", "--offline", "app@0001:head"], &[]).ok().stdout;
    assert!(!only_app.contains("procrastinate@") && only_app.contains("-- Revision app@0002"), "{only_app}");
}

#[test]
fn a_set_can_live_in_its_own_schema_and_table() {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    example_and_app(root, "schema = \"jobs\"\n", ", schema = \"app\", version-table = \"app.schema_history\"");
    let db = TestDb::new("sets_apart");
    run(root, &db, &["upgrade"]).ok();
    let mut client = db.client();
    let located: Vec<(String, String)> = client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname IN ('accounts', 'orders', 'cargo_procrastinate_migrations', 'schema_history') ORDER BY 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        located,
        [
            ("jobs".into(), "accounts".into()),
            ("jobs".into(), "cargo_procrastinate_migrations".into()),
            ("app".into(), "orders".into()),
            ("app".into(), "schema_history".into()),
        ]
    );
    run(root, &db, &["check"]).ok();
}

#[test]
fn bad_sets_are_refused_naming_the_setting() {
    let pkg = package(1);
    let root = pkg.path();
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("name = \"app\", migrations = \"db/app\"", "name = \"app\", migrations = \"db/procrastinate/\"")).unwrap();
    let run = cli_in(root, &["heads"], &[]).code(2);
    assert!(run.stderr.contains("`procrastinate` and `app` both use the directory"), "{}", run.stderr);
    std::fs::write(&manifest, text.replace("name = \"app\", migrations", "name = \"app\", shema = \"x\", migrations")).unwrap();
    let run = cli_in(root, &["heads"], &[]).code(2);
    assert!(run.stderr.contains("unknown field `shema`"), "{}", run.stderr);
}

/// The tracking table exactly as cargo-procrastinate 0.1 wrote it: keyed by revision alone.
const TABLE_0_1: &str = "CREATE TABLE IF NOT EXISTS \"cargo_procrastinate_migrations\" (
    revision    text        PRIMARY KEY,
    file_name   text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms bigint,
    applied_by  text        NOT NULL DEFAULT current_user,
    stamped     boolean     NOT NULL DEFAULT false
);";

#[test]
fn a_table_written_by_the_first_release_is_brought_to_the_new_layout_in_place() {
    let db = TestDb::new("sets_legacy");
    let set = procrastinate_migrations::MigrationSet::from_dir(example_set()).unwrap();
    // What 0.1's `upgrade` left behind: the files applied, one row each, as it inserted them.
    let mut client = db.client();
    client.batch_execute(TABLE_0_1).unwrap();
    for m in &set.migrations {
        client.batch_execute(&m.sql).unwrap();
        client
            .batch_execute(&format!(
                "INSERT INTO \"cargo_procrastinate_migrations\" (revision, file_name, checksum, duration_ms, stamped) \
                 VALUES ('{}', '{}', '{}', 7, false)",
                m.revision, m.file_name, m.checksum
            ))
            .unwrap();
    }
    client.batch_execute("UPDATE cargo_procrastinate_migrations SET applied_at = '2026-01-02T03:04:05Z'").unwrap();
    let dir = copy_set(&example_set());
    // Read-only commands read it as it is, and leave it so.
    assert_eq!(cli(&db, dir.path(), &["current"]).ok().stdout.trim(), "0003 (head)");
    cli(&db, dir.path(), &["check"]).ok();
    let has_set_column = |client: &mut postgres::Client| -> bool {
        client
            .query("SELECT count(*) FROM pg_attribute WHERE attrelid = 'cargo_procrastinate_migrations'::regclass AND attname = 'set_name'", &[])
            .unwrap()[0]
            .get::<_, i64>(0)
            == 1
    };
    assert!(!has_set_column(&mut client));

    // A package that moves to sets at the same time: the first set takes the old rows over.
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    example_and_app(root, "", "");
    let up = run(root, &db, &["upgrade"]).ok();
    assert!(up.stderr.contains("already at example@0003 (head); nothing to do"), "{}", up.stderr);
    assert!(up.stderr.contains("applied app@0001"), "{}", up.stderr);
    assert!(has_set_column(&mut client));
    assert_eq!(
        rows(&db),
        [
            ("app".to_string(), ORDERS.to_string()),
            ("example".into(), "01.00.00_01_create_accounts.sql".into()),
            ("example".into(), "02.00.00_01_pre_add_account_status.sql".into()),
            ("example".into(), "02.00.00_50_post_account_status_not_null.sql".into()),
        ]
    );
    // Nothing lost: the old rows keep their time, duration and checksum.
    let kept: i64 = client
        .query_one(
            "SELECT count(*) FROM cargo_procrastinate_migrations WHERE set_name = 'example' \
             AND applied_at = '2026-01-02T03:04:05Z' AND duration_ms = 7",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, 3);
    run(root, &db, &["check"]).ok();
    // Exactly once: another writer finds the new layout and changes nothing.
    run(root, &db, &["upgrade"]).ok();
    assert_eq!(rows(&db).len(), 4);
}

/// `new` writes the next correctly named file of a set, never one that sorts before the files
/// already there.
#[test]
fn new_writes_the_next_file_of_a_set() {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    write_package(root, "shop", "sets = [\n  { name = \"app\", migrations = \"db/app\" },\n  { name = \"more\", migrations = \"db/more\" },\n]\n");
    let new = |args: &[&str]| {
        let mut all = vec!["--set", "app", "new"];
        all.extend_from_slice(args);
        cli_in(root, &all, &[])
    };
    let first = new(&["Create orders!"]).ok().stdout;
    assert!(first.trim().ends_with("db/app/00.01.00_01_create_orders.sql"), "{first}");
    new(&["order lines", "--pre"]).ok();
    let post = new(&["backfill", "--post"]).ok().stdout;
    assert!(post.trim().ends_with("db/app/00.01.00_50_post_backfill.sql"), "{post}");
    let pre = new(&["more", "--pre", "--version", "1.2.0"]).ok().stdout;
    assert!(pre.trim().ends_with("db/app/01.02.00_01_pre_more.sql"), "{pre}");
    let before = new(&["late", "--version", "1.0.0"]).code(2);
    assert!(before.stderr.contains("would sort before `01.02.00_01_pre_more.sql`"), "{}", before.stderr);
    let names = sorted(&root.join("db/app"));
    assert_eq!(names, ["00.01.00_01_create_orders.sql", "00.01.00_02_pre_order_lines.sql", "00.01.00_50_post_backfill.sql", "01.02.00_01_pre_more.sql"]);
    // Not written yet: the file says so (the set builds with it; `upgrade` refuses it).
    let text = std::fs::read_to_string(first.trim()).unwrap();
    assert!(text.contains(procrastinate_migrations::NOT_WRITTEN), "{text}");
}

/// `show` prints one migration's metadata and SQL (the seeds' get_migration_sql), by
/// revision, NAME@REV or head.
#[test]
fn show_prints_a_migration() {
    let pkg = package(38);
    let root = pkg.path();
    let out = cli_in(root, &["show", "procrastinate@0030"], &[]).ok().stdout;
    assert!(out.starts_with("-- revision procrastinate@0030: 03.00.00_01_pre_cancel_notification.sql\n-- release 3.0.0, phase pre, sha256 "), "{out}");
    let sql = std::fs::read_to_string(v3_10().migrations.join("03.00.00_01_pre_cancel_notification.sql")).unwrap();
    assert!(out.ends_with(&sql), "the file follows, unchanged");
    let json = cli_in(root, &["--message-format", "json", "show", "app@head"], &[]).ok().json();
    assert_eq!((json["file_name"].as_str(), json["set"].as_str()), (Some(ORDER_JOBS), Some("app")));
    cli_in(root, &["show", "0030"], &[]).code(2);
}
