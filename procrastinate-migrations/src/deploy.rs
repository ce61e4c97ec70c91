//! Releases and their phases: what "the next release's pre migrations" means, the ordered
//! zero-downtime deploy steps, and which running code an upgrade may break. Pure.
//!
//! Upstream's contract: release N-1's code works with N's `pre` applied; N's code works with
//! and without N's `post`; nothing promises that code skipping a release works. Files written
//! before 3.0 carry no marker, so their releases can only take the service-interruption path
//! (stop the workers, upgrade, deploy, start them).

use crate::migration::{Migration, Phase, Revision, Version};

/// The migrations of one release (files with the same version), in order.
#[derive(Clone, Copy, Debug)]
pub struct Release<'m> {
    /// The release, as the file names give it.
    pub version: Version,
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

/// The releases of a set, in order (a set is sorted by name, so each release is contiguous).
pub fn releases(migrations: &[Migration]) -> Vec<Release<'_>> {
    migrations
        .chunk_by(|a, b| a.version == b.version)
        .map(|chunk| Release { version: chunk[0].version, migrations: chunk })
        .collect()
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
        /// The last release of the run of unmarked releases that starts with the next one.
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
    PostPending(Version),
    /// `--phase post`, but this next release's pre is not applied yet.
    PrePending(Version),
    /// `--to-version`, but no pending migration belongs to that release or an earlier one.
    NothingUpTo(Version),
}

/// Where `goal` takes a set that is at `current`.
pub fn reach(migrations: &[Migration], current: Option<Revision>, goal: Goal) -> Reach {
    let done = current.map_or(0, |r| r.number() as usize);
    let pending = &migrations[done..];
    if let Goal::ToVersion(v) = goal {
        return match pending.iter().rfind(|m| m.version <= v) {
            Some(m) => Reach::To(m.revision),
            None => Reach::Nothing(Why::NothingUpTo(v)),
        };
    }
    let Some(next) = releases(pending).into_iter().next() else {
        return Reach::Nothing(Why::AtHead);
    };
    let v = next.version;
    if next.unmarked() {
        let through = interrupted_through(pending);
        return Reach::Interrupt { version: migrations[through.index()].version, through };
    }
    match (goal, next.migrations[0].phase) {
        (Goal::Pre, Phase::Pre) => Reach::To(next.last_of(Phase::Pre).expect("starts with a pre")),
        (Goal::Pre, _) => Reach::Nothing(Why::PostPending(v)),
        (Goal::Post, Phase::Post) => Reach::To(next.last_of(Phase::Post).expect("starts with a post")),
        (Goal::Post, _) => Reach::Nothing(Why::PrePending(v)),
        (Goal::ToVersion(_), _) => unreachable!("handled above"),
    }
}

/// The last revision of the run of consecutive unmarked releases at the start of `pending`:
/// with the workers stopped anyway, they are taken in one go.
fn interrupted_through(pending: &[Migration]) -> Revision {
    releases(pending)
        .into_iter()
        .take_while(Release::unmarked)
        .last()
        .and_then(|r| r.migrations.last())
        .map(|m| m.revision)
        .expect("the first pending release is unmarked")
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
        /// The release whose code to deploy.
        version: Version,
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
        /// The release to give `--to-version`: the last of the unmarked run, up to `to`.
        version: Version,
        /// The last revision that step applies.
        through: Revision,
    },
}

/// The ordered deploy steps from `current` through release `to` (every pending release when
/// `None`).
pub fn plan(migrations: &[Migration], current: Option<Revision>, to: Option<Version>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = current;
    loop {
        let done = at.map_or(0, |r| r.number() as usize);
        let Some(next) = releases(&migrations[done..]).into_iter().next() else { break };
        if to.is_some_and(|to| next.version > to) {
            break;
        }
        let version = next.version;
        if next.unmarked() {
            let mut through = interrupted_through(&migrations[done..]);
            if let Some(to) = to {
                // Never past the release asked for.
                through = migrations[done..=through.index()].iter().rfind(|m| m.version <= to).map_or(through, |m| m.revision);
            }
            steps.push(Step::Interrupt { version: migrations[through.index()].version, through });
            at = Some(through);
            continue;
        }
        let pending = next.migrations;
        if let Some(through) = pending.iter().rfind(|m| m.phase == Phase::Pre).map(|m| m.revision) {
            steps.push(Step::ApplyPre { version, through });
            at = Some(through);
        }
        steps.push(Step::Deploy { version });
        if let Some(through) = pending.iter().rfind(|m| m.phase == Phase::Post).map(|m| m.revision) {
            steps.push(Step::ApplyPost { version, through });
            at = Some(through);
        }
        at = at.max(pending.last().map(|m| m.revision));
    }
    steps
}

/// Releases whose `post` migrations `run` applies together with a later release's migrations:
/// workers still running code older than the last of them may break (upstream promises
/// nothing to code that skips a release).
pub fn crossed_posts(run: &[Migration]) -> Vec<Version> {
    let Some(last) = run.last().map(|m| m.version) else { return Vec::new() };
    let mut crossed: Vec<Version> =
        run.iter().filter(|m| m.phase == Phase::Post && m.version < last).map(|m| m.version).collect();
    crossed.dedup();
    crossed
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
        assert_eq!(reach(&ms, Some(r(2)), Goal::Pre), Reach::To(r(3)));
        assert_eq!(reach(&ms, Some(r(3)), Goal::Pre), Reach::Nothing(Why::PostPending(v("3.0.0"))));
        assert_eq!(reach(&ms, Some(r(3)), Goal::Post), Reach::To(r(4)));
        assert_eq!(reach(&ms, Some(r(4)), Goal::Post), Reach::Nothing(Why::PrePending(v("3.1.0"))));
        assert_eq!(reach(&ms, Some(r(4)), Goal::Pre), Reach::To(r(5)));
        // 3.3 has a pre and no post: after it, --phase pre goes on to 3.4.
        assert_eq!(reach(&ms, Some(r(6)), Goal::Pre), Reach::To(r(7)));
        assert!(matches!(reach(&ms, Some(r(7)), Goal::Post), Reach::Nothing(_)));
        assert_eq!(reach(&ms, Some(r(7)), Goal::Pre), Reach::To(r(8)));
        assert_eq!(reach(&ms, Some(r(9)), Goal::Pre), Reach::Nothing(Why::AtHead));
        // Before 3.0: no guessing.
        assert_eq!(reach(&ms, None, Goal::Pre), Reach::Interrupt { version: v("2.14.1"), through: r(2) });
        assert_eq!(reach(&ms, Some(r(2)), Goal::ToVersion(v("3.1"))), Reach::To(r(6)));
        assert_eq!(reach(&ms, Some(r(2)), Goal::ToVersion(v("3.2.0"))), Reach::To(r(6)));
    }

    #[test]
    fn the_deploy_plan_lists_each_release_in_order() {
        let ms = set();
        let steps = plan(&ms, Some(r(2)), None);
        let want = [
            Step::ApplyPre { version: v("3.0.0"), through: r(3) },
            Step::Deploy { version: v("3.0.0") },
            Step::ApplyPost { version: v("3.0.0"), through: r(4) },
            Step::ApplyPre { version: v("3.1.0"), through: r(5) },
            Step::Deploy { version: v("3.1.0") },
            Step::ApplyPost { version: v("3.1.0"), through: r(6) },
            Step::ApplyPre { version: v("3.3.0"), through: r(7) },
            Step::Deploy { version: v("3.3.0") },
            Step::ApplyPre { version: v("3.4.0"), through: r(8) },
            Step::Deploy { version: v("3.4.0") },
            Step::ApplyPost { version: v("3.4.0"), through: r(9) },
        ];
        assert_eq!(steps, want);
        assert_eq!(plan(&ms, Some(r(2)), Some(v("3.0.0"))), want[..3]);
        // Between a pre and its post: deploy, then the post.
        assert_eq!(plan(&ms, Some(r(3)), Some(v("3.0.0"))), want[1..3]);
        assert_eq!(plan(&ms, None, Some(v("3.0.0")))[0], Step::Interrupt { version: v("2.14.1"), through: r(2) });
        assert_eq!(plan(&ms, None, Some(v("2.13.0"))), [Step::Interrupt { version: v("2.13.0"), through: r(1) }]);
        assert!(plan(&ms, Some(r(9)), None).is_empty());
    }

    #[test]
    fn crossing_a_post_before_the_last_release_is_named() {
        let ms = set();
        assert_eq!(crossed_posts(&ms[2..9]), [v("3.0.0"), v("3.1.0")]);
        assert!(crossed_posts(&ms[7..9]).is_empty(), "the last release's own post is the deploy's business");
        assert!(crossed_posts(&ms[2..3]).is_empty());
    }
}
