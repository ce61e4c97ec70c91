//! The real upstream Procrastinate SQL (migrations and schema), taken from the
//! published wheel at run time and cached under the target directory, so nothing
//! from upstream is committed here.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The SQL shipped in one Procrastinate release.
pub struct Upstream {
    pub version: String,
    /// Directory of the release's `*.sql` migrations.
    pub migrations: PathBuf,
    /// The full schema as of that release.
    pub schema_sql: PathBuf,
    /// The wheel itself.
    pub wheel: PathBuf,
    /// Its Django migrations (`procrastinate/contrib/django/migrations/*.py`), when it has them.
    pub django: PathBuf,
}

/// `<target dir>/procrastinate-wheels`: survives `cargo test` runs, goes with `cargo clean`.
pub fn cache_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").join("target"),
    };
    target.join("procrastinate-wheels")
}

/// The SQL of Procrastinate `version`, downloaded with pip on first use.
/// Panics with the reason (and what to do) on failure.
pub fn procrastinate(version: &str) -> Upstream {
    // Parallel tests would otherwise all download the same wheel at once.
    static FETCH: Mutex<()> = Mutex::new(());
    let _guard = FETCH.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

    assert!(
        !version.is_empty() && version.chars().all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c)),
        "not a version: {version:?}"
    );
    let dest = cache_dir().join(version);
    if !is_complete(&dest) {
        fetch(version, &dest).unwrap_or_else(|e| panic!("could not get procrastinate {version}: {e}"));
    }
    Upstream {
        version: version.to_owned(),
        migrations: dest.join("migrations"),
        schema_sql: dest.join("schema.sql"),
        wheel: dest.join("procrastinate.whl"),
        django: dest.join("django"),
    }
}

fn is_complete(dir: &Path) -> bool {
    dir.join("migrations").is_dir() && dir.join("schema.sql").is_file() && dir.join("procrastinate.whl").is_file()
}

fn fetch(version: &str, dest: &Path) -> Result<(), String> {
    let cache = dest.parent().expect("dest is inside the cache dir");
    fs::create_dir_all(cache).map_err(|e| format!("could not create {}: {e}", cache.display()))?;
    // Staged next to the destination (same filesystem) and renamed into place in one step,
    // so another process never sees a half-extracted release; removed on any failure.
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(cache)
        .map_err(|e| format!("could not create a staging directory in {}: {e}", cache.display()))?;
    let download = staging.path().join("download");
    let wheel = pip_download(version, &download)?;
    extract(&wheel, staging.path())?;
    fs::rename(&wheel, staging.path().join("procrastinate.whl")).map_err(|e| format!("could not keep {}: {e}", wheel.display()))?;
    fs::remove_dir_all(&download).map_err(|e| format!("could not remove {}: {e}", download.display()))?;
    if dest.exists() && !is_complete(dest) {
        // A cache from an older layout of this directory.
        let _ = fs::remove_dir_all(dest);
    }
    if let Err(e) = fs::rename(staging.path(), dest) {
        // Another process (another test binary) got there first: use theirs.
        if !is_complete(dest) {
            return Err(format!(
                "could not move {} to {}: {e} (remove {} and retry)",
                staging.path().display(),
                dest.display(),
                dest.display()
            ));
        }
    }
    Ok(())
}

/// `pip download` of the wheel alone; returns the path of the `.whl`.
fn pip_download(version: &str, dir: &Path) -> Result<PathBuf, String> {
    let spec = format!("procrastinate=={version}");
    let mut failures = Vec::new();
    for pip in [&["pip"][..], &["pip3"], &["python3", "-m", "pip"]] {
        let out = Command::new(pip[0])
            .args(&pip[1..])
            .args(["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"])
            .arg(&spec)
            .arg("-d")
            .arg(dir)
            .output();
        match out {
            Err(e) => failures.push(format!("`{}`: {e}", pip.join(" "))),
            Ok(out) if !out.status.success() => failures.push(format!(
                "`{}` failed ({}):\n{}",
                pip.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            )),
            Ok(_) => {
                let wheel = fs::read_dir(dir)
                    .map_err(|e| format!("could not list {}: {e}", dir.display()))?
                    .filter_map(|entry| Some(entry.ok()?.path()))
                    .find(|path| path.extension().is_some_and(|ext| ext == "whl"));
                return wheel.ok_or_else(|| format!("pip downloaded no .whl into {}", dir.display()));
            }
        }
    }
    Err(format!(
        "pip is needed to download the upstream wheel (install python3-pip, and allow access \
         to PyPI):\n{}",
        failures.join("\n")
    ))
}

/// Copies `procrastinate/sql/migrations/*.sql` (direct children only: not
/// `future_migrations/`, not `__init__.py`) to `<into>/migrations/` and
/// `procrastinate/sql/schema.sql` to `<into>/schema.sql`.
fn extract(wheel: &Path, into: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", wheel.display());
    let file = File::open(wheel).map_err(|e| err(&e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| err(&e))?;
    let migrations = into.join("migrations");
    fs::create_dir_all(&migrations).map_err(|e| err(&e))?;
    fs::create_dir_all(into.join("django")).map_err(|e| err(&e))?;
    let (mut count, mut schema) = (0, false);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| err(&e))?;
        let name = entry.name().to_owned();
        let target = if name == "procrastinate/sql/schema.sql" {
            schema = true;
            into.join("schema.sql")
        } else {
            match name.strip_prefix("procrastinate/sql/migrations/") {
                Some(file) if file.ends_with(".sql") && !file.contains('/') => {
                    count += 1;
                    migrations.join(file)
                }
                _ => match name.strip_prefix("procrastinate/contrib/django/migrations/") {
                    Some(file) if file.ends_with(".py") && !file.contains('/') => into.join("django").join(file),
                    _ => continue,
                },
            }
        };
        let mut out = File::create(&target).map_err(|e| err(&e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| err(&e))?;
    }
    if count == 0 || !schema {
        return Err(err(&"no procrastinate/sql/migrations/*.sql or schema.sql in the wheel"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fetches_procrastinate_3_10_0() {
        let upstream = super::procrastinate("3.10.0");
        assert_eq!(upstream.version, "3.10.0");
        let mut names: Vec<String> = std::fs::read_dir(&upstream.migrations)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        names.sort(); // bytewise
        assert_eq!(names.len(), 38, "{names:#?}");
        assert_eq!(names[0], "00.00.00_01_initial.sql");
        assert_eq!(names[29], "03.00.00_01_pre_cancel_notification.sql");
        assert!(std::fs::metadata(&upstream.schema_sql).unwrap().len() > 0);
        // Cached: a second call reuses the same files.
        assert_eq!(super::procrastinate("3.10.0").migrations, upstream.migrations);
    }
}
