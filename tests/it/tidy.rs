//! House rules, checked as tests (rust-analyzer style): docs that must match the code, and
//! nothing from upstream committed.

use std::path::{Path, PathBuf};
use std::process::Command;

use procrastinate_migrations::{config::Settings, Checksum};

use crate::support::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn tracked_files() -> Vec<String> {
    let out = Command::new("git").args(["ls-files"]).current_dir(root()).output().expect("git ls-files");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn no_upstream_sql_is_committed() {
    let mut upstream = Vec::new();
    for version in ["3.0.0", "3.5.1", "3.10.0"] {
        let up = wheels::procrastinate(version);
        upstream.push(Checksum::of(&std::fs::read(&up.schema_sql).unwrap()));
        for entry in std::fs::read_dir(&up.migrations).unwrap() {
            upstream.push(Checksum::of(&std::fs::read(entry.unwrap().path()).unwrap()));
        }
    }
    let files = tracked_files();
    assert!(!files.is_empty(), "not a git checkout?");
    for file in files.iter().filter(|f| f.ends_with(".sql")) {
        let sum = Checksum::of(&std::fs::read(root().join(file)).unwrap());
        assert!(!upstream.contains(&sum), "{file} is a copy of upstream Procrastinate SQL: fetch the wheel at test time instead");
    }
}

#[test]
fn readme_documents_every_exit_code_and_setting() {
    let readme = read("README.md");
    for (code, meaning) in cargo_procrastinate::exit::ALL {
        let row = format!("| {code} | {meaning} |");
        assert!(readme.lines().any(|l| l == row), "README.md: the exit-code table lacks the row\n{row}");
    }
    let help = cli_in(&std::env::temp_dir(), &["--help"], &[]).ok().stdout;
    for (code, meaning) in cargo_procrastinate::exit::ALL {
        assert!(help.contains(&format!("  {code}  {meaning}")), "--help lacks exit code {code}:\n{help}");
    }
    for key in Settings::KEYS {
        assert!(readme.contains(&format!("`{key}`")), "README.md: setting `{key}` is not documented");
    }
}

#[test]
fn architecture_maps_every_crate_and_module() {
    let arch = read("ARCHITECTURE.md");
    let members = ["procrastinate-migrations", "procrastinate-build", "pg-scratch", "cargo-procrastinate", "example", "tests", "xtask", "sql"];
    for dir in members {
        assert!(arch.contains(&format!("`{dir}/`")), "ARCHITECTURE.md does not map `{dir}/`");
    }
    for krate in ["procrastinate-migrations", "procrastinate-build", "pg-scratch", "cargo-procrastinate"] {
        for entry in walk(&root().join(krate).join("src")) {
            let name = entry.file_name().unwrap().to_str().unwrap().to_string();
            if name == "lib.rs" || name == "main.rs" || name == "mod.rs" || name == "tests.rs" {
                continue;
            }
            assert!(arch.contains(&format!("`{name}`")), "ARCHITECTURE.md does not mention {}", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The crates meant for crates.io package, with verification (each builds alone from its
/// `.crate`, with its license files, readme and metadata), so a path outside a crate or a
/// missing file is caught here, not on release day.
#[test]
fn the_published_crates_package() {
    let crates = ["pg-scratch", "procrastinate-migrations", "procrastinate-build", "cargo-procrastinate"];
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["package", "--allow-dirty", "--offline", "--quiet"]).current_dir(root());
    for name in crates {
        cmd.args(["-p", name]);
    }
    // Cargo verifies each crate against the others through a registry of the fresh `.crate`
    // files, but reuses what it extracted from them last time under $CARGO_HOME, and what it
    // built from them, as registry crates never change (same name, same version): a changed
    // API would fail verification against the stale copy. Those extractions (in the
    // registries cargo names `-<hash>`, never crates.io's) and fingerprints go first.
    let target = root().join("target/it-package");
    if let Ok(fingerprints) = std::fs::read_dir(target.join("debug/.fingerprint")) {
        for f in fingerprints.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if crates.iter().any(|c| name.rsplit_once('-').is_some_and(|(n, _)| n == *c)) {
                let _ = std::fs::remove_dir_all(f.path());
            }
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(Ok(registries)) = cargo_home.map(|h| std::fs::read_dir(h.join("registry/src"))) {
        for registry in registries.flatten().filter(|r| r.file_name().to_string_lossy().starts_with('-')) {
            for name in crates {
                let _ = std::fs::remove_dir_all(registry.path().join(format!("{name}-{}", env!("CARGO_PKG_VERSION"))));
            }
        }
    }
    // Its own target dir: the outer `cargo test` holds the lock on the workspace's.
    let out = cmd.env("CARGO_TARGET_DIR", &target).output().expect("run cargo package");
    assert!(out.status.success(), "cargo package failed:\n{}", String::from_utf8_lossy(&out.stderr));
    for name in crates {
        let manifest = read(&format!("{name}/Cargo.toml"));
        // No placeholder: `repository` is left out until the sources have a public home.
        assert!(!manifest.contains("repository"), "{name}/Cargo.toml names a repository");
        for key in ["readme.workspace", "keywords.workspace", "categories.workspace"] {
            assert!(manifest.contains(key), "{name}/Cargo.toml lacks `{key}`");
        }
        // The libraries an application compiles keep the workspace's MSRV; the CLI needs what
        // squawk's parser needs.
        let msrv = if name == "cargo-procrastinate" { "rust-version = \"1.94\"" } else { "rust-version.workspace" };
        assert!(manifest.contains(msrv), "{name}/Cargo.toml lacks `{msrv}`");
        for license in ["LICENSE-MIT", "LICENSE-APACHE"] {
            assert!(root().join(name).join(license).is_file(), "{name} lacks {license}");
        }
    }
}

/// Each crate's `rust-version` is the truth for its default features: no dependency it builds
/// (through normal and build edges, as the lockfile resolves them) declares a higher one, so an
/// older toolchain gets cargo's clear "requires rustc X" instead of a dependency's confusing
/// error. A workspace crate's optional dependencies count only when the features it is used
/// with turn them on (the library's `sqlx` is off by default; its docs state what it needs).
#[test]
fn every_rust_version_is_at_least_its_dependencies() {
    use std::collections::{BTreeSet, HashSet};
    let meta = cargo_metadata::MetadataCommand::new().manifest_path(root().join("Cargo.toml")).exec().expect("cargo metadata");
    let resolve = meta.resolve.as_ref().expect("a resolved graph");
    let node = |id: &cargo_metadata::PackageId| resolve.nodes.iter().find(|n| &n.id == id).expect("a node per package");
    let members: HashSet<&cargo_metadata::PackageId> = meta.workspace_members.iter().collect();
    // The optional dependencies of workspace package `p` that `features` (and default) turn on.
    let enabled = |p: &cargo_metadata::Package, features: &[String], default: bool| -> BTreeSet<String> {
        let mut todo: Vec<String> = features.to_vec();
        if default {
            todo.push("default".into());
        }
        let mut seen = BTreeSet::new();
        let mut deps = BTreeSet::new();
        while let Some(f) = todo.pop() {
            if !seen.insert(f.clone()) {
                continue;
            }
            let name = f.strip_prefix("dep:").unwrap_or(&f).split('/').next().unwrap_or(&f).trim_end_matches('?').to_string();
            if p.dependencies.iter().any(|d| d.optional && d.name == name) {
                deps.insert(name);
            }
            if let Some(more) = p.features.get(&f) {
                todo.extend(more.iter().cloned());
            }
        }
        deps
    };
    let mut checked = 0;
    for member in meta.workspace_packages() {
        let Some(declared) = member.rust_version.clone() else { continue };
        let mut seen = HashSet::new();
        // (package, the optional dependencies on for it: `None` outside the workspace, all).
        let mut stack = vec![(member.id.clone(), Some(enabled(member, &[], true)))];
        while let Some((id, on)) = stack.pop() {
            let package = &meta[&id];
            for dep in &node(&id).deps {
                let built = dep.dep_kinds.iter().any(|k| k.kind != cargo_metadata::DependencyKind::Development);
                let child = &meta[&dep.pkg];
                let declared_dep = package.dependencies.iter().find(|d| child.name == d.name && d.kind != cargo_metadata::DependencyKind::Development);
                let off = on.as_ref().is_some_and(|on| declared_dep.is_some_and(|d| d.optional && !on.contains(&d.name)));
                if !built || off || !seen.insert(dep.pkg.clone()) {
                    continue;
                }
                if let Some(needs) = &child.rust_version {
                    assert!(
                        needs <= &declared,
                        "{} declares rust-version {declared}, but its dependency {} {} needs {needs}",
                        member.name,
                        child.name,
                        child.version
                    );
                }
                let child_on = members.contains(&dep.pkg).then(|| {
                    let d = declared_dep.expect("a workspace crate depends on another by name");
                    enabled(child, &d.features, d.uses_default_features)
                });
                stack.push((dep.pkg.clone(), child_on));
            }
        }
        checked += 1;
    }
    assert!(checked >= 4, "the published crates declare a rust-version");
}
