//! The start-up check: may this build run on that database? Pure, so that any driver can feed
//! it: the blocking and async helpers (`db`, `tokio_postgres`) and an application's own pool
//! read the rows with [`TrackingTable::exists_sql`](crate::tracking::TrackingTable::exists_sql)
//! and [`rows_sql`](crate::tracking::TrackingTable::rows_sql), build [`Applied`] rows with
//! [`Applied::from_text`], and call [`check`].
//!
//! The window (computed at build time, see [`Window`]): the oldest state is every migration
//! through the last `pre` of the build's head release (its `post` may still be pending: the
//! release's code works with and without it); the newest is the head plus the next release's
//! migrations that are *recorded* as `pre` (the recorded file names say so, whatever markers the
//! build's own files carry: a 2.15 build runs with 3.0's `pre` applied), never a `post`. A set
//! whose files carry no phase needs its head.
//!
//! A set with nothing recorded whose objects exist anyway (a database built by `schema.sql`,
//! Django or Alembic) is [`Compatibility::Unadopted`]: [`adoption_sql`] finds those objects.

use std::fmt;

use crate::deploy::releases;
use crate::migration::{Migration, Phase, Revision};
use crate::set::SetDef;
use crate::state::{Applied, Divergence, Status};
use crate::tracking::{quote_literal, TrackingTable};

/// How long the start-up check waits by default, for all its sets together: a tracking table
/// locked by another session (or a slow server) gives a clear error in time, not a hang.
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The database states a build runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Every migration through this one must be applied.
    pub oldest: Revision,
    /// The build's last migration.
    pub head: Revision,
}

impl Window {
    /// The window of a set (which is never empty).
    pub fn of(migrations: &[Migration]) -> Window {
        let head = migrations.last().expect("a set is never empty").revision;
        let last = releases(migrations).pop().expect("a set is never empty");
        // The head release's trailing `post` migrations may be pending.
        let posts = last.migrations.iter().rev().take_while(|m| m.phase == Phase::Post).count();
        let oldest = if posts == migrations.len() { head } else { migrations[migrations.len() - 1 - posts].revision };
        Window { oldest, head }
    }
}

/// The verdict on one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compatibility {
    /// This build runs on it. `pending`: files of this build not applied yet (its `post`
    /// migrations); `ahead`: the next release's `pre` migrations, applied already.
    Compatible {
        /// The revision the database is at.
        current: Revision,
        /// File names of this build's migrations not applied yet.
        pending: Vec<String>,
        /// File names of the next release's `pre` migrations that are applied already.
        ahead: Vec<String>,
    },
    /// The database lacks migrations this build needs (`missing`, through `needs`).
    NeedsUpgrade {
        /// The revision the database is at (`None`: base).
        current: Option<Revision>,
        /// The oldest revision this build runs on ([`Window::oldest`]).
        needs: Revision,
        /// File names of the migrations after `current` through `needs`.
        missing: Vec<String>,
    },
    /// The database has migrations this build does not know and cannot tolerate.
    TooNew {
        /// File names recorded after this build's head that are not the next release's `pre`.
        unknown: Vec<String>,
    },
    /// The files and the database disagree (changed, inserted, gone or renamed files).
    Diverged(Vec<Divergence>),
    /// Nothing of the set is recorded, yet its objects exist: a database built by `schema.sql`,
    /// Django, Alembic or by hand, to adopt with `stamp --detect` (an upgrade would fail on them).
    Unadopted {
        /// Names of the set's relations, types and routines found in the schema (a few).
        found: Vec<String>,
    },
}

/// A set's verdict, with what is needed to say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The set's name (`None`: the one set of a plain `migrations = "dir"`).
    pub set: Option<String>,
    /// The database states this build runs on.
    pub window: Window,
    /// Where the database stands within, or outside, the window.
    pub compatibility: Compatibility,
}

impl Verdict {
    /// Whether this build may run on the database as it is.
    pub fn is_compatible(&self) -> bool {
        matches!(self.compatibility, Compatibility::Compatible { .. })
    }

    fn label(&self, r: Option<Revision>) -> String {
        crate::label(self.set.as_deref(), r)
    }

    fn set_flag(&self) -> String {
        self.set.as_ref().map(|s| format!(" --set {s}")).unwrap_or_default()
    }

    /// The exit code `cargo procrastinate check --compatible` gives for it: 0 compatible, 4
    /// needs an upgrade (or adopting), 5 too new or diverged.
    pub fn exit_code(&self) -> i32 {
        match self.compatibility {
            Compatibility::Compatible { .. } => 0,
            Compatibility::NeedsUpgrade { .. } | Compatibility::Unadopted { .. } => 4,
            Compatibility::TooNew { .. } | Compatibility::Diverged(_) => 5,
        }
    }

    /// `compatible`, `needs_upgrade`, `unadopted`, `too_new` or `diverged`: how JSON names it.
    pub fn kind(&self) -> &'static str {
        match self.compatibility {
            Compatibility::Compatible { .. } => "compatible",
            Compatibility::NeedsUpgrade { .. } => "needs_upgrade",
            Compatibility::Unadopted { .. } => "unadopted",
            Compatibility::TooNew { .. } => "too_new",
            Compatibility::Diverged(_) => "diverged",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = self.label(Some(self.window.head));
        match &self.compatibility {
            Compatibility::Compatible { current, pending, ahead } => {
                write!(f, "compatible: the database is at {} (this build: {head})", self.label(Some(*current)))?;
                if !pending.is_empty() {
                    write!(
                        f,
                        "; {} pending, to apply once this build is deployed: `cargo procrastinate upgrade{}`",
                        pending.join(", "),
                        self.set_flag()
                    )?;
                }
                if !ahead.is_empty() {
                    write!(f, "; the next release's pre migrations are applied already ({})", ahead.join(", "))?;
                }
                Ok(())
            }
            Compatibility::NeedsUpgrade { current, needs, missing } => write!(
                f,
                "needs an upgrade: the database is at {} but this build needs {} ({} missing: {}{}); \
                 `cargo procrastinate plan{}` lists the zero-downtime steps, `cargo procrastinate upgrade {}` applies them at once",
                self.label(*current),
                self.label(Some(*needs)),
                missing.len(),
                missing.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if missing.len() > 3 { ", ..." } else { "" },
                self.set_flag(),
                self.label(Some(*needs)),
            ),
            Compatibility::TooNew { unknown } => write!(
                f,
                "the database is too new for this build (head {head}): it records {} that this build does not know; \
                 deploy the release of the application that upgraded it (or a newer one)",
                unknown.join(", ")
            ),
            Compatibility::Diverged(list) => {
                write!(f, "the database and this build's migration files disagree:")?;
                list.iter().try_for_each(|d| write!(f, "\n  {}", d.display_in(self.set.as_deref())))
            }
            Compatibility::Unadopted { found } => write!(
                f,
                "the database has this set's objects ({}) but records none of its migrations: it was built by \
                 schema.sql, Django, Alembic or by hand. Adopt it once with `cargo procrastinate stamp{} --detect` \
                 (it finds the revision and records it); `upgrade` would fail on the existing objects",
                found.join(", "),
                self.set_flag()
            ),
        }
    }
}

/// The verdict for a set embedded as `def`, from its recorded rows (`None`: no tracking table).
pub fn check(def: &SetDef, rows: Option<Vec<Applied>>) -> Verdict {
    verdict(def.name, def.migrations, def.window, rows, Vec::new())
}

/// [`check`], knowing which of the set's objects exist (what [`adoption_sql`] returns): with
/// nothing recorded and some found, the verdict is [`Compatibility::Unadopted`].
pub fn check_adopted(def: &SetDef, rows: Option<Vec<Applied>>, found: Vec<String>) -> Verdict {
    verdict(def.name, def.migrations, def.window, rows, found)
}

/// The verdict for set `set` (its `migrations` and `window`), from its recorded rows (`None`: no
/// tracking table) and the names of its objects found in the schema (see [`adoption_sql`]; empty
/// when not looked for): what [`check`] says for an embedded set, and `check --compatible` for
/// the files on disk.
pub fn verdict(set: Option<&str>, migrations: &[Migration], window: Window, rows: Option<Vec<Applied>>, found: Vec<String>) -> Verdict {
    let status = Status::compare(rows, migrations);
    let unknown: Vec<String> = status.ahead().to_vec();
    let other: Vec<Divergence> = status.divergences.iter().filter(|d| !matches!(d, Divergence::Ahead { .. })).cloned().collect();
    let compatibility = if !other.is_empty() {
        Compatibility::Diverged(other)
    } else if !unknown.is_empty() {
        // Beyond the head, and not just the next release's pre (Status::compare's window).
        Compatibility::TooNew { unknown }
    } else if status.applied.is_empty() && !found.is_empty() {
        Compatibility::Unadopted { found }
    } else if status.current < Some(window.oldest) {
        let done = status.current.map_or(0, |r| r.number() as usize);
        let missing = migrations[done..=window.oldest.index()].iter().map(|m| m.file_name.to_string()).collect();
        Compatibility::NeedsUpgrade { current: status.current, needs: window.oldest, missing }
    } else {
        let current = status.current.expect("at least the oldest is applied");
        let pending = status.pending(migrations).iter().map(|m| m.file_name.to_string()).collect();
        Compatibility::Compatible { current, pending, ahead: status.beyond.clone() }
    };
    Verdict { set: set.map(str::to_string), window, compatibility }
}

/// One query whose rows are the names of the set's relations, types and routines (those its
/// files create) that exist in `schema` (`None`: the first schema of the `search_path`), at
/// most three: run when nothing of the set is recorded, to tell an empty database from one
/// built without this tool. `None` when the files create nothing it can name.
pub fn adoption_sql(migrations: &[Migration], schema: Option<&str>) -> Option<String> {
    let names = crate::adopt::created_names(migrations);
    if names.is_empty() {
        return None;
    }
    let names: Vec<String> = names.iter().map(|n| quote_literal(n)).collect();
    let ns = match schema {
        Some(s) => format!("(SELECT oid FROM pg_namespace WHERE nspname = {})", quote_literal(s)),
        None => "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())".to_string(),
    };
    Some(format!(
        "SELECT n FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS u(n, i) \
         WHERE EXISTS (SELECT FROM pg_class WHERE relname = n AND relnamespace = {ns}) \
         OR EXISTS (SELECT FROM pg_type WHERE typname = n AND typnamespace = {ns}) \
         OR EXISTS (SELECT FROM pg_proc WHERE proname = n AND pronamespace = {ns}) ORDER BY i LIMIT 3",
        names.join(", ")
    ))
}

/// The two queries that read a set's rows, whatever the driver: first whether the tracking
/// table exists (one row, `t` or `f`), then, if it does, its rows as text for
/// [`Applied::from_text`]. `first`: the set is the first of `SETS` (it also reads the rows of
/// the unnamed set, which it takes over).
pub fn queries(def: &SetDef, first: bool) -> Result<(String, String), String> {
    let table = TrackingTable::new(def.version_table, def.schema)?;
    let set = def.name.unwrap_or(crate::tracking::UNNAMED_SET);
    Ok((table.exists_sql(), table.rows_sql(set, first && def.name.is_some())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MigrationSet;

    fn leak(names: &[&str]) -> &'static [Migration] {
        let files = names.iter().map(|n| (n.to_string(), format!("SELECT '{n}';").into_bytes())).collect();
        Box::leak(MigrationSet::from_files("d".into(), files).unwrap().migrations.into_boxed_slice())
    }

    fn def(migrations: &'static [Migration]) -> SetDef {
        SetDef { name: Some("procrastinate"), migrations, schema: None, version_table: "t", window: Window::of(migrations) }
    }

    fn rows(ms: &[Migration]) -> Option<Vec<Applied>> {
        Some(ms.iter().map(|m| Applied::recorded(m.revision.to_string(), m.file_name.to_string(), m.checksum.to_string())).collect())
    }

    const V3_3: [&str; 3] = ["02.14.01_01_b.sql", "03.00.00_01_pre_c.sql", "03.03.00_01_pre_e.sql"];
    const V3_4: [&str; 5] = ["02.14.01_01_b.sql", "03.00.00_01_pre_c.sql", "03.03.00_01_pre_e.sql", "03.04.00_01_pre_f.sql", "03.04.00_50_post_f.sql"];

    #[test]
    fn the_window_runs_from_the_head_release_pre_to_the_next_release_pre() {
        let new = leak(&V3_4);
        let old = leak(&V3_3);
        assert_eq!(Window::of(new), Window { oldest: Revision::new(4), head: Revision::new(5) });
        assert_eq!(Window::of(old).oldest, Revision::new(3));
        let (new_def, old_def) = (def(new), def(old));
        // A database at 3.3 (0003), at 3.4's pre (0004), at 3.4's post (0005).
        let at = |n: usize| rows(&new[..n]);
        assert!(matches!(check(&new_def, at(3)).compatibility, Compatibility::NeedsUpgrade { needs, .. } if needs == Revision::new(4)));
        assert!(check(&new_def, at(4)).is_compatible());
        assert!(check(&new_def, at(5)).is_compatible());
        assert!(check(&old_def, at(3)).is_compatible());
        let window = check(&old_def, at(4));
        assert!(window.is_compatible(), "{window}");
        assert!(window.to_string().contains("next release's pre migrations are applied already (03.04.00_01_pre_f.sql)"), "{window}");
        let too_new = check(&old_def, at(5));
        assert!(matches!(too_new.compatibility, Compatibility::TooNew { .. }), "{too_new}");
        assert!(too_new.to_string().contains("03.04.00_50_post_f.sql"), "{too_new}");
        let needs = check(&new_def, None).to_string();
        assert!(needs.contains("database is at procrastinate@base but this build needs procrastinate@0004"), "{needs}");
    }

    #[test]
    fn beyond_the_head_the_recorded_names_decide() {
        // A build whose files carry no marker (Procrastinate 2.15) and a database with 3.0's pre.
        let old = leak(&["02.13.00_01_a.sql", "02.14.01_01_b.sql"]);
        let newer = leak(&["02.13.00_01_a.sql", "02.14.01_01_b.sql", "03.00.00_01_pre_c.sql", "03.00.00_50_post_c.sql"]);
        assert!(check(&def(old), rows(&newer[..3])).is_compatible());
        assert!(matches!(check(&def(old), rows(newer)).compatibility, Compatibility::TooNew { .. }));
    }

    #[test]
    fn hints_name_the_set_and_unadopted_databases_point_to_stamp_detect() {
        let ms = leak(&THREE);
        let mut recorded = rows(ms).unwrap();
        recorded[1].checksum = "00".repeat(32);
        let verdict = check(&def(ms), Some(recorded));
        assert!(verdict.to_string().contains("`upgrade --accept-changed procrastinate@0002`"), "{verdict}");
        assert_eq!(verdict.exit_code(), 5);
        let unadopted = check_adopted(&def(ms), None, vec!["orders".into()]);
        assert_eq!((unadopted.kind(), unadopted.exit_code()), ("unadopted", 4));
        assert!(unadopted.to_string().contains("`cargo procrastinate stamp --set procrastinate --detect`"), "{unadopted}");
        // Recorded rows win: objects found beside them are the set's own, not unadopted.
        assert!(check_adopted(&def(ms), rows(&ms[..1]), vec!["orders".into()]).compatibility != unadopted.compatibility);
    }

    const THREE: [&str; 3] = ["01.00.00_01_a.sql", "01.00.00_02_b.sql", "01.00.00_03_c.sql"];

    #[test]
    fn a_set_without_phases_is_compatible_only_at_its_head() {
        let app = leak(&["01.00.00_01_a.sql", "01.00.00_02_b.sql"]);
        let d = def(app);
        assert_eq!(d.window.oldest, Revision::new(2));
        assert!(!check(&d, rows(&app[..1])).is_compatible());
        assert!(check(&d, rows(app)).is_compatible());
        let more = leak(&["01.00.00_01_a.sql", "01.00.00_02_b.sql", "01.00.00_03_c.sql"]);
        assert!(matches!(check(&d, rows(more)).compatibility, Compatibility::TooNew { .. }));
    }
}
