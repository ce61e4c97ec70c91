//! procrastinate-build end to end: a real crate, built by cargo, against 3.10.0's set.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn cargo(krate: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Its own target dir: the outer `cargo test` holds the lock on the workspace's.
    cmd.args(args)
        .arg("--quiet")
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", workspace_root().join("target/it-build"))
        .env_remove("DATABASE_URL")
        .env_remove("PROCRASTINATE_MIGRATIONS")
        .envs(env.iter().copied());
    cmd.output().expect("run cargo").into()
}

const MAIN: &str = r#"
mod migrations {
    procrastinate_migrations::include_migrations!();
}

fn main() {
    // Typed constants, by revision and phase.
    let _: procrastinate_migrations::Migration = migrations::REV_0030_PRE_CANCEL_NOTIFICATION;
    assert_eq!(migrations::REV_0031_POST_CANCEL_NOTIFICATION.phase, procrastinate_migrations::Phase::Post);
    for m in migrations::MIGRATIONS {
        println!("{} {} {}", m.revision, m.phase, m.file_name);
    }
    println!("HEAD {}", migrations::HEAD);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let options = procrastinate_migrations::db::Options::new(migrations::SCHEMA, migrations::VERSION_TABLE).unwrap();
        match procrastinate_migrations::db::verify(&mut client, migrations::MIGRATIONS, &options) {
            Ok(head) => println!("database ok at {head}"),
            Err(e) => {
                eprintln!("refusing to start: {e}");
                std::process::exit(1);
            }
        }
    }
}
"#;

#[test]
fn a_crate_compiles_the_set_into_typed_constants_and_checks_its_database() {
    let up = v3_10();
    let tmp = tempfile::tempdir().unwrap();
    let krate = tmp.path();
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let set = krate.join("migrations");
    copy_files(&up.migrations, &set);
    let root = workspace_root();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"uses-generated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [package.metadata.procrastinate]\nmigrations = \"migrations\"\nschema = \"jobs\"\n\n\
             [dependencies]\nprocrastinate-migrations = {{ path = {:?}, features = [\"postgres\"] }}\npostgres = \"0.19\"\n\n\
             [build-dependencies]\nprocrastinate-build = {{ path = {:?} }}\n\n[workspace]\n",
            root.join("procrastinate-migrations").display().to_string(),
            root.join("procrastinate-build").display().to_string(),
        ),
    )
    .unwrap();
    // Same versions as the workspace, and no network needed.
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::write(krate.join("build.rs"), "fn main() -> Result<(), procrastinate_build::Error> {\n    procrastinate_build::compile()\n}\n").unwrap();
    std::fs::write(krate.join("src/main.rs"), MAIN).unwrap();

    let run = cargo(krate, &["run", "--offline"], &[]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 39, "{}", run.stdout);
    assert_eq!(lines[0], "0001 unmarked 00.00.00_01_initial.sql");
    assert_eq!(lines[29], "0030 pre 03.00.00_01_pre_cancel_notification.sql");
    assert_eq!(lines[38], "HEAD 0038");

    // The app's start-up check, against a database behind and at head.
    let db = TestDb::new("build_verify");
    let behind = cargo(krate, &["run", "--offline"], &[("DATABASE_URL", &db.url())]).code(1);
    assert!(behind.stderr.contains("refusing to start: needs an upgrade: the database is at base but this build needs 0037"), "{}", behind.stderr);
    // Upgraded in the schema the build was configured with: that is where the app looks.
    cli(&db, &up.migrations, &["upgrade"]).ok();
    cargo(krate, &["run", "--offline"], &[("DATABASE_URL", &db.url())]).code(1);
    cli(&db, &up.migrations, &["--schema", "jobs", "upgrade"]).ok();
    assert!(cargo(krate, &["run", "--offline"], &[("DATABASE_URL", &db.url())]).ok().stdout.ends_with("database ok at 0038\n"));

    // A second build with nothing changed does not run the build script again.
    let ran = build_script_runs();
    cargo(krate, &["build", "--offline"], &[]).ok();
    assert_eq!(build_script_runs(), ran, "the build script ran again with nothing changed");

    // Adding a file rebuilds the module on the next build: the script runs once.
    std::fs::write(set.join("03.05.00_01_pre_add_extra.sql"), "SELECT 1;\n").unwrap();
    let run = cargo(krate, &["run", "--offline"], &[]).ok();
    assert!(run.stdout.contains("0039 pre 03.05.00_01_pre_add_extra.sql\nHEAD 0039\n"), "{}", run.stdout);
    let after_change = build_script_runs();
    assert_ne!(after_change, ran, "a new file must run the build script");
    cargo(krate, &["build", "--offline"], &[]).ok();
    assert_eq!(build_script_runs(), after_change, "the build script ran twice for one change");

    // A malformed set fails the build, naming the file.
    std::fs::write(set.join("03.05.00_02_pre_Add-Bad.sql"), "SELECT 1;\n").unwrap();
    let failed = cargo(krate, &["build", "--offline"], &[]);
    assert_ne!(failed.code, 0);
    assert!(failed.stderr.contains("03.05.00_02_pre_Add-Bad.sql: upper case in description `Add-Bad`"), "{}", failed.stderr);

    // Several sets: a module per set and SETS, checked together at start-up.
    std::fs::remove_file(set.join("03.05.00_02_pre_Add-Bad.sql")).unwrap();
    std::fs::remove_file(set.join("03.05.00_01_pre_add_extra.sql")).unwrap();
    std::fs::create_dir_all(krate.join("app")).unwrap();
    std::fs::write(krate.join("app/01.00.00_01_orders.sql"), "CREATE TABLE orders (id int);\n").unwrap();
    let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap().replace(
        "migrations = \"migrations\"\n",
        "sets = [{ name = \"procrastinate\", migrations = \"migrations\" }, { name = \"app\", migrations = \"app\" }]\n",
    );
    std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(krate.join("src/main.rs"), MAIN_SETS).unwrap();
    let run = cargo(krate, &["run", "--offline"], &[]).ok();
    assert_eq!(run.stdout, "procrastinate 0038 (38 files)\napp 0001 (1 files)\n");
    let db = TestDb::new("build_verify_sets");
    let env = [("DATABASE_URL", db.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    cli_in(krate, &["upgrade", "procrastinate@head"], &env).ok();
    let behind = cargo(krate, &["run", "--offline"], &env).code(1);
    assert!(behind.stderr.contains("refusing to start: set `app`: needs an upgrade: the database is at app@base but this build needs app@0001"), "{}", behind.stderr);
    cli_in(krate, &["upgrade"], &env).ok();
    let ok = cargo(krate, &["run", "--offline"], &env).ok().stdout;
    assert!(
        ok.ends_with("database ok: compatible: the database is at procrastinate@0038 (this build: procrastinate@0038); \
                      compatible: the database is at app@0001 (this build: app@0001)\n"),
        "{ok}"
    );
}

/// When cargo last ran the test crate's build script: it touches `invoked.timestamp` in the
/// script's output directory each time it runs it.
fn build_script_runs() -> Vec<std::time::SystemTime> {
    let dir = workspace_root().join("target/it-build/debug/build");
    let mut runs: Vec<std::time::SystemTime> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("uses-generated-"))
        .filter_map(|e| std::fs::metadata(e.path().join("invoked.timestamp")).ok()?.modified().ok())
        .collect();
    runs.sort();
    assert!(!runs.is_empty(), "no build script run recorded");
    runs
}

const MAIN_SETS: &str = r#"
mod migrations {
    procrastinate_migrations::include_migrations!();
}

fn main() {
    let _: procrastinate_migrations::Migration = migrations::procrastinate::REV_0030_PRE_CANCEL_NOTIFICATION;
    for set in migrations::SETS {
        println!("{} {} ({} files)", set.name.unwrap(), set.migrations.last().unwrap().revision, set.migrations.len());
    }
    assert_eq!(migrations::app::HEAD, migrations::app::REV_0001_ORDERS.revision);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        match procrastinate_migrations::db::verify_sets(&mut client, migrations::SETS) {
            Ok(verdicts) => println!("database ok: {}", verdicts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")),
            Err(e) => {
                eprintln!("refusing to start: {e}");
                std::process::exit(1);
            }
        }
    }
}
"#;

/// The fenced blocks of the README's "Use it in your project" that name a file on their first
/// line (`# Cargo.toml`, `// build.rs`, `// src/main.rs`), and its `[package.metadata.procrastinate]`.
fn readme_snippets() -> (String, Vec<(String, String)>) {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme.split("## Use it in your project").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut metadata = None;
    let mut files = Vec::new();
    for block in section.split("\n```").skip(1).step_by(2) {
        let (lang, body) = block.split_once('\n').unwrap();
        let first = body.lines().next().unwrap_or("");
        if lang == "toml" && first == "[package.metadata.procrastinate]" && metadata.is_none() {
            metadata = Some(body.to_string());
        }
        let name = first.trim_start_matches("# ").trim_start_matches("// ");
        let name = name.split(':').next().unwrap();
        if ["Cargo.toml", "build.rs", "src/main.rs"].contains(&name) && (lang == "toml" || lang.starts_with("rust")) {
            files.push((name.to_string(), body.to_string()));
        }
    }
    (metadata.expect("the README shows [package.metadata.procrastinate]"), files)
}

/// A new crate made of the README's snippets, word for word (the checkout's path is the one
/// thing filled in), builds, and its start-up check runs: refusing a database that needs an
/// upgrade, starting once `cargo procrastinate upgrade` ran.
#[test]
fn the_readme_snippets_build_a_crate_whose_start_up_check_runs() {
    let (metadata, files) = readme_snippets();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Cargo.toml", "build.rs", "src/main.rs"]);
    let tmp = tempfile::tempdir().unwrap();
    let krate = tmp.path().join("myapp");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let root = workspace_root();
    for (name, body) in &files {
        let body = match name.as_str() {
            // `cargo new myapp`'s manifest, then the README's tables.
            "Cargo.toml" => format!(
                "[package]\nname = \"myapp\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n{metadata}\n{}\n[workspace]\n",
                body.replace("../cargo-procrastinate", root.to_str().unwrap())
            ),
            _ => body.clone(),
        };
        std::fs::write(krate.join(name), body).unwrap();
    }
    let dir = metadata.lines().find_map(|l| l.strip_prefix("migrations = \"")).unwrap().split('"').next().unwrap();
    copy_files(&example_set(), &krate.join(dir));
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    let db = TestDb::new("readme_snippets");
    let url = db.url();
    let refused = cargo(&krate, &["run", "--offline"], &[("DATABASE_URL", &url)]).code(1);
    assert!(refused.stderr.contains("needs an upgrade"), "{}", refused.stderr);
    cli_in(&krate, &["upgrade"], &[("DATABASE_URL", &url)]).ok();
    let started = cargo(&krate, &["run", "--offline"], &[("DATABASE_URL", &url)]).ok();
    assert_eq!(started.stdout, "the database suits this build\n");
    assert!(!started.stderr.contains("warning"), "{}", started.stderr);
}
