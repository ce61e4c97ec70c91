//! Meeting the databases that exist: vendoring a release, verifying a set against its
//! schema.sql, adopting databases built by schema.sql, Django or Alembic, and the safe stamp.

use std::path::Path;

use procrastinate_migrations::adopt;

use crate::support::*;

/// Every release whose migrations must build its own schema.sql (checked by `verify`).
/// Supporting a new release means adding it here.
const RELEASES: &[&str] = &["1.0.0", "2.0.0", "2.15.1", "3.0.2", "3.3.0", "3.5.1", "3.5.3", "3.10.0"];

#[test]
fn every_release_builds_its_own_schema_sql() {
    for version in RELEASES {
        let up = wheels::procrastinate(version);
        let run = cli_in(
            &std::env::temp_dir(),
            &["--migrations", up.migrations.to_str().unwrap(), "verify", "--schema-sql", up.schema_sql.to_str().unwrap()],
            &[],
        );
        assert_eq!(run.code, 0, "procrastinate {version}:\n{}{}", run.stdout, run.stderr);
        assert!(run.stdout.starts_with("ok: "), "{version}: {}", run.stdout);
    }
}

/// A package whose one set is `db/procrastinate` (empty until vendored).
fn package() -> tempfile::TempDir {
    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(
        pkg.path().join("Cargo.toml"),
        "[package]\nname = \"adopter\"\nversion = \"0.1.0\"\n\n[package.metadata.procrastinate]\nmigrations = \"db/procrastinate\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(pkg.path().join("src")).unwrap();
    std::fs::write(pkg.path().join("src/lib.rs"), "").unwrap();
    pkg
}

fn sql_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sql")).count()
}

#[test]
fn vendor_a_release_then_verify_it() {
    let pkg = package();
    let root = pkg.path();
    let dir = root.join("db/procrastinate");
    let run = cli_in(root, &["vendor", "--version", "3.10.0"], &[]).ok();
    assert!(run.stdout.starts_with("vendored procrastinate 3.10.0 from the wheel procrastinate-3.10.0-py3-none-any.whl"), "{}", run.stdout);
    assert!(run.stdout.contains(": 38 added, 0 changed, 0 removed"), "{}", run.stdout);
    assert_eq!(sql_files(&dir), 38);
    let provenance = std::fs::read_to_string(dir.join("vendored.toml")).unwrap();
    let wheel_sha = procrastinate_migrations::Checksum::of(&std::fs::read(v3_10().wheel).unwrap()).to_string();
    assert!(provenance.contains("release = \"3.10.0\"") && provenance.contains(&wheel_sha), "{provenance}");
    assert!(provenance.contains("\"00.00.00_01_initial.sql\" = \""), "{provenance}");
    // Upstream's license goes with its files, recorded with its checksum.
    let license = std::fs::read_to_string(dir.join("reference/LICENSE.md")).unwrap();
    assert!(license.contains("MIT") || license.contains("Permission is hereby granted"), "{license}");
    assert!(provenance.contains("license = \"reference/LICENSE.md\"") && provenance.contains("license-sha256 = \""), "{provenance}");
    assert_eq!(std::fs::read(dir.join("reference/schema.sql")).unwrap(), std::fs::read(v3_10().schema_sql).unwrap());
    // Same files from the wheel itself: nothing to do.
    let again = cli_in(root, &["vendor", "--wheel", v3_10().wheel.to_str().unwrap()], &[]).ok();
    assert!(again.stdout.contains("0 added, 0 changed, 0 removed, 38 unchanged"), "{}", again.stdout);
    cli_in(root, &["verify"], &[]).ok();

    // One file edited: verify names the object, vendor refuses to overwrite it unasked.
    let file = dir.join("03.00.00_50_post_cancel_notification.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("CREATE INDEX procrastinate_jobs_id_lock_idx_v1", "CREATE INDEX procrastinate_jobs_id_lock_idx_v9", 1)).unwrap();
    let failed = cli_in(root, &["verify"], &[]).code(5);
    assert!(failed.stdout.contains("0038 does not build the schema of"), "{}", failed.stdout);
    assert!(failed.stdout.contains("index procrastinate_jobs_id_lock_idx_v1: only in the reference"), "{}", failed.stdout);
    assert!(failed.stdout.contains("index procrastinate_jobs_id_lock_idx_v9: only in the migrations"), "{}", failed.stdout);
    let refused = cli_in(root, &["vendor", "--wheel", v3_10().wheel.to_str().unwrap()], &[]).code(2);
    assert!(refused.stderr.contains("changed 03.00.00_50_post_cancel_notification.sql") && refused.stderr.contains("nothing was written"), "{}", refused.stderr);
    cli_in(root, &["vendor", "--allow-changes", "--wheel", v3_10().wheel.to_str().unwrap()], &[]).ok();
    cli_in(root, &["verify"], &[]).ok();
    // An older release over a newer one: files removed, only when told.
    let down = cli_in(root, &["vendor", "--wheel", wheels::procrastinate("3.3.0").wheel.to_str().unwrap()], &[]).code(2);
    assert!(down.stderr.contains("removed 03.04.00_01_pre_add_retry_failed_job_procedure.sql (not in this release)"), "{}", down.stderr);
}

/// A database built by a release's schema.sql, as `procrastinate schema --apply` does.
fn schema_sql_db(label: &str, version: &str) -> TestDb {
    let db = TestDb::new(label);
    psql_file(&db, &wheels::procrastinate(version).schema_sql, None).ok();
    db
}

#[test]
fn stamp_detect_adopts_databases_built_by_schema_sql() {
    let set = v3_10().migrations;
    let old = schema_sql_db("detect_2_15_1", "2.15.1");
    // A wrong guess is refused, and the database stays as it was.
    let wrong = cli(&old, &set, &["stamp", "0031"]).code(5);
    assert!(wrong.stderr.contains("the database's schema is not the schema of 0031"), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("nothing was recorded"), "{}", wrong.stderr);
    assert!(old.client().query_one("SELECT to_regclass('cargo_procrastinate_migrations') IS NULL", &[]).unwrap().get::<_, bool>(0));
    let dry = cli(&old, &set, &["stamp", "--detect", "--dry-run"]).ok();
    assert!(dry.stdout.contains("detected 0029 from the catalog") && dry.stdout.contains("dry run: would record 0029"), "{}", dry.stdout);
    let detected = cli(&old, &set, &["stamp", "--detect"]).ok();
    assert!(detected.stdout.contains("stamped 0029"), "{}", detected.stdout);
    assert_eq!(cli(&old, &set, &["current"]).ok().stdout.trim(), "0029");
    cli(&old, &set, &["upgrade"]).ok();
    let reference = schema_sql_db("detect_3_10_ref", "3.10.0");
    assert_same_catalog(&catalog(&old, "public"), &catalog(&reference, "public"));

    let new = schema_sql_db("detect_3_10", "3.10.0");
    let detected = cli(&new, &set, &["stamp", "--detect"]).ok();
    assert!(detected.stdout.contains("detected 0038 from the catalog") && detected.stdout.contains("stamped 0038"), "{}", detected.stdout);
    cli(&new, &set, &["check"]).ok();

    // Nothing of the set: neither a guess nor a stamp.
    let empty = TestDb::new("detect_empty");
    let refused = cli(&empty, &set, &["stamp", "head"]).code(5);
    assert!(refused.stderr.contains("table procrastinate_jobs: only in that revision"), "{}", refused.stderr);
    let none = cli(&empty, &set, &["stamp", "--detect"]).ok();
    assert!(none.stdout.contains("none of the set's objects are here"), "{}", none.stdout);
    // --force records anyway, loudly.
    let forced = cli(&empty, &set, &["stamp", "--force", "0001"]).ok();
    assert!(forced.stderr.contains("warning: --force: recording it anyway"), "{}", forced.stderr);
}

#[test]
fn stamp_detect_reads_django_and_alembic_records() {
    let set = v3_10().migrations;
    // Django: every migration of app procrastinate up to 0041_post_retry_failed_job.
    let django = schema_sql_db("detect_django", "3.10.0");
    let names: Vec<&str> = adopt::django_migrations().iter().map(|(n, _)| *n).collect();
    let mut client = django.client();
    client.batch_execute("CREATE TABLE django_migrations (id serial PRIMARY KEY, app text, name text, applied timestamptz DEFAULT now())").unwrap();
    for n in &names {
        client.execute("INSERT INTO django_migrations (app, name) VALUES ('procrastinate', $1)", &[n]).unwrap();
    }
    client.execute("INSERT INTO django_migrations (app, name) VALUES ('shop', '0001_initial')", &[]).unwrap();
    let detected = cli(&django, &set, &["stamp", "--detect"]).ok();
    assert!(detected.stdout.contains("detected 0038 from django_migrations (41 rows, the last 0041_post_retry_failed_job)"), "{}", detected.stdout);
    cli(&django, &set, &["check"]).ok();

    // Alembic (the seed documents' ids) on a database at 0029.
    let alembic = schema_sql_db("detect_alembic", "2.15.1");
    alembic.client().batch_execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('0029')").unwrap();
    let detected = cli(&alembic, &set, &["stamp", "--detect"]).ok();
    assert!(detected.stdout.contains("detected 0029 from alembic_version (0029)"), "{}", detected.stdout);
    // A wrong record is caught by the schema check all the same.
    let lying = schema_sql_db("detect_alembic_wrong", "2.15.1");
    lying.client().batch_execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('procrastinate_0030')").unwrap();
    cli(&lying, &set, &["stamp", "--detect"]).code(5);
}

/// The Django mapping is data derived from the real Django migrations: derive it again.
#[test]
fn the_django_mapping_matches_the_wheel() {
    let dir = v3_10().django;
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".py") && f != "__init__.py")
        .collect();
    files.sort();
    let derived: Vec<(String, Option<String>)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            let sql = text.split("RunProcrastinateSQL(").nth(1).map(|rest| rest.split('"').nth(1).unwrap().to_string());
            (f.trim_end_matches(".py").to_string(), sql)
        })
        .collect();
    let data: Vec<(String, Option<String>)> = adopt::django_migrations().iter().map(|(n, f)| (n.to_string(), f.map(str::to_string))).collect();
    assert_eq!(data, derived);
}

/// The catalogs after each revision are built once per set, server and schema, then read from
/// the cache; a cached answer is the same answer.
#[test]
fn the_catalogs_of_each_revision_are_cached() {
    let cache = tempfile::tempdir().unwrap();
    let set = v3_10().migrations;
    let db = schema_sql_db("detect_cached", "2.15.1");
    let run = || {
        cli_in(
            &std::env::temp_dir(),
            &["--migrations", set.to_str().unwrap(), "--database-url", &db.url(), "stamp", "--detect", "--dry-run"],
            &[("XDG_CACHE_HOME", cache.path().to_str().unwrap())],
        )
        .ok()
    };
    assert!(run().stdout.contains("detected 0029 from the catalog"));
    let files: Vec<_> = std::fs::read_dir(cache.path().join("cargo-procrastinate/catalogs")).unwrap().collect();
    assert_eq!(files.len(), 1);
    assert!(run().stdout.contains("detected 0029 from the catalog"));
}

/// The opt-in fast path: a fresh database built from the vendored schema.sql in one
/// transaction, only while `verify`'s proof holds; anything else applies migrations.
#[test]
fn upgrade_from_schema_builds_a_fresh_database_from_the_verified_schema_sql() {
    let pkg = package();
    let root = pkg.path();
    let dir = root.join("db/procrastinate");
    cli_in(root, &["vendor", "--wheel", v3_10().wheel.to_str().unwrap()], &[]).ok();
    let url = |db: &TestDb| db.url();
    // No proof yet: the flag asked for the file, so this is an error, and nothing is touched.
    let db = TestDb::new("from_schema");
    let unproven = cli_in(root, &["upgrade", "--from-schema"], &[("DATABASE_URL", &url(&db))]).code(2);
    assert!(unproven.stderr.contains("reference/verified.toml") && unproven.stderr.contains("run `cargo procrastinate verify`"), "{}", unproven.stderr);
    let verified = cli_in(root, &["verify"], &[]).ok();
    assert!(verified.stderr.contains("proof recorded in"), "{}", verified.stderr);
    let proof = std::fs::read_to_string(dir.join("reference/verified.toml")).unwrap();
    assert!(proof.contains("@generated") && proof.contains("\"procrastinate_jobs\"") && proof.contains("\"00.00.00_01_initial.sql\" = \""), "{proof}");

    let built = cli_in(root, &["--message-format", "json", "upgrade", "--from-schema"], &[("DATABASE_URL", &url(&db))]).ok();
    let json = built.json();
    assert!(json["from_schema"].as_str().unwrap().ends_with("reference/schema.sql"), "{}", built.stdout);
    assert_eq!((json["from"].is_null(), json["to"].as_str()), (true, Some("0038")));
    let human = cli_in(root, &["upgrade", "--from-schema"], &[("DATABASE_URL", &TestDb::new("from_schema_human").url())]).ok();
    assert!(human.stderr.contains("built 0038 (head) from") && human.stderr.contains("recorded as stamped"), "{}", human.stderr);
    // The schema of schema.sql, every migration recorded as stamped, and `check` content.
    assert_same_catalog(&catalog(&db, "public"), &catalog(&schema_sql_db("from_schema_ref", "3.10.0"), "public"));
    let rows = tracking_rows(&db, procrastinate_migrations::config::DEFAULT_VERSION_TABLE);
    assert_eq!(rows.len(), 38);
    assert!(rows.iter().all(|r| r.3), "every row is stamped: {rows:?}");
    cli_in(root, &["check"], &[("DATABASE_URL", &url(&db))]).ok();
    let again = cli_in(root, &["upgrade", "--from-schema"], &[("DATABASE_URL", &url(&db))]).ok();
    assert!(again.stderr.contains("already at 0038 (head)"), "{}", again.stderr);

    // A database with part of the set: migrations, as without the flag.
    let partial = TestDb::new("from_schema_partial");
    cli_in(root, &["upgrade", "0029"], &[("DATABASE_URL", &url(&partial))]).ok();
    let rest = cli_in(root, &["--message-format", "json", "upgrade", "--from-schema"], &[("DATABASE_URL", &url(&partial))]).ok();
    assert_eq!(rest.json()["applied"].as_array().unwrap().len(), 9, "{}", rest.stdout);
    assert!(rest.json()["from_schema"].is_null());
    // A target short of head: migrations, said so.
    let short = cli_in(root, &["upgrade", "0029", "--from-schema"], &[("DATABASE_URL", &TestDb::new("from_schema_short").url())]).ok();
    assert!(short.stderr.contains("not built from schema.sql: schema.sql is head (0038), and the target is 0029"), "{}", short.stderr);
    // The objects exist but nothing is recorded: not fresh, said so, nothing built over them.
    let existing = schema_sql_db("from_schema_existing", "3.10.0");
    let taken = cli_in(root, &["upgrade", "--from-schema"], &[("DATABASE_URL", &url(&existing))]).code(1);
    assert!(taken.stderr.contains("not built from schema.sql: `procrastinate_") && taken.stderr.contains("exists already"), "{}", taken.stderr);
    assert!(taken.stderr.contains("cargo procrastinate stamp"), "{}", taken.stderr);

    // An edited file breaks the proof: named, and nothing is built.
    let file = dir.join("03.00.00_50_post_cancel_notification.sql");
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap() + "\n-- edited\n").unwrap();
    let fresh = TestDb::new("from_schema_stale");
    let stale = cli_in(root, &["upgrade", "--from-schema"], &[("DATABASE_URL", &url(&fresh))]).code(2);
    assert!(stale.stderr.contains("03.00.00_50_post_cancel_notification.sql changed since the set was verified"), "{}", stale.stderr);
    assert!(cli_in(root, &["current"], &[("DATABASE_URL", &url(&fresh))]).ok().stdout.starts_with("base (nothing recorded"));
}
