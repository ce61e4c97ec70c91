//! The phase-aware review (issue 25): `lint` on files, ranges and what a database has pending,
//! `upgrade --lint`, the allow comment and setting, JSON and SARIF, `--trace` on a real server,
//! and Procrastinate's own files with the findings the README lists.

use std::path::Path;

use crate::support::*;

fn run(pkg: &Path, db: Option<&TestDb>, args: &[&str]) -> Run {
    let url = db.map(TestDb::url);
    let env: Vec<(&str, &str)> = url.iter().map(|u| ("DATABASE_URL", u.as_str())).collect();
    cli_in(pkg, args, &env)
}

/// A package whose one set creates `orders` in release 1.0.0, with `extra` in its settings.
fn shop(extra: &str) -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[package]\nname = \"shop\"\nversion = \"1.1.0\"\nedition = \"2021\"\n\n[package.metadata.procrastinate]\nmigrations = \"db\"\n{extra}"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("db")).unwrap();
    std::fs::write(root.join("db/01.00.00_01_pre_orders.sql"), "CREATE TABLE orders (id bigserial PRIMARY KEY, note text, status text);\n").unwrap();
    pkg
}

fn write(pkg: &Path, name: &str, sql: &str) {
    std::fs::write(pkg.join("db").join(name), sql).unwrap();
}

#[test]
fn a_pre_that_adds_a_column_passes_and_one_that_drops_one_fails() {
    let pkg = shop("");
    let root = pkg.path();
    write(root, "01.01.00_01_pre_total.sql", "ALTER TABLE orders ADD COLUMN total numeric;\n");
    let ok = run(root, None, &["lint"]).ok();
    assert!(ok.stdout.contains("lint: 0 errors, 0 warnings in 2 files"), "{}", ok.stdout);
    write(root, "01.01.00_02_pre_drop_status.sql", "ALTER TABLE orders DROP COLUMN status;\n");
    let failed = run(root, None, &["lint"]).code(8);
    assert!(failed.stdout.contains("error[ban-drop-column]"), "{}", failed.stdout);
    assert!(failed.stdout.contains("01.01.00_02_pre_drop_status.sql:1:20"), "{}", failed.stdout);
    assert!(failed.stdout.contains("= why: this is a `pre` file"), "{}", failed.stdout);
    // The same statement in a post file is what post files are for.
    std::fs::rename(root.join("db/01.01.00_02_pre_drop_status.sql"), root.join("db/01.01.00_50_post_drop_status.sql")).unwrap();
    run(root, None, &["lint"]).ok();
    // A file outside any package, by its name's phase.
    let loose = tempfile::tempdir().unwrap();
    let file = loose.path().join("02.00.00_01_pre_x.sql");
    std::fs::write(&file, "ALTER TABLE t DROP COLUMN c;\n").unwrap();
    cli_in(loose.path(), &["lint", file.to_str().unwrap()], &[]).code(8);
}

#[test]
fn an_index_on_an_existing_table_is_built_concurrently_in_a_file_of_its_own() {
    let pkg = shop("");
    let root = pkg.path();
    write(root, "01.01.00_01_pre_note_idx.sql", "CREATE INDEX orders_note_idx ON orders (note);\n");
    let found = run(root, None, &["--message-format", "json", "lint"]).code(8).json();
    let f = &found["findings"][0];
    assert_eq!((f["rule"].as_str(), f["level"].as_str(), f["line"].as_u64()), (Some("require-concurrent-index-creation"), Some("error"), Some(1)), "{found}");
    assert!(f["safe"].as_str().unwrap().contains("-- no-transaction"), "{found}");
    // CONCURRENTLY in a file that runs in a transaction fails at run time: said now.
    write(root, "01.01.00_01_pre_note_idx.sql", "CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);\n");
    let tx = run(root, None, &["lint"]).code(8);
    assert!(tx.stdout.contains("error[no-transaction-required]"), "{}", tx.stdout);
    write(root, "01.01.00_01_pre_note_idx.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);\n");
    run(root, None, &["lint"]).ok();
    // An index on a table the same release creates is not waited on.
    write(root, "01.00.00_02_pre_orders_idx.sql", "CREATE INDEX orders_status_idx ON orders (status);\n");
    run(root, None, &["lint", ":0002"]).ok();
    // SARIF for code scanning.
    write(root, "01.01.00_02_pre_status_idx.sql", "CREATE INDEX orders_status2_idx ON orders (status);\n");
    let sarif: serde_json::Value = serde_json::from_str(&run(root, None, &["lint", "--sarif"]).code(8).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "require-concurrent-index-creation");
    assert!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap().ends_with("01.01.00_02_pre_status_idx.sql"), "{sarif}");
}

#[test]
fn upgrade_lint_applies_nothing_when_a_pending_file_has_an_error() {
    let pkg = shop("");
    let root = pkg.path();
    let db = TestDb::new("lint_upgrade");
    run(root, Some(&db), &["upgrade"]).ok();
    write(root, "01.01.00_01_pre_total.sql", "ALTER TABLE orders ADD COLUMN total numeric;\n");
    write(root, "01.01.00_02_pre_drop_status.sql", "ALTER TABLE orders DROP COLUMN status;\n");
    // Without arguments, lint reviews what the database has pending.
    let pending = run(root, Some(&db), &["lint"]).code(8);
    assert!(pending.stdout.contains("in 2 files"), "{}", pending.stdout);
    let refused = run(root, Some(&db), &["upgrade", "--lint"]).code(8);
    assert!(refused.stderr.contains("01.01.00_02_pre_drop_status.sql") && refused.stderr.contains("nothing was applied"), "{}", refused.stderr);
    let has = |col: &str| -> bool { db.client().query_one("SELECT count(*) > 0 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = $1", &[&col]).unwrap().get(0) };
    assert!(has("status") && !has("total"), "nothing was applied, not even the good file");
    // Allowed for its statement, with the reason next to it, it runs.
    write(root, "01.01.00_02_pre_drop_status.sql", "-- Nothing reads status since 1.0.0.\n-- cargo-procrastinate: allow ban-drop-column\nALTER TABLE orders DROP COLUMN status;\n");
    run(root, Some(&db), &["upgrade", "--lint"]).ok();
    assert!(!has("status") && has("total"));
}

#[test]
fn lint_allow_applies_to_a_set_and_must_name_a_rule() {
    let pkg = shop("lint-allow = [\"ban-drop-column\"]\n");
    let root = pkg.path();
    write(root, "01.01.00_01_pre_drop_status.sql", "ALTER TABLE orders DROP COLUMN status;\n");
    run(root, None, &["lint"]).ok();
    let misspelt = shop("lint-allow = [\"ban-drop-colum\"]\n");
    let bad = run(misspelt.path(), None, &["lint"]).code(2);
    assert!(bad.stderr.contains("setting `lint-allow`: no rule is named `ban-drop-colum`"), "{}", bad.stderr);
}

#[test]
fn trace_measures_the_locks_and_the_rewrites() {
    let pkg = shop("");
    let root = pkg.path();
    write(root, "01.01.00_50_post_note.sql", "ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);\nUPDATE orders SET status = 'new';\n");
    write(root, "01.01.00_51_post_note_idx.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);\n");
    let traced = run(root, None, &["lint", "0001:head", "--trace", "--rows", "50000"]).ok();
    assert!(traced.stdout.contains("trace ") && traced.stdout.contains("orders: 50000 rows"), "{}", traced.stdout);
    assert!(traced.stdout.contains("AccessExclusiveLock on orders: blocks reads and writes for"), "{}", traced.stdout);
    assert!(traced.stdout.contains("rewrote orders"), "{}", traced.stdout);
    assert!(traced.stdout.contains("ShareUpdateExclusiveLock on orders: blocks schema changes"), "{}", traced.stdout);
    assert!(traced.stdout.contains("warning[exclusive-lock-held]"), "{}", traced.stdout);
    let json = run(root, None, &["--message-format", "json", "lint", "0002", "--trace", "--rows", "100"]).ok().json();
    let statements = json["traces"][0]["statements"].as_array().unwrap();
    assert!(statements[0]["locks"].as_array().unwrap().iter().any(|l| l["mode"] == "AccessExclusiveLock" && l["blocks"] == "reads and writes"), "{json}");
}

#[test]
fn procrastinate_s_own_files_have_the_findings_the_readme_lists() {
    let json = cli_in(&std::env::temp_dir(), &["--migrations", v3_10().migrations.to_str().unwrap(), "--message-format", "json", "lint"], &[]).code(8).json();
    let found: Vec<String> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{} {} {}", f["file"].as_str().unwrap().rsplit('/').next().unwrap(), f["line"], f["rule"].as_str().unwrap(), f["level"].as_str().unwrap()))
        .collect();
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let table = readme.split("<!-- upstream-lint:begin -->").nth(1).unwrap().split("<!-- upstream-lint:end -->").next().unwrap();
    let listed: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            format!("{} {} {}", cells[1].trim_matches('`'), cells[2].trim_matches('`'), cells[3])
        })
        .collect();
    assert_eq!(found, listed, "the README's review of upstream's files is out of date");
}
