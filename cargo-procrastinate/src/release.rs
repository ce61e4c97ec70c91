//! A Procrastinate release's SQL, from where it can be had: a wheel file (a zip), an installed
//! Python package (located as the seed documents locate it: the package's `__path__`), or a
//! version fetched with pip. Only `procrastinate/sql/migrations/*.sql` (not
//! `future_migrations/`, not `__init__.py`) and `procrastinate/sql/schema.sql` are taken.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use procrastinate_migrations::Checksum;

use crate::Failure;

/// One release's files.
pub struct Release {
    /// `3.10.0`, as the package says.
    pub version: String,
    /// Where it came from, in words (`wheel procrastinate-3.10.0-py3-none-any.whl`).
    pub origin: String,
    /// SHA-256 of the wheel, when there was one.
    pub wheel_sha256: Option<String>,
    /// Migration file name -> content.
    pub migrations: BTreeMap<String, Vec<u8>>,
    /// `procrastinate/sql/schema.sql`: the schema the release's migrations should build, which
    /// `verify` compares with.
    pub schema_sql: Vec<u8>,
    /// Upstream's license (the wheel's `*.dist-info/licenses/LICENSE*`, or `LICENSE*`), which
    /// goes with its files; `None` when the source has none.
    pub license: Option<Vec<u8>>,
}

const MIGRATIONS: &str = "procrastinate/sql/migrations/";
const SCHEMA: &str = "procrastinate/sql/schema.sql";

fn bad(what: impl std::fmt::Display) -> Failure {
    Failure::usage(what.to_string())
}

/// Reads a wheel (a zip archive).
pub fn from_wheel(path: &Path) -> Result<Release, Failure> {
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).map_err(|e| bad(format!("{} is not a wheel (zip): {e}", path.display())))?;
    let mut migrations = BTreeMap::new();
    let (mut schema_sql, mut version, mut license) = (None, None, None);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(format!("{}: {e}", path.display())))?;
        let name = entry.name().to_string();
        let is_license = name.starts_with("procrastinate-")
            && name.contains(".dist-info/")
            && name.rsplit('/').next().is_some_and(|f| f.to_ascii_uppercase().starts_with("LICENSE"));
        let wanted = name == SCHEMA
            || name.strip_prefix(MIGRATIONS).is_some_and(|f| f.ends_with(".sql") && !f.contains('/'))
            || (name.ends_with(".dist-info/METADATA") && name.starts_with("procrastinate-"))
            || is_license;
        if !wanted {
            continue;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(|e| bad(format!("{}: {name}: {e}", path.display())))?;
        if name == SCHEMA {
            schema_sql = Some(content);
        } else if is_license {
            license = Some(content);
        } else if let Some(file) = name.strip_prefix(MIGRATIONS) {
            migrations.insert(file.to_string(), content);
        } else {
            version = String::from_utf8_lossy(&content).lines().find_map(|l| l.strip_prefix("Version: ").map(str::to_string));
        }
    }
    let file = path.file_name().map_or_else(|| path.display().to_string(), |f| f.to_string_lossy().into_owned());
    finish(
        version.ok_or_else(|| bad(format!("{file}: no procrastinate-*.dist-info/METADATA with a Version: is this Procrastinate's wheel?")))?,
        format!("wheel {file}"),
        Some(Checksum::of(&bytes).to_string()),
        migrations,
        schema_sql,
        license,
    )
}

/// Reads the package that `python` imports as `procrastinate`.
pub fn from_python(python: &str) -> Result<Release, Failure> {
    // Found through the interpreter without importing the package (`installed::find`).
    let found = procrastinate_migrations::installed::find(python).map_err(|e| bad(format!("{e} (or give --wheel FILE or --version X.Y.Z)")))?;
    let mut migrations = BTreeMap::new();
    let listing = std::fs::read_dir(&found.migrations).map_err(|e| bad(format!("cannot read {}: {e}", found.migrations.display())))?;
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && entry.file_type().is_ok_and(|t| t.is_file()) {
            let content = std::fs::read(entry.path()).map_err(|e| bad(format!("cannot read {}: {e}", entry.path().display())))?;
            migrations.insert(name, content);
        }
    }
    let schema = std::fs::read(&found.schema_sql).ok();
    let package = found.migrations.parent().and_then(Path::parent);
    let dir = package.map_or_else(String::new, |d| d.display().to_string());
    // The license sits in the distribution's metadata, beside the package.
    let license = package.and_then(Path::parent).and_then(|site| {
        let dist = std::fs::read_dir(site).ok()?.flatten().find(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&format!("procrastinate-{}", found.version)) && n.ends_with(".dist-info")
        })?;
        let places = [dist.path().join("licenses"), dist.path()];
        places.iter().find_map(|p| {
            std::fs::read_dir(p).ok()?.flatten().find(|e| e.file_name().to_string_lossy().to_ascii_uppercase().starts_with("LICENSE")).and_then(|e| std::fs::read(e.path()).ok())
        })
    });
    finish(found.version, format!("the package installed for {python} ({dir})"), None, migrations, schema, license)
}

/// Downloads the wheel of `version` with pip into a temporary directory and reads it.
pub fn from_pip(version: &str, log: &dyn Fn(&str)) -> Result<Release, Failure> {
    let dir = tempfile::tempdir().map_err(|e| bad(format!("cannot make a temporary directory: {e}")))?;
    log(&format!("downloading procrastinate=={version} with pip..."));
    let mut tried = Vec::new();
    for python in ["python3", "python"] {
        let out = Command::new(python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q"])
            .arg(format!("procrastinate=={version}"))
            .arg("-d")
            .arg(dir.path())
            .output();
        match out {
            Err(e) => tried.push(format!("`{python} -m pip`: {e}")),
            Ok(out) if !out.status.success() => {
                let why = last_lines(&out.stderr);
                if why.contains("No module named pip") {
                    tried.push(format!("`{python} -m pip`: pip is not installed (python3-pip)"));
                    continue;
                }
                return Err(bad(format!(
                    "pip could not download procrastinate=={version} (is the version right, and PyPI reachable?):\n{why}"
                )));
            }
            Ok(_) => {
                let wheel: Option<PathBuf> = std::fs::read_dir(dir.path())
                    .ok()
                    .and_then(|d| d.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "whl")));
                return from_wheel(&wheel.ok_or_else(|| bad("pip downloaded no wheel"))?);
            }
        }
    }
    Err(bad(format!("--version needs pip (install python3 and python3-pip), or give --wheel FILE:\n  {}", tried.join("\n  "))))
}

fn finish(
    version: String,
    origin: String,
    wheel_sha256: Option<String>,
    migrations: BTreeMap<String, Vec<u8>>,
    schema_sql: Option<Vec<u8>>,
    license: Option<Vec<u8>>,
) -> Result<Release, Failure> {
    if migrations.is_empty() {
        return Err(bad(format!("{origin}: no {MIGRATIONS}*.sql")));
    }
    let schema_sql = schema_sql.ok_or_else(|| bad(format!("{origin}: no {SCHEMA}")))?;
    Ok(Release { version, origin, wheel_sha256, migrations, schema_sql, license })
}

fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}
