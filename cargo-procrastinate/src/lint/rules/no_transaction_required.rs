//! `no-transaction-required`: a statement PostgreSQL refuses inside a transaction block
//! (`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
//! `DETACH PARTITION ... CONCURRENTLY`, `VACUUM`, `CREATE DATABASE`, `ALTER SYSTEM`, ...) in a
//! file that runs in one. The migration would fail with "cannot run inside a transaction block".

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SyntaxKind;

use super::{Hit, Kind, Rule};
use crate::lint::{has_keyword, stmts, File, Level};

/// The rule.
pub const RULE: Rule = Rule {
    name: "no-transaction-required",
    summary: "a statement PostgreSQL refuses inside a transaction, in a file that runs in one",
    why: "each file runs in one transaction unless its first line is `-- no-transaction`, and PostgreSQL refuses this \
          statement there (\"cannot run inside a transaction block\"): the migration fails",
    safe: "put it alone in a file whose first line is `-- no-transaction`",
    kind: Kind::Always(Level::Error),
};

/// What makes the statement need to run outside a transaction, if anything does.
pub fn needs_no_transaction(stmt: &ast::Stmt) -> Option<&'static str> {
    let concurrently = || has_keyword(stmt.syntax(), SyntaxKind::CONCURRENTLY_KW);
    match stmt {
        ast::Stmt::CreateIndex(_) if concurrently() => Some("CREATE INDEX CONCURRENTLY"),
        ast::Stmt::DropIndex(_) if concurrently() => Some("DROP INDEX CONCURRENTLY"),
        ast::Stmt::Reindex(_) if concurrently() => Some("REINDEX CONCURRENTLY"),
        ast::Stmt::AlterTable(_) if concurrently() && has_keyword(stmt.syntax(), SyntaxKind::DETACH_KW) => Some("DETACH PARTITION CONCURRENTLY"),
        ast::Stmt::Vacuum(_) => Some("VACUUM"),
        ast::Stmt::CreateDatabase(_) => Some("CREATE DATABASE"),
        ast::Stmt::DropDatabase(_) => Some("DROP DATABASE"),
        ast::Stmt::AlterSystem(_) => Some("ALTER SYSTEM"),
        ast::Stmt::CreateTablespace(_) => Some("CREATE TABLESPACE"),
        ast::Stmt::DropTablespace(_) => Some("DROP TABLESPACE"),
        _ => None,
    }
}

/// Its hits in a file.
pub fn check(file: &File<'_>) -> Vec<Hit> {
    if file.no_transaction {
        return Vec::new();
    }
    stmts(&file.tree)
        .iter()
        .filter_map(|s| {
            needs_no_transaction(s).map(|what| Hit {
                rule: RULE.name,
                offset: s.syntax().text_range().start().into(),
                message: format!("`{what}` cannot run inside a transaction block, and this file runs in one"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lint::tests_support::hits;

    #[test]
    fn a_concurrent_build_needs_a_file_of_its_own() {
        assert_eq!(hits("CREATE INDEX CONCURRENTLY i ON t (c);", false, super::check).len(), 1);
        assert_eq!(hits("VACUUM t;", false, super::check).len(), 1);
        assert!(hits("-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);", true, super::check).is_empty());
        assert!(hits("CREATE INDEX i ON t (c);", false, super::check).is_empty());
    }
}
