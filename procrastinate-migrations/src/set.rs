//! The resolver: one directory of `*.sql` files in, one ordered, validated set out.
//!
//! `procrastinate-build` and `cargo procrastinate` both call [`MigrationSet::from_dir`], so a
//! set that fails the build fails the CLI with the same words, and vice versa.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::diagnostic::Excerpt;
use crate::lexer;
use crate::migration::{Checksum, Migration, Revision};
use crate::name;

/// The largest migration file read (64 MiB): far above any schema change, and a clear error
/// instead of memory running out on a link to `/dev/zero`.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// A validated migration set, in revision order (`migrations[0]` is `0001`).
#[derive(Clone, Debug)]
pub struct MigrationSet {
    /// The directory the files were read from, as given.
    pub dir: PathBuf,
    /// Never empty: a directory without migrations is a [`SetError`].
    pub migrations: Vec<Migration>,
}

/// A set as an application embeds it: `procrastinate-build` generates one `SET` per configured
/// set, and `SETS` lists them in application order. `const`-constructible.
#[derive(Clone, Copy, Debug)]
pub struct SetDef {
    /// `None` for the one set of a plain `migrations = "dir"`.
    pub name: Option<&'static str>,
    /// The set's migrations, in revision order (the generated `MIGRATIONS`).
    pub migrations: &'static [Migration],
    /// The `schema` setting (`None`: the server's `search_path`).
    pub schema: Option<&'static str>,
    /// The `version-table` setting.
    pub version_table: &'static str,
    /// The database states this build runs on, computed at build time.
    pub window: crate::compat::Window,
}

/// A set that cannot be used, with every problem found (not just the first), each naming its file.
#[derive(Debug)]
pub struct SetError {
    /// The directory of the set, as given.
    pub dir: PathBuf,
    /// Never empty.
    pub problems: Vec<Problem>,
}

/// One thing wrong with a set: a file's name or content, or the directory itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File name within the directory, or `None` for a problem with the directory itself.
    pub file: Option<String>,
    /// 1-based line, when the problem is inside the file.
    pub line: Option<usize>,
    /// What is wrong and, where it helps, how to fix it (without the file name).
    pub message: String,
    /// The lines around `line`, when the file is text.
    pub excerpt: Option<Excerpt>,
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid migration set in {}:", self.dir.display())?;
        for p in &self.problems {
            match (&p.file, p.line) {
                (Some(file), Some(line)) => {
                    write!(f, "\n  {file}:{line}: {}", p.message)?;
                    if let Some(excerpt) = &p.excerpt {
                        write!(f, "\n    {}", excerpt.to_string().replace('\n', "\n    "))?;
                    }
                }
                (Some(file), None) => write!(f, "\n  {file}: {}", p.message)?,
                (None, _) => write!(f, "\n  {}", p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for SetError {}

impl MigrationSet {
    /// Reads `*.sql` directly in `dir` (not recursive: `future_migrations/` is never a part of
    /// it), skipping other files (`__init__.py`) and hidden ones (editor swap files).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<MigrationSet, SetError> {
        let dir = dir.as_ref().to_path_buf();
        let fail = |message: String| SetError {
            dir: dir.clone(),
            problems: vec![Problem {
                file: None,
                line: None,
                message,
                excerpt: None,
            }],
        };
        let entries =
            std::fs::read_dir(&dir).map_err(|e| fail(format!("cannot read the directory: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| fail(format!("cannot read the directory: {e}")))?;
            let file_name = entry.file_name();
            let raw = file_name.as_encoded_bytes();
            if raw.starts_with(b".") {
                continue;
            }
            // `x.SQL` would be skipped where `x.sql` runs: say so rather than skip it.
            if !raw.ends_with(b".sql") {
                if raw.len() >= 4 && raw[raw.len() - 4..].eq_ignore_ascii_case(b".sql") {
                    return Err(fail(format!(
                        "{} ends in `{}`: migration files end in `.sql`, in lower case (rename it, or move it out)",
                        file_name.to_string_lossy(),
                        String::from_utf8_lossy(&raw[raw.len() - 4..])
                    )));
                }
                // Only SQL files are the set's business: a stray non-UTF-8 name elsewhere is not.
                continue;
            }
            let Some(file_name) = file_name.to_str() else {
                return Err(fail(format!("file name {:?} is not UTF-8", entry.file_name())));
            };
            // Anything but a regular file named like a migration (a directory, a FIFO that would
            // block the read, a link to a device) is a mistake to say, not to read or skip.
            let meta = std::fs::metadata(entry.path()).map_err(|e| fail(format!("cannot read {file_name}: {e}")))?;
            if meta.is_dir() {
                return Err(fail(format!("{file_name} is a directory, not a migration file")));
            }
            if !meta.is_file() {
                return Err(fail(format!("{file_name} is not a regular file (a FIFO, a socket or a device?): a migration is a file")));
            }
            if meta.len() > MAX_FILE_BYTES {
                return Err(fail(format!("{file_name} is {} bytes: a migration file holds at most {MAX_FILE_BYTES} bytes", meta.len())));
            }
            let mut bytes = Vec::with_capacity(meta.len() as usize);
            {
                use std::io::Read;
                // Bounded even if the file grows while it is read.
                std::fs::File::open(entry.path())
                    .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
                    .map_err(|e| fail(format!("cannot read {file_name}: {e}")))?;
            }
            if bytes.len() as u64 > MAX_FILE_BYTES {
                return Err(fail(format!("{file_name} grew past {MAX_FILE_BYTES} bytes while it was read")));
            }
            files.push((file_name.to_string(), bytes));
        }
        Self::from_files(dir, files)
    }

    /// Builds a set from `(file name, content)` pairs; [`from_dir`](Self::from_dir) without the I/O.
    pub fn from_files(dir: PathBuf, mut files: Vec<(String, Vec<u8>)>) -> Result<MigrationSet, SetError> {
        // Bytewise order of names is the order of the set (not locale order, not version order).
        files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut problems = Vec::new();
        // Down files (`NAME.down.sql`) reverse the migration `NAME.sql`; they are not migrations.
        let (downs, files): (Vec<_>, Vec<_>) = files.into_iter().partition(|(n, _)| n.ends_with(crate::migration::DOWN_SUFFIX));
        let mut downs: HashMap<String, (String, Vec<u8>)> =
            downs.into_iter().map(|(n, b)| (format!("{}.sql", n.trim_end_matches(crate::migration::DOWN_SUFFIX)), (n, b))).collect();
        let mut seen: HashMap<(crate::Version, u8), String> = HashMap::new();
        // Two branches that each took the next serial of a release, merged: (first, second).
        let mut duplicates: Vec<(String, String, crate::Version, crate::Phase)> = Vec::new();
        let mut migrations = Vec::with_capacity(files.len());
        for (index, (file_name, bytes)) in files.into_iter().enumerate() {
            let mut problem = |line: Option<usize>, message: String| {
                problems.push(Problem {
                    file: Some(file_name.clone()),
                    line,
                    message,
                    excerpt: None,
                })
            };
            let parsed = match name::parse(&file_name) {
                Ok(parsed) => parsed,
                Err(message) => {
                    problem(None, message);
                    continue;
                }
            };
            if let Some(first) = seen.insert((parsed.version, parsed.serial), file_name.clone()) {
                duplicates.push((first, file_name.clone(), parsed.version, parsed.phase));
            }
            if let Some(offset) = bytes.iter().position(|&b| b == 0) {
                // PostgreSQL takes no NUL in a query: say so now, not halfway through a deploy.
                let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
                problem(Some(line), format!("a NUL byte (offset {offset}): SQL text cannot hold one"));
                continue;
            }
            let sql = match String::from_utf8(bytes) {
                // A byte-order mark is not SQL: the server would choke on it.
                Ok(sql) => match sql.strip_prefix('\u{feff}') {
                    Some(rest) => rest.to_string(),
                    None => sql,
                },
                Err(e) => {
                    let offset = e.utf8_error().valid_up_to();
                    let line = lexer::line_of(&String::from_utf8_lossy(e.as_bytes()), offset);
                    problem(Some(line), format!("not UTF-8 (invalid byte at offset {offset})"));
                    continue;
                }
            };
            for (key, value, line) in crate::config::file_header(&sql) {
                let zero = (key == "statement-timeout").then_some("no limit");
                if let Err(e) = crate::config::parse_timeout(key, value, zero) {
                    problem(Some(line), format!("header {e}"));
                }
            }
            let not_written = sql.lines().any(|l| l.trim() == crate::migration::NOT_WRITTEN);
            match lexer::statements(&sql) {
                // `new`'s marker: a file waiting for its SQL is part of the set (upgrade refuses it).
                Ok(statements) if statements.is_empty() && not_written => {}
                Ok(statements) if statements.is_empty() => {
                    problem(None, "empty: the file holds no SQL statement".into());
                }
                Ok(statements) if statements.len() > 1 && sql.lines().next().is_some_and(|l| l.trim() == crate::migration::NO_TRANSACTION) => {
                    problem(
                        Some(statements[1].line),
                        "a `-- no-transaction` file holds one statement only (each runs on its own, outside any transaction): \
                         put the others in files of their own"
                            .into(),
                    );
                }
                Ok(_) => {}
                Err(e) => problem(Some(e.line), e.message),
            }
            // The file is text: show where in it.
            for p in problems
                .iter_mut()
                .filter(|p| p.file.as_deref() == Some(file_name.as_str()) && p.excerpt.is_none())
            {
                p.excerpt = p.line.map(|line| Excerpt::at_line(&sql, line));
            }
            let down = match downs.remove(&file_name) {
                None => None,
                Some((down_name, bytes)) => match String::from_utf8(bytes) {
                    Ok(down) => match lexer::statements(&down) {
                        Ok(_) => Some(Cow::Owned(down.strip_prefix('\u{feff}').unwrap_or(&down).to_string())),
                        Err(e) => {
                            problems.push(Problem { file: Some(down_name), line: Some(e.line), message: e.message, excerpt: Some(Excerpt::at_line(&down, e.line)) });
                            None
                        }
                    },
                    Err(_) => {
                        problems.push(Problem { file: Some(down_name), line: None, message: "not UTF-8".into(), excerpt: None });
                        None
                    }
                },
            };
            migrations.push(Migration {
                down,
                revision: Revision::new(index as u32 + 1),
                version: parsed.version,
                serial: parsed.serial,
                phase: parsed.phase,
                description: Cow::Owned(parsed.description.to_string()),
                file_name: Cow::Owned(file_name.clone()),
                checksum: Checksum::of_text(&sql),
                sql: Cow::Owned(sql),
            });
        }
        // A down file reverses a migration of the set, or it is a mistake.
        let mut orphans: Vec<(String, (String, Vec<u8>))> = downs.into_iter().collect();
        orphans.sort();
        for (up, (down_name, _)) in orphans {
            problems.push(Problem {
                file: Some(down_name),
                line: None,
                message: format!("a down file without its migration: `{up}` is not in the set (down files are named after the file they reverse)"),
                excerpt: None,
            });
        }
        // Which file to rename, and to what: the second of the two, to the next serial of its
        // release and phase that no file takes.
        for (first, second, version, phase) in duplicates {
            let taken: Vec<u8> = seen.keys().filter(|(v, _)| *v == version).map(|(_, s)| *s).collect();
            let (lo, hi) = if phase == crate::Phase::Post { (50, 99) } else { (1, 49) };
            let free = taken.iter().filter(|s| (lo..=hi).contains(*s)).max().map_or(lo, |s| s + 1);
            let parsed = name::parse(&second).expect("parsed above");
            let marker = match parsed.phase {
                crate::Phase::Pre => "pre_",
                crate::Phase::Post => "post_",
                crate::Phase::Unmarked => "",
            };
            let message = if free <= hi {
                let new_name = format!("{version}_{free:02}_{marker}{}.sql", parsed.description);
                format!(
                    "duplicate version and serial {version}_{:02}: also used by {first} (two branches took the same serial?): \
                     rename `{second}` to `{new_name}`; a database that applied it under its old name then needs \
                     `cargo procrastinate repair`",
                    parsed.serial
                )
            } else {
                format!("duplicate version and serial {version}_{:02}: also used by {first}, and release {version} has no free serial left", parsed.serial)
            };
            problems.push(Problem { file: Some(second), line: None, message, excerpt: None });
        }
        if migrations.is_empty() && problems.is_empty() {
            problems.push(Problem {
                file: None,
                line: None,
                message: "no migration files (`*.sql`) in this directory".into(),
                excerpt: None,
            });
        }
        if problems.is_empty() {
            Ok(MigrationSet { dir, migrations })
        } else {
            Err(SetError { dir, problems })
        }
    }

    /// The last revision.
    pub fn head(&self) -> Revision {
        self.migrations.last().expect("a set is never empty").revision
    }

    /// The migration at `revision`, if the set goes that far.
    pub fn get(&self, revision: Revision) -> Option<&Migration> {
        self.migrations.get(revision.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Phase;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, SetError> {
        let files = files.iter().map(|(n, s)| (n.to_string(), s.as_bytes().to_vec())).collect();
        MigrationSet::from_files(PathBuf::from("sql/x"), files)
    }

    #[test]
    fn orders_bytewise_and_numbers_from_0001() {
        let s = set(&[
            ("03.00.00_50_post_b.sql", "SELECT 2;"),
            ("00.10.00_01_a.sql", "SELECT 0;"),
            ("03.00.00_01_pre_b.sql", "SELECT 1;"),
        ])
        .unwrap();
        let got: Vec<_> = s.migrations.iter().map(|m| (m.revision.to_string(), m.file_name.to_string(), m.phase)).collect();
        assert_eq!(
            got,
            [
                ("0001".into(), "00.10.00_01_a.sql".into(), Phase::Unmarked),
                ("0002".into(), "03.00.00_01_pre_b.sql".into(), Phase::Pre),
                ("0003".into(), "03.00.00_50_post_b.sql".into(), Phase::Post),
            ]
        );
        assert_eq!(s.head().to_string(), "0003");
        assert_eq!(s.migrations[0].checksum, Checksum::of(b"SELECT 0;"));
    }

    #[test]
    fn reports_every_problem_with_its_file() {
        let err = set(&[
            ("03.00.00_01_pre_ok.sql", "SELECT 1;"),
            ("03.00.00_01_pre_dup.sql", "SELECT 1;"),
            ("03.00.00_02_pre_empty.sql", "  -- nothing\n"),
            ("bad name.sql", "SELECT 1;"),
            ("03.00.00_03_pre_tx.sql", "SELECT 1;\nCOMMIT;"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("invalid migration set in sql/x:"), "{text}");
        assert!(text.contains("03.00.00_01_pre_ok.sql: duplicate version and serial 03.00.00_01: also used by 03.00.00_01_pre_dup.sql"), "{text}");
        assert!(text.contains("03.00.00_02_pre_empty.sql: empty"), "{text}");
        assert!(text.contains("bad name.sql: malformed name"), "{text}");
        assert!(text.contains("03.00.00_03_pre_tx.sql:2: top-level `COMMIT`"), "{text}");
        assert_eq!(err.problems.len(), 4);
    }

    #[test]
    fn rejects_non_utf8_with_its_line() {
        let files = vec![("01.00.00_01_x.sql".to_string(), b"SELECT 1;\nSELECT '\xff';".to_vec())];
        let err = MigrationSet::from_files(PathBuf::from("d"), files).unwrap_err();
        assert_eq!(err.problems[0].line, Some(2));
        assert!(err.to_string().contains("not UTF-8"));
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("future_migrations")).unwrap();
        std::fs::write(dir.join("future_migrations/01.00.00_01_x.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.join("__init__.py"), "").unwrap();
        let err = MigrationSet::from_dir(&dir).unwrap_err();
        assert!(err.to_string().contains("no migration files"), "{err}");
        std::fs::write(dir.join("01.00.00_01_x.sql"), "SELECT 1;").unwrap();
        assert_eq!(MigrationSet::from_dir(&dir).unwrap().migrations.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pm-set-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
