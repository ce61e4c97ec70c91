//! At home in the Rust ecosystem (issue 26): the library over a sqlx pool and tokio-postgres,
//! its tracing events, the shell completion as bash runs it, the man page, and the README's
//! CI recipe.

use std::io::Write;
use std::sync::{Arc, Mutex};

use procrastinate_migrations::compat::Window;
use procrastinate_migrations::{db_async, db_sqlx, MigrationSet, SetDef};

use crate::support::*;

/// The workspace's example set as a build script would embed it, under `name`.
fn sets(name: Option<&'static str>) -> &'static [SetDef] {
    let set = MigrationSet::from_dir(example_set()).unwrap();
    let migrations = Vec::leak(set.migrations);
    Vec::leak(vec![SetDef { name, migrations, schema: None, version_table: "cargo_procrastinate_migrations", window: Window::of(migrations) }])
}

/// What the library logs in this test binary, from every thread (a subscriber set once, for
/// the process, as an application sets it; tests tell their events apart by set name).
fn logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this binary");
        captured
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Every event of the library, as a subscriber in the application would see them.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_sqlx_pool_checks_and_upgrades_with_events_in_the_app_s_logs() {
    let db = TestDb::new("eco_sqlx");
    let url = db.url();
    let captured = logs();
    let sets = sets(Some("eco"));
    runtime().block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&url).await.unwrap();
        let refused = db_sqlx::verify_sets(&pool, sets).await.unwrap_err();
        assert!(refused.to_string().contains("cargo procrastinate upgrade"), "{refused}");
        let reports = db_sqlx::upgrade(&url, sets).await.unwrap();
        assert_eq!(reports[0].applied.len(), 3);
        let verdicts = db_sqlx::verify_sets(&pool, sets).await.unwrap();
        assert!(verdicts[0].is_compatible());
    });
    let all = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let ours: Vec<&str> = all.lines().filter(|l| l.contains("set=\"eco\"")).collect();
    assert!(ours.iter().any(|l| l.contains("WARN") && l.contains("needs an upgrade")), "the refusal: {all}");
    assert!(ours.iter().any(|l| l.contains("INFO") && l.contains("applying 01.00.00_01_create_accounts.sql")), "{all}");
    assert!(ours.iter().any(|l| l.contains("applied 02.00.00_50_post_account_status_not_null.sql") && l.contains("duration_ms=")), "{all}");
    assert!(ours.iter().any(|l| l.contains("verdict=\"compatible\"")), "{all}");
    // The CLI reads what the library recorded.
    let url = db.url();
    let current = cli_in(&std::env::temp_dir(), &["--set-dir", &format!("eco={}", example_set().display()), "--database-url", &url, "current"], &[]).ok();
    assert_eq!(current.stdout.trim(), "0003 (head)");
}

#[test]
fn tokio_postgres_applications_upgrade_without_blocking_their_runtime() {
    let db = TestDb::new("eco_tokio");
    let config: tokio_postgres::Config = db.url().parse().unwrap();
    let sets = sets(None);
    runtime().block_on(async {
        // The runtime keeps running while the migrations do: a timer ticks meanwhile.
        let ticks = tokio::spawn(async {
            let mut n = 0;
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                n += 1;
                if n == 3 {
                    return n;
                }
            }
        });
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        // No tracking table yet: the one read says so, and the check refuses with the advice.
        let refused = db_async::verify_sets(&client, sets).await.unwrap_err();
        assert!(refused.to_string().contains("cargo procrastinate upgrade"), "{refused}");
        let reports = db_async::upgrade(&config, tokio_postgres::NoTls, sets).await.unwrap();
        assert_eq!(reports[0].to.map(|r| r.number()), Some(3));
        assert_eq!(ticks.await.unwrap(), 3);
        db_async::verify_sets(&client, sets).await.unwrap();
    });
}

#[test]
fn bash_completes_every_spelling_and_a_closed_pipe_is_fine() {
    let script = std::env::temp_dir().join(format!("completion-{}.bash", std::process::id()));
    let out = cli_in(&std::env::temp_dir(), &["completions", "bash"], &[]).ok().stdout;
    std::fs::write(&script, out).unwrap();
    let ask = |words: &str, function: &str| -> String {
        let words_list: Vec<&str> = words.split(' ').collect();
        let cword = words_list.len() - 1;
        let prev = words_list[cword - 1];
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; {function} {} '{}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words_list[0],
            words_list[cword]
        );
        let out = std::process::Command::new("bash").args(["--norc", "--noprofile", "-c", &program]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // As cargo runs it, as people type it, and through `cargo` itself.
    assert!(ask("cargo-procrastinate procrastinate upgrade --", "_cargo__procrastinate").lines().any(|l| l == "--phase"));
    assert!(ask("cargo-procrastinate upgrade --", "_cargo__procrastinate").lines().any(|l| l == "--phase"));
    assert!(ask("cargo procrastinate upgrade --", "_cargo_procrastinate_cargo").lines().any(|l| l == "--phase"));
    assert!(ask("cargo-procrastinate lint --", "_cargo__procrastinate").lines().any(|l| l == "--trace"));
    let _ = std::fs::remove_file(&script);
    // `| head -1`: the reader goes away after one line; no panic, a quiet exit.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"))
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(first.starts_with("_cargo__procrastinate()"), "{first}");
    assert!(!String::from_utf8_lossy(&done.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&done.stderr));
    assert_eq!(done.status.code(), Some(0));
}

#[test]
fn the_man_page_comes_from_the_binary() {
    let page = cli_in(&std::env::temp_dir(), &["man"], &[]).ok().stdout;
    assert!(page.contains(".TH cargo-procrastinate 1") && page.contains("upgrade"), "{page}");
    let upgrade = cli_in(&std::env::temp_dir(), &["man", "upgrade"], &[]).ok().stdout;
    assert!(upgrade.contains(".TH cargo-procrastinate-upgrade 1") && upgrade.contains("phase"), "{upgrade}");
    let unknown = cli_in(&std::env::temp_dir(), &["man", "nope"], &[]).code(2);
    assert!(unknown.stderr.contains("no command is named `nope`"), "{}", unknown.stderr);
}

/// The README's CI recipe: every `cargo procrastinate` step of it, as written, passes on a
/// package with Procrastinate's set (vendored from the wheel) and an application's, against a
/// fresh database, as the service container gives it.
#[test]
fn ci_recipe() {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let recipe = readme.split("### CI recipe").nth(1).unwrap().split("```yaml").nth(1).unwrap().split("```").next().unwrap();
    let steps: Vec<Vec<String>> = recipe
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- run: cargo procrastinate "))
        .map(|l| l.split('#').next().unwrap().split_whitespace().map(str::to_string).collect())
        .collect();
    assert!(steps.len() >= 5, "{recipe}");
    let pkg = tempfile::tempdir().unwrap();
    let root = pkg.path();
    write_package(root, "shop", TWO_SETS);
    std::fs::create_dir_all(root.join("db/app")).unwrap();
    std::fs::write(
        root.join("db/app/01.00.00_01_pre_orders.sql"),
        "CREATE TABLE orders (id bigserial PRIMARY KEY, job_id bigint REFERENCES procrastinate_jobs (id) ON DELETE SET NULL);\n",
    )
    .unwrap();
    cli_in(root, &["vendor", "--set", "procrastinate", "--wheel", v3_10().wheel.to_str().unwrap()], &[]).ok();
    let db = TestDb::new("ci_recipe");
    let url = db.url();
    for step in &steps {
        let args: Vec<&str> = step.iter().map(String::as_str).collect();
        let run = cli_in(root, &args, &[("DATABASE_URL", &url)]);
        assert_eq!(run.code, 0, "`cargo procrastinate {}` failed:\n{}\n{}", args.join(" "), run.stdout, run.stderr);
    }
    // Procrastinate's own files are upstream's: reviewed as warnings, never blocking.
    let lint = cli_in(root, &["lint", "--set", "procrastinate", "0001:head"], &[]).ok();
    assert!(lint.stdout.contains("warning[require-concurrent-index-creation]") && lint.stdout.contains(" 0 errors"), "{}", lint.stdout);
}

#[test]
fn a_workspace_member_s_missing_settings_name_its_manifest() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("Cargo.toml"), "[workspace]\nmembers = [\"web\"]\nresolver = \"2\"\n").unwrap();
    std::fs::create_dir_all(ws.path().join("web/src")).unwrap();
    std::fs::write(ws.path().join("web/Cargo.toml"), "[package]\nname = \"web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n").unwrap();
    std::fs::write(ws.path().join("web/src/main.rs"), "fn main() {}\n").unwrap();
    let run = cli_in(ws.path(), &["-p", "web", "heads"], &[]).code(2);
    assert!(run.stderr.contains(&format!("in {}", ws.path().join("web/Cargo.toml").display())), "{}", run.stderr);
}
