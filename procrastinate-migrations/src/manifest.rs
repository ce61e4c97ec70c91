//! `[workspace.metadata.procrastinate]` and `[package.metadata.procrastinate]`, read straight
//! from the manifests with `toml`: what the build script and the CLI both do, so that neither
//! needs cargo for what the manifests themselves say (a deploy box has no cargo; `cargo
//! metadata` costs tens of milliseconds). A manifest that cannot be read is an error, never
//! skipped.

use std::path::{Path, PathBuf};

use crate::config::Settings;

/// One manifest, parsed.
pub struct Manifest {
    /// Where it was read from, as given: messages name it.
    pub path: PathBuf,
    doc: toml::Table,
}

/// One layer of settings and where it was written.
pub struct Layer {
    /// Migration directories made absolute against the manifest's directory.
    pub settings: Settings,
    /// `[package.metadata.procrastinate] in /path/Cargo.toml`, for messages.
    pub origin: String,
}

impl Manifest {
    /// Reads and parses `path`; the error names the file.
    pub fn read(path: &Path) -> Result<Manifest, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc = toml::from_str(&text).map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))?;
        Ok(Manifest { path: path.to_path_buf(), doc })
    }

    /// Has `[package]`.
    pub fn is_package(&self) -> bool {
        self.doc.contains_key("package")
    }

    /// Has `[workspace]`.
    pub fn is_workspace_root(&self) -> bool {
        self.doc.contains_key("workspace")
    }

    /// The package's version, if it is one and says it here (not `version.workspace = true`).
    pub fn package_version(&self) -> Option<&str> {
        self.doc.get("package")?.get("version")?.as_str()
    }

    /// The package's name, if it is one.
    pub fn package_name(&self) -> Option<&str> {
        self.doc.get("package")?.get("name")?.as_str()
    }

    /// `[<section>.metadata.procrastinate]` (`section`: `package` or `workspace`), checked for
    /// unknown keys, with directories made absolute.
    pub fn layer(&self, section: &str) -> Result<Option<Layer>, String> {
        let Some(table) = self.doc.get(section).and_then(|s| s.get("metadata")).and_then(|m| m.get("procrastinate")) else {
            return Ok(None);
        };
        let origin = format!("[{section}.metadata.procrastinate] in {}", self.path.display());
        let settings = table
            .clone()
            .try_into::<Settings>()
            .map_err(|e| e.to_string())
            .and_then(|s| s.check_layer().map(|()| s))
            .map_err(|e| format!("{origin}: {e}"))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        Ok(Some(Layer { settings: settings.absolutize(dir), origin }))
    }
}

/// The layers for the package whose manifest is `package`, lowest first: the workspace's (of
/// the nearest manifest at or above it with `[workspace]`), then the package's own. Also
/// every manifest that contributed, for `rerun-if-changed`.
pub fn package_layers(package: &Path) -> Result<(Vec<Layer>, Vec<PathBuf>), String> {
    layers_of(Manifest::read(package)?)
}

/// [`package_layers`] of a manifest already read.
pub fn layers_of(own: Manifest) -> Result<(Vec<Layer>, Vec<PathBuf>), String> {
    let package = own.path.clone();
    let mut read = vec![own.path.clone()];
    let root = if own.is_workspace_root() {
        None
    } else {
        let mut found = None;
        for dir in package.parent().into_iter().flat_map(Path::ancestors).skip(1) {
            let candidate = dir.join("Cargo.toml");
            if candidate.is_file() {
                let m = Manifest::read(&candidate)?;
                if m.is_workspace_root() {
                    found = Some(m);
                    break;
                }
            }
        }
        found
    };
    let mut layers = Vec::new();
    let ws = root.as_ref().unwrap_or(&own);
    if let Some(layer) = ws.layer("workspace")? {
        if root.is_some() {
            read.push(ws.path.clone());
        }
        layers.push(layer);
    }
    layers.extend(own.layer("package")?);
    Ok((layers, read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_then_package_with_absolute_directories() {
        let tmp = std::env::temp_dir().join(format!("pm-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(tmp.join("app")).unwrap();
        std::fs::write(tmp.join("Cargo.toml"), "[workspace]\nmembers = [\"app\"]\n[workspace.metadata.procrastinate]\nmigrations = \"db\"\nschema = \"ws\"\n").unwrap();
        std::fs::write(tmp.join("app/Cargo.toml"), "[package]\nname = \"app\"\n[package.metadata.procrastinate]\nschema = \"pkg\"\n").unwrap();
        let (layers, read) = package_layers(&tmp.join("app/Cargo.toml")).unwrap();
        assert_eq!(read.len(), 2);
        let merged = layers.into_iter().fold(Settings::default(), |acc, l| acc.overlay(l.settings));
        assert_eq!(merged.schema.as_deref(), Some("pkg"));
        assert_eq!(merged.migrations, Some(tmp.join("db").to_string_lossy().into_owned().into()));
        std::fs::write(tmp.join("app/Cargo.toml"), "[package\nname = ").unwrap();
        assert!(package_layers(&tmp.join("app/Cargo.toml")).err().unwrap().contains("is not a valid manifest"));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
