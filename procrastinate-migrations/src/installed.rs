//! Procrastinate installed in a Python environment (the Alembic integration's "option 2":
//! the installed package's SQL, no copy): where its SQL is, asked of the interpreter without
//! importing the package (`importlib.util.find_spec`, `importlib.metadata`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the installed package ships.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// `procrastinate/sql/migrations`.
    pub migrations: PathBuf,
    /// `procrastinate/sql/schema.sql`, the release's reference schema (for `verify`).
    pub schema_sql: PathBuf,
    /// The installed version, as its metadata says.
    pub version: String,
}

/// Asks `python` (a path, or a command on `PATH`) where the `procrastinate` package is, and
/// its version; errors say what to do.
pub fn find(python: &str) -> Result<Installed, String> {
    let script = "import importlib.util as u, importlib.metadata as m\n\
                  s = u.find_spec('procrastinate')\n\
                  print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')\n\
                  print(m.version('procrastinate') if s else '')";
    let out = Command::new(python).args(["-c", script]).output().map_err(|e| format!("cannot run the Python interpreter `{python}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!("`{python}` failed to say where procrastinate is: {}", last.into_iter().rev().collect::<Vec<_>>().join(" / ")));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let dir = lines.next().unwrap_or("").trim();
    if dir.is_empty() {
        return Err(format!("procrastinate is not installed for `{python}`: `{python} -m pip install procrastinate`, or point `python` at the environment that has it"));
    }
    let sql = Path::new(dir).join("sql");
    let migrations = sql.join("migrations");
    if !migrations.is_dir() {
        return Err(format!("{} does not exist: that procrastinate ships no SQL migrations (a release before 0.17?)", migrations.display()));
    }
    Ok(Installed { migrations, schema_sql: sql.join("schema.sql"), version: lines.next().unwrap_or("").trim().to_string() })
}
