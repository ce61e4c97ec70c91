//! `new`: the next migration file of a set, named by the convention, and never one that would
//! sort before the files already there (which would be refused once they are applied).

use procrastinate_migrations::{Phase, Version};

use super::Ctx;
use crate::{exit, Failure};

pub(super) fn run(ctx: &Ctx, description: &str, phase: Phase, version: Option<&str>, reversible: bool, force: bool) -> Result<i32, Failure> {
    let i = the_set(ctx)?;
    let l = &ctx.sets[i];
    let version = release(ctx, version)?;
    let description = slug(description).ok_or_else(|| Failure::usage("the description needs a letter or a digit"))?;
    let names = Names::read(&l.set.dir);
    names.check_description(&description, force)?;
    let serial = names.next_serial(version, phase)?;
    let marker = match phase {
        Phase::Pre => "pre_",
        Phase::Post => "post_",
        Phase::Unmarked => "",
    };
    let name = format!("{version}_{serial:02}_{marker}{description}.sql");
    names.check_order(&name)?;
    let path = l.set.dir.join(&name);
    let down_name = format!("{}{}", name.trim_end_matches(".sql"), procrastinate_migrations::DOWN_SUFFIX);
    let down_path = l.set.dir.join(&down_name);
    if path.exists() || (reversible && down_path.exists()) {
        return Err(Failure::usage(format!("{} exists already", path.display())));
    }
    let what = match phase {
        Phase::Pre => "pre: apply before deploying this release",
        Phase::Post => "post: apply after deploying this release",
        Phase::Unmarked => "no phase",
    };
    let fill = |text: &str| {
        text.replace("{description}", &description).replace("{version}", &version.human()).replace("{phase}", phase.as_str()).replace("{file}", &name)
    };
    let body = match &l.template {
        Some(t) => fill(&std::fs::read_to_string(t).map_err(|e| Failure::usage(format!("setting `template`: cannot read {}: {e}", t.display())))?),
        None => format!(
            "-- {description} ({what}), release {}.\n{}\n-- Each file runs whole in one transaction; `SET LOCAL` for settings.\n",
            version.human(),
            procrastinate_migrations::NOT_WRITTEN
        ),
    };
    let write = |path: &std::path::Path, text: &str| {
        std::fs::write(path, text).map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", path.display())))
    };
    std::fs::create_dir_all(&l.set.dir).map_err(|e| Failure::new(exit::FAILED, format!("cannot create {}: {e}", l.set.dir.display())))?;
    write(&path, &body)?;
    if reversible {
        write(&down_path, &format!("-- Undoes {name}: `cargo procrastinate downgrade` runs it, in one transaction.\n{}\n", procrastinate_migrations::NOT_WRITTEN))?;
    }
    // What was written must leave a set that resolves (a template may not): else it goes again.
    if let Err(e) = procrastinate_migrations::MigrationSet::from_dir(&l.set.dir) {
        if e.problems.iter().any(|p| p.file.as_deref() == Some(name.as_str()) || p.file.as_deref() == Some(down_name.as_str())) {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(&down_path);
            return Err(Failure::usage(format!("the new file would not be a valid migration (nothing was written): {e}")));
        }
    }
    if ctx.json {
        crate::json::emit(
            "new",
            &crate::json::New {
                set: l.options.set.clone(),
                path: path.display().to_string(),
                file_name: name.clone(),
                revision: procrastinate_migrations::Revision::new(names.names.len() as u32 + 1).to_string(),
                down: reversible.then(|| down_path.display().to_string()),
            },
        );
    } else {
        crate::term::data_line(&path.display().to_string());
        if reversible {
            crate::term::data_line(&down_path.display().to_string());
        }
    }
    ctx.log(&format!(
        "write its SQL{}, and remove the line `{}`: until then `upgrade` refuses to run it (the build picks it up as it is)",
        if reversible { " and the down file's" } else { "" },
        procrastinate_migrations::NOT_WRITTEN
    ));
    Ok(exit::OK)
}

/// The set `new` writes to: `--set`'s, or the only one.
pub(super) fn the_set(ctx: &Ctx) -> Result<usize, Failure> {
    match (ctx.only, ctx.sets.len()) {
        (Some(i), _) => Ok(i),
        (None, 1) => Ok(0),
        (None, _) => Err(Failure::usage("several sets are configured: name the one with --set NAME")),
    }
}

/// The release a new file belongs to: `--version`, else the package's; each part at most 99
/// (file names write it in two digits), checked before anything is written.
pub(super) fn release(ctx: &Ctx, version: Option<&str>) -> Result<Version, Failure> {
    let version: Version = match version {
        Some(v) => v.parse().map_err(|e| Failure::usage(format!("--version: {e}")))?,
        None => package_version(ctx)?,
    };
    if version.major > 99 || version.minor > 99 || version.patch > 99 {
        return Err(Failure::usage(format!(
            "release {}: file names write each part of a release in two digits (00..99), so the largest is 99.99.99",
            version.human()
        )));
    }
    Ok(version)
}

/// The migration files already in a set's directory, parsed as the resolver would (the set
/// itself may not resolve yet).
pub(super) struct Names {
    /// Sorted.
    pub names: Vec<String>,
    /// Each well-formed name's release, serial and description.
    parsed: Vec<(Version, u8, String)>,
}

impl Names {
    pub(super) fn read(dir: &std::path::Path) -> Names {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".sql") && !n.ends_with(procrastinate_migrations::DOWN_SUFFIX) && !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let parsed = names
            .iter()
            .filter_map(|n| procrastinate_migrations::name::parse(n).ok())
            .map(|p| (p.version, p.serial, p.description.to_string()))
            .collect();
        Names { names, parsed }
    }

    /// The same description twice is refused unless forced.
    pub(super) fn check_description(&self, description: &str, force: bool) -> Result<(), Failure> {
        match self.parsed.iter().find(|p| p.2 == description).filter(|_| !force) {
            Some(same) => Err(Failure::usage(format!(
                "a file of the set already has the description `{description}` (release {}): give another, or pass --force",
                same.0.human()
            ))),
            None => Ok(()),
        }
    }

    /// The next free serial of `phase` in `version` (pre and unmarked 01..49, post 50..99).
    pub(super) fn next_serial(&self, version: Version, phase: Phase) -> Result<u8, Failure> {
        let (lo, hi) = match phase {
            Phase::Post => (50, 99),
            _ => (1, 49),
        };
        let serial = self.parsed.iter().filter(|p| p.0 == version).map(|p| p.1).filter(|s| (lo..=hi).contains(s)).max().map_or(lo, |s| s + 1);
        if serial > hi {
            return Err(Failure::usage(format!("release {} has no {} serial left ({lo:02}..{hi:02} are taken)", version.human(), phase)));
        }
        Ok(serial)
    }

    /// A new name must sort after every file there (which may be applied already).
    pub(super) fn check_order(&self, name: &str) -> Result<(), Failure> {
        match self.names.last().filter(|last| last.as_bytes() > name.as_bytes()) {
            Some(last) => Err(Failure::usage(format!(
                "`{name}` would sort before `{last}`, which is already in the set (and may be applied): use a later release with --version"
            ))),
            None => Ok(()),
        }
    }
}

/// The package's own version, from its manifest.
fn package_version(ctx: &Ctx) -> Result<Version, Failure> {
    let manifest = ctx.settings.manifest_dir.as_ref().map(|d| d.join("Cargo.toml"));
    let read = manifest.as_ref().and_then(|m| procrastinate_migrations::manifest::Manifest::read(m.as_std_path()).ok());
    let version = read.as_ref().and_then(|m| m.package_version().map(str::to_string));
    let version = version.ok_or_else(|| Failure::usage("no package version to name the file by: pass --version X.Y.Z"))?;
    // `1.4.0-beta.1` names release 1.4.0.
    let core = version.split(['-', '+']).next().unwrap_or(&version);
    core.parse().map_err(|e| Failure::usage(format!("the package version: {e}; pass --version X.Y.Z")))
}

/// `Add order lines!` -> `add_order_lines`.
pub(super) fn slug(text: &str) -> Option<String> {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptions_become_names() {
        assert_eq!(super::slug("Add order lines!").as_deref(), Some("add_order_lines"));
        assert_eq!(super::slug("  --  ").as_deref(), None);
    }
}
