//! Zero-downtime deploys on Procrastinate's real sets: phases one release at a time, the deploy
//! plan, and the start-up check's window (the example app built against 3.10.0's and 3.3.0's
//! sets, checking inside a tokio runtime).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

#[test]
fn phases_and_the_plan_go_one_release_at_a_time() {
    let up = v3_10();
    let set = up.migrations.as_path();
    let db = TestDb::new("deploy_phases");
    // Before 3.0 the files carry no phase: no guessing, nothing applied.
    let refused = cli(&db, set, &["upgrade", "--phase", "pre"]).code(2);
    assert!(refused.stderr.contains("service-interruption path: stop the workers, run `cargo procrastinate upgrade --to-version 2.15.1`"), "{}", refused.stderr);
    assert_eq!(cli(&db, set, &["current"]).ok().stdout.trim(), "base (nothing recorded: no table cargo_procrastinate_migrations)");
    cli(&db, set, &["upgrade", "--to-version", "2.15.1"]).ok();
    assert_eq!(cli(&db, set, &["current"]).ok().stdout.trim(), "0029");

    let plan = cli(&db, set, &["--message-format", "json", "plan"]).ok().json();
    let steps: Vec<(String, String)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["release"].as_str().unwrap().to_string(), s["action"].as_str().unwrap().to_string()))
        .collect();
    // Labelled by what upstream published: 3.0.2 is the newest with 3.0's migrations, 3.2.0 was
    // never published, and after 3.4's pre the newest release (no later one adds migrations).
    let newest = procrastinate_migrations::upstream::published().last().unwrap().0.human();
    let want: Vec<(String, String)> = [
        ("3.0.0", "apply_pre"), ("3.0.2", "deploy"), ("3.0.0", "apply_post"),
        ("3.1.0", "apply_pre"), ("3.1.0", "deploy"), ("3.1.0", "apply_post"),
        ("3.2.1", "apply_pre"), ("3.2.2", "deploy"), ("3.2.1", "apply_post"),
        ("3.3.0", "apply_pre"), ("3.3.0", "deploy"),
        ("3.4.0", "apply_pre"), (newest.as_str(), "deploy"), ("3.4.0", "apply_post"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(steps, want);
    assert_eq!(plan["steps"][0]["command"], "cargo procrastinate upgrade --phase pre");
    assert_eq!(plan["steps"][2]["command"], "cargo procrastinate upgrade --phase post");
    assert_eq!(plan["steps"][0]["through"], "0030");
    let human = cli(&db, set, &["plan", "--to", "3.0.0"]).ok().stdout;
    assert_eq!(
        human,
        "the database is at 0029 (2.15.0 to 2.15.1); head is 0038\n   \
         1. apply the pre migrations of 3.0.0 (through 0030):  cargo procrastinate upgrade --phase pre\n   \
         2. deploy release 3.0.2 of your code (any of 3.0.0 to 3.0.2 has these migrations)\n   \
         3. apply the post migrations of 3.0.0 (through 0031):  cargo procrastinate upgrade --phase post\n"
    );

    // Each printed command does exactly its step.
    let pre = cli(&db, set, &["upgrade", "--phase", "pre"]).ok();
    assert_eq!(cli(&db, set, &["current"]).ok().stdout.trim(), "0030");
    assert!(pre.stderr.contains("next: deploy release 3.0.2 of your code, then apply its post migrations with `cargo procrastinate upgrade --phase post`"), "{}", pre.stderr);
    let again = cli(&db, set, &["upgrade", "--phase", "pre"]).ok();
    assert!(again.stderr.contains("nothing to do at 0030: the pre migrations of 3.0.0 are applied and its post migrations pending: deploy 3.0.2 of your code"), "{}", again.stderr);
    assert_eq!(cli(&db, set, &["current"]).ok().stdout.trim(), "0030");
    cli(&db, set, &["upgrade", "--phase", "post"]).ok();
    assert_eq!(cli(&db, set, &["current"]).ok().stdout.trim(), "0031");
    cli(&db, set, &["upgrade", "--phase", "pre"]).ok();
    assert_eq!(cli(&db, set, &["current"]).ok().stdout.trim(), "0032");

    // A plain upgrade across releases says, before it starts, whose workers may break.
    let all = cli(&db, set, &["upgrade"]).ok();
    let warning = all.stderr.lines().position(|l| l.starts_with("warning: this runs the post migrations of 3.1.0, 3.2.2")).expect(&all.stderr);
    let first_applied = all.stderr.lines().position(|l| l.starts_with("applied ")).unwrap();
    assert!(warning < first_applied, "{}", all.stderr);
    assert!(all.stderr.contains("workers still running a release older than 3.2.2 may break"), "{}", all.stderr);
    assert!(cli(&db, set, &["plan"]).ok().stdout.ends_with("  nothing to do\n"));
}

/// Databases of the 3.10.0 set at each revision asked for.
fn databases_at(label: &str, revisions: &[&str]) -> Vec<TestDb> {
    revisions
        .iter()
        .map(|rev| {
            let db = TestDb::new(&format!("{label}_{rev}"));
            cli(&db, &v3_10().migrations, &["upgrade", rev]).ok();
            db
        })
        .collect()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds the example app against `set` (its own switch, PROCRASTINATE_EXAMPLE_MIGRATIONS),
/// with `env` for the build.
fn build_example(set: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // Its own target dir: the outer `cargo test` holds the lock on the workspace's.
    cmd.args(["build", "--quiet", "--offline", "-p", "procrastinate-example"])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", workspace_root().join("target/it-build"))
        .env("PROCRASTINATE_EXAMPLE_MIGRATIONS", set)
        .env_remove("PROCRASTINATE_BUILD_DATABASE_URL")
        .envs(env.iter().copied());
    cmd.output().expect("run cargo").into()
}

fn run_example(db: &TestDb, args: &[&str]) -> Run {
    let bin = workspace_root().join("target/it-build/debug/procrastinate-example");
    Command::new(bin).args(args).env("DATABASE_URL", db.url()).output().expect("run the example").into()
}

#[test]
fn the_start_up_check_allows_the_window_of_a_zero_downtime_deploy() {
    let dbs = databases_at("window", &["0036", "0037", "0038"]);
    let (at_36, at_37, at_38) = (&dbs[0], &dbs[1], &dbs[2]);

    // Built against 3.10.0 (head 0038, 3.4's post): from 3.4's pre on.
    build_example(&v3_10().migrations, &[]).ok();
    let refused = run_example(at_36, &[]).code(1);
    assert!(refused.stdout.contains("needs an upgrade: the database is at 0036 but this build needs 0037"), "{}", refused.stdout);
    let window = run_example(at_37, &[]).ok();
    assert!(window.stdout.contains("compatible: the database is at 0037 (this build: 0038); 03.04.00_50_post_add_retry_failed_job_procedure.sql pending"), "{}", window.stdout);
    run_example(at_38, &[]).ok();

    // Built against 3.3.0 (head 0036, a pre with no post): its head, and 3.4's pre beyond it.
    let old = wheels::procrastinate("3.3.0");
    build_example(&old.migrations, &[]).ok();
    run_example(at_36, &[]).ok();
    let ahead = run_example(at_37, &[]).ok();
    assert!(ahead.stdout.contains("the next release's pre migrations are applied already (03.04.00_01_pre_add_retry_failed_job_procedure.sql)"), "{}", ahead.stdout);
    let too_new = run_example(at_38, &[]).code(1);
    assert!(too_new.stdout.contains("the database is too new for this build (head 0036)"), "{}", too_new.stdout);

    // The app applies its own migrations when asked (no cargo on the deploy box).
    let fresh = TestDb::new("window_migrate");
    let migrated = run_example(&fresh, &["--migrate"]).ok();
    assert!(migrated.stdout.contains("set (unnamed): at 0036"), "{}", migrated.stdout);
    assert_eq!(cli(&fresh, &old.migrations, &["current"]).ok().stdout.trim(), "0036 (head)");

    // Opt-in, at build time: the same verdict fails the build, read by the CLI's parser
    // (SQLAlchemy's spelling here, libpq's key=value below).
    let url = at_38.url().replacen("postgres://", "postgresql+psycopg://", 1);
    let failed = build_example(&old.migrations, &[("PROCRASTINATE_BUILD_DATABASE_URL", &url)]);
    assert_ne!(failed.code, 0);
    assert!(failed.stderr.contains("the database at PROCRASTINATE_BUILD_DATABASE_URL: the database is too new for this build"), "{}", failed.stderr);
    assert!(!failed.stderr.contains(&url), "the URL is never printed");
    let pairs = procrastinate_migrations::conninfo::parse(&at_37.url()).unwrap();
    let keywords: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} = '{v}'")).collect();
    let keywords = keywords.join("  ");
    build_example(&old.migrations, &[("PROCRASTINATE_BUILD_DATABASE_URL", &keywords)]).ok();
    // The database changes, no file does: the next build checks again, and fails.
    cli(at_37, &v3_10().migrations, &["upgrade"]).ok();
    let again = build_example(&old.migrations, &[("PROCRASTINATE_BUILD_DATABASE_URL", &keywords)]);
    assert_ne!(again.code, 0, "the verdict was cached:\n{}", again.stderr);
    assert!(again.stderr.contains("too new for this build"), "{}", again.stderr);
}

/// Between a release's pre and its post, an older build's own commands live with it: the
/// next release's pre beyond the files is noted, not a divergence, and never called head.
#[test]
fn older_files_honour_the_window() {
    let old = wheels::procrastinate("3.3.0");
    let dbs = databases_at("older_files", &["0037", "0038"]);
    let (window, past) = (&dbs[0], &dbs[1]);
    let check = cli(window, &old.migrations, &["check"]).ok();
    assert!(check.stdout.contains("note: the database also has the next release's pre migrations (03.04.00_01_pre_add_retry_failed_job_procedure.sql)"), "{}", check.stdout);
    let current = cli(window, &old.migrations, &["--message-format", "json", "current"]).ok().json();
    assert_eq!((current["current"].as_str(), current["at_head"].as_bool()), (Some("0036"), Some(false)), "{current}");
    assert!(cli(window, &old.migrations, &["current"]).ok().stdout.starts_with("0036 (the files' head), and beyond it the next release's pre migrations"));
    assert!(cli(window, &old.migrations, &["upgrade"]).ok().stderr.contains("already at 0036 (head); nothing to do"));
    // Past the window (3.4's post applied): the older files disagree.
    cli(past, &old.migrations, &["check"]).code(5);
}
