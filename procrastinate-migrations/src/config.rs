//! The `[package.metadata.procrastinate]` / `[workspace.metadata.procrastinate]` table.
//!
//! One struct for every layer (workspace, package, environment, flags) so that the build script
//! and the CLI accept exactly the same keys, and an unknown key fails both with its name.
//! [`set_specs`] turns the merged layers into the configured sets, for both of them.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// Where a set's files are: `migrations = "db/procrastinate"` (a directory, relative to the
/// manifest), or `migrations = { python = ".venv/bin/python" }` (the Procrastinate package
/// installed for that interpreter: its `sql/migrations`, and its `sql/schema.sql` for
/// `verify`; see [`crate::installed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory of `*.sql` files.
    Dir(String),
    /// The package installed for this interpreter (a path, or a command on `PATH`).
    Python(String),
}

impl Default for Source {
    fn default() -> Source {
        Source::Dir(String::new())
    }
}

impl From<String> for Source {
    fn from(dir: String) -> Source {
        Source::Dir(dir)
    }
}

impl From<&str> for Source {
    fn from(dir: &str) -> Source {
        Source::Dir(dir.to_string())
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Source, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Source;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a directory, or `{ python = \"path/to/python\" }`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Source, E> {
                Ok(Source::Dir(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Source, A::Error> {
                let mut python = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "python" => python = Some(map.next_value::<String>()?),
                        other => return Err(serde::de::Error::unknown_field(other, &["python"])),
                    }
                }
                python.map(Source::Python).ok_or_else(|| serde::de::Error::missing_field("python"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One layer of settings; `None` means "not set here, ask the layer below".
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Directory of `*.sql` files, relative to the manifest that sets it (or the installed
    /// package, [`Source::Python`]): one unnamed set.
    pub migrations: Option<Source>,
    /// Several named sets, applied in this order (instead of `migrations`).
    pub sets: Option<Vec<SetSettings>>,
    /// Name of the environment variable holding the database URL (default `DATABASE_URL`).
    pub database_url_env: Option<String>,
    /// PostgreSQL schema that migrations and tracking live in, through `search_path`.
    pub schema: Option<String>,
    /// Tracking table, optionally schema-qualified (`ops.migrations`).
    pub version_table: Option<String>,
    /// Longest a migration may wait for a table lock held by another session (`5s`, `500ms`).
    pub lock_timeout: Option<String>,
    /// Longest one statement of a migration may run (`0`: no limit; unset: the server's).
    pub statement_timeout: Option<String>,
    /// How many times a migration that hit `lock-timeout` is tried again, after 1 s, 2 s, 4 s...
    pub lock_retries: Option<u32>,
    /// Longest an `upgrade` waits for another `upgrade` holding the migration lock.
    pub lock_wait: Option<String>,
    /// Longest the tool waits for the server's answer to one of its own statements, and how
    /// often it asks, on a second connection, whether a long migration is still working.
    pub round_trip_timeout: Option<String>,
    /// Files that sort before applied ones (from a merged branch) run, first, instead of being
    /// refused (off by default).
    pub out_of_order: Option<bool>,
    /// The file `new` copies into a new migration (`{description}`, `{version}`, `{phase}`,
    /// `{file}` replaced), relative to the manifest.
    pub template: Option<String>,
    /// The schema the team wants, as SQL, relative to the manifest: `new --autogenerate`
    /// writes the migrations that reach it.
    pub desired_schema: Option<String>,
    /// Objects that schema comparisons (`check --schema`, `diff`, `verify`, autogenerate) leave
    /// out: names, `*` matching any run of characters, optionally after a kind
    /// (`"index legacy_*"`).
    pub compare_ignore: Option<Vec<String>>,
    /// Compare owners and privileges too (off: a scratch database's objects belong to whoever
    /// built them).
    pub compare_privileges: Option<bool>,
    /// `lint` rules allowed for every file (each by name).
    pub lint_allow: Option<Vec<String>>,
}

/// One entry of `sets = [...]`: `{ name = "app", migrations = "db/app" }`, optionally with its
/// own `schema` and `version-table` (otherwise the package's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SetSettings {
    /// A lower-case identifier: written `NAME@REV`, and the name of the set's generated module.
    pub name: String,
    /// Directory of the set's `*.sql` files, relative to the manifest that sets it (or the
    /// installed package, [`Source::Python`]).
    pub migrations: Source,
    /// This set's own `schema` (otherwise the package's).
    pub schema: Option<String>,
    /// This set's own `version-table` (otherwise the package's).
    pub version_table: Option<String>,
    /// This set's own `lock-timeout` and `statement-timeout` (otherwise the package's).
    pub lock_timeout: Option<String>,
    /// This set's own `statement-timeout` (otherwise the package's).
    pub statement_timeout: Option<String>,
    /// This set's own `out-of-order` (otherwise the package's).
    pub out_of_order: Option<bool>,
    /// This set's own `template` for `new` (otherwise the package's).
    pub template: Option<String>,
    /// This set's `desired-schema` (`new --autogenerate`).
    pub desired_schema: Option<String>,
    /// Patterns this set's comparisons leave out, besides the package's `compare-ignore`.
    pub compare_ignore: Option<Vec<String>>,
    /// `lint` rules allowed for this set's files, besides the package's `lint-allow`.
    pub lint_allow: Option<Vec<String>>,
}

impl Settings {
    /// Every key as written in TOML: the README must document each one (a test checks).
    pub const KEYS: &'static [&'static str] =
        &["migrations", "sets", "database-url-env", "schema", "version-table", "lock-timeout", "statement-timeout", "lock-retries", "lock-wait", "round-trip-timeout", "out-of-order", "template", "desired-schema",
          "compare-ignore", "compare-privileges", "lint-allow"];

    /// `over` wins wherever it sets a key. `migrations` and `sets` are one choice: a layer that
    /// sets either replaces both.
    pub fn overlay(self, over: Settings) -> Settings {
        let (migrations, sets) = if over.migrations.is_some() || over.sets.is_some() {
            (over.migrations, over.sets)
        } else {
            (self.migrations, self.sets)
        };
        Settings {
            migrations,
            sets,
            database_url_env: over.database_url_env.or(self.database_url_env),
            schema: over.schema.or(self.schema),
            version_table: over.version_table.or(self.version_table),
            lock_timeout: over.lock_timeout.or(self.lock_timeout),
            statement_timeout: over.statement_timeout.or(self.statement_timeout),
            lock_retries: over.lock_retries.or(self.lock_retries),
            lock_wait: over.lock_wait.or(self.lock_wait),
            round_trip_timeout: over.round_trip_timeout.or(self.round_trip_timeout),
            out_of_order: over.out_of_order.or(self.out_of_order),
            template: over.template.or(self.template),
            desired_schema: over.desired_schema.or(self.desired_schema),
            compare_ignore: over.compare_ignore.or(self.compare_ignore),
            compare_privileges: over.compare_privileges.or(self.compare_privileges),
            lint_allow: over.lint_allow.or(self.lint_allow),
        }
    }

    /// Checks what one layer says on its own (the caller adds which manifest it is).
    pub fn check_layer(&self) -> Result<(), String> {
        if self.migrations.is_some() && self.sets.is_some() {
            return Err("set either `migrations` (one set) or `sets` (several), not both".into());
        }
        Ok(())
    }

    /// Makes every migration directory absolute against `base`, the directory of the manifest
    /// (or working directory) this layer comes from.
    pub fn absolutize(mut self, base: &Path) -> Settings {
        // An interpreter given as a path is relative to the manifest too; a bare command name
        // (`python3`) is looked up on PATH.
        let abs = |m: Source| match m {
            Source::Dir(d) => Source::Dir(base.join(d).to_string_lossy().into_owned()),
            Source::Python(p) if p.contains('/') => Source::Python(base.join(p).to_string_lossy().into_owned()),
            python => python,
        };
        self.migrations = self.migrations.map(abs);
        let file = |t: String| base.join(t).to_string_lossy().into_owned();
        self.template = self.template.map(file);
        self.desired_schema = self.desired_schema.map(file);
        if let Some(sets) = &mut self.sets {
            for set in sets {
                set.migrations = abs(std::mem::take(&mut set.migrations));
                set.template = set.template.take().map(file);
                set.desired_schema = set.desired_schema.take().map(file);
            }
        }
        self
    }
}

/// A configured set, after precedence: where its files are and where it is tracked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetSpec {
    /// `None` for the one set of a plain `migrations = "dir"`.
    pub name: Option<String>,
    /// Absolute when the layers were [`absolutize`](Settings::absolutize)d.
    pub migrations: PathBuf,
    /// The set's `schema`, else the package's; `None` when neither is set (or it is empty).
    pub schema: Option<String>,
    /// The set's `version-table`, else the package's, else [`DEFAULT_VERSION_TABLE`].
    pub version_table: String,
    /// The set's own timeouts, when it sets them (otherwise the package's apply).
    pub lock_timeout: Option<String>,
    /// The set's own `statement-timeout`, when it sets one (otherwise the package's applies).
    pub statement_timeout: Option<String>,
    /// The set's `out-of-order`, else the package's, else off.
    pub out_of_order: bool,
    /// The reference schema that comes with the files: the installed package's `schema.sql`
    /// for [`Source::Python`]; `None` for a directory (then `reference/schema.sql` beside it).
    pub reference: Option<PathBuf>,
    /// The set's `template` for `new`, else the package's.
    pub template: Option<PathBuf>,
    /// The set's `desired-schema` (the package's for the one set of `migrations`).
    pub desired_schema: Option<PathBuf>,
    /// The package's `compare-ignore` and the set's own.
    pub compare_ignore: Vec<String>,
    /// The package's `compare-privileges`.
    pub compare_privileges: bool,
    /// The package's `lint-allow` and the set's own.
    pub lint_allow: Vec<String>,
}

/// The directory of a source's files, and the reference schema that comes with them (running
/// the interpreter for [`Source::Python`]).
fn locate(source: &Source) -> Result<(PathBuf, Option<PathBuf>), String> {
    match source {
        Source::Dir(d) => Ok((PathBuf::from(d), None)),
        Source::Python(p) => {
            let found = crate::installed::find(p).map_err(|e| format!("`migrations = {{ python = \"{p}\" }}`: {e}"))?;
            Ok((found.migrations, Some(found.schema_sql)))
        }
    }
}

/// The sets that merged settings configure, in application order; `Ok(None)` when neither
/// `migrations` nor `sets` is set. Errors name the set and the key.
pub fn set_specs(merged: &Settings) -> Result<Option<Vec<SetSpec>>, String> {
    check_schema(merged.schema.as_deref(), "")?;
    let schema = merged.schema.clone();
    let version_table = merged.version_table.clone().unwrap_or_else(|| DEFAULT_VERSION_TABLE.to_string());
    let Some(sets) = &merged.sets else {
        let Some(source) = &merged.migrations else { return Ok(None) };
        let (migrations, reference) = locate(source)?;
        return Ok(Some(vec![SetSpec {
            name: None,
            migrations,
            schema,
            version_table,
            lock_timeout: None,
            statement_timeout: None,
            out_of_order: merged.out_of_order.unwrap_or(false),
            reference,
            template: merged.template.as_ref().map(PathBuf::from),
            desired_schema: merged.desired_schema.as_ref().map(PathBuf::from),
            compare_ignore: merged.compare_ignore.clone().unwrap_or_default(),
            compare_privileges: merged.compare_privileges.unwrap_or(false),
            lint_allow: merged.lint_allow.clone().unwrap_or_default(),
        }]));
    };
    if sets.is_empty() {
        return Err("`sets` is empty: list at least one `{ name = \"...\", migrations = \"...\" }`".into());
    }
    if merged.desired_schema.is_some() {
        return Err("`desired-schema` describes one set's schema: with `sets`, put it in that set's entry \
                    (`{ name = \"app\", migrations = \"db/app\", desired-schema = \"db/schema.sql\" }`)"
            .into());
    }
    let mut specs: Vec<SetSpec> = Vec::with_capacity(sets.len());
    for set in sets {
        check_set_name(&set.name)?;
        check_schema(set.schema.as_deref(), &format!(" of set `{}`", set.name))?;
        let (migrations, reference) = locate(&set.migrations).map_err(|e| format!("set `{}`: {e}", set.name))?;
        let dir = normalize(&migrations);
        if specs.iter().any(|s| s.name.as_deref() == Some(&set.name)) {
            return Err(format!("`sets`: the name `{}` is used twice", set.name));
        }
        if let Some(other) = specs.iter().find(|s| normalize(&s.migrations) == dir) {
            return Err(format!(
                "`sets`: `{}` and `{}` both use the directory {}: each set needs its own",
                other.name.as_deref().unwrap_or_default(),
                set.name,
                migrations.display()
            ));
        }
        specs.push(SetSpec {
            name: Some(set.name.clone()),
            migrations,
            reference,
            schema: set.schema.clone().or_else(|| schema.clone()),
            version_table: set.version_table.clone().unwrap_or_else(|| version_table.clone()),
            lock_timeout: set.lock_timeout.clone(),
            statement_timeout: set.statement_timeout.clone(),
            out_of_order: set.out_of_order.or(merged.out_of_order).unwrap_or(false),
            template: set.template.as_ref().or(merged.template.as_ref()).map(PathBuf::from),
            // A package-level `desired-schema` describes one set's schema: with several sets,
            // each names its own.
            desired_schema: set.desired_schema.as_ref().map(PathBuf::from),
            compare_ignore: merged.compare_ignore.iter().flatten().chain(set.compare_ignore.iter().flatten()).cloned().collect(),
            compare_privileges: merged.compare_privileges.unwrap_or(false),
            lint_allow: merged.lint_allow.iter().flatten().chain(set.lint_allow.iter().flatten()).cloned().collect(),
        });
    }
    Ok(Some(specs))
}

/// A `schema` setting names a schema: not empty (which would silently mean the server's
/// `search_path`: leave the setting out for that), at most 63 bytes (PostgreSQL would cut it).
fn check_schema(schema: Option<&str>, of: &str) -> Result<(), String> {
    match schema {
        Some("") => Err(format!("setting `schema`{of} is empty: name a schema, or leave the setting out for the server's search_path")),
        Some(s) if s.len() > 63 => Err(format!("setting `schema`{of} is {} bytes long: PostgreSQL names are at most 63", s.len())),
        Some(s) if s.contains('\0') => Err(format!("setting `schema`{of} holds a NUL byte")),
        _ => Ok(()),
    }
}

/// Set names are lower-case identifiers: they are written `NAME@REV` and become Rust modules.
pub fn check_set_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if !ok {
        return Err(format!(
            "`sets`: `{name}` is not a set name (a lower-case identifier: a-z first, then a-z, 0-9 or `_`)"
        ));
    }
    if matches!(name, "self" | "super" | "crate") {
        return Err(format!("`sets`: `{name}` cannot be a set name (it is a Rust path keyword)"));
    }
    Ok(())
}

/// The directory as the file system sees it when it exists, else lexically cleaned, so that
/// `db/app` and `db/./app/` compare equal.
fn normalize(dir: &Path) -> PathBuf {
    if let Ok(canonical) = dir.canonicalize() {
        return canonical;
    }
    let mut out = PathBuf::new();
    for c in dir.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Default tracking table. Never `procrastinate_version`: upstream's first migration creates a
/// table of that name and its fourth drops it.
pub const DEFAULT_VERSION_TABLE: &str = "cargo_procrastinate_migrations";
/// Default of `database-url-env`: the variable that holds the database URL.
pub const DEFAULT_DATABASE_URL_ENV: &str = "DATABASE_URL";
/// Default of `lock-timeout`: a migration waiting for a table lock blocks every query queued
/// behind it, so it gives up soon.
pub const DEFAULT_LOCK_TIMEOUT: &str = "5s";
/// Default of `lock-wait`: how long an `upgrade` waits for another one's migration lock.
pub const DEFAULT_LOCK_WAIT: &str = "10min";
/// Default of `round-trip-timeout`: the tool's own statements are small; a server that does not
/// answer one within this is gone, or a proxy in between has stopped forwarding.
pub const DEFAULT_ROUND_TRIP_TIMEOUT: &str = "30s";

/// A timeout as PostgreSQL takes it: milliseconds that fit an int. `zero_means` names what 0
/// would mean, or `None` when 0 is refused (a lock timeout of 0 waits forever).
pub fn parse_timeout(key: &str, value: &str, zero_means: Option<&str>) -> Result<std::time::Duration, String> {
    let d = parse_duration(value).map_err(|e| format!("setting `{key}`: {e}"))?;
    if d.as_millis() > i32::MAX as u128 || (d.is_zero() && zero_means.is_none()) {
        return Err(format!(
            "setting `{key}`: `{value}` is out of range: give a duration from 1ms to 24 days{}",
            zero_means.map_or(" (0 would wait forever)".to_string(), |z| format!(", or 0 for {z}"))
        ));
    }
    Ok(d)
}

/// A migration's own settings, from `-- lock-timeout: 30s` / `-- statement-timeout: 10min`
/// lines in the comment block that opens the file: `(key, value, line)`.
pub fn file_header(sql: &str) -> Vec<(&'static str, &str, usize)> {
    let mut out = Vec::new();
    for (i, line) in sql.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else { break };
        if let Some((key, value)) = comment.split_once(':') {
            let key = match key.trim() {
                "lock-timeout" => "lock-timeout",
                "statement-timeout" => "statement-timeout",
                _ => continue,
            };
            out.push((key, value.trim(), i + 1));
        }
    }
    out
}

/// Parses a duration as humantime does (`5s`, `500ms`, `2min`, `1h 30m`), or bare seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = s.parse().map_err(|_| format!("`{s}` is too long a duration"))?;
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("`{s}` is too long a duration"),
        e => format!("`{s}` is not a duration (e.g. `5s`, `500ms`, `2min`): {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_headers_and_timeouts() {
        let sql = "-- Adds an index.\n-- statement-timeout: 30min\n--lock-timeout:2s\nCREATE INDEX i ON t (x);\n-- lock-timeout: 9s\n";
        assert_eq!(file_header(sql), [("statement-timeout", "30min", 2), ("lock-timeout", "2s", 3)]);
        assert!(parse_timeout("lock-timeout", "0", None).unwrap_err().contains("0 would wait forever"));
        assert_eq!(parse_timeout("statement-timeout", "0", Some("no limit")).unwrap().as_millis(), 0);
        assert!(parse_timeout("lock-timeout", "1000h", None).unwrap_err().contains("out of range"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap().as_millis(), 5000);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert_eq!(parse_duration("2min").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("7").unwrap().as_secs(), 7);
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("99999999999999999h").unwrap_err().contains("too long"));
    }

    #[test]
    fn later_layers_win_key_by_key() {
        let ws = Settings { schema: Some("a".into()), lock_timeout: Some("1s".into()), ..Default::default() };
        let pkg = Settings { schema: Some("b".into()), ..Default::default() };
        let got = ws.overlay(pkg);
        assert_eq!((got.schema.as_deref(), got.lock_timeout.as_deref()), (Some("b"), Some("1s")));
    }

    fn sets(toml_sets: &str) -> Result<Option<Vec<SetSpec>>, String> {
        let s: Settings = toml::from_str(toml_sets).map_err(|e| e.to_string())?;
        s.check_layer()?;
        set_specs(&s)
    }

    #[test]
    fn sets_are_named_ordered_and_inherit_the_package_settings() {
        let got = sets(
            "schema = \"jobs\"\nsets = [{ name = \"procrastinate\", migrations = \"db/p\" },\n\
             { name = \"app\", migrations = \"db/app\", schema = \"app\", version-table = \"ops.t\" }]",
        )
        .unwrap()
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].name.as_deref(), got[0].schema.as_deref(), got[0].version_table.as_str()), (Some("procrastinate"), Some("jobs"), DEFAULT_VERSION_TABLE));
        assert_eq!((got[1].name.as_deref(), got[1].schema.as_deref(), got[1].version_table.as_str()), (Some("app"), Some("app"), "ops.t"));
        let one = sets("migrations = \"db\"").unwrap().unwrap();
        assert_eq!((one.len(), one[0].name.as_deref()), (1, None));
        assert_eq!(sets("schema = \"x\"").unwrap(), None);
    }

    #[test]
    fn bad_sets_are_named() {
        let err = |t: &str| sets(t).unwrap_err();
        assert!(err("sets = [{ name = \"App\", migrations = \"a\" }]").contains("`App` is not a set name"));
        assert!(err("sets = [{ name = \"a\", migrations = \"x\" }, { name = \"a\", migrations = \"y\" }]").contains("`a` is used twice"));
        assert!(err("sets = [{ name = \"a\", migrations = \"x\" }, { name = \"b\", migrations = \"./x/\" }]").contains("`a` and `b` both use"));
        assert!(err("sets = [{ name = \"a\", migrations = \"x\", shema = \"s\" }]").contains("unknown field `shema`"));
        assert!(err("migrations = \"x\"\nsets = [{ name = \"a\", migrations = \"x\" }]").contains("not both"));
        assert!(err("sets = []").contains("empty"));
    }

    #[test]
    fn a_layer_that_names_sets_replaces_the_directory_below_it() {
        let ws = Settings { migrations: Some(Source::Dir("db".into())), ..Default::default() };
        let pkg = Settings { sets: Some(vec![SetSettings { name: "a".into(), migrations: "x".into(), ..Default::default() }]), ..Default::default() };
        let got = ws.clone().overlay(pkg.clone());
        assert_eq!((got.migrations, got.sets.map(|s| s.len())), (None, Some(1)));
        let got = pkg.overlay(ws);
        assert_eq!((got.migrations, got.sets), (Some(Source::Dir("db".into())), None));
    }
}
