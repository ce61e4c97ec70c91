//! Sets that depend on each other (issue 22): an application set whose tables reference
//! Procrastinate's, through every scratch build (detect, checked stamp, verify), purge,
//! upgrade, the offline script and the start-up check; a branch merge replayed; a deploy box
//! without Cargo.toml; Procrastinate installed in a Python environment.

use std::path::Path;

use procrastinate_migrations::compat::Window;
use procrastinate_migrations::{db, MigrationSet, SetDef};

use crate::support::*;

const ORDERS: &str = "CREATE TABLE orders (\n    id bigserial PRIMARY KEY,\n    \
                      job_id bigint REFERENCES procrastinate_jobs (id) ON DELETE SET NULL,\n    total numeric NOT NULL\n);\n";

/// A package whose sets are 3.10.0's files and an app set whose first file references them.
fn package() -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    write_package(root, "shop", TWO_SETS);
    copy_files(&v3_10().migrations, &root.join("db/procrastinate"));
    std::fs::create_dir_all(root.join("db/app")).unwrap();
    write(&root.join("db/app"), "01.00.00_01_create_orders.sql", ORDERS);
    pkg
}

fn run(pkg: &Path, db: &TestDb, args: &[&str]) -> Run {
    cli_in(pkg, args, &[("DATABASE_URL", &db.url())])
}

/// A database built by hand: 3.10.0's schema.sql, and (`with_app`) the app's table.
fn by_hand(label: &str, with_app: bool) -> TestDb {
    let db = TestDb::new(label);
    psql_file(&db, &v3_10().schema_sql, None).ok();
    if with_app {
        db.client().batch_execute(ORDERS).unwrap();
    }
    db
}

#[test]
fn an_app_set_that_references_procrastinate_is_adopted_and_stamped() {
    let pkg = package();
    let root = pkg.path();
    let db = by_hand("dependent_adopt", true);
    let detected = run(root, &db, &["--message-format", "json", "stamp", "--detect", "--dry-run"]).ok().json();
    let sets = detected["sets"].as_array().unwrap();
    assert_eq!((sets[0]["detected"].as_str(), sets[1]["detected"].as_str()), (Some("0038"), Some("0001")), "{detected}");
    run(root, &db, &["stamp", "procrastinate@head"]).ok();
    run(root, &db, &["stamp", "app@head"]).ok();
    run(root, &db, &["check"]).ok();
    // Without the app's table, stamping the app's head is refused, and says why.
    let without = by_hand("dependent_adopt_without", false);
    run(root, &without, &["stamp", "procrastinate@head"]).ok();
    let refused = run(root, &without, &["stamp", "app@head"]).code(5);
    assert!(refused.stderr.contains("table orders: only in that revision"), "{}", refused.stderr);
    // --detect in one go records both, in order.
    let fresh = by_hand("dependent_adopt_detect", true);
    run(root, &fresh, &["stamp", "--detect"]).ok();
    run(root, &fresh, &["check"]).ok();
    run(root, &fresh, &["stamp", "--purge", "app@head"]).ok();
    run(root, &fresh, &["check"]).ok();
}

#[test]
fn every_path_builds_what_the_app_set_depends_on_first() {
    let pkg = package();
    let root = pkg.path();
    // verify of the app set: Procrastinate's head first, in both scratch databases.
    std::fs::create_dir_all(root.join("db/app/reference")).unwrap();
    std::fs::write(root.join("db/app/reference/schema.sql"), ORDERS).unwrap();
    let verify = cli_in(root, &["--set", "app", "verify"], &[]).ok();
    assert!(verify.stdout.starts_with("app: ok: app@0001 builds the schema of"), "{}", verify.stdout);
    // upgrade, the offline script, the start-up check.
    let db = TestDb::new("dependent_paths");
    run(root, &db, &["upgrade"]).ok();
    let offline = TestDb::new("dependent_paths_offline");
    let script = cli_in(root, &["sql", "--offline"], &[]).ok().stdout;
    let file = root.join("all.sql.txt");
    std::fs::write(&file, script).unwrap();
    psql_file(&offline, &file, None).ok();
    run(root, &offline, &["check"]).ok();
    let defs: Vec<SetDef> = ["procrastinate", "app"]
        .iter()
        .map(|name| {
            let set = MigrationSet::from_dir(root.join("db").join(name)).unwrap();
            let migrations: &'static [_] = Box::leak(set.migrations.into_boxed_slice());
            SetDef { name: Some(name), migrations, schema: None, version_table: procrastinate_migrations::config::DEFAULT_VERSION_TABLE, window: Window::of(migrations) }
        })
        .collect();
    for verdict in db::check_sets(&mut offline.client(), &defs).unwrap() {
        assert!(verdict.is_compatible(), "{verdict}");
    }
    // An error in a scratch build says where it comes from.
    write(&root.join("db/app"), "01.00.00_02_broken.sql", "ALTER TABLE no_such_table ADD COLUMN x int;\n");
    let broken = run(root, &db, &["stamp", "app@head"]).code(1);
    assert!(broken.stderr.contains("in the scratch build of the set (a throwaway database, not yours)"), "{}", broken.stderr);
    assert!(broken.stderr.contains("the scratch database is at app@0001"), "{}", broken.stderr);
}

#[test]
fn a_branch_merge_is_named_repaired_and_run_out_of_order() {
    let set = tempfile::tempdir().unwrap();
    let dir = set.path();
    write(dir, "01.00.00_01_pre_base.sql", "CREATE TABLE base (x int);\n");
    let db = TestDb::new("dependent_branches");
    // A developer's database applied branch B's file, which took serial 02.
    write(dir, "01.00.00_02_pre_carts.sql", "CREATE TABLE carts (x int);\n");
    cli(&db, dir, &["upgrade"]).ok();
    // Branch A took serial 02 too: merged, the set names the clash and the way out.
    write(dir, "01.00.00_02_pre_coupons.sql", "CREATE TABLE coupons (x int);\n");
    let clash = cli(&db, dir, &["heads"]).code(2);
    assert!(clash.stderr.contains("rename `01.00.00_02_pre_coupons.sql` to `01.00.00_03_pre_coupons.sql`"), "{}", clash.stderr);
    // The team renames B's file instead (it sorts later once renamed): the database sees the same
    // content under a new name, and A's file, unapplied, sorting before it.
    std::fs::rename(dir.join("01.00.00_02_pre_carts.sql"), dir.join("01.00.00_03_pre_carts.sql")).unwrap();
    let check = cli(&db, dir, &["check"]).code(5);
    assert!(check.stdout.contains("`01.00.00_02_pre_carts.sql` was recorded, and is now named `01.00.00_03_pre_carts.sql` (the same content)"), "{}", check.stdout);
    let heads = cli(&db, dir, &["heads"]).ok().stdout;
    assert!(heads.contains("the database diverges from the files"), "{heads}");
    let repaired = cli(&db, dir, &["repair"]).ok();
    assert!(repaired.stdout.contains("recorded `01.00.00_02_pre_carts.sql` as `01.00.00_03_pre_carts.sql`"), "{}", repaired.stdout);
    // Now A's file sorts before the applied 03: refused by default, and the error says how.
    let refused = cli(&db, dir, &["upgrade"]).code(5);
    assert!(refused.stderr.contains("`out-of-order = true` for the set, or `upgrade --out-of-order`"), "{}", refused.stderr);
    let pending = cli(&db, dir, &["--out-of-order", "check"]).code(4);
    assert!(pending.stdout.contains("pending 0002 01.00.00_02_pre_coupons.sql (out of order"), "{}", pending.stdout);
    cli(&db, dir, &["--out-of-order", "upgrade"]).ok();
    cli(&db, dir, &["check"]).ok();
    let coupons: Option<String> = db.client().query_one("SELECT to_regclass('coupons')::text", &[]).unwrap().get(0);
    assert_eq!(coupons.as_deref(), Some("coupons"));
}

#[test]
fn a_deploy_box_names_its_sets_without_cargo_toml() {
    let pkg = package();
    let root = pkg.path();
    let db = TestDb::new("dependent_deploy_box");
    run(root, &db, &["upgrade"]).ok();
    let box_dir = tempfile::tempdir().unwrap();
    copy_files(&root.join("db/procrastinate"), &box_dir.path().join("procrastinate"));
    copy_files(&root.join("db/app"), &box_dir.path().join("app"));
    let url = db.url();
    let on_box = |args: &[&str], env: &[(&str, &str)]| {
        let mut all_env = vec![("DATABASE_URL", url.as_str())];
        all_env.extend_from_slice(env);
        cli_in(box_dir.path(), args, &all_env)
    };
    // Told one directory: not `base`, and nothing runs.
    let one = on_box(&["--migrations", "procrastinate", "current"], &[]).ok();
    assert!(one.stdout.contains("the tracking table records `app` (1 migrations), `procrastinate` (38 migrations, 38 of them these files)"), "{}", one.stdout);
    let refused = on_box(&["--migrations", "procrastinate", "upgrade"], &[]).code(5);
    assert!(refused.stderr.contains("these files are recorded under another set's name"), "{}", refused.stderr);
    // Told every set, by flag or variable.
    let named = on_box(&["--set-dir", "procrastinate=procrastinate", "--set-dir", "app=app", "current"], &[]).ok();
    assert_eq!(named.stdout, "procrastinate 0038 (head)\napp 0001 (head)\n");
    let by_env = on_box(&["check"], &[("PROCRASTINATE_SETS", "procrastinate=procrastinate,app=app")]).ok();
    assert!(by_env.stdout.contains("app: ok: at head app@0001"), "{}", by_env.stdout);
}

#[test]
fn the_installed_package_is_a_set_and_its_schema_sql_the_reference() {
    let up = v3_10();
    // A Python environment with procrastinate installed: the wheel unpacked on PYTHONPATH.
    let site = tempfile::tempdir().unwrap();
    let wheel = std::fs::File::open(&up.wheel).unwrap();
    zip::ZipArchive::new(wheel).unwrap().extract(site.path()).unwrap();
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(
        pkg.path().join("Cargo.toml"),
        "[package]\nname = \"worker\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n[package.metadata.procrastinate]\nmigrations = { python = \"python3\" }\n",
    )
    .unwrap();
    let pythonpath = site.path().to_str().unwrap();
    let db = TestDb::new("dependent_installed");
    let env = [("DATABASE_URL", db.url()), ("PYTHONPATH", pythonpath.to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cli_in(pkg.path(), &["upgrade"], &env).ok();
    assert_eq!(cli_in(pkg.path(), &["current"], &env).ok().stdout.trim(), "0038 (head)");
    let verify = cli_in(pkg.path(), &["verify"], &env).ok();
    assert!(verify.stdout.contains("procrastinate/sql/schema.sql"), "{}", verify.stdout);
    assert!(!site.path().join("procrastinate/sql/migrations/reference").exists(), "nothing is written into the environment");
    let missing = cli_in(pkg.path(), &["current"], &[("DATABASE_URL", &db.url())]).code(2);
    assert!(missing.stderr.contains("procrastinate is not installed for `python3`"), "{}", missing.stderr);
}
