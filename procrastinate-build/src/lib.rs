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
//!
//! [`Builder`] sets what `compile()` reads from cargo's environment; the module it writes is
//! `@generated` and rewritten only when its content changes:
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let sql = dir.path().join("db");
//! std::fs::create_dir(&sql)?;
//! std::fs::write(sql.join("01.00.00_01_pre_create_orders.sql"), "CREATE TABLE orders (id bigint);")?;
//! let module = procrastinate_build::Builder::new()
//!     .migrations(&sql)
//!     .out_dir(dir.path())
//!     .manifest_dir(dir.path())
//!     .emit_rerun_if_changed(false)
//!     .compile()?;
//! let code = std::fs::read_to_string(&module)?;
//! assert!(code.contains("@generated"));
//! assert!(code.contains("REV_0001_PRE_CREATE_ORDERS"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use procrastinate_migrations::config::{self, Settings};
use procrastinate_migrations::tracking::TrackingTable;
use procrastinate_migrations::{Migration, MigrationSet, Phase, SetError};

/// Default name of the generated file in `OUT_DIR`; `include_migrations!()` expects it.
pub const DEFAULT_FILE_NAME: &str = "procrastinate_migrations.rs";

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
    database_check: DatabaseCheck,
}

/// Set to a database URL, the build checks that database against the compiled sets, with the
/// verdict an application's start-up check would give (needs the `database` feature). Unset,
/// nothing is read from the environment.
pub const BUILD_DATABASE_URL: &str = "PROCRASTINATE_BUILD_DATABASE_URL";

/// What an incompatible database at [`BUILD_DATABASE_URL`] does to the build.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DatabaseCheck {
    /// The build fails with what is wrong (the default).
    #[default]
    Fail,
    /// The build goes on; what is wrong is printed as a `cargo:warning`.
    Warn,
}

/// Checks the database at `url` against the sets about to be embedded.
#[cfg(feature = "database")]
fn check_database(url: &str, sets: &[GenSet<'_>]) -> Result<(), Error> {
    use procrastinate_migrations::{compat::Window, db, SetDef};
    // Build scripts end right after: leaking gives the 'static data the generated module has.
    let defs: Vec<SetDef> = sets
        .iter()
        .map(|g| SetDef {
            name: g.name.map(|n| &*Box::leak(n.to_string().into_boxed_str())),
            migrations: Box::leak(g.set.migrations.clone().into_boxed_slice()),
            schema: g.schema.map(|s| &*Box::leak(s.to_string().into_boxed_str())),
            version_table: Box::leak(g.version_table.to_string().into_boxed_str()),
            window: Window::of(&g.set.migrations),
        })
        .collect();
    // The CLI's parser and libpq's rules (service, PG* variables, password file); the URL is
    // never quoted back: it may hold a password.
    use procrastinate_migrations::conninfo;
    let bad = |e: String| Error::Database(format!("{BUILD_DATABASE_URL}: {e}"));
    let env = |k: &str| std::env::var(k).ok();
    let params = conninfo::resolve(conninfo::parse(url).map_err(bad)?, &env, &[("connect_timeout", "10"), ("fallback_application_name", "procrastinate-build")])
        .map_err(bad)?;
    if matches!(params.get("sslmode"), Some("require" | "verify-ca" | "verify-full")) {
        return Err(bad("the build-time check connects without TLS; give sslmode=disable or prefer (or check with `cargo procrastinate check --compatible`)".into()));
    }
    let config = params.config().map_err(bad)?;
    let mut client = db::Conn::connect(&config, postgres::NoTls, std::time::Duration::from_secs(30))
        .map_err(|e| Error::Database(format!("cannot connect to {BUILD_DATABASE_URL} ({}): {e}", params.display())))?;
    db::verify_sets(&mut client, &defs)
        .map(drop)
        .map_err(|e| Error::Database(format!("the database at {BUILD_DATABASE_URL}: {e}")))
}

#[cfg(not(feature = "database"))]
fn check_database(_url: &str, _sets: &[GenSet<'_>]) -> Result<(), Error> {
    println!("cargo:warning={BUILD_DATABASE_URL} is set but procrastinate-build was built without its `database` feature: nothing was checked");
    Ok(())
}

impl Builder {
    /// Everything from the package's metadata and cargo's environment, printing
    /// `cargo:rerun-if-changed` lines: what [`compile()`](crate::compile) uses.
    pub fn new() -> Builder {
        Builder { emit_rerun: true, ..Builder::default() }
    }

    /// The directory of `*.sql` files; by default the `migrations` key of
    /// `[package.metadata.procrastinate]`, else `[workspace.metadata.procrastinate]`. (Not the
    /// environment: what a binary embeds should not depend on a variable set for the CLI.)
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
        // The manifests also give the sets' `schema` and `version-table`, which the module
        // carries so that the application checks the same tracking table the CLI writes.
        let manifest_dir = match &self.manifest_dir {
            Some(d) => Some(d.clone()),
            None => std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        };
        let mut settings = match &manifest_dir {
            Some(d) => manifest_settings(d, self.emit_rerun)?,
            None => Settings::default(),
        };
        if let Some(dir) = &self.migrations {
            settings = settings.overlay(Settings { migrations: Some(dir.to_string_lossy().into_owned().into()), ..Settings::default() });
        }
        let specs = config::set_specs(&settings).map_err(Error::Config)?.ok_or_else(|| {
            Error::Config(format!(
                "no migration directory: set `migrations = \"...\"` (or `sets = [...]`) under [package.metadata.procrastinate] \
                 in {}, or call procrastinate_build::Builder::new().migrations(dir)",
                manifest_dir.clone().unwrap_or_default().join("Cargo.toml").display()
            ))
        })?;
        let mut sets = Vec::with_capacity(specs.len());
        for spec in &specs {
            let of = spec.name.as_ref().map(|n| format!(" of set `{n}`")).unwrap_or_default();
            TrackingTable::new(&spec.version_table, spec.schema.as_deref())
                .map_err(|e| Error::Config(format!("setting `version-table`{of}: {e}")))?;
            // A directory: cargo rescans it, so an added or edited file triggers a rebuild.
            self.rerun(&spec.migrations);
            sets.push(MigrationSet::from_dir(&spec.migrations).map_err(Error::Set)?);
        }
        let out_dir = match self.out_dir {
            Some(d) => d,
            None => env_path("OUT_DIR")?,
        };
        let out = out_dir.join(self.file_name.as_deref().unwrap_or(DEFAULT_FILE_NAME));
        let gen: Vec<GenSet<'_>> = specs
            .iter()
            .zip(&sets)
            .map(|(spec, set)| GenSet { name: spec.name.as_deref(), set, schema: spec.schema.as_deref(), version_table: &spec.version_table })
            .collect();
        let code = generate(&gen);
        // Write only when changed, so an unchanged set does not recompile the crate.
        if std::fs::read_to_string(&out).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&out, code).map_err(|e| Error::Io(format!("cannot write {}: {e}", out.display())))?;
        }
        // The one variable the build reads, and only to check a database, never to decide
        // what the binary embeds.
        if self.emit_rerun {
            println!("cargo:rerun-if-env-changed={BUILD_DATABASE_URL}");
        }
        if let Some(url) = std::env::var(BUILD_DATABASE_URL).ok().filter(|u| !u.is_empty()) {
            if self.emit_rerun {
                // The database changes without any file changing: while the variable is set,
                // the check runs on every build (cargo reruns a build script that names a path
                // that does not exist).
                let never = out_dir.join("procrastinate-build-database-check.never-exists");
                println!("cargo:rerun-if-changed={}", never.display());
            }
            match check_database(&url, &gen) {
                Ok(()) => {}
                Err(e) if self.database_check == DatabaseCheck::Warn => println!("cargo:warning={}", e.to_string().replace('\n', " ")),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Whether an incompatible database (see [`BUILD_DATABASE_URL`]) fails the build (the
    /// default) or only warns.
    pub fn database_check(mut self, mode: DatabaseCheck) -> Builder {
        self.database_check = mode;
        self
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
    /// The module could not be written: names the file.
    Io(String),
    /// The database at [`BUILD_DATABASE_URL`] does not suit the build (or cannot be read).
    Database(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Set(e) => write!(f, "{e}"),
            Error::Config(s) | Error::Io(s) | Error::Database(s) => f.write_str(s),
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

/// The workspace's settings (of the nearest manifest at or above with `[workspace]`) overlaid
/// by the package's, directories made absolute: the same reader as the CLI's.
fn manifest_settings(manifest_dir: &Path, emit_rerun: bool) -> Result<Settings, Error> {
    let manifest = manifest_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Ok(Settings::default());
    }
    let (layers, read) = procrastinate_migrations::manifest::package_layers(&manifest).map_err(Error::Config)?;
    if emit_rerun {
        for m in read {
            println!("cargo:rerun-if-changed={}", m.display());
        }
    }
    Ok(layers.into_iter().fold(Settings::default(), |acc, l| acc.overlay(l.settings)))
}

/// One set to generate: a plain `migrations = "dir"` set (`name: None`) becomes top-level items,
/// a named set a module of that name.
pub struct GenSet<'a> {
    /// The set's name; `None` for the one set of a plain `migrations = "dir"`.
    pub name: Option<&'a str>,
    /// The resolved migrations.
    pub set: &'a MigrationSet,
    /// The settings the application should check with.
    pub schema: Option<&'a str>,
    /// The tracking table, as the `version-table` setting gives it.
    pub version_table: &'a str,
}

/// The module text: deterministic (set and revision order, no timestamps), with an `@generated`
/// header. Per set: a `REV_...` constant per migration, `MIGRATIONS`, `HEAD`, `SCHEMA`,
/// `VERSION_TABLE` and `SET`; then `SETS`, every set in application order.
pub fn generate(sets: &[GenSet<'_>]) -> String {
    let pm = "::procrastinate_migrations";
    let mut out = String::new();
    let dirs: Vec<String> = sets.iter().map(|g| format!("{:?}", g.set.dir.display().to_string())).collect();
    let _ = writeln!(
        out,
        "// @generated by procrastinate-build from the migration sets in {}.\n\
         // Do not edit: change the SQL files and rebuild.\n",
        dirs.join(", ")
    );
    let mut paths = Vec::new();
    for g in sets {
        let items = set_items(g, pm);
        match g.name {
            None => {
                out.push_str(&items);
                paths.push("SET".to_string());
            }
            Some(name) => {
                let module = rust_ident(name);
                let _ = writeln!(out, "/// The migration set `{name}`.\n#[allow(dead_code)]\npub mod {module} {{");
                for line in items.lines() {
                    if line.is_empty() {
                        out.push('\n');
                    } else {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                let _ = writeln!(out, "}}\n");
                paths.push(format!("{module}::SET"));
            }
        }
    }
    let _ = write!(
        out,
        "/// Every set, in the order they are applied: what `db::verify_sets` checks at start-up.\n\
         #[allow(dead_code)]\npub const SETS: &[{pm}::SetDef] = &[{}];\n",
        paths.join(", ")
    );
    out
}

/// The items of one set, unindented.
fn set_items(g: &GenSet<'_>, pm: &str) -> String {
    let mut out = String::new();
    let set = g.set;
    let window = procrastinate_migrations::compat::Window::of(&set.migrations);
    let names: Vec<String> = set.migrations.iter().map(const_name).collect();
    for (m, name) in set.migrations.iter().zip(&names) {
        let path = std::fs::canonicalize(set.dir.join(&*m.file_name)).unwrap_or_else(|_| set.dir.join(&*m.file_name));
        let bytes: Vec<String> = m.checksum.0.iter().map(|b| format!("0x{b:02x}")).collect();
        let _ = writeln!(
            out,
            "/// `{file}` ({phase}, release {version})\n\
             #[allow(dead_code)]\n\
             pub const {name}: {pm}::Migration = {pm}::Migration {{\n    \
             revision: {pm}::Revision::new({rev}),\n    \
             version: {pm}::Version {{ major: {maj}, minor: {min}, patch: {pat} }},\n    \
             serial: {serial},\n    \
             phase: {pm}::Phase::{phase_variant},\n    \
             description: ::std::borrow::Cow::Borrowed({desc:?}),\n    \
             file_name: ::std::borrow::Cow::Borrowed({file:?}),\n    \
             checksum: {pm}::Checksum([{bytes}]),\n    \
             sql: ::std::borrow::Cow::Borrowed(include_str!({path:?})),\n    \
             down: {down},\n}};\n",
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
            down = match &m.down {
                Some(_) => {
                    let name = format!("{}{}", m.file_name.trim_end_matches(".sql"), procrastinate_migrations::DOWN_SUFFIX);
                    let down = std::fs::canonicalize(set.dir.join(&name)).unwrap_or_else(|_| set.dir.join(&name));
                    format!("::std::option::Option::Some(::std::borrow::Cow::Borrowed(include_str!({:?})))", down.display().to_string())
                }
                None => "::std::option::Option::None".to_string(),
            },
        );
    }
    let _ = writeln!(out, "/// Every migration, in revision order.\n#[allow(dead_code)]\npub const MIGRATIONS: &[{pm}::Migration] = &[");
    for name in &names {
        let _ = writeln!(out, "    {name},");
    }
    let _ = writeln!(
        out,
        "];\n\n/// The last revision: what the database must be at for this build.\n#[allow(dead_code)]\n\
         pub const HEAD: {pm}::Revision = {pm}::Revision::new({head});\n\n\
         /// The `schema` setting (`None`: the server's search_path), for `db::Options::new`.\n#[allow(dead_code)]\n\
         pub const SCHEMA: ::std::option::Option<&str> = {schema:?};\n\n\
         /// The `version-table` setting, for `db::Options::new`.\n#[allow(dead_code)]\n\
         pub const VERSION_TABLE: &str = {version_table:?};\n\n\
         /// The database states this build runs on: every migration through `oldest` applied (the\n\
         /// head release's `post` may be pending), up to the head plus the next release's migrations\n\
         /// recorded as `pre`.\n#[allow(dead_code)]\n\
         pub const WINDOW: {pm}::compat::Window = {pm}::compat::Window {{ oldest: {pm}::Revision::new({oldest}), \
         head: {pm}::Revision::new({head}) }};\n\n\
         /// This set, for `db::verify_sets` (through `SETS`) or `db::Options::for_set`.\n#[allow(dead_code)]\n\
         pub const SET: {pm}::SetDef = {pm}::SetDef {{ name: {name:?}, migrations: MIGRATIONS, schema: SCHEMA, \
         version_table: VERSION_TABLE, window: WINDOW }};\n",
        head = set.head().number(),
        oldest = window.oldest.number(),
        schema = g.schema,
        version_table = g.version_table,
        name = g.name,
    );
    out
}

/// A set name as a Rust module name (`r#type` for a keyword; `self`, `super` and `crate` are
/// refused by the settings).
fn rust_ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false", "fn", "for", "gen",
        "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct",
        "trait", "true", "try", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final",
        "macro", "override", "priv", "typeof", "unsized", "virtual", "yield",
    ];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
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
        let one = |set| [GenSet { name: None, set, schema: Some("jobs"), version_table: "migs" }];
        let code = generate(&one(&set));
        assert!(code.contains("pub const SCHEMA: ::std::option::Option<&str> = Some(\"jobs\");"));
        assert!(code.contains("pub const VERSION_TABLE: &str = \"migs\";"));
        assert!(code.starts_with("// @generated by procrastinate-build"));
        let a = code.find("pub const REV_0001_PRE_B:").unwrap();
        let b = code.find("pub const REV_0002_POST_B:").unwrap();
        assert!(a < b);
        assert!(code.contains("pub const HEAD: ::procrastinate_migrations::Revision = ::procrastinate_migrations::Revision::new(2);"));
        assert!(code.contains("pub const SETS: &[::procrastinate_migrations::SetDef] = &[SET];"), "{code}");
        assert_eq!(code, generate(&one(&MigrationSet::from_dir(tmp.path()).unwrap())), "deterministic");
    }

    #[test]
    fn named_sets_become_modules_in_application_order() {
        let tmp = tempfile::tempdir().unwrap();
        let (p, a) = (tmp.path().join("p"), tmp.path().join("type"));
        std::fs::create_dir_all(&p).unwrap();
        std::fs::create_dir_all(&a).unwrap();
        write(&p, &[("03.00.00_01_pre_b.sql", "SELECT 1;")]);
        write(&a, &[("01.00.00_01_orders.sql", "SELECT 1;"), ("01.00.00_02_lines.sql", "SELECT 2;")]);
        let (ps, as_) = (MigrationSet::from_dir(&p).unwrap(), MigrationSet::from_dir(&a).unwrap());
        let code = generate(&[
            GenSet { name: Some("procrastinate"), set: &ps, schema: None, version_table: "t" },
            GenSet { name: Some("type"), set: &as_, schema: Some("app"), version_table: "t" },
        ]);
        assert!(code.contains("pub mod procrastinate {\n"), "{code}");
        assert!(code.contains("pub mod r#type {\n"), "{code}");
        assert!(code.contains("    pub const HEAD: ::procrastinate_migrations::Revision = ::procrastinate_migrations::Revision::new(2);"), "{code}");
        assert!(code.contains("name: Some(\"type\")"), "{code}");
        assert!(code.ends_with("= &[procrastinate::SET, r#type::SET];\n"), "{code}");
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
        // Backdate the output: a rewrite would then show whatever the clock's resolution.
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let mtime = || std::fs::metadata(&out).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(&out).unwrap().set_modified(old).unwrap();
        build().unwrap();
        assert_eq!(mtime(), old, "unchanged output is not rewritten");
        write(&pkg.join("sql"), &[("01.00.00_02_b.sql", "SELECT 2;")]);
        build().unwrap();
        assert_ne!(mtime(), old, "changed output is rewritten");

        std::fs::write(pkg.join("Cargo.toml"), "[package]\nname = \"x\"\n[package.metadata.procrastinate]\nmigratoins = \"sql\"\n").unwrap();
        let err = build().unwrap_err().to_string();
        assert!(err.contains("unknown field `migratoins`"), "{err}");
    }

    #[test]
    fn workspace_and_package_settings_merge_into_the_module() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path();
        std::fs::write(ws.join("Cargo.toml"), "[workspace]\n[workspace.metadata.procrastinate]\nmigrations = \"db\"\nschema = \"jobs\"\n").unwrap();
        std::fs::create_dir_all(ws.join("db")).unwrap();
        std::fs::create_dir_all(ws.join("app")).unwrap();
        write(&ws.join("db"), &[("01.00.00_01_a.sql", "SELECT 1;")]);
        std::fs::write(ws.join("app/Cargo.toml"), "[package]\nname = \"app\"\n[package.metadata.procrastinate]\nversion-table = \"ops.migs\"\n").unwrap();
        let out = Builder::new().manifest_dir(ws.join("app")).out_dir(ws).emit_rerun_if_changed(false).compile().unwrap();
        let code = std::fs::read_to_string(out).unwrap();
        assert!(code.contains("pub const SCHEMA: ::std::option::Option<&str> = Some(\"jobs\");"), "{code}");
        assert!(code.contains("pub const VERSION_TABLE: &str = \"ops.migs\";"), "{code}");
        assert!(code.contains("01.00.00_01_a.sql"));
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
