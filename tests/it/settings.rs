//! Where settings come from: defaults < workspace metadata < package metadata < environment <
//! flags, found through `cargo metadata` from the current directory or --manifest-path.

use std::path::Path;

use crate::support::*;

/// A workspace with one member `app`: migrations and schema set at workspace level, schema
/// overridden by the package.
fn workspace(package_settings: &str) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    let root = ws.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"app\"]\nresolver = \"2\"\n\n[workspace.metadata.procrastinate]\nmigrations = \"db/migrations\"\nschema = \"ws_schema\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("app/src")).unwrap();
    std::fs::write(root.join("app/src/lib.rs"), "").unwrap();
    std::fs::write(
        root.join("app/Cargo.toml"),
        format!("[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.procrastinate]\n{package_settings}\n"),
    )
    .unwrap();
    copy_files(&example_set(), &root.join("db/migrations"));
    ws
}

fn tracking_table_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--message-format", "json"];
    all.extend_from_slice(args);
    all.push("current");
    let run = cli_in(dir, &all, env).ok();
    run.json()["tracking_table"].as_str().unwrap().to_string()
}

#[test]
fn precedence_workspace_package_environment_flags() {
    let db = TestDb::new("precedence");
    let url = db.url();
    let ws = workspace("schema = \"pkg_schema\"");
    let app = ws.path().join("app");
    let env = [("DATABASE_URL", url.as_str())];
    // Package beats workspace; migrations still come from the workspace (relative to its root).
    assert_eq!(tracking_table_in(&app, &[], &env), "pkg_schema.cargo_procrastinate_migrations");
    // From the virtual root, the one member with settings is used; -p names it explicitly.
    assert_eq!(tracking_table_in(ws.path(), &[], &env), "pkg_schema.cargo_procrastinate_migrations");
    assert_eq!(tracking_table_in(ws.path(), &["-p", "app"], &env), "pkg_schema.cargo_procrastinate_migrations");
    let manifest = app.join("Cargo.toml");
    assert_eq!(
        tracking_table_in(&std::env::temp_dir(), &["--manifest-path", manifest.to_str().unwrap()], &env),
        "pkg_schema.cargo_procrastinate_migrations"
    );
    // Environment beats package; flags beat environment.
    let env2 = [("DATABASE_URL", url.as_str()), ("PROCRASTINATE_SCHEMA", "env_schema")];
    assert_eq!(tracking_table_in(&app, &[], &env2), "env_schema.cargo_procrastinate_migrations");
    assert_eq!(tracking_table_in(&app, &["--schema", "flag_schema"], &env2), "flag_schema.cargo_procrastinate_migrations");
    assert_eq!(tracking_table_in(&app, &["--version-table", "ops.migs"], &env), "ops.migs");
    // upgrade really uses them, creating both schemas when tracking lives apart.
    cli_in(&app, &["upgrade"], &env).ok();
    assert_eq!(tracking_rows(&db, "pkg_schema.cargo_procrastinate_migrations").len(), 3);
    cli_in(&app, &["--schema", "jobs", "--version-table", "ops.migs", "upgrade"], &env).ok();
    assert_eq!(tracking_rows(&db, "ops.migs").len(), 3);
    let accounts: Option<String> = db.client().query_one("SELECT to_regclass('jobs.accounts')::text", &[]).unwrap().get(0);
    assert_eq!(accounts.as_deref(), Some("jobs.accounts"));
    let missing = cli_in(ws.path(), &["-p", "nope", "current"], &env).code(2);
    assert!(missing.stderr.contains("package `nope` is not a member of this workspace (members: app)"), "{}", missing.stderr);
}

#[test]
fn an_unknown_key_is_an_error_that_names_it() {
    let ws = workspace("schema = \"s\"\nlock_timeout = \"1s\"");
    let run = cli_in(&ws.path().join("app"), &["heads"], &[]).code(2);
    assert!(run.stderr.contains("[package.metadata.procrastinate] in "), "{}", run.stderr);
    assert!(run.stderr.contains("app/Cargo.toml: unknown field `lock_timeout`"), "{}", run.stderr);
    let ws = workspace("lock-timeout = \"soon\"");
    let run = cli_in(&ws.path().join("app"), &["heads"], &[]).code(2);
    assert!(run.stderr.contains("setting `lock-timeout`: `soon` is not a duration"), "{}", run.stderr);
}

#[test]
fn database_url_from_dotenv_a_renamed_variable_and_libpq_variables() {
    let db = TestDb::new("url_sources");
    let url = db.url();
    let ws = workspace("database-url-env = \"APP_DB\"");
    let app = ws.path().join("app");
    // The variable named by `database-url-env`, in .env beside the manifest.
    std::fs::write(app.join(".env"), format!("OTHER=1\nAPP_DB={url}\n")).unwrap();
    cli_in(&app, &["upgrade"], &[]).ok();
    std::fs::remove_file(app.join(".env")).unwrap();
    assert!(cli_in(&app, &["current"], &[("APP_DB", &url)]).ok().stdout.starts_with("0003"));
    // libpq variables alone: postgres://USER:PASSWORD@HOST:PORT/DB, split up.
    let rest = url.strip_prefix("postgres://").unwrap();
    let (auth, rest) = rest.split_once('@').unwrap();
    let (user, password) = auth.split_once(':').unwrap();
    let (hostport, dbname) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let pg = [("PGHOST", host), ("PGPORT", port), ("PGUSER", user), ("PGPASSWORD", password), ("PGDATABASE", dbname)];
    assert!(cli_in(&app, &["current"], &pg).ok().stdout.starts_with("0003"));
    // A connection service (pg_service.conf), named by PGSERVICE or `service=` in the URL.
    let services = ws.path().join("pg_service.conf");
    std::fs::write(&services, format!("# ours\n[other]\nhost=nowhere\n\n[queue]\nhost={host}\nport={port}\nuser={user}\npassword={password}\ndbname={dbname}\n")).unwrap();
    let file = services.to_str().unwrap();
    assert!(cli_in(&app, &["current"], &[("PGSERVICEFILE", file), ("PGSERVICE", "queue")]).ok().stdout.starts_with("0003"));
    assert!(cli_in(&app, &["--database-url", "postgres:///?service=queue", "current"], &[("PGSERVICEFILE", file)]).ok().stdout.starts_with("0003"));
    let unknown = cli_in(&app, &["current"], &[("PGSERVICEFILE", file), ("PGSERVICE", "nope")]).code(2);
    assert!(unknown.stderr.contains("service `nope` is not defined (looked in "), "{}", unknown.stderr);
    // libpq settings this tool lacks are named as such; others as not connection settings.
    let crl = cli_in(&app, &["--database-url", &format!("{url}?sslcrl=/x.pem"), "current"], &[]).code(2);
    assert!(crl.stderr.contains("sets `sslcrl`, a libpq setting this tool does not support"), "{}", crl.stderr);
    let typo = cli_in(&app, &["--database-url", &format!("{url}?sslmdoe=require"), "current"], &[]).code(2);
    assert!(typo.stderr.contains("sets `sslmdoe`, which is not a PostgreSQL connection setting"), "{}", typo.stderr);
    assert!(!typo.stderr.contains(password));
    // .env as dotenvy finds it: here or above, up to the workspace root; --no-dotenv reads none.
    std::fs::write(ws.path().join(".env"), format!("APP_DB={url}\n")).unwrap();
    std::fs::create_dir_all(app.join("src/deep")).unwrap();
    assert!(cli_in(&app.join("src/deep"), &["current"], &[]).ok().stdout.starts_with("0003"));
    let none = cli_in(&app, &["--no-dotenv", "current"], &[]).code(2);
    assert!(none.stderr.contains("no database configured"), "{}", none.stderr);
    std::fs::write(ws.path().join(".env"), "APP_DB=postgres://a@b/c\nnot a line\n").unwrap();
    let bad = cli_in(&app, &["current"], &[]).code(2);
    assert!(bad.stderr.contains(".env is malformed") && bad.stderr.contains("line 2"), "{}", bad.stderr);
    std::fs::remove_file(ws.path().join(".env")).unwrap();
    // --scratch needs none of it.
    let scratch = cli_in(&app, &["--scratch", "upgrade"], &[]).ok();
    assert!(scratch.stdout.contains("0003 post     applied"), "{}", scratch.stdout);
}

/// A deploy box has no cargo: the package's manifest still gives every setting, and a manifest
/// that cannot be read stops the command instead of being skipped (which once sent a schema
/// into `public`).
#[test]
fn the_manifest_is_read_without_cargo_and_never_skipped() {
    let db = TestDb::new("no_cargo");
    let url = db.url();
    let ws = workspace("schema = \"pkg_schema\"");
    let app = ws.path().join("app");
    let env = [("DATABASE_URL", url.as_str()), ("PATH", "/nonexistent"), ("CARGO", "/nonexistent/cargo")];
    let dir = example_set();
    cli_in(&app, &["--migrations", dir.to_str().unwrap(), "upgrade"], &env).ok();
    let located: Option<String> = db.client().query_one("SELECT to_regclass('pkg_schema.accounts')::text", &[]).unwrap().get(0);
    assert_eq!(located.as_deref(), Some("pkg_schema.accounts"));
    assert!(db.client().query_one("SELECT to_regclass('public.accounts') IS NULL", &[]).unwrap().get::<_, bool>(0));
    std::fs::write(app.join("Cargo.toml"), "[package\nname = ").unwrap();
    let broken = cli_in(&app, &["--migrations", dir.to_str().unwrap(), "upgrade"], &env).code(2);
    assert!(broken.stderr.contains("app/Cargo.toml is not a valid manifest"), "{}", broken.stderr);
}

/// libpq's habit: the URL's application_name, else PGAPPNAME, else the tool's own name.
#[test]
fn application_name_from_the_url_or_pgappname() {
    let db = TestDb::new("appname");
    let set = copy_set(&example_set());
    std::fs::write(set.path().join("03.00.00_01_pre_seen.sql"), "CREATE TABLE seen AS SELECT current_setting('application_name') AS name;\n").unwrap();
    let dir = set.path().to_str().unwrap();
    let url = db.url();
    cli_in(&std::env::temp_dir(), &["--migrations", dir, "--database-url", &url, "upgrade"], &[("PGAPPNAME", "deployer")]).ok();
    let name: String = db.client().query_one("SELECT name FROM seen", &[]).unwrap().get(0);
    assert_eq!(name, "deployer");
}

/// libpq's habit: the password from PGPASSFILE (or ~/.pgpass), only when only its owner can
/// read it.
#[test]
fn the_password_comes_from_a_pgpass_file() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new("pgpass");
    let url = db.url();
    // postgres://user:password@host:port/db -> the same without the password.
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (scheme, userinfo) = scheme_user.split_at(scheme_user.find("//").unwrap() + 2);
    let (user, password) = userinfo.split_once(':').unwrap();
    let bare = format!("{scheme}{user}@{rest}");
    let (hostport, dbname) = rest.split_once('/').unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(&file, format!("# comment\nother:1:*:*:nope\n{host}:{port}:{dbname}:{user}:{password}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let migrations = example_set();
    let args = ["--migrations", migrations.to_str().unwrap(), "--database-url", bare.as_str(), "current"];
    let env = [("PGPASSFILE", file.to_str().unwrap())];
    cli_in(&std::env::temp_dir(), &args, &env).ok();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = cli_in(&std::env::temp_dir(), &args, &env).code(3);
    assert!(open.stderr.contains("has group or world access"), "{}", open.stderr);
    assert!(!open.stderr.contains(password), "the password is never printed");
}
