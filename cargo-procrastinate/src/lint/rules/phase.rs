//! The phase rule, Procrastinate's zero-downtime contract as a lint: a `pre` migration is
//! applied while the previous release's code still runs, so anything that breaks code written
//! for the previous schema (a dropped or renamed column, a type it no longer reads, a default
//! it relied on) is an error there; a `post` migration runs once no such code is left, so the
//! same statement is allowed. A file without a phase (Procrastinate before 3.0, or a set that
//! does not use the markers) cannot promise either: a warning.

use super::Kind;
use crate::lint::Level;
use procrastinate_migrations::Phase;

/// The level of a finding of a rule of `kind` in a file of `phase`; `None`: allowed there.
pub fn level(kind: Kind, phase: Phase) -> Option<Level> {
    match (kind, phase) {
        (Kind::Always(level), _) => Some(level),
        (Kind::BreaksPrevious | Kind::BreaksPreviousAndLocks(_), Phase::Pre) => Some(Level::Error),
        (Kind::BreaksPrevious, Phase::Post) => None,
        (Kind::BreaksPrevious, Phase::Unmarked) => Some(Level::Warning),
        (Kind::BreaksPreviousAndLocks(level), _) => Some(level),
    }
}

/// What the phase adds to a finding's reason.
pub fn why(kind: Kind, phase: Phase) -> Option<&'static str> {
    match (kind, phase) {
        (Kind::BreaksPrevious | Kind::BreaksPreviousAndLocks(_), Phase::Pre) => Some(
            "this is a `pre` file: it is applied while the previous release's code still runs, and that code was written \
             for the schema before it",
        ),
        (Kind::BreaksPrevious, Phase::Unmarked) => Some(
            "this file has no phase: during a zero-downtime deploy it may run while the previous release's code still does \
             (name it `..._post_...` to apply it after the deploy)",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaking_changes_are_errors_in_pre_and_allowed_in_post() {
        assert_eq!(level(Kind::BreaksPrevious, Phase::Pre), Some(Level::Error));
        assert_eq!(level(Kind::BreaksPrevious, Phase::Post), None);
        assert_eq!(level(Kind::BreaksPrevious, Phase::Unmarked), Some(Level::Warning));
        assert_eq!(level(Kind::BreaksPreviousAndLocks(Level::Warning), Phase::Pre), Some(Level::Error));
        assert_eq!(level(Kind::BreaksPreviousAndLocks(Level::Warning), Phase::Post), Some(Level::Warning));
        assert_eq!(level(Kind::Always(Level::Error), Phase::Post), Some(Level::Error));
        assert!(why(Kind::BreaksPrevious, Phase::Pre).is_some() && why(Kind::Always(Level::Error), Phase::Pre).is_none());
    }
}
