//! Settings: defaults < `[workspace.metadata.procrastinate]` < `[package.metadata.procrastinate]`
//! < environment (`PROCRASTINATE_*`) < flags.

use std::path::PathBuf;

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Metadata, MetadataCommand, Package};
use procrastinate_migrations::config::{self, Settings};
use procrastinate_migrations::manifest::{self, Manifest};
use procrastinate_migrations::db;
use procrastinate_migrations::tracking::TrackingTable;

use crate::Failure;

/// Everything a command needs to know, after precedence. Paths are UTF-8: they are printed,
/// put in JSON and written into generated code.
#[derive(Debug)]
pub struct Resolved {
    /// The configured sets, in application order.
    pub sets: Vec<ResolvedSet>,
    /// Where `migrations` or `sets` came from, for error messages.
    pub migrations_origin: String,
    /// The variable that holds the database URL (`database-url-env`, default `DATABASE_URL`).
    pub database_url_env: String,
    /// Directory of the manifest in use: where `.env` is looked for.
    pub manifest_dir: Option<Utf8PathBuf>,
    /// `round-trip-timeout`: the bound on each of the tool's round trips (see `db::Conn`).
    pub round_trip: std::time::Duration,
}

/// One configured set.
#[derive(Debug)]
pub struct ResolvedSet {
    /// The set's directory of `*.sql` files, absolute.
    pub dir: Utf8PathBuf,
    /// Its name, `schema`, `version-table`, `lock-timeout` and `lock-wait`, as the database
    /// side takes them.
    pub options: db::Options,
    /// The reference schema that comes with the files (`migrations = { python = ... }`: the
    /// installed package's `sql/schema.sql`); `None`: `reference/schema.sql` in `dir`.
    pub reference: Option<Utf8PathBuf>,
    /// The `template` setting: the text `new` gives a new file.
    pub template: Option<std::path::PathBuf>,
    /// The `desired-schema` setting (`new --autogenerate`).
    pub desired_schema: Option<std::path::PathBuf>,
    /// What schema comparisons leave out and whether they compare privileges.
    pub compare: Compare,
    /// The `lint-allow` setting: rules allowed for the set's files.
    pub lint_allow: Vec<String>,
}

/// The `compare-ignore` and `compare-privileges` settings of a set.
#[derive(Clone, Debug, Default)]
pub struct Compare {
    /// Patterns of objects left out (see `Catalog::ignoring`).
    pub ignore: Vec<String>,
    /// Owners and privileges compared too.
    pub privileges: bool,
}

/// Flags that take part in precedence (the top layer).
#[derive(Debug, Default)]
pub struct FlagLayer {
    /// `--manifest-path`; otherwise the nearest Cargo.toml from the current directory up.
    pub manifest_path: Option<PathBuf>,
    /// `-p`: the package whose metadata to use.
    pub package: Option<String>,
    /// `--set NAME`: with sets, `--migrations` replaces that set's directory.
    pub set: Option<String>,
    /// The setting flags (`--schema`, `--lock-timeout`, ...); `sets` and `database-url-env`
    /// have none.
    pub settings: Settings,
}

/// Which `Settings` field an environment variable sets.
type Field = fn(&mut Settings) -> &mut Option<String>;

const ENV: &[(&str, Field)] = &[
    ("PROCRASTINATE_DATABASE_URL_ENV", |s| &mut s.database_url_env),
    ("PROCRASTINATE_SCHEMA", |s| &mut s.schema),
    ("PROCRASTINATE_VERSION_TABLE", |s| &mut s.version_table),
    ("PROCRASTINATE_LOCK_TIMEOUT", |s| &mut s.lock_timeout),
    ("PROCRASTINATE_STATEMENT_TIMEOUT", |s| &mut s.statement_timeout),
    ("PROCRASTINATE_LOCK_WAIT", |s| &mut s.lock_wait),
    ("PROCRASTINATE_ROUND_TRIP_TIMEOUT", |s| &mut s.round_trip_timeout),
];

/// The environment form of `sets`, for a deploy box without Cargo.toml.
pub const SETS_ENV: &str = "PROCRASTINATE_SETS";

/// `NAME=DIR` entries (`--set-dir`, [`SETS_ENV`]) as `sets`, in the order given (the order
/// of application, and of dependency: a set's scratch builds build the sets before it).
pub fn set_dirs(entries: &[impl AsRef<str>], origin: &str) -> Result<Vec<config::SetSettings>, Failure> {
    entries
        .iter()
        .map(|e| {
            let e = e.as_ref();
            let (name, dir) = e.split_once('=').ok_or_else(|| Failure::usage(format!("{origin}: `{e}` is not NAME=DIR")))?;
            Ok(config::SetSettings { name: name.trim().to_string(), migrations: dir.trim().to_string().into(), ..Default::default() })
        })
        .collect()
}

/// Reads the manifests and the environment and applies the precedence. A flag or variable that
/// the configured sets would silently ignore (a directory without `--set`, a `schema` a set
/// overrides) is refused.
pub fn resolve(flags: FlagLayer) -> Result<Resolved, Failure> {
    let cwd = std::env::current_dir().map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
    let cwd = utf8(cwd, "the current directory")?;
    let manifest = match flags.manifest_path {
        Some(p) => Some(utf8(p, "--manifest-path")?),
        None => cwd.ancestors().map(|d| d.join("Cargo.toml")).find(|p| p.is_file()),
    };
    // Empty variables count as unset, as they do for the database URL.
    let mut env = Settings::default();
    for (var, field) in ENV {
        if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            *field(&mut env) = Some(value);
        }
    }
    env.migrations = std::env::var("PROCRASTINATE_MIGRATIONS").ok().filter(|v| !v.is_empty()).map(Into::into);
    // `sets` without a manifest (a deploy box): `PROCRASTINATE_SETS=procrastinate=db/p,app=db/app`.
    if let Some(value) = std::env::var(SETS_ENV).ok().filter(|v| !v.is_empty()) {
        let list: Vec<&str> = value.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).collect();
        env.sets = Some(set_dirs(&list, SETS_ENV)?);
    }
    let mut layers: Vec<(Settings, String)> = Vec::new();
    let mut manifest_dir = None;
    if let Some(manifest) = &manifest {
        // The manifest answers for a package (no cargo needed: deploy boxes have none); cargo
        // only for what it alone knows: a virtual workspace's members, or `-p`. Either way a
        // manifest that cannot be read is an error: dropping its settings would put the schema
        // somewhere else.
        let read = Manifest::read(manifest.as_std_path()).map_err(Failure::usage)?;
        if read.is_package() && flags.package.as_deref().is_none_or(|p| read.package_name() == Some(p)) {
            let (found, _) = manifest::layers_of(read).map_err(Failure::usage)?;
            layers.extend(found.into_iter().map(|l| (l.settings, l.origin)));
            manifest_dir = Some(manifest.parent().map_or_else(|| cwd.clone(), Utf8Path::to_path_buf));
        } else {
            let meta = metadata(manifest).map_err(|e| Failure::usage(format!("{e} (pass --manifest-path to the package's own Cargo.toml, which needs no cargo)")))?;
            let (ws, pkg, dir) = manifest_layers(&meta, manifest, flags.package.as_deref())?;
            layers.extend(ws);
            layers.extend(pkg);
            manifest_dir = Some(dir);
        }
    } else if flags.package.is_some() {
        return Err(Failure::usage("`-p` needs a Cargo.toml: none found here or above; pass --manifest-path"));
    }
    let mut merged = Settings::default();
    let mut migrations_origin = String::new();
    for (layer, origin) in layers {
        if layer.migrations.is_some() || layer.sets.is_some() {
            migrations_origin = origin;
        }
        merged = merged.overlay(layer);
    }
    // The environment and the flags, over what the manifests configure. With sets, one
    // directory replaces one set's (named by --set), and a package-wide `schema` or
    // `version-table` cannot silently lose to a set's own: both are refused rather than dropped.
    for (layer, origin) in [
        (env.absolutize(cwd.as_std_path()), "PROCRASTINATE_"),
        (flags.settings.absolutize(cwd.as_std_path()), "--"),
    ] {
        let mut layer = layer;
        if layer.sets.is_some() {
            if layer.migrations.is_some() {
                return Err(Failure::usage(if origin == "--" {
                    "give either --migrations or --set-dir, not both".to_string()
                } else {
                    format!("give either PROCRASTINATE_MIGRATIONS or {SETS_ENV}, not both")
                }));
            }
            migrations_origin = if origin == "--" { "--set-dir".into() } else { format!("the environment ({SETS_ENV})") };
        }
        if let Some(sets) = merged.sets.as_mut() {
            if let Some(dir) = layer.migrations.take() {
                let Some(set) = sets.iter_mut().find(|s| Some(&s.name) == flags.set.as_ref()) else {
                    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
                    return Err(Failure::usage(format!(
                        "{} names one directory, but {migrations_origin} configures sets ({}): add --set NAME to replace that set's directory",
                        if origin == "--" { "--migrations" } else { "PROCRASTINATE_MIGRATIONS" },
                        names.join(", ")
                    )));
                };
                set.migrations = dir;
            }
            for (key, given, own) in [
                ("schema", layer.schema.is_some(), sets.iter().find(|s| s.schema.is_some())),
                ("version-table", layer.version_table.is_some(), sets.iter().find(|s| s.version_table.is_some())),
            ] {
                if let (true, Some(set)) = (given, own) {
                    let how = if origin == "--" { format!("--{key}") } else { format!("PROCRASTINATE_{}", key.to_uppercase().replace('-', "_")) };
                    return Err(Failure::usage(format!(
                        "{how} would not apply to set `{}`, which sets its own `{key}` in {migrations_origin}: change it there",
                        set.name
                    )));
                }
            }
        } else if layer.migrations.is_some() {
            migrations_origin = if origin == "--" { "--migrations".into() } else { "the environment (PROCRASTINATE_MIGRATIONS)".into() };
        }
        merged = merged.overlay(layer);
    }
    let specs = config::set_specs(&merged).map_err(|e| Failure::usage(format!("{e} (set by {migrations_origin})")))?;
    let Some(specs) = specs else {
        return Err(Failure::usage(format!(
            "no migration directory: set `migrations = \"...\"` (or `sets = [...]`) under [package.metadata.procrastinate] \
             in {}, or pass --migrations DIR",
            // The package's own manifest (`-p web`: web's), not the workspace root's.
            manifest_dir.as_ref().map(|d| d.join("Cargo.toml").to_string()).or_else(|| manifest.map(|m| m.to_string())).unwrap_or_else(|| "Cargo.toml".into())
        )));
    };
    let duration = |key: &str, value: Option<String>, default: &str| {
        let value = value.unwrap_or_else(|| default.to_string());
        config::parse_timeout(key, &value, None).map_err(Failure::usage)
    };
    let statement_timeout = |value: Option<&String>| {
        value.map(|v| config::parse_timeout("statement-timeout", v, Some("no limit")).map_err(Failure::usage)).transpose()
    };
    let lock_timeout = duration("lock-timeout", merged.lock_timeout.clone(), config::DEFAULT_LOCK_TIMEOUT)?;
    let lock_wait = duration("lock-wait", merged.lock_wait.clone(), config::DEFAULT_LOCK_WAIT)?;
    let round_trip = duration("round-trip-timeout", merged.round_trip_timeout.clone(), config::DEFAULT_ROUND_TRIP_TIMEOUT)?;
    let package_statement_timeout = statement_timeout(merged.statement_timeout.as_ref())?;
    let mut sets = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let of = spec.name.as_ref().map(|n| format!(" of set `{n}`")).unwrap_or_default();
        let table = TrackingTable::new(&spec.version_table, spec.schema.as_deref())
            .map_err(|e| Failure::usage(format!("setting `version-table`{of}: {e}")))?;
        let set_lock_timeout = match &spec.lock_timeout {
            Some(v) => duration("lock-timeout", Some(v.clone()), config::DEFAULT_LOCK_TIMEOUT)?,
            None => lock_timeout,
        };
        let set_statement_timeout = match &spec.statement_timeout {
            Some(v) => statement_timeout(Some(v))?,
            None => package_statement_timeout,
        };
        sets.push(ResolvedSet {
            dir: utf8(spec.migrations, "the migration directory")?,
            reference: spec.reference.map(|r| utf8(r, "the reference schema")).transpose()?,
            template: spec.template,
            desired_schema: spec.desired_schema,
            compare: Compare { ignore: spec.compare_ignore, privileges: spec.compare_privileges },
            lint_allow: spec.lint_allow,
            options: db::Options {
                claim_unnamed: i == 0 && spec.name.is_some(),
                set: spec.name,
                schema: spec.schema,
                table,
                lock_timeout: set_lock_timeout,
                statement_timeout: set_statement_timeout,
                lock_retries: merged.lock_retries.unwrap_or(0),
                lock_wait,
                accept_changed: db::AcceptChanged::None,
                out_of_order: spec.out_of_order,
                interrupt: None,
            },
        });
    }
    Ok(Resolved {
        sets,
        migrations_origin,
        database_url_env: merged.database_url_env.unwrap_or_else(|| config::DEFAULT_DATABASE_URL_ENV.into()),
        manifest_dir,
        round_trip,
    })
}

fn utf8(path: PathBuf, what: &str) -> Result<Utf8PathBuf, Failure> {
    Utf8PathBuf::from_path_buf(path).map_err(|p| Failure::usage(format!("{what} ({}) is not a UTF-8 path", p.display())))
}

fn metadata(manifest: &Utf8Path) -> Result<Metadata, String> {
    MetadataCommand::new()
        .manifest_path(manifest)
        .no_deps()
        .exec()
        .map_err(|e| format!("cannot read the workspace of {manifest}: {e}"))
}

type Layer = (Settings, String);

/// The workspace layer, the package layer (which package: `-p`, else the manifest's own, else
/// the one member that has settings), and the directory `.env` is read from.
fn manifest_layers(
    meta: &Metadata,
    manifest: &Utf8Path,
    package: Option<&str>,
) -> Result<(Option<Layer>, Option<Layer>, Utf8PathBuf), Failure> {
    let ws_root = meta.workspace_root.as_path();
    let ws_manifest = ws_root.join("Cargo.toml");
    let ws = parse_layer(&meta.workspace_metadata, "workspace", &ws_manifest)?
        .map(|s| (s.absolutize(ws_root.as_std_path()), format!("[workspace.metadata.procrastinate] in {ws_manifest}")));
    let members: Vec<&Package> = meta.workspace_packages();
    let canonical = manifest.canonicalize_utf8().unwrap_or_else(|_| manifest.to_path_buf());
    let chosen: Option<&Package> = match package {
        Some(name) => Some(*members.iter().find(|p| p.name.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
            Failure::usage(format!("package `{name}` is not a member of this workspace (members: {})", names.join(", ")))
        })?),
        None => match members.iter().find(|p| p.manifest_path.canonicalize_utf8().is_ok_and(|m| m == canonical)) {
            Some(p) => Some(*p),
            None => {
                let with: Vec<&&Package> = members.iter().filter(|p| has_settings(p)).collect();
                match with.as_slice() {
                    [one] => Some(**one),
                    [] => None,
                    many => {
                        // The workspace's own settings decide when they name a directory.
                        if ws.as_ref().is_some_and(|(s, _)| s.migrations.is_some()) {
                            None
                        } else {
                            let names: Vec<&str> = many.iter().map(|p| p.name.as_str()).collect();
                            return Err(Failure::usage(format!(
                                "several packages have [package.metadata.procrastinate] ({}): choose one with -p",
                                names.join(", ")
                            )));
                        }
                    }
                }
            }
        },
    };
    let Some(pkg) = chosen else {
        return Ok((ws, None, ws_root.to_path_buf()));
    };
    let pkg_manifest = pkg.manifest_path.as_path();
    let pkg_dir = pkg_manifest.parent().unwrap_or(ws_root).to_path_buf();
    let layer = parse_layer(&pkg.metadata, "package", pkg_manifest)?
        .map(|s| (s.absolutize(pkg_dir.as_std_path()), format!("[package.metadata.procrastinate] in {pkg_manifest}")));
    Ok((ws, layer, pkg_dir))
}

fn has_settings(p: &Package) -> bool {
    p.metadata.get("procrastinate").is_some()
}

fn parse_layer(metadata: &serde_json::Value, section: &str, manifest: &Utf8Path) -> Result<Option<Settings>, Failure> {
    let Some(table) = metadata.get("procrastinate") else { return Ok(None) };
    serde_json::from_value::<Settings>(table.clone())
        .map_err(|e| e.to_string())
        .and_then(|s| s.check_layer().map(|()| Some(s)))
        .map_err(|e| Failure::usage(format!("{manifest}: [{section}.metadata.procrastinate]: {e}")))
}
