//! The `[package.metadata.procrastinate]` / `[workspace.metadata.procrastinate]` table.
//!
//! One struct for every layer (workspace, package, environment, flags) so that the build script
//! and the CLI accept exactly the same keys, and an unknown key fails both with its name.

use serde::Deserialize;

/// One layer of settings; `None` means "not set here, ask the layer below".
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Directory of `*.sql` files, relative to the manifest that sets it.
    pub migrations: Option<String>,
    /// Name of the environment variable holding the database URL (default `DATABASE_URL`).
    pub database_url_env: Option<String>,
    /// PostgreSQL schema that migrations and tracking live in, through `search_path`.
    pub schema: Option<String>,
    /// Tracking table, optionally schema-qualified (`ops.migrations`).
    pub version_table: Option<String>,
    /// Longest a migration may wait for a table lock held by another session (`5s`, `500ms`).
    pub lock_timeout: Option<String>,
    /// Longest an `upgrade` waits for another `upgrade` holding the migration lock.
    pub lock_wait: Option<String>,
}

impl Settings {
    pub const KEYS: &'static [&'static str] =
        &["migrations", "database-url-env", "schema", "version-table", "lock-timeout", "lock-wait"];

    /// `over` wins wherever it sets a key.
    pub fn overlay(self, over: Settings) -> Settings {
        Settings {
            migrations: over.migrations.or(self.migrations),
            database_url_env: over.database_url_env.or(self.database_url_env),
            schema: over.schema.or(self.schema),
            version_table: over.version_table.or(self.version_table),
            lock_timeout: over.lock_timeout.or(self.lock_timeout),
            lock_wait: over.lock_wait.or(self.lock_wait),
        }
    }
}

/// Default tracking table. Never `procrastinate_version`: upstream's first migration creates a
/// table of that name and its fourth drops it.
pub const DEFAULT_VERSION_TABLE: &str = "cargo_procrastinate_migrations";
pub const DEFAULT_DATABASE_URL_ENV: &str = "DATABASE_URL";
pub const DEFAULT_LOCK_TIMEOUT: &str = "5s";
pub const DEFAULT_LOCK_WAIT: &str = "10min";

/// Parses `5s`, `500ms`, `2min`, `1h`, or bare seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a duration (e.g. `5s`, `500ms`, `2min`)"))?;
    let scale: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "min" | "m" => 60_000,
        "h" => 3_600_000,
        other => return Err(format!("unknown unit `{other}` in `{s}` (use ms, s, min or h)")),
    };
    let ms = n.checked_mul(scale).ok_or_else(|| format!("`{s}` is too long a duration"))?;
    Ok(std::time::Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
