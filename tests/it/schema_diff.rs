//! The schema-diff engine (issue 24): `check --schema` on live drift, `diff` between sources,
//! `new --autogenerate` split into pre and post and proved, and the engine on real schemas:
//! each Procrastinate release's schema.sql against the previous release's set head.

use std::path::Path;

use procrastinate_migrations::catalog::plan;

use crate::support::*;

fn run(pkg: &Path, db: Option<&TestDb>, args: &[&str]) -> Run {
    let url = db.map(TestDb::url);
    let env: Vec<(&str, &str)> = url.iter().map(|u| ("DATABASE_URL", u.as_str())).collect();
    cli_in(pkg, args, &env)
}

/// A package at version 1.1.0 whose app set creates `orders (id, note, old)` on top of 3.10.0's
/// files, and whose desired schema is `orders (id, note, total)` plus `lines`.
fn shop(desired: &str, extra: &str) -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            "[package]\nname = \"shop\"\nversion = \"1.1.0\"\nedition = \"2021\"\n\n[package.metadata.procrastinate]\n{extra}\
             sets = [\n  {{ name = \"procrastinate\", migrations = \"db/procrastinate\" }},\n  \
             {{ name = \"app\", migrations = \"db/app\", desired-schema = \"db/schema.sql\" }},\n]\n"
        ),
    )
    .unwrap();
    let dir = root.join("db/procrastinate");
    std::fs::create_dir_all(&dir).unwrap();
    for f in std::fs::read_dir(v3_10().migrations).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(root.join("db/app")).unwrap();
    std::fs::write(
        root.join("db/app/01.00.00_01_create_orders.sql"),
        "CREATE TABLE orders (id bigserial PRIMARY KEY, note text, old integer, job_id bigint REFERENCES procrastinate_jobs (id));\n",
    )
    .unwrap();
    std::fs::write(root.join("db/schema.sql"), desired).unwrap();
    pkg
}

const EVOLVED: &str = "CREATE TABLE orders (id bigserial PRIMARY KEY, note text, total numeric(10,2), job_id bigint REFERENCES procrastinate_jobs (id));\n\
                       CREATE TABLE lines (id bigserial PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), qty integer NOT NULL DEFAULT 1);\n";

fn sql_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn check_schema_finds_drift_and_names_the_column() {
    let db = TestDb::new("drift");
    let set = v3_10().migrations;
    cli(&db, &set, &["upgrade"]).ok();
    let clean = cli(&db, &set, &["check", "--schema"]).ok();
    assert!(clean.stdout.contains("ok: schema public is what the migrations recorded (0038) build"), "{}", clean.stdout);
    db.client()
        .batch_execute("ALTER TABLE procrastinate_jobs ADD COLUMN hack int; DROP INDEX procrastinate_jobs_queue_name_idx_v1;")
        .unwrap();
    let drift = cli(&db, &set, &["check", "--schema"]).code(5);
    assert!(drift.stdout.contains("column procrastinate_jobs.hack: only in the database: integer"), "{}", drift.stdout);
    assert!(drift.stdout.contains("index procrastinate_jobs_queue_name_idx_v1: only in its migrations"), "{}", drift.stdout);
    let json = cli(&db, &set, &["--message-format", "json", "check", "--schema"]).code(5).json();
    let diffs = json["differences"].as_array().unwrap();
    assert!(diffs.iter().any(|d| d["name"] == "procrastinate_jobs.hack" && d["change"] == "extra" && d["summary"] == "integer"), "{json}");
    // A default changed by hand is named by attribute, both sides said.
    db.client().batch_execute("ALTER TABLE procrastinate_jobs ALTER COLUMN attempts SET DEFAULT 5").unwrap();
    let changed = cli(&db, &set, &["check", "--schema"]).code(5);
    assert!(changed.stdout.contains("column procrastinate_jobs.attempts: default: 5 in the database, 0 in its migrations"), "{}", changed.stdout);
    // `--schema` takes no value elsewhere, and a value names the schema as before.
    let elsewhere = cli(&db, &set, &["current", "--schema"]).code(2);
    assert!(elsewhere.stderr.contains("--schema needs a schema name"), "{}", elsewhere.stderr);
}

#[test]
fn check_schema_reports_each_set_s_own_and_ignores_what_it_is_told() {
    let pkg = shop(EVOLVED, "compare-ignore = [\"legacy_*\"]\n");
    let root = pkg.path();
    let db = TestDb::new("drift_sets");
    run(root, Some(&db), &["upgrade"]).ok();
    let ok = run(root, Some(&db), &["check", "--schema"]).ok();
    assert!(ok.stdout.contains("procrastinate: ok") && ok.stdout.contains("app: ok"), "{}", ok.stdout);
    db.client().batch_execute("CREATE TABLE legacy_orders (id int); CREATE TABLE stray (x int); ALTER TABLE orders DROP COLUMN old").unwrap();
    let drift = run(root, Some(&db), &["check", "--schema"]).code(5);
    assert!(drift.stdout.contains("procrastinate: ok"), "{}", drift.stdout);
    assert!(drift.stdout.contains("app: schema public is not what the migrations recorded (app@0001) build: 1 object differs"), "{}", drift.stdout);
    assert!(drift.stdout.contains("column orders.old: only in its migrations: integer"), "{}", drift.stdout);
    assert!(drift.stdout.contains("has 1 object that no set's migrations make") && drift.stdout.contains("table stray: only in the database: x integer"), "{}", drift.stdout);
    assert!(!drift.stdout.contains("legacy_orders"), "{}", drift.stdout);
    // Only the app's part, and the unowned objects, with --set.
    let app = run(root, Some(&db), &["--set", "procrastinate", "check", "--schema"]).code(5);
    assert!(!app.stdout.contains("orders.old"), "{}", app.stdout);
}

#[test]
fn autogenerate_writes_pre_and_post_and_proves_them() {
    let pkg = shop(EVOLVED, "");
    let root = pkg.path();
    let made = run(root, None, &["new", "evolve", "--autogenerate", "--set", "app"]).ok();
    assert!(made.stderr.contains("proved: app@0001 plus these files builds exactly"), "{}", made.stderr);
    let files = sql_files(&root.join("db/app"));
    assert_eq!(files, ["01.00.00_01_create_orders.sql", "01.01.00_01_pre_evolve.sql", "01.01.00_50_post_evolve.sql"], "{}", made.stderr);
    let pre = std::fs::read_to_string(root.join("db/app/01.01.00_01_pre_evolve.sql")).unwrap();
    let post = std::fs::read_to_string(root.join("db/app/01.01.00_50_post_evolve.sql")).unwrap();
    assert!(pre.starts_with("-- @generated by `cargo procrastinate new --autogenerate`"), "{pre}");
    assert!(pre.contains("ALTER TABLE orders ADD COLUMN total numeric(10,2);") && pre.contains("CREATE TABLE lines ("), "{pre}");
    assert!(!pre.contains("DROP"), "{pre}");
    assert!(post.contains("-- hazard (data-loss)") && post.contains("ALTER TABLE orders DROP COLUMN old;"), "{post}");
    // The zero-downtime contract, on a real database: the previous release's code still works
    // with pre applied; after post the schema is exactly the desired one.
    let db = TestDb::new("autogen");
    run(root, Some(&db), &["upgrade", "procrastinate@head"]).ok();
    run(root, Some(&db), &["upgrade", "app@0001"]).ok();
    run(root, Some(&db), &["upgrade", "app@0002"]).ok();
    db.client().batch_execute("INSERT INTO orders (note, old) VALUES ('written by the previous release', 1)").unwrap();
    run(root, Some(&db), &["upgrade"]).ok();
    run(root, Some(&db), &["check", "--schema"]).ok();
    let same = run(root, Some(&db), &["diff", "db", "db/schema.sql"]).ok();
    assert!(same.stdout.starts_with("same: db and db/schema.sql have the same schema public"), "{}", same.stdout);
    // Nothing left to generate; the same description again is refused.
    let again = run(root, None, &["new", "more", "--autogenerate", "--set", "app"]).ok();
    assert!(again.stderr.contains("nothing to generate"), "{}", again.stderr);
    let twice = run(root, None, &["new", "evolve", "--autogenerate", "--set", "app"]).code(2);
    assert!(twice.stderr.contains("already has the description `evolve`"), "{}", twice.stderr);
}

#[test]
fn autogenerate_builds_online_and_names_what_it_cannot_do() {
    let desired = "CREATE TYPE status AS ENUM ('new', 'paid');\n\
                   CREATE TABLE orders (id bigserial PRIMARY KEY, note varchar(20) NOT NULL, old integer, status status NOT NULL DEFAULT 'new',\n\
                     job_id bigint REFERENCES procrastinate_jobs (id), paid_at timestamptz, CONSTRAINT paid CHECK (paid_at IS NULL OR status = 'paid'));\n\
                   CREATE UNIQUE INDEX orders_note_key ON orders (note);\n\
                   CREATE VIEW paid_orders AS SELECT id, note FROM orders WHERE status = 'paid';\n\
                   COMMENT ON TABLE orders IS 'what customers buy';\n";
    let pkg = shop(desired, "");
    let root = pkg.path();
    let json = run(root, None, &["--message-format", "json", "new", "online", "--autogenerate", "--set", "app"]).ok().json();
    assert_eq!(json["proved"], true, "{json}");
    let files: Vec<&str> = json["files"].as_array().unwrap().iter().map(|f| f["file_name"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        [
            "01.01.00_01_pre_online.sql",
            "01.01.00_02_pre_online_orders_note_key.sql",
            "01.01.00_03_pre_online_validate.sql",
            "01.01.00_50_post_online.sql",
            "01.01.00_51_post_online_validate.sql",
        ],
        "{json}"
    );
    let index = std::fs::read_to_string(root.join("db/app/01.01.00_02_pre_online_orders_note_key.sql")).unwrap();
    assert!(index.starts_with("-- no-transaction\n") && index.contains("CREATE UNIQUE INDEX CONCURRENTLY orders_note_key ON orders USING btree (note);"), "{index}");
    let pre = std::fs::read_to_string(root.join("db/app/01.01.00_01_pre_online.sql")).unwrap();
    assert!(pre.contains("ADD CONSTRAINT paid CHECK") && pre.contains(" NOT VALID;"), "{pre}");
    let validate = std::fs::read_to_string(root.join("db/app/01.01.00_03_pre_online_validate.sql")).unwrap();
    assert!(validate.contains("-- hazard (validation)") && validate.contains("ALTER TABLE orders VALIDATE CONSTRAINT paid;"), "{validate}");
    // NOT NULL on an existing column waits for post, and never scans under an exclusive lock.
    let post_validate = std::fs::read_to_string(root.join("db/app/01.01.00_51_post_online_validate.sql")).unwrap();
    assert!(post_validate.contains("VALIDATE CONSTRAINT orders_note_not_null;\n\nALTER TABLE orders ALTER COLUMN note SET NOT NULL;"), "{post_validate}");
    let post = std::fs::read_to_string(root.join("db/app/01.01.00_50_post_online.sql")).unwrap();
    assert!(post.contains("-- hazard (table-rewrite)") && post.contains("ALTER COLUMN note TYPE character varying(20)"), "{post}");
    // The generated set really upgrades a database, concurrent index included.
    let db = TestDb::new("autogen_online");
    run(root, Some(&db), &["upgrade"]).ok();
    run(root, Some(&db), &["check", "--schema"]).ok();
    // An enum label removed: no statement does it safely; named, and not proved.
    std::fs::write(root.join("db/schema.sql"), desired.replace("('new', 'paid')", "('new')").replace(" WHERE status = 'paid'", "").replace("OR status = 'paid'", "")).unwrap();
    let manual = run(root, None, &["new", "drop paid", "--autogenerate", "--set", "app", "--version", "1.2.0"]).code(5);
    assert!(manual.stderr.contains("not proved") && manual.stderr.contains("steps are marked `hazard (manual)`"), "{}", manual.stderr);
    assert!(manual.stderr.contains("type status: labels: 'paid' only in the files"), "{}", manual.stderr);
}

#[test]
fn diff_compares_any_two_sources() {
    let pkg = shop(EVOLVED, "");
    let root = pkg.path();
    let db = TestDb::new("diff_sources");
    run(root, Some(&db), &["upgrade"]).ok();
    run(root, Some(&db), &["diff", "db", "head"]).ok();
    let releases = run(root, None, &["diff", "procrastinate@0029", "procrastinate@0038"]).code(5);
    assert!(releases.stdout.contains("table procrastinate_workers: only in procrastinate@0038: id bigint GENERATED ALWAYS AS IDENTITY NOT NULL"), "{}", releases.stdout);
    let to_desired = run(root, Some(&db), &["--message-format", "json", "diff", "db", "db/schema.sql", "--sql"]).code(5).json();
    let statements = to_desired["statements"].as_array().unwrap();
    assert!(statements.iter().any(|s| s["sql"] == "ALTER TABLE orders DROP COLUMN old;" && s["phase"] == "post" && s["hazard"]["code"] == "data-loss"), "{to_desired}");
    let url = db.url();
    run(root, None, &["diff", &url, "app@head"]).ok();
    let bad = run(root, None, &["diff", "db", "nowhere.sql"]).code(2);
    assert!(bad.stderr.contains("nowhere.sql: no such file"), "{}", bad.stderr);
}

/// Releases whose migration sets differ, each the first to ship its files.
const RELEASES: &[&str] = &["1.0.0", "1.1.0", "1.1.2", "2.5.0", "2.6.0", "2.7.0", "2.9.0", "2.15.0", "3.0.2", "3.1.0", "3.2.1", "3.3.0", "3.4.0"];

#[test]
fn each_release_s_schema_is_what_its_migrations_did_and_the_plan_reaches_it() {
    for pair in RELEASES.windows(2) {
        let (prev, next) = (wheels::procrastinate(pair[0]), wheels::procrastinate(pair[1]));
        let label = pair[1].replace('.', "_");
        let before = TestDb::new(&format!("rel_{label}_before"));
        cli(&before, &prev.migrations, &["upgrade"]).ok();
        let at_prev = catalog(&before, "public");
        let reference = TestDb::new(&format!("rel_{label}_ref"));
        psql_file(&reference, &next.schema_sql, None).ok();
        let wanted = catalog(&reference, "public");
        let migrated = TestDb::new(&format!("rel_{label}_mig"));
        cli(&migrated, &next.migrations, &["upgrade"]).ok();
        let did = catalog(&migrated, "public");
        // What the release's schema.sql changed is what its migrations did.
        let (by_schema, by_migrations) = (at_prev.diff(&wanted), at_prev.diff(&did));
        assert!(!by_schema.is_empty(), "{} changes nothing after {}", pair[1], pair[0]);
        assert_eq!(by_schema.render("before", "after"), by_migrations.render("before", "after"), "{} -> {}", pair[0], pair[1]);
        // The planner's statements take the previous head to exactly that schema.
        let steps = plan::plan(&at_prev, &wanted);
        assert!(steps.steps.iter().all(|s| s.hazard.as_ref().is_none_or(|h| h.code != "manual")), "{}: {:#?}", pair[1], steps);
        let script = std::env::temp_dir().join(format!("plan_{label}_{}.sql", std::process::id()));
        std::fs::write(&script, steps.script()).unwrap();
        psql_file(&before, &script, None).ok();
        let _ = std::fs::remove_file(&script);
        assert_same_catalog(&catalog(&before, "public"), &wanted);
    }
}
