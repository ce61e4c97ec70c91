//! The rules `lint` applies, one per file for the rules this tool implements, and the rules
//! squawk implements (`squawk.rs`), each with what it finds, why it matters and the safe way.
//! How a rule's level depends on the file's phase is `phase.rs`.

pub mod exclusive_lock_held;
pub mod no_transaction_misplaced;
pub mod no_transaction_required;
pub mod no_transaction_unneeded;
pub mod phase;
pub mod squawk;

use super::Level;

/// A rule's description: the text of its findings and docs.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Its name, as findings, `-- cargo-procrastinate: allow NAME` and `lint-allow` say it.
    pub name: &'static str,
    /// What it finds, in a few words.
    pub summary: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// The safe way.
    pub safe: &'static str,
    /// How the file's phase decides the finding's level.
    pub kind: Kind,
}

/// How a rule's findings weigh in each phase (see [`phase::level`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Breaks code written for the previous schema (a dropped column it reads): an error in a
    /// `pre` file, allowed in `post`, a warning in a file without a phase.
    BreaksPrevious,
    /// Breaks the previous release's code and also locks or rewrites: an error in `pre`, this
    /// level in `post` and in a file without a phase.
    BreaksPreviousAndLocks(Level),
    /// Unsafe whatever the phase (a lock held, a rewrite, a statement that fails): this level.
    Always(Level),
}

/// A place a rule found something, before the phase, the allow lists and the excerpt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule's name.
    pub rule: &'static str,
    /// Byte offset in the file.
    pub offset: usize,
    /// What this statement does, specifically.
    pub message: String,
}

/// Every rule, this tool's and squawk's, by name.
pub fn all() -> Vec<Rule> {
    let mut rules = vec![
        no_transaction_required::RULE,
        no_transaction_unneeded::RULE,
        no_transaction_misplaced::RULE,
        exclusive_lock_held::RULE,
    ];
    rules.extend(squawk::RULES.iter().map(|(_, r)| *r));
    rules
}

/// The rule of that name.
pub fn find(name: &str) -> Option<Rule> {
    all().into_iter().find(|r| r.name == name)
}
