//! `vendor`: copy a Procrastinate release's SQL set into a set's directory, with its
//! `schema.sql` (for `verify`) and a provenance file beside it.

use std::collections::BTreeMap;
use std::path::Path;

use camino::Utf8Path;
use procrastinate_migrations::Checksum;
use serde::Serialize;

use crate::proof::REFERENCE;
use crate::release::{self, Release};
use crate::settings::Resolved;
use crate::{exit, Failure};

/// The provenance file written beside the set.
pub(super) const PROVENANCE: &str = "vendored.toml";
/// Upstream's license, beside its files (MIT: it travels with copies of them).
pub(super) const LICENSE: &str = "reference/LICENSE.md";

/// Where the release comes from.
pub(super) enum Source<'a> {
    Wheel(&'a Path),
    Python(&'a str),
    Version(&'a str),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Provenance<'a> {
    release: &'a str,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wheel_sha256: Option<&'a str>,
    schema_sql: &'a str,
    /// Upstream's license, copied beside the files, and its SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_sha256: Option<String>,
    /// File name -> SHA-256.
    files: BTreeMap<&'a str, String>,
}

pub(super) fn run(
    resolved: &Resolved,
    set: Option<&str>,
    source: Source<'_>,
    allow_changes: bool,
    json_out: bool,
    log: &dyn Fn(&str),
) -> Result<i32, Failure> {
    let dir = target_dir(resolved, set)?;
    let release = match source {
        Source::Wheel(path) => release::from_wheel(path)?,
        Source::Python(python) => release::from_python(python)?,
        Source::Version(version) => release::from_pip(version, log)?,
    };
    let existing = read_sql_files(dir.as_std_path())?;
    let added: Vec<&String> = release.migrations.keys().filter(|f| !existing.contains_key(*f)).collect();
    let changed: Vec<&String> = release.migrations.iter().filter(|(f, c)| existing.get(*f).is_some_and(|e| e != *c)).map(|(f, _)| f).collect();
    let removed: Vec<&String> = existing.keys().filter(|f| !release.migrations.contains_key(*f)).collect();
    let differs = !(changed.is_empty() && removed.is_empty());
    if differs && !allow_changes {
        let mut lines = vec![format!(
            "{dir} already holds migrations that procrastinate {} does not have as they are; nothing was written:",
            release.version
        )];
        for f in &changed {
            let known = procrastinate_migrations::upstream::EDITS.iter().find(|e| e.file_name == f.as_str());
            let note = known.map(|e| format!(" (upstream revised it in {}: expected when moving past {})", e.revised_in, e.earlier_releases)).unwrap_or_default();
            lines.push(format!("  changed {f}{note}"));
        }
        lines.extend(removed.iter().map(|f| format!("  removed {f} (not in this release)")));
        lines.push("rerun with --allow-changes to take the release's files as they are".into());
        return Err(Failure::usage(lines.join("\n")));
    }

    std::fs::create_dir_all(dir.join("reference")).map_err(|e| Failure::usage(format!("cannot create {dir}/reference: {e}")))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Failure::new(exit::FAILED, format!("cannot write {path}: {e}")))
    };
    for (name, content) in &release.migrations {
        if existing.get(name) != Some(content) {
            write(name, content)?;
        }
    }
    for name in &removed {
        std::fs::remove_file(dir.join(name.as_str())).map_err(|e| Failure::new(exit::FAILED, format!("cannot remove {dir}/{name}: {e}")))?;
    }
    write(REFERENCE, &release.schema_sql)?;
    if let Some(license) = &release.license {
        write(LICENSE, license)?;
    }
    write(PROVENANCE, provenance(&release).as_bytes())?;

    if json_out {
        let names = |v: &[&String]| v.iter().map(|s| s.to_string()).collect();
        crate::json::emit(
            "vendor",
            &crate::json::Vendor {
                release: release.version.to_string(),
                source: release.origin.clone(),
                wheel_sha256: release.wheel_sha256.clone(),
                dir: dir.to_string(),
                added: names(&added),
                changed: names(&changed),
                removed: names(&removed),
                unchanged: release.migrations.len() - added.len() - changed.len(),
            },
        );
    } else {
        crate::term::data_line(&format!(
            "vendored procrastinate {} from the {} into {dir}: {} added, {} changed, {} removed, {} unchanged",
            release.version,
            release.origin,
            added.len(),
            changed.len(),
            removed.len(),
            release.migrations.len() - added.len() - changed.len()
        ));
        for (what, list) in [("added", &added), ("changed", &changed), ("removed", &removed)] {
            for f in list.iter() {
                crate::term::data_line(&format!("  {what} {f}"));
            }
        }
        let license = if release.license.is_some() { format!(", {dir}/{LICENSE} (upstream's license)") } else { String::new() };
        crate::term::data_line(&format!("  wrote {dir}/{REFERENCE} (for `verify`){license} and {dir}/{PROVENANCE}"));
    }
    Ok(exit::OK)
}

/// The release `vendored.toml` in a set's directory records, if there is one (what `plan` and
/// the deploy hints tell to deploy once the set's last release is applied).
pub(super) fn vendored_release(dir: &Path) -> Option<procrastinate_migrations::Version> {
    let text = std::fs::read_to_string(dir.join(PROVENANCE)).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    table.get("release")?.as_str()?.parse().ok()
}

/// The files of a set that are upstream's as vendored (`vendored.toml` records them with the
/// checksum they still have): their names.
pub(super) fn upstream_files(dir: &Path) -> std::collections::HashSet<String> {
    let Some(table) = std::fs::read_to_string(dir.join(PROVENANCE)).ok().and_then(|t| toml::from_str::<toml::Table>(&t).ok()) else {
        return Default::default();
    };
    let Some(files) = table.get("files").and_then(|f| f.as_table()) else { return Default::default() };
    files
        .iter()
        .filter(|(name, sha)| std::fs::read(dir.join(name.as_str())).is_ok_and(|c| sha.as_str() == Some(Checksum::of(&c).to_string().as_str())))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The directory of the set that `--set` names, or of the only set, or of the set named
/// `procrastinate`.
fn target_dir<'r>(resolved: &'r Resolved, set: Option<&str>) -> Result<&'r Utf8Path, Failure> {
    let named = |n: &str| resolved.sets.iter().find(|s| s.options.set.as_deref() == Some(n));
    let chosen = match (set, resolved.sets.as_slice()) {
        (Some(n), _) => named(n).ok_or_else(|| Failure::usage(format!("no set is named `{n}`")))?,
        (None, [one]) => one,
        (None, _) => named("procrastinate").ok_or_else(|| Failure::usage("several sets are configured: name the one to vendor into with --set NAME"))?,
    };
    if chosen.reference.is_some() {
        return Err(Failure::usage(format!(
            "the set's files are the installed package's ({}), set by `migrations = {{ python = ... }}`: there is nothing to \
             vendor into; upgrade the package in that environment instead, or configure a directory to vendor into",
            chosen.dir
        )));
    }
    Ok(&chosen.dir)
}

/// `*.sql` directly in `dir` (none when it does not exist yet).
fn read_sql_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, Failure> {
    let mut out = BTreeMap::new();
    let Ok(listing) = std::fs::read_dir(dir) else { return Ok(out) };
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && !name.starts_with('.') && entry.file_type().is_ok_and(|t| t.is_file()) {
            let content = std::fs::read(entry.path()).map_err(|e| Failure::usage(format!("cannot read {}: {e}", entry.path().display())))?;
            out.insert(name, content);
        }
    }
    Ok(out)
}

fn provenance(release: &Release) -> String {
    let p = Provenance {
        release: &release.version,
        source: &release.origin,
        wheel_sha256: release.wheel_sha256.as_deref(),
        schema_sql: REFERENCE,
        license: release.license.is_some().then_some(LICENSE),
        license_sha256: release.license.as_deref().map(|l| Checksum::of(l).to_string()),
        files: release.migrations.iter().map(|(f, c)| (f.as_str(), Checksum::of(c).to_string())).collect(),
    };
    let body = toml::to_string(&p).expect("plain strings serialize");
    format!("# Written by `cargo procrastinate vendor`: where the files beside it come from.\n{body}")
}
