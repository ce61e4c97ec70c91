//! The start-up check: may this build run on that database? Pure, so that any driver can feed
//! it: the blocking and async helpers (`db`, `tokio_postgres`) and an application's own pool
//! read the rows with [`TrackingTable::exists_sql`](crate::tracking::TrackingTable::exists_sql)
//! and [`rows_sql`](crate::tracking::TrackingTable::rows_sql), build [`Applied`] rows with
//! [`Applied::from_text`], and call [`check`].
//!
//! The window (computed at build time, see [`Window`]): the oldest state is every migration
//! through the last `pre` of the build's head release (its `post` may still be pending: the
//! release's code works with and without it); the newest is the head plus the next release's
//! `pre` migrations, which upstream promises older code tolerates, never a later `post`. A set
//! whose files carry no phase is compatible only at its head.

use std::fmt;

use crate::deploy::releases;
use crate::migration::{Migration, Phase, Revision};
use crate::set::SetDef;
use crate::state::{Applied, Divergence, Status};
use crate::tracking::TrackingTable;

/// The database states a build runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Every migration through this one must be applied.
    pub oldest: Revision,
    /// The build's last migration.
    pub head: Revision,
    /// Whether the next release's `pre` migrations may be applied beyond `head`.
    pub next_release_pre: bool,
}

impl Window {
    /// The window of a set (which is never empty).
    pub fn of(migrations: &[Migration]) -> Window {
        let head = migrations.last().expect("a set is never empty").revision;
        let last = releases(migrations).pop().expect("a set is never empty");
        // The head release's trailing `post` migrations may be pending.
        let posts = last.migrations.iter().rev().take_while(|m| m.phase == Phase::Post).count();
        let oldest = if posts == migrations.len() { head } else { migrations[migrations.len() - 1 - posts].revision };
        let next_release_pre = migrations.iter().any(|m| m.phase != Phase::Unmarked);
        Window { oldest, head, next_release_pre }
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
}

/// A set's verdict, with what is needed to say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The set's name (`None`: the one set of a plain `migrations = "dir"`).
    pub set: Option<&'static str>,
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
        crate::label(self.set, r)
    }

    fn set_flag(&self) -> String {
        self.set.map(|s| format!(" --set {s}")).unwrap_or_default()
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
                list.iter().try_for_each(|d| write!(f, "\n  {d}"))
            }
        }
    }
}

/// The verdict for a set embedded as `def`, from its recorded rows (`None`: no tracking table).
pub fn check(def: &SetDef, rows: Option<Vec<Applied>>) -> Verdict {
    let window = def.window;
    let status = Status::compare(rows, def.migrations);
    let unknown: Vec<String> = status.ahead().to_vec();
    let other: Vec<Divergence> = status.divergences.iter().filter(|d| !matches!(d, Divergence::Ahead { .. })).cloned().collect();
    let compatibility = if !other.is_empty() {
        Compatibility::Diverged(other)
    } else if !unknown.is_empty() {
        // Beyond the head, and not just the next release's pre (Status::compare's window).
        Compatibility::TooNew { unknown }
    } else if status.current < Some(window.oldest) {
        let done = status.current.map_or(0, |r| r.number() as usize);
        let missing = def.migrations[done..=window.oldest.index()].iter().map(|m| m.file_name.to_string()).collect();
        Compatibility::NeedsUpgrade { current: status.current, needs: window.oldest, missing }
    } else {
        let current = status.current.expect("at least the oldest is applied");
        let pending = status.pending(def.migrations).iter().map(|m| m.file_name.to_string()).collect();
        Compatibility::Compatible { current, pending, ahead: status.beyond.clone() }
    };
    Verdict { set: def.name, window, compatibility }
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
        assert_eq!(Window::of(new), Window { oldest: Revision::new(4), head: Revision::new(5), next_release_pre: true });
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
