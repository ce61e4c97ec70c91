//! Compile a Procrastinate-style SQL migration set into a Rust module, from `build.rs`.
//!
//! ```no_run
//! // build.rs: reads `[package.metadata.procrastinate] migrations = "..."` from Cargo.toml
//! fn main() -> Result<(), procrastinate_build::Error> {
//!     procrastinate_build::compile()
//! }
//! ```
//! ```ignore
//! // src/main.rs
//! mod migrations { procrastinate_migrations::include_migrations!(); }
//! assert_eq!(migrations::HEAD, migrations::MIGRATIONS.last().unwrap().revision);
//! ```
//!
//! The set is read by the same resolver as `cargo procrastinate` ([`MigrationSet::from_dir`]),
//! so a malformed set fails the build with the message the CLI would print.

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use procrastinate_migrations::config::Settings;
use procrastinate_migrations::{Migration, MigrationSet, Phase, SetError};

/// Default name of the generated file in `OUT_DIR`; `include_migrations!()` expects it.
pub const DEFAULT_FILE_NAME: &str = "procrastinate_migrations.rs";

/// Overrides the manifests' `migrations`, as it does for `cargo procrastinate`.
pub const MIGRATIONS_ENV: &str = "PROCRASTINATE_MIGRATIONS";

/// Compiles the set named by the package's (or workspace's) metadata into
/// `$OUT_DIR/procrastinate_migrations.rs`.
pub fn compile() -> Result<(), Error> {
    Builder::new().compile().map(drop)
}

/// Where the set comes from and where the module goes.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    migrations: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    file_name: Option<String>,
    manifest_dir: Option<PathBuf>,
    emit_rerun: bool,
}

impl Builder {
    pub fn new() -> Builder {
        Builder { emit_rerun: true, ..Builder::default() }
    }

    /// The directory of `*.sql` files. By default, as for the CLI: `$PROCRASTINATE_MIGRATIONS`
    /// (relative to the package), else the `migrations` key of
    /// `[package.metadata.procrastinate]`, else `[workspace.metadata.procrastinate]`.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.migrations = Some(dir.into());
        self
    }

    /// Defaults to `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Defaults to [`DEFAULT_FILE_NAME`].
    pub fn file_name(mut self, name: impl Into<String>) -> Builder {
        self.file_name = Some(name.into());
        self
    }

    /// The package whose `Cargo.toml` names the set; defaults to `$CARGO_MANIFEST_DIR`.
    pub fn manifest_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.manifest_dir = Some(dir.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines (on by default; off outside build.rs).
    pub fn emit_rerun_if_changed(mut self, yes: bool) -> Builder {
        self.emit_rerun = yes;
        self
    }

    /// Writes the module (only when its content changed) and returns its path.
    pub fn compile(self) -> Result<PathBuf, Error> {
        let dir = match self.migrations.clone() {
            Some(dir) => dir,
            None => {
                let manifest_dir = match &self.manifest_dir {
                    Some(d) => d.clone(),
                    None => env_path("CARGO_MANIFEST_DIR")?,
                };
                if self.emit_rerun {
                    println!("cargo:rerun-if-env-changed={MIGRATIONS_ENV}");
                }
                match std::env::var_os(MIGRATIONS_ENV).filter(|v| !v.is_empty()) {
                    // The environment beats the manifests, as it does for the CLI.
                    Some(dir) => manifest_dir.join(dir),
                    None => {
                        self.rerun(&manifest_dir.join("Cargo.toml"));
                        migrations_from_manifests(&manifest_dir, self.emit_rerun)?
                    }
                }
            }
        };
        // A directory: cargo rescans it, so an added or edited file triggers a rebuild.
        self.rerun(&dir);
        let set = MigrationSet::from_dir(&dir).map_err(Error::Set)?;
        let out_dir = match self.out_dir {
            Some(d) => d,
            None => env_path("OUT_DIR")?,
        };
        let out = out_dir.join(self.file_name.as_deref().unwrap_or(DEFAULT_FILE_NAME));
        let code = generate(&set);
        // Write only when changed, so an unchanged set does not recompile the crate.
        if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&out, code).map_err(|e| Error::Io(format!("cannot write {}: {e}", out.display())))?;
        }
        Ok(out)
    }

    fn rerun(&self, path: &Path) {
        if self.emit_rerun {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Why the module could not be generated. `Debug` prints the same text as `Display`, so that a
/// `build.rs` returning `Result<(), Error>` fails with a readable message.
pub enum Error {
    /// The set is malformed: the resolver's message, naming each file.
    Set(SetError),
    /// The metadata is missing or wrong: names the manifest and the key.
    Config(String),
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Set(e) => write!(f, "{e}"),
            Error::Config(s) | Error::Io(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

fn env_path(var: &str) -> Result<PathBuf, Error> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .ok_or_else(|| Error::Config(format!("${var} is not set: call procrastinate-build from build.rs, or set the directory on the Builder")))
}

/// `migrations` from the package manifest, else from the nearest workspace manifest above it;
/// each relative to the manifest that sets it.
fn migrations_from_manifests(manifest_dir: &Path, emit_rerun: bool) -> Result<PathBuf, Error> {
    let package = read_settings(&manifest_dir.join("Cargo.toml"), "package")?;
    if let Some(dir) = package.and_then(|s| s.migrations) {
        return Ok(manifest_dir.join(dir));
    }
    for ancestor in manifest_dir.ancestors().skip(1) {
        let manifest = ancestor.join("Cargo.toml");
        if manifest.is_file() {
            if let Some(dir) = read_settings(&manifest, "workspace")?.and_then(|s| s.migrations) {
                if emit_rerun {
                    println!("cargo:rerun-if-changed={}", manifest.display());
                }
                return Ok(ancestor.join(dir));
            }
        }
    }
    Err(Error::Config(format!(
        "no migration directory: set `migrations = \"...\"` under [package.metadata.procrastinate] in {}, \
         or call procrastinate_build::Builder::new().migrations(dir)",
        manifest_dir.join("Cargo.toml").display()
    )))
}

/// `[<section>.metadata.procrastinate]` of one manifest, checked for unknown keys.
fn read_settings(manifest: &Path, section: &str) -> Result<Option<Settings>, Error> {
    let text = match std::fs::read_to_string(manifest) {
        Ok(text) => text,
        Err(e) => return Err(Error::Io(format!("cannot read {}: {e}", manifest.display()))),
    };
    let doc: toml::Table = toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", manifest.display())))?;
    let Some(table) = doc.get(section).and_then(|s| s.get("metadata")).and_then(|m| m.get("procrastinate")) else {
        return Ok(None);
    };
    table.clone().try_into::<Settings>().map(Some).map_err(|e| {
        Error::Config(format!("{}: [{section}.metadata.procrastinate]: {e}", manifest.display()))
    })
}

/// The module text: deterministic (revision order, no timestamps), with an `@generated` header.
pub fn generate(set: &MigrationSet) -> String {
    let pm = "::procrastinate_migrations";
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by procrastinate-build from the migration set in {:?}.\n\
         // Do not edit: change the SQL files and rebuild.\n",
        set.dir.display().to_string()
    );
    let names: Vec<String> = set.migrations.iter().map(const_name).collect();
    for (m, name) in set.migrations.iter().zip(&names) {
        let path = std::fs::canonicalize(set.dir.join(&*m.file_name)).unwrap_or_else(|_| set.dir.join(&*m.file_name));
        let bytes: Vec<String> = m.checksum.0.iter().map(|b| format!("0x{b:02x}")).collect();
        let _ = writeln!(
            out,
            "/// `{file}` ({phase}, release {version})\n\
             pub const {name}: {pm}::Migration = {pm}::Migration {{\n    \
             revision: {pm}::Revision::new({rev}),\n    \
             version: {pm}::Version {{ major: {maj}, minor: {min}, patch: {pat} }},\n    \
             serial: {serial},\n    \
             phase: {pm}::Phase::{phase_variant},\n    \
             description: ::std::borrow::Cow::Borrowed({desc:?}),\n    \
             file_name: ::std::borrow::Cow::Borrowed({file:?}),\n    \
             checksum: {pm}::Checksum([{bytes}]),\n    \
             sql: ::std::borrow::Cow::Borrowed(include_str!({path:?})),\n}};\n",
            file = m.file_name,
            phase = m.phase,
            version = m.version,
            rev = m.revision.number(),
            maj = m.version.major,
            min = m.version.minor,
            pat = m.version.patch,
            serial = m.serial,
            phase_variant = match m.phase {
                Phase::Pre => "Pre",
                Phase::Post => "Post",
                Phase::Unmarked => "Unmarked",
            },
            desc = m.description,
            bytes = bytes.join(", "),
            path = path.display().to_string(),
        );
    }
    let _ = writeln!(out, "/// Every migration, in revision order.\npub const MIGRATIONS: &[{pm}::Migration] = &[");
    for name in &names {
        let _ = writeln!(out, "    {name},");
    }
    let _ = writeln!(
        out,
        "];\n\n/// The last revision: what the database must be at for this build.\n\
         pub const HEAD: {pm}::Revision = {pm}::Revision::new({});",
        set.head().number()
    );
    out
}

/// `REV_0030_PRE_CANCEL_NOTIFICATION`.
fn const_name(m: &Migration) -> String {
    let phase = match m.phase {
        Phase::Pre => "PRE_",
        Phase::Post => "POST_",
        Phase::Unmarked => "",
    };
    format!("REV_{}_{phase}{}", m.revision, m.description.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, sql) in files {
            std::fs::write(dir.join(name), sql).unwrap();
        }
    }

    #[test]
    fn generates_typed_constants_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[("03.00.00_50_post_b.sql", "SELECT 2;"), ("03.00.00_01_pre_b.sql", "SELECT 1;")]);
        let set = MigrationSet::from_dir(tmp.path()).unwrap();
        let code = generate(&set);
        assert!(code.starts_with("// @generated by procrastinate-build"));
        let a = code.find("pub const REV_0001_PRE_B:").unwrap();
        let b = code.find("pub const REV_0002_POST_B:").unwrap();
        assert!(a < b);
        assert!(code.contains("pub const HEAD: ::procrastinate_migrations::Revision = ::procrastinate_migrations::Revision::new(2);"));
        assert_eq!(code, generate(&MigrationSet::from_dir(tmp.path()).unwrap()), "deterministic");
    }

    #[test]
    fn writes_only_when_changed_and_reads_package_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let pkg = tmp.path();
        std::fs::create_dir(pkg.join("sql")).unwrap();
        write(&pkg.join("sql"), &[("01.00.00_01_a.sql", "SELECT 1;")]);
        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"x\"\n[package.metadata.procrastinate]\nmigrations = \"sql\"\n").unwrap();
        let build = || Builder::new().manifest_dir(pkg).out_dir(pkg).emit_rerun_if_changed(false).compile();
        let out = build().unwrap();
        let mtime = std::fs::metadata(&out).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        build().unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), mtime, "unchanged output is not rewritten");

        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"x\"\n[package.metadata.procrastinate]\nmigratoins = \"sql\"\n").unwrap();
        let err = build().unwrap_err().to_string();
        assert!(err.contains("unknown field `migratoins`"), "{err}");
    }

    #[test]
    fn a_malformed_set_fails_with_the_resolver_message() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), &[("03.00.00_01_Pre-Thing.sql", "SELECT 1;")]);
        let err = Builder::new().migrations(tmp.path()).out_dir(tmp.path()).emit_rerun_if_changed(false).compile().unwrap_err();
        assert_eq!(err.to_string(), MigrationSet::from_dir(tmp.path()).unwrap_err().to_string());
        assert!(format!("{err:?}").contains("03.00.00_01_Pre-Thing.sql"));
    }
}
