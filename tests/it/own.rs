//! The application's own migrations (issue 23): `init` in a fresh `cargo new` package, `new`
//! (the marker, templates, `--reversible`), `downgrade`, `sql --offline --down`, and the
//! `database` commands.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// A fresh `cargo new` package, with a comment and a table of the user's own.
fn fresh_package() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["new", "--quiet", "--vcs", "none", "--name", "shop"])
        .arg(dir.path().join("shop"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest = dir.path().join("shop/Cargo.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str("# the team's own note\n[features]\nfast = []   # keep this comment\n");
    std::fs::write(&manifest, text).unwrap();
    dir
}

fn in_pkg(pkg: &Path, db: Option<&TestDb>, args: &[&str]) -> Run {
    let url = db.map(TestDb::url);
    let env: Vec<(&str, &str)> = url.iter().map(|u| ("DATABASE_URL", u.as_str())).collect();
    cli_in(pkg, args, &env)
}

#[test]
fn init_writes_the_metadata_and_keeps_every_other_line() {
    let dir = fresh_package();
    let pkg = dir.path().join("shop");
    let before = std::fs::read_to_string(pkg.join("Cargo.toml")).unwrap();
    let run = in_pkg(&pkg, None, &["init"]).ok();
    assert!(run.stdout.contains("next:") && run.stdout.contains("cargo procrastinate vendor --version"), "{}", run.stdout);
    let after = std::fs::read_to_string(pkg.join("Cargo.toml")).unwrap();
    let mut rest = after.lines();
    for line in before.lines() {
        assert!(rest.any(|l| l == line), "the line `{line}` is gone or moved:\n{after}");
    }
    assert!(after.contains("[package.metadata.procrastinate]") && after.contains("{ name = \"app\", migrations = \"db/app\" }"), "{after}");
    assert!(pkg.join("db/procrastinate").is_dir() && pkg.join("db/app").is_dir());
    let again = in_pkg(&pkg, None, &["init"]).code(2);
    assert!(again.stderr.contains("has [package.metadata.procrastinate] already: nothing was changed"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(pkg.join("Cargo.toml")).unwrap(), after);
    // Procrastinate's set alone, and the settings read back by the tool.
    let other = fresh_package();
    let pkg2 = other.path().join("shop");
    in_pkg(&pkg2, None, &["init", "--procrastinate-only"]).ok();
    assert!(std::fs::read_to_string(pkg2.join("Cargo.toml")).unwrap().contains("migrations = \"db/procrastinate\""));
}

#[test]
fn new_writes_a_file_the_set_accepts_and_upgrade_refuses_until_it_is_written() {
    let dir = fresh_package();
    let pkg = dir.path().join("shop");
    in_pkg(&pkg, None, &["init"]).ok();
    let made = in_pkg(&pkg, None, &["--message-format", "json", "new", "create orders", "--set", "app"]).ok().json();
    let file = made["path"].as_str().unwrap().to_string();
    assert!(file.ends_with("00.01.00_01_create_orders.sql"), "{made}");
    let heads = in_pkg(&pkg, None, &["heads"]).ok();
    assert!(heads.stdout.contains("app@0001 (head) 00.01.00_01_create_orders.sql"), "{}", heads.stdout);
    assert!(heads.stderr.contains("set `procrastinate` has no migration files yet"), "{}", heads.stderr);
    let db = TestDb::new("own_not_written");
    let refused = in_pkg(&pkg, Some(&db), &["upgrade"]).code(2);
    assert!(refused.stderr.contains("00.01.00_01_create_orders.sql is not written yet"), "{}", refused.stderr);
    // The same description again is refused, a release number too large for a name too.
    let twice = in_pkg(&pkg, None, &["new", "create orders", "--set", "app"]).code(2);
    assert!(twice.stderr.contains("already has the description `create_orders`"), "{}", twice.stderr);
    in_pkg(&pkg, None, &["new", "create orders", "--set", "app", "--force"]).ok();
    let big = in_pkg(&pkg, None, &["new", "x", "--set", "app", "--version", "1.100.0"]).code(2);
    assert!(big.stderr.contains("the largest is 99.99.99"), "{}", big.stderr);
    // A template of the team's own.
    std::fs::write(pkg.join("template.sql"), "-- {description}, release {version} ({phase}): {file}\nSELECT 1;\n").unwrap();
    let manifest = pkg.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("{ name = \"app\", migrations = \"db/app\" }", "{ name = \"app\", migrations = \"db/app\", template = \"template.sql\" }");
    std::fs::write(&manifest, text).unwrap();
    let templated = in_pkg(&pkg, None, &["new", "add index", "--set", "app", "--pre", "--version", "1.2.0"]).ok();
    let written = std::fs::read_to_string(templated.stdout.trim()).unwrap();
    assert_eq!(written, "-- add_index, release 1.2.0 (pre): 01.02.00_01_pre_add_index.sql\nSELECT 1;\n");
}

#[test]
fn a_reversible_migration_goes_down_and_up_again() {
    let dir = fresh_package();
    let pkg = dir.path().join("shop");
    in_pkg(&pkg, None, &["init"]).ok();
    let made = in_pkg(&pkg, None, &["new", "create orders", "--set", "app", "--reversible", "--version", "1.0.0"]).ok();
    let paths: Vec<&str> = made.stdout.lines().collect();
    assert_eq!(paths.len(), 2, "{}", made.stdout);
    assert!(paths[1].ends_with("01.00.00_01_create_orders.down.sql"), "{}", made.stdout);
    std::fs::write(paths[0], "CREATE TABLE orders (id bigserial PRIMARY KEY);\n").unwrap();
    std::fs::write(paths[1], "DROP TABLE orders;\n").unwrap();
    std::fs::write(pkg.join("db/app/01.00.00_02_lines.sql"), "CREATE TABLE lines (order_id bigint REFERENCES orders);\n").unwrap();
    std::fs::write(pkg.join("db/app/01.00.00_02_lines.down.sql"), "DROP TABLE lines;\n").unwrap();
    let db = TestDb::new("own_reversible");
    in_pkg(&pkg, Some(&db), &["upgrade"]).ok();
    let exists = |name: &str| -> bool { db.client().query_one(&format!("SELECT to_regclass('{name}') IS NOT NULL"), &[]).unwrap().get(0) };
    assert!(exists("lines"));
    let dry = in_pkg(&pkg, Some(&db), &["downgrade", "-1", "--dry-run"]).ok();
    assert!(dry.stdout.contains("would undo app@0002 01.00.00_02_lines.sql"), "{}", dry.stdout);
    assert!(exists("lines"), "the dry run changed nothing");
    in_pkg(&pkg, Some(&db), &["downgrade", "-1"]).ok();
    assert!(!exists("lines") && exists("orders"));
    let check = in_pkg(&pkg, Some(&db), &["check"]).code(4);
    assert!(check.stdout.contains("app: behind: the database is at app@0001"), "{}", check.stdout);
    in_pkg(&pkg, Some(&db), &["upgrade"]).ok();
    assert!(exists("lines"));
    // The offline script of a downgrade, run by psql, does the same.
    let script = in_pkg(&pkg, None, &["--set", "app", "sql", "--offline", "--down", "base:head"]).ok().stdout;
    let file = pkg.join("down.sql.txt");
    std::fs::write(&file, script).unwrap();
    psql_file(&db, &file, None).ok();
    assert!(!exists("orders") && !exists("lines"));
    assert!(in_pkg(&pkg, Some(&db), &["current"]).ok().stdout.contains("app base"));
    // A changed file is not undone without --force.
    in_pkg(&pkg, Some(&db), &["upgrade"]).ok();
    std::fs::write(pkg.join("db/app/01.00.00_02_lines.sql"), "CREATE TABLE lines (order_id bigint REFERENCES orders, n int);\n").unwrap();
    let changed = in_pkg(&pkg, Some(&db), &["downgrade", "app@-1"]).code(5);
    assert!(changed.stderr.contains("changed after it was applied"), "{}", changed.stderr);
    in_pkg(&pkg, Some(&db), &["downgrade", "app@-1", "--force"]).ok();
}

#[test]
fn procrastinate_s_set_still_cannot_be_downgraded() {
    let db = TestDb::new("own_no_down");
    cli(&db, &v3_10().migrations, &["upgrade"]).ok();
    let refused = cli(&db, &v3_10().migrations, &["downgrade", "-1"]).code(2);
    assert!(refused.stderr.contains("has no down files: its migrations cannot be reversed"), "{}", refused.stderr);
    assert!(refused.stderr.contains("Restore the database from a backup"), "{}", refused.stderr);
    assert_eq!(cli(&db, &v3_10().migrations, &["current"]).ok().stdout.trim(), "0038 (head)");
}

#[test]
fn database_create_drop_and_reset() {
    let db = TestDb::new("own_database_admin");
    let url = db.url();
    let (base, _) = url.rsplit_once('/').unwrap();
    let name = format!("{}_made", db.name());
    let target = format!("{base}/{name}");
    let set = example_set();
    let dir = set.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--migrations", dir];
        all.extend_from_slice(args);
        cli_in(&std::env::temp_dir(), &all, &[("DATABASE_URL", target.as_str())])
    };
    let missing = run(&["current"]).code(3);
    assert!(missing.stderr.contains("create it with `cargo procrastinate database create`"), "{}", missing.stderr);
    run(&["database", "create"]).ok();
    assert!(run(&["database", "create"]).ok().stderr.contains("exists already: nothing to do"));
    run(&["upgrade"]).ok();
    let refused = run(&["database", "drop"]).code(2);
    assert!(refused.stderr.contains("answer at a terminal, or pass --force"), "{}", refused.stderr);
    run(&["database", "reset", "--force"]).ok();
    assert_eq!(run(&["current"]).ok().stdout.trim(), "0003 (head)");
    run(&["database", "drop", "--force"]).ok();
    run(&["current"]).code(3);
}
