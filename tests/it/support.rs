//! Running the real binary and psql, and reading a database back for comparison.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use procrastinate_migrations::catalog::Catalog;
pub use procrastinate_tests::{wheels, TestDb};

/// What a command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    /// The command's result: the last JSON line (`upgrade` prints its events before it).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        self.json_lines().pop().unwrap_or_else(|| {
            panic!(
                "no JSON on stdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Every line of stdout, each parsed as one JSON object with `reason` and `format_version`.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!(
                        "a stdout line is not JSON ({e}): {line}\nstdout:\n{}",
                        self.stdout
                    )
                });
                assert!(
                    v["reason"].is_string() && v["format_version"] == 1,
                    "no reason or format_version: {line}"
                );
                v
            })
            .collect()
    }
}

/// `cargo-procrastinate ARGS` (run directly, as on a deploy box) in `dir`, with a clean
/// environment apart from `env`.
pub fn cli_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-procrastinate"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("PG")
            || key.starts_with("PROCRASTINATE_")
            || matches!(
                key.as_str(),
                "DATABASE_URL" | "CARGO_TERM_COLOR" | "NO_COLOR"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run cargo-procrastinate").into()
}

/// `cargo-procrastinate --migrations DIR --database-url URL ARGS` from a directory with no manifest.
pub fn cli(db: &TestDb, migrations: &Path, args: &[&str]) -> Run {
    let url = db.url();
    let dir = migrations.to_str().expect("utf-8 path");
    let mut all = vec!["--migrations", dir, "--database-url", &url];
    all.extend_from_slice(args);
    cli_in(&std::env::temp_dir(), &all, &[])
}

pub fn psql_path() -> PathBuf {
    pg_scratch::find_bindir().expect("PostgreSQL binaries").join("psql")
}

/// `psql -v ON_ERROR_STOP=1 -f FILE` against `db`, optionally with a search_path.
pub fn psql_file(db: &TestDb, file: &Path, search_path: Option<&str>) -> Run {
    let mut cmd = Command::new(psql_path());
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.url(), "-f"]).arg(file).stdin(Stdio::null());
    if let Some(schema) = search_path {
        cmd.env("PGOPTIONS", format!("-c search_path={schema}"));
    }
    cmd.output().expect("run psql").into()
}

/// The catalog of `schema` (the library's own comparison: `verify` uses the same), tracking
/// table left out.
pub fn catalog(db: &TestDb, schema: &str) -> Catalog {
    let table = procrastinate_migrations::config::DEFAULT_VERSION_TABLE;
    let c = procrastinate_migrations::catalog::read(&mut db.client(), schema, table).expect("catalog query");
    assert!(!c.is_empty(), "schema {schema} of {} is empty", db.name());
    c
}

#[track_caller]
pub fn assert_same_catalog(a: &Catalog, b: &Catalog) {
    let diff = a.diff(b);
    assert!(diff.is_empty(), "catalogs differ:\n{}", diff.render("the first", "the second"));
}

/// The first row of `sql` as text, through any session (the CLI's bounded `Conn` too).
pub fn first_row(client: &mut dyn procrastinate_migrations::db::Session, sql: &str) -> Vec<Option<String>> {
    client
        .simple_query(sql)
        .expect("query")
        .into_iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .expect("a row")
}

/// `(revision, file_name, checksum, stamped)` rows of a tracking table.
pub fn tracking_rows(db: &TestDb, table: &str) -> Vec<(String, String, String, bool)> {
    db.client()
        .query(&format!("SELECT revision, file_name, checksum, stamped FROM {table} ORDER BY revision"), &[])
        .expect("read tracking table")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// A writable copy of a migration directory (tests that edit or add files).
pub fn copy_set(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_files(from, dir.path());
    dir
}

/// `sets = [procrastinate, app]` in db/procrastinate and db/app: the recommended layout.
pub const TWO_SETS: &str =
    "sets = [\n  { name = \"procrastinate\", migrations = \"db/procrastinate\" },\n  { name = \"app\", migrations = \"db/app\" },\n]\n";

/// A package `name` in `root` whose `[package.metadata.procrastinate]` is `metadata`.
pub fn write_package(root: &Path, name: &str, metadata: &str) {
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.procrastinate]\n{metadata}"),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), "").unwrap();
}

/// Writes migration file `name` into the set directory `dir`.
pub fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).expect("write a migration file");
}

/// Copies the files (not subdirectories) of `from` into `to`, creating it.
pub fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read set") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// The 3.10.0 wheel's migrations, as the issues measure them.
pub fn v3_10() -> wheels::Upstream {
    wheels::procrastinate("3.10.0")
}

/// The workspace's own example set.
pub fn example_set() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql/example")
}
