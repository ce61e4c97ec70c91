//! `no-transaction-unneeded`: a `-- no-transaction` file whose statement would run in a
//! transaction. Outside one, a failure can leave it half done, and its tracking row is written
//! apart from it (the tool claims it first, then records it).

use squawk_syntax::ast::AstNode;

use super::{no_transaction_required::needs_no_transaction, Hit, Kind, Rule};
use crate::lint::{stmts, File, Level};

/// The rule.
pub const RULE: Rule = Rule {
    name: "no-transaction-unneeded",
    summary: "a `-- no-transaction` file whose statement runs fine in a transaction",
    why: "outside a transaction a failure can leave the change half done, and the file and its tracking row are not \
          applied together",
    safe: "remove the `-- no-transaction` line: the file then runs whole, with its row, in one transaction",
    kind: Kind::Always(Level::Warning),
};

/// Its hits in a file.
pub fn check(file: &File<'_>) -> Vec<Hit> {
    if !file.no_transaction {
        return Vec::new();
    }
    stmts(&file.tree)
        .iter()
        .filter(|s| needs_no_transaction(s).is_none())
        .map(|s| Hit {
            rule: RULE.name,
            offset: s.syntax().text_range().start().into(),
            message: "this statement can run in a transaction, but the file is marked `-- no-transaction`".into(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lint::tests_support::hits;

    #[test]
    fn only_what_needs_it_goes_outside_a_transaction() {
        assert_eq!(hits("-- no-transaction\nALTER TABLE t ADD COLUMN c int;", true, super::check).len(), 1);
        assert!(hits("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);", true, super::check).is_empty());
    }
}
