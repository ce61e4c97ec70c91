//! `init`: adds `[package.metadata.procrastinate]` to a package's Cargo.toml, edited in place
//! with a format-preserving TOML editor (every other line and comment stays as it is), creates
//! the sets' directories, and says what to do next. Refuses a package that is configured
//! already.

use std::path::{Path, PathBuf};

use toml_edit::{value, Array, DocumentMut, InlineTable, Item, Table};

use crate::{exit, Failure};

/// `init`'s choices.
pub(crate) struct Options<'a> {
    /// `--manifest-path`, else the nearest Cargo.toml.
    pub manifest_path: Option<&'a Path>,
    /// `-p`: a member of the workspace whose root is the nearest Cargo.toml.
    pub package: Option<&'a str>,
    /// `--procrastinate-only`: one set, Procrastinate's.
    pub procrastinate_only: bool,
    /// Where the sets go, relative to the package.
    pub procrastinate_dir: &'a str,
    /// The application's set's directory.
    pub app_dir: &'a str,
    /// JSON output.
    pub json: bool,
}

pub(crate) fn run(o: Options<'_>) -> Result<i32, Failure> {
    let manifest = package_manifest(o.manifest_path, o.package)?;
    let text = std::fs::read_to_string(&manifest).map_err(|e| Failure::usage(format!("cannot read {}: {e}", manifest.display())))?;
    let mut doc: DocumentMut = text.parse().map_err(|e| Failure::usage(format!("{} is not a valid manifest: {e}", manifest.display())))?;
    if doc.get("package").is_none() {
        return Err(Failure::usage(format!(
            "{} is a workspace, not a package: run `init` in a member (or pass -p NAME)",
            manifest.display()
        )));
    }
    let package = doc["package"].as_table_mut().ok_or_else(|| Failure::usage(format!("{}: [package] is not a table", manifest.display())))?;
    if package.get("metadata").and_then(|m| m.get("procrastinate")).is_some() {
        return Err(Failure::usage(format!(
            "{} has [package.metadata.procrastinate] already: nothing was changed (edit it there)",
            manifest.display()
        )));
    }
    let metadata = package.entry("metadata").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    let metadata = metadata.as_table_mut().ok_or_else(|| Failure::usage(format!("{}: package.metadata is not a table", manifest.display())))?;
    let mut ours = Table::new();
    ours.decor_mut().set_prefix("\n# cargo-procrastinate: the migration sets of this package (`cargo procrastinate --help`).\n");
    let dirs: Vec<(&str, &str)> = if o.procrastinate_only {
        ours.insert("migrations", value(o.procrastinate_dir));
        vec![("procrastinate", o.procrastinate_dir)]
    } else {
        let mut sets = Array::new();
        for (name, dir) in [("procrastinate", o.procrastinate_dir), ("app", o.app_dir)] {
            let mut set = InlineTable::new();
            set.insert("name", name.into());
            set.insert("migrations", dir.into());
            set.decor_mut().set_prefix("\n  ");
            sets.push_formatted(toml_edit::Value::InlineTable(set));
        }
        sets.set_trailing("\n");
        sets.set_trailing_comma(true);
        ours.insert("sets", value(sets));
        vec![("procrastinate", o.procrastinate_dir), ("app", o.app_dir)]
    };
    metadata.insert("procrastinate", Item::Table(ours));
    let root = manifest.parent().unwrap_or(Path::new("."));
    for (_, dir) in &dirs {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| Failure::new(exit::FAILED, format!("cannot create {}: {e}", root.join(dir).display())))?;
    }
    std::fs::write(&manifest, doc.to_string()).map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", manifest.display())))?;
    let next = next_steps(o.procrastinate_only, &dirs);
    if o.json {
        crate::json::emit(
            "init",
            &crate::json::Init {
                manifest: manifest.display().to_string(),
                sets: dirs.iter().map(|(n, d)| crate::json::InitSet { name: (!o.procrastinate_only).then(|| n.to_string()), dir: root.join(d).display().to_string() }).collect(),
                next,
            },
        );
    } else {
        crate::term::data_line(&format!("added [package.metadata.procrastinate] to {}", manifest.display()));
        for (_, d) in &dirs {
            crate::term::data_line(&format!("created {}", root.join(d).display()));
        }
        crate::term::data_line("\nnext:");
        for (k, step) in next.iter().enumerate() {
            crate::term::data_line(&format!("  {}. {}", k + 1, step.replace('\n', "\n     ")));
        }
    }
    Ok(exit::OK)
}

/// What to do after `init`, in order.
fn next_steps(procrastinate_only: bool, dirs: &[(&str, &str)]) -> Vec<String> {
    let mut steps = vec![format!(
        "vendor the release of Procrastinate your workers run into {}:\n`cargo procrastinate vendor --version 3.10.0` (or --python .venv/bin/python, --wheel FILE), then `cargo procrastinate verify`",
        dirs[0].1
    )];
    if !procrastinate_only {
        steps.push("write your own migrations: `cargo procrastinate new \"create orders\" --set app` (--reversible for a down file)".into());
    }
    steps.push(
        "embed the sets and check the database at start-up: add to Cargo.toml\n[dependencies] procrastinate-migrations = { version = \"0.1\", features = [\"postgres\"] }\n\
         [build-dependencies] procrastinate-build = \"0.1\"\nbuild.rs: fn main() -> Result<(), procrastinate_build::Error> { procrastinate_build::compile() }\n\
         main: mod migrations { procrastinate_migrations::include_migrations!(); } then\nprocrastinate_migrations::db::verify_sets(&mut client, migrations::SETS)?"
            .into(),
    );
    steps.push("apply them: `cargo procrastinate upgrade` (DATABASE_URL), or try it first on a throwaway server: `cargo procrastinate --scratch upgrade`".into());
    steps
}

/// The package's manifest: `--manifest-path`, or the nearest Cargo.toml; with `-p`, that
/// member of the workspace the nearest manifest belongs to.
fn package_manifest(path: Option<&Path>, package: Option<&str>) -> Result<PathBuf, Failure> {
    let start = match path {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| Failure::usage(format!("cannot read the current directory: {e}")))?;
            cwd.ancestors().map(|d| d.join("Cargo.toml")).find(|p| p.is_file()).ok_or_else(|| {
                Failure::usage("no Cargo.toml here or above: run `cargo new` first, or pass --manifest-path")
            })?
        }
    };
    let Some(name) = package else { return Ok(start) };
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(&start)
        .no_deps()
        .exec()
        .map_err(|e| Failure::usage(format!("cannot read the workspace of {}: {e}", start.display())))?;
    let member = meta.workspace_packages().into_iter().find(|p| p.name.as_str() == name).ok_or_else(|| {
        let names: Vec<&str> = meta.workspace_packages().iter().map(|p| p.name.as_str()).collect();
        Failure::usage(format!("package `{name}` is not a member of this workspace (members: {})", names.join(", ")))
    })?;
    Ok(member.manifest_path.clone().into_std_path_buf())
}
