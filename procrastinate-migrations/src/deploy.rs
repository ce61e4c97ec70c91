//! Releases and their phases: what "the next release's pre migrations" means, the ordered
//! zero-downtime deploy steps, and which running code an upgrade may break. Pure.
//!
//! Upstream's contract: release N-1's code works with N's `pre` applied; N's code works with
//! and without N's `post`; nothing promises that code skipping a release works. Files written
//! before 3.0 carry no marker, so their releases can only take the service-interruption path
//! (stop the workers, upgrade, deploy, start them).
//!
//! Which release a file belongs to is a fact of Procrastinate's publishing, not of the name:
//! before 3.0 a file is named after the release it was written against and first shipped in a
//! later one, and some releases were never published (3.0.1, 3.2.0). So Procrastinate's own
//! files are labelled by [`crate::upstream::published`] (plus the vendored release, when it is
//! newer), every other set by its file names (see [`Releases`]).

use crate::migration::{Migration, Phase, Revision, Version};
use crate::upstream;

/// The migrations of one release, in order.
#[derive(Clone, Copy, Debug)]
pub struct Release<'m> {
    /// The release that first ships these files.
    pub version: Version,
    /// What to deploy once they are applied: the newest release that ships exactly these
    /// migrations (the vendored one at most); `version` for a set labelled by its names.
    pub deploy: Version,
    /// Its files, in revision order; never empty.
    pub migrations: &'m [Migration],
}

impl Release<'_> {
    /// Files without a pre/post marker (Procrastinate before 3.0, or an application's own).
    pub fn unmarked(&self) -> bool {
        self.migrations.iter().any(|m| m.phase == Phase::Unmarked)
    }

    fn last_of(&self, phase: Phase) -> Option<Revision> {
        self.migrations.iter().rfind(|m| m.phase == phase).map(|m| m.revision)
    }
}

/// The releases of a set, by file name (a set is sorted by name, so each is contiguous). What
/// a set's own names say; [`Releases`] is what deploys use.
pub fn releases(migrations: &[Migration]) -> Vec<Release<'_>> {
    migrations
        .chunk_by(|a, b| a.version == b.version)
        .map(|chunk| Release { version: chunk[0].version, deploy: chunk[0].version, migrations: chunk })
        .collect()
}

/// How a set's migrations map to releases: the release that first ships each one, and which
/// releases (published ones, for Procrastinate's set) ship how many of them.
#[derive(Clone, Debug)]
pub struct Releases<'m> {
    migrations: &'m [Migration],
    /// Per migration: the release that first ships it.
    shipped: Vec<Version>,
    /// Releases in order, each with how many of the set's migrations it ships.
    published: Vec<(Version, usize)>,
    /// Labelled by Procrastinate's table of published releases.
    upstream: bool,
}

impl<'m> Releases<'m> {
    /// The releases of `migrations`. A set whose files are Procrastinate's (the table's files,
    /// in order) is labelled by the table, with `vendored` (`vendored.toml`'s release) added
    /// when it is newer than the table; any other set by its file names.
    pub fn of(migrations: &'m [Migration], vendored: Option<Version>) -> Releases<'m> {
        let known = upstream::files();
        let common = migrations.iter().zip(known.iter()).take_while(|(m, k)| *m.file_name == ***k).count();
        let is_upstream = !migrations.is_empty() && common == migrations.len().min(known.len());
        if !is_upstream {
            return Releases::by_name(migrations);
        }
        let table = upstream::published();
        // The table starts at 1.0.0: what that release already ships is labelled by its names.
        let oldest = table.first().map_or(0, |p| p.1).min(migrations.len());
        let mut published: Vec<(Version, usize)> =
            releases(&migrations[..oldest]).iter().map(|r| (r.version, r.migrations.last().expect("never empty").revision.number() as usize)).collect();
        published.retain(|(v, _)| table.first().is_none_or(|first| *v < first.0));
        for &(v, n) in table {
            if n <= migrations.len() {
                published.push((v, n));
            }
        }
        let newest = table.last().map(|p| p.0);
        if let Some(v) = vendored.filter(|v| newest.is_none_or(|n| *v > n) && published.last().is_none_or(|(last, _)| *v > *last)) {
            published.push((v, migrations.len()));
        }
        let shipped = migrations
            .iter()
            .enumerate()
            // Files of a release newer than the table, with nothing vendored to name it: by name.
            .map(|(i, m)| published.iter().find(|(_, n)| *n > i).map_or(m.version, |(v, _)| *v))
            .collect();
        Releases { migrations, shipped, published, upstream: true }
    }

    /// The releases of any set by its file names.
    pub fn by_name(migrations: &'m [Migration]) -> Releases<'m> {
        let published = releases(migrations).iter().map(|r| (r.version, r.migrations.last().expect("never empty").revision.number() as usize)).collect();
        Releases { migrations, shipped: migrations.iter().map(|m| m.version).collect(), published, upstream: false }
    }

    /// Whether the set is Procrastinate's, labelled by its published releases.
    pub fn is_upstream(&self) -> bool {
        self.upstream
    }

    /// The releases of the set's migrations from index `from` on, in order.
    pub fn from(&self, from: usize) -> Vec<Release<'m>> {
        let mut out: Vec<Release<'m>> = Vec::new();
        let mut start = from;
        while start < self.migrations.len() {
            let version = self.shipped[start];
            let end = (start..self.migrations.len()).find(|&i| self.shipped[i] != version).unwrap_or(self.migrations.len());
            out.push(Release { version, deploy: self.deploy(end), migrations: &self.migrations[start..end] });
            start = end;
        }
        out
    }

    /// What to deploy once the first `count` migrations are applied: the newest release that
    /// ships exactly that many (the label of the release holding the last of them otherwise).
    fn deploy(&self, count: usize) -> Version {
        self.published
            .iter()
            .rfind(|(_, n)| *n == count)
            .map(|(v, _)| *v)
            .unwrap_or_else(|| self.shipped[count.saturating_sub(1).min(self.shipped.len() - 1)])
    }

    /// Every release that ships exactly the first `count` migrations, oldest first.
    pub fn shipping(&self, count: usize) -> Vec<Version> {
        self.published.iter().filter(|(_, n)| *n == count).map(|(v, _)| *v).collect()
    }

    /// How a database at `current` is described: `2.15.0 to 2.15.1` (the releases whose
    /// migrations it has, exactly), or `part of 3.0.0` between a release's first and last file.
    pub fn position(&self, current: Option<Revision>) -> Option<String> {
        let count = current?.number() as usize;
        let exact = self.shipping(count);
        Some(match (exact.first(), exact.last()) {
            (Some(a), Some(b)) if a == b => a.human(),
            (Some(a), Some(b)) => format!("{} to {}", a.human(), b.human()),
            _ => format!("part of {}", self.shipped[count - 1].human()),
        })
    }

    /// How many migrations release `v` ships (what `--to-version` and `plan --to` aim at);
    /// for Procrastinate's set only a published release (or the vendored one) is one.
    pub fn count_of(&self, v: Version) -> Result<usize, String> {
        if let Some((_, n)) = self.published.iter().find(|(p, _)| *p == v) {
            return Ok(*n);
        }
        let table = upstream::published();
        let known = |v: Version| table.first().is_some_and(|first| first.0 <= v) && table.last().is_some_and(|last| v <= last.0);
        if !self.upstream || !known(v) {
            // By the names: an application's releases, Procrastinate's before the table starts,
            // and files of a release newer than the table (vendored by hand).
            return Ok(self.migrations.iter().rposition(|m| m.version <= v).map_or(0, |i| i + 1));
        }
        let near: Vec<String> = self
            .published
            .iter()
            .filter(|(p, _)| p.major == v.major && p.minor.abs_diff(v.minor) <= 1)
            .map(|(p, _)| p.human())
            .collect();
        Err(format!(
            "Procrastinate {} was never published{}",
            v.human(),
            if near.is_empty() { String::new() } else { format!(" (published near it: {})", near.join(", ")) }
        ))
    }

    /// Where `goal` takes the set, which is at `current`.
    pub fn reach(&self, current: Option<Revision>, goal: Goal) -> Result<Reach, String> {
        let done = current.map_or(0, |r| r.number() as usize);
        if let Goal::ToVersion(v) = goal {
            let n = self.count_of(v)?;
            return Ok(if n > done { Reach::To(self.migrations[n - 1].revision) } else { Reach::Nothing(Why::NothingUpTo(v)) });
        }
        let Some(next) = self.from(done).into_iter().next() else {
            return Ok(Reach::Nothing(Why::AtHead));
        };
        if next.unmarked() {
            let (version, through) = self.interrupted_through(done, None);
            return Ok(Reach::Interrupt { version, through });
        }
        Ok(match (goal, next.migrations[0].phase) {
            (Goal::Pre, Phase::Pre) => Reach::To(next.last_of(Phase::Pre).expect("starts with a pre")),
            (Goal::Pre, _) => Reach::Nothing(Why::PostPending { release: next.version, deploy: next.deploy }),
            (Goal::Post, Phase::Post) => Reach::To(next.last_of(Phase::Post).expect("starts with a post")),
            (Goal::Post, _) => Reach::Nothing(Why::PrePending(next.version)),
            (Goal::ToVersion(_), _) => unreachable!("handled above"),
        })
    }

    /// The run of consecutive unmarked releases from index `done` (no further than `to`
    /// migrations): what to give `--to-version` (the release to deploy after it), and its
    /// last revision. With the workers stopped anyway, they are taken in one go.
    fn interrupted_through(&self, done: usize, to: Option<usize>) -> (Version, Revision) {
        let run: Vec<Release<'m>> = self.from(done).into_iter().take_while(Release::unmarked).collect();
        let mut end = run.last().map(|r| r.migrations.last().expect("never empty").revision.number() as usize).expect("the first pending release is unmarked");
        if let Some(to) = to {
            end = end.min(to.max(done + 1));
            // Never inside a release: back to the last release boundary at or before it.
            if let Some(r) = run.iter().rev().find(|r| (r.migrations.last().expect("never empty").revision.number() as usize) <= end) {
                end = r.migrations.last().expect("never empty").revision.number() as usize;
            }
        }
        (self.deploy(end), self.migrations[end - 1].revision)
    }

    /// The ordered deploy steps from `current` through release `to` (every pending release
    /// when `None`).
    pub fn plan(&self, current: Option<Revision>, to: Option<Version>) -> Result<Vec<Step>, String> {
        let limit = to.map(|v| self.count_of(v)).transpose()?;
        let mut steps = Vec::new();
        let mut done = current.map_or(0, |r| r.number() as usize);
        loop {
            if limit.is_some_and(|l| done >= l) {
                break;
            }
            let Some(next) = self.from(done).into_iter().next() else { break };
            if next.unmarked() {
                let (version, through) = self.interrupted_through(done, limit);
                steps.push(Step::Interrupt { version, through });
                done = through.number() as usize;
                continue;
            }
            let version = next.version;
            if let Some(through) = next.last_of(Phase::Pre) {
                steps.push(Step::ApplyPre { version, through });
            }
            steps.push(Step::Deploy { version: next.deploy, of: next.version });
            if let Some(through) = next.last_of(Phase::Post) {
                steps.push(Step::ApplyPost { version, through });
            }
            done = next.migrations.last().expect("never empty").revision.number() as usize;
        }
        Ok(steps)
    }

    /// Releases whose `post` migrations the migrations `from..to` (indexes) apply together
    /// with a later release's migrations: workers still running code older than the last of
    /// them may break (upstream promises nothing to code that skips a release). Each is named
    /// by what to deploy after it.
    pub fn crossed_posts(&self, from: usize, to: usize) -> Vec<Version> {
        let Some(last) = to.checked_sub(1).filter(|l| *l >= from).map(|l| self.shipped[l]) else { return Vec::new() };
        let mut crossed: Vec<Version> = Vec::new();
        for r in self.from(from) {
            let first = r.migrations[0].revision.index();
            if first >= to || r.version >= last {
                break;
            }
            if r.migrations.iter().any(|m| m.phase == Phase::Post && m.revision.index() < to) {
                crossed.push(r.deploy);
            }
        }
        crossed
    }
}

/// What `upgrade --phase` / `--to-version` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goal {
    /// The pending `pre` migrations of the next release that has pending migrations.
    Pre,
    /// The pending `post` migrations of the release whose `pre` is applied.
    Post,
    /// Every migration of the releases up to this one.
    ToVersion(Version),
}

/// Where a goal takes one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Upgrade to this revision.
    To(Revision),
    /// Nothing to apply for this goal, and why.
    Nothing(Why),
    /// The next release has unmarked files: only the service-interruption path is safe.
    Interrupt {
        /// The release to give `--to-version` and to deploy: the last of the run of unmarked
        /// releases that starts with the next one.
        version: Version,
        /// The last revision of that run: with the workers stopped, all of it goes at once.
        through: Revision,
    },
}

/// Why a goal has nothing to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Every migration is applied.
    AtHead,
    /// `--phase pre`, but this release's pre is applied and its post pending: deploy it, then
    /// `--phase post`.
    PostPending {
        /// The release whose post is pending.
        release: Version,
        /// What to deploy now.
        deploy: Version,
    },
    /// `--phase post`, but this next release's pre is not applied yet.
    PrePending(Version),
    /// `--to-version`, but no pending migration belongs to that release or an earlier one.
    NothingUpTo(Version),
}

/// One step of a zero-downtime deploy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Apply the release's `pre` migrations (`upgrade --phase pre`), through `through`.
    ApplyPre {
        /// The release.
        version: Version,
        /// Its last `pre` migration.
        through: Revision,
    },
    /// Deploy the release's code.
    Deploy {
        /// The release whose code to deploy: the newest that ships exactly these migrations.
        version: Version,
        /// The release whose migrations come with it (the one the apply steps name).
        of: Version,
    },
    /// Apply the release's `post` migrations (`upgrade --phase post`), through `through`.
    ApplyPost {
        /// The release.
        version: Version,
        /// Its last `post` migration.
        through: Revision,
    },
    /// Unmarked files: stop the workers, `upgrade --to-version`, deploy, start them.
    Interrupt {
        /// The release to give `--to-version` and to deploy.
        version: Version,
        /// The last revision that step applies.
        through: Revision,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MigrationSet;

    /// The shape of Procrastinate 3.10.0's set from 0029 on: 2.14.1 unmarked, 3.0..3.2 pre and
    /// post, 3.3 pre only, 3.4 pre and post.
    fn set() -> Vec<Migration> {
        let names = [
            "02.13.00_01_a.sql",
            "02.14.01_01_b.sql",
            "03.00.00_01_pre_c.sql",
            "03.00.00_50_post_c.sql",
            "03.01.00_01_pre_d.sql",
            "03.01.00_50_post_d.sql",
            "03.03.00_01_pre_e.sql",
            "03.04.00_01_pre_f.sql",
            "03.04.00_50_post_f.sql",
        ];
        let files = names.iter().map(|n| (n.to_string(), b"SELECT 1;".to_vec())).collect();
        MigrationSet::from_files("d".into(), files).unwrap().migrations
    }

    fn r(n: u32) -> Revision {
        Revision::new(n)
    }

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn phases_step_one_release_at_a_time() {
        let ms = set();
        let rel = Releases::of(&ms, None);
        assert!(!rel.is_upstream());
        let reach = |at: Option<Revision>, goal| rel.reach(at, goal).unwrap();
        assert_eq!(reach(Some(r(2)), Goal::Pre), Reach::To(r(3)));
        assert_eq!(reach(Some(r(3)), Goal::Pre), Reach::Nothing(Why::PostPending { release: v("3.0.0"), deploy: v("3.0.0") }));
        assert_eq!(reach(Some(r(3)), Goal::Post), Reach::To(r(4)));
        assert_eq!(reach(Some(r(4)), Goal::Post), Reach::Nothing(Why::PrePending(v("3.1.0"))));
        assert_eq!(reach(Some(r(4)), Goal::Pre), Reach::To(r(5)));
        // 3.3 has a pre and no post: after it, --phase pre goes on to 3.4.
        assert_eq!(reach(Some(r(6)), Goal::Pre), Reach::To(r(7)));
        assert!(matches!(reach(Some(r(7)), Goal::Post), Reach::Nothing(_)));
        assert_eq!(reach(Some(r(7)), Goal::Pre), Reach::To(r(8)));
        assert_eq!(reach(Some(r(9)), Goal::Pre), Reach::Nothing(Why::AtHead));
        // Before 3.0: no guessing.
        assert_eq!(reach(None, Goal::Pre), Reach::Interrupt { version: v("2.14.1"), through: r(2) });
        assert_eq!(reach(Some(r(2)), Goal::ToVersion(v("3.1"))), Reach::To(r(6)));
        assert_eq!(reach(Some(r(2)), Goal::ToVersion(v("3.2.0"))), Reach::To(r(6)));
    }

    #[test]
    fn the_deploy_plan_lists_each_release_in_order() {
        let ms = set();
        let rel = Releases::of(&ms, None);
        let plan = |at, to| rel.plan(at, to).unwrap();
        let steps = plan(Some(r(2)), None);
        let want = [
            Step::ApplyPre { version: v("3.0.0"), through: r(3) },
            Step::Deploy { version: v("3.0.0"), of: v("3.0.0") },
            Step::ApplyPost { version: v("3.0.0"), through: r(4) },
            Step::ApplyPre { version: v("3.1.0"), through: r(5) },
            Step::Deploy { version: v("3.1.0"), of: v("3.1.0") },
            Step::ApplyPost { version: v("3.1.0"), through: r(6) },
            Step::ApplyPre { version: v("3.3.0"), through: r(7) },
            Step::Deploy { version: v("3.3.0"), of: v("3.3.0") },
            Step::ApplyPre { version: v("3.4.0"), through: r(8) },
            Step::Deploy { version: v("3.4.0"), of: v("3.4.0") },
            Step::ApplyPost { version: v("3.4.0"), through: r(9) },
        ];
        assert_eq!(steps, want);
        assert_eq!(plan(Some(r(2)), Some(v("3.0.0"))), want[..3]);
        // Between a pre and its post: deploy, then the post.
        assert_eq!(plan(Some(r(3)), Some(v("3.0.0"))), want[1..3]);
        assert_eq!(plan(None, Some(v("3.0.0")))[0], Step::Interrupt { version: v("2.14.1"), through: r(2) });
        assert_eq!(plan(None, Some(v("2.13.0"))), [Step::Interrupt { version: v("2.13.0"), through: r(1) }]);
        assert!(plan(Some(r(9)), None).is_empty());
    }

    #[test]
    fn crossing_a_post_before_the_last_release_is_named() {
        let ms = set();
        let rel = Releases::of(&ms, None);
        assert_eq!(rel.crossed_posts(2, 9), [v("3.0.0"), v("3.1.0")]);
        assert!(rel.crossed_posts(7, 9).is_empty(), "the last release's own post is the deploy's business");
        assert!(rel.crossed_posts(2, 3).is_empty());
    }

    /// Procrastinate's own files, labelled by the releases that shipped them.
    fn upstream() -> Vec<Migration> {
        let files = crate::upstream::files().iter().map(|n| (n.to_string(), b"SELECT 1;".to_vec())).collect();
        MigrationSet::from_files("d".into(), files).unwrap().migrations
    }

    #[test]
    fn procrastinate_files_are_labelled_by_the_releases_that_shipped_them() {
        let ms = upstream();
        let rel = Releases::of(&ms, Some(v("3.10.0")));
        assert!(rel.is_upstream());
        // 02.14.01_01 first shipped in 2.15.0: 2.14.1 ends at 0028.
        assert_eq!(rel.count_of(v("2.14.1")), Ok(28));
        assert_eq!(rel.count_of(v("2.15.0")), Ok(29));
        assert_eq!(rel.reach(Some(r(20)), Goal::ToVersion(v("2.14.1"))), Ok(Reach::To(r(28))));
        assert!(rel.count_of(v("3.2.0")).unwrap_err().contains("3.2.0 was never published (published near it: 3.1.0, 3.2.1, 3.2.2, 3.3.0)"));
        assert_eq!(rel.position(Some(r(29))).as_deref(), Some("2.15.0 to 2.15.1"));
        assert_eq!(rel.position(Some(r(30))).as_deref(), Some("part of 3.0.0"));
        assert_eq!(rel.position(Some(r(36))).as_deref(), Some("3.3.0"));
        let steps = rel.plan(Some(r(29)), None).unwrap();
        let deploys: Vec<String> = steps.iter().filter_map(|s| if let Step::Deploy { version, .. } = s { Some(version.human()) } else { None }).collect();
        assert_eq!(deploys, ["3.0.2", "3.1.0", "3.2.2", "3.3.0", "3.10.0"]);
        assert_eq!(steps[6], Step::ApplyPre { version: v("3.2.1"), through: r(34) });
        // Without the vendored release, the newest in the table.
        let plain = Releases::of(&ms, None);
        assert_eq!(plain.plan(Some(r(36)), None).unwrap()[1], Step::Deploy { version: plain.published.last().unwrap().0, of: v("3.4.0") });
        // Before 3.0: the service-interruption path, to the release that ships the files.
        assert_eq!(rel.reach(Some(r(27)), Goal::Pre), Ok(Reach::Interrupt { version: v("2.15.1"), through: r(29) }));
        assert_eq!(rel.plan(Some(r(27)), Some(v("2.14.1"))).unwrap(), [Step::Interrupt { version: v("2.14.1"), through: r(28) }]);
        assert_eq!(rel.crossed_posts(29, 38), [v("3.0.2"), v("3.1.0"), v("3.2.2")]);
        // A set of an older release is labelled by the same table.
        let old = Releases::of(&ms[..29], None);
        assert!(old.is_upstream());
        assert_eq!(old.count_of(v("2.15.1")), Ok(29));
    }
}
