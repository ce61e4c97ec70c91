use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

const ENV: &str = "PROCRASTINATE_PG_BINDIR";

/// Finds the directory holding the PostgreSQL server binaries (`initdb`, `postgres`).
///
/// Order: `$PROCRASTINATE_PG_BINDIR`, then `pg_config --bindir`, then the highest
/// version among Debian/Ubuntu's `/usr/lib/postgresql/<version>/bin` (there
/// `pg_config` often comes from libpq-dev and is missing, or the server is not on PATH).
pub fn find_bindir() -> Result<PathBuf, Error> {
    if let Some(dir) = std::env::var_os(ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        // An explicit setting that is wrong is an error, not a reason to guess.
        return if has_server(&dir) {
            Ok(dir)
        } else {
            Err(Error::msg(format!(
                "{ENV}={} does not contain both `initdb` and `postgres`: point it at the \
                 PostgreSQL server's bin directory (see `pg_config --bindir`)",
                dir.display()
            )))
        };
    }
    if let Some(dir) = from_pg_config() {
        return Ok(dir);
    }
    if let Some(dir) = highest_debian_version(Path::new("/usr/lib/postgresql")) {
        return Ok(dir);
    }
    Err(Error::msg(format!(
        "no PostgreSQL server binaries found: set {ENV}, put pg_config on PATH, \
         or install postgresql (apt-get install postgresql)"
    )))
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

fn from_pg_config() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    has_server(&dir).then_some(dir)
}

/// `<root>/<version>/bin` with the numerically highest version (so 9.6 < 10 < 15 < 16).
fn highest_debian_version(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: Vec<u64> = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<_>>()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_numeric_version() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9.6", "10", "15", "notaversion"] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("initdb"), "").unwrap();
            std::fs::write(bin.join("postgres"), "").unwrap();
        }
        std::fs::create_dir_all(root.path().join("16/bin")).unwrap(); // no binaries: skipped
        assert_eq!(highest_debian_version(root.path()), Some(root.path().join("15/bin")));
    }
}
