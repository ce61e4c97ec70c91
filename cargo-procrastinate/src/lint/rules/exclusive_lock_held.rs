//! `exclusive-lock-held`: in a file that runs in one transaction, a statement that can take long
//! (an `UPDATE`, a non-concurrent index build, a validation, a type change, a `DO` block) after
//! one that took an ACCESS EXCLUSIVE lock on an existing table. The lock is held until the file
//! commits, so every reader and writer of that table waits for the slow statement too; on
//! `procrastinate_jobs`, that is every worker and every defer.

use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::SyntaxKind;

use super::{Hit, Kind, Rule};
use crate::lint::{has_keyword, stmts, table_of, File, Level};

/// The rule.
pub const RULE: Rule = Rule {
    name: "exclusive-lock-held",
    summary: "a slow statement while an ACCESS EXCLUSIVE lock is held",
    why: "the lock taken earlier in the file lasts until the file commits: readers and writers of that table wait for \
          this statement too (were it procrastinate_jobs: every worker and every defer)",
    safe: "move the slow statement to a file of its own (or before the locking one), so the lock is held for a moment",
    kind: Kind::Always(Level::Warning),
};

/// The existing table a statement takes an ACCESS EXCLUSIVE lock on, if it does.
fn locks_exclusively(stmt: &ast::Stmt, file: &File<'_>) -> Option<String> {
    let exclusive = match stmt {
        // Most ALTER TABLE forms; VALIDATE CONSTRAINT and a few others take a weaker lock.
        ast::Stmt::AlterTable(t) => !t.actions().all(|a| matches!(a, ast::AlterTableAction::ValidateConstraint(_))),
        ast::Stmt::DropTable(_) | ast::Stmt::Truncate(_) | ast::Stmt::Cluster(_) => true,
        ast::Stmt::Refresh(_) | ast::Stmt::DropIndex(_) | ast::Stmt::Reindex(_) => !has_keyword(stmt.syntax(), SyntaxKind::CONCURRENTLY_KW),
        ast::Stmt::Lock(l) => l.lock_mode_clause().is_none_or(|m| has_keyword(m.syntax(), SyntaxKind::ACCESS_KW) && has_keyword(m.syntax(), SyntaxKind::EXCLUSIVE_KW)),
        _ => false,
    };
    let table = table_of(stmt.syntax())?;
    (exclusive && !file.new_tables.contains(&table)).then_some(table)
}

/// Whether a statement may take long on a large table (not on a table the run creates, which
/// is empty).
fn is_slow(stmt: &ast::Stmt, file: &File<'_>) -> bool {
    if table_of(stmt.syntax()).is_some_and(|t| file.new_tables.contains(&t)) {
        return false;
    }
    match stmt {
        ast::Stmt::Update(_) | ast::Stmt::Delete(_) | ast::Stmt::Merge(_) | ast::Stmt::Do(_) | ast::Stmt::CreateTableAs(_) | ast::Stmt::Cluster(_) => true,
        ast::Stmt::Insert(i) => i.syntax().descendants().any(|n| n.kind() == SyntaxKind::SELECT),
        ast::Stmt::CreateIndex(_) | ast::Stmt::Refresh(_) | ast::Stmt::Reindex(_) => !has_keyword(stmt.syntax(), SyntaxKind::CONCURRENTLY_KW),
        ast::Stmt::AlterTable(t) => t.actions().any(|a| match a {
            ast::AlterTableAction::ValidateConstraint(_) => true,
            ast::AlterTableAction::AddConstraint(c) => !has_keyword(c.syntax(), SyntaxKind::VALID_KW),
            ast::AlterTableAction::AlterColumn(c) => has_keyword(c.syntax(), SyntaxKind::TYPE_KW) || (has_keyword(c.syntax(), SyntaxKind::SET_KW) && has_keyword(c.syntax(), SyntaxKind::NOT_KW)),
            _ => false,
        }),
        _ => false,
    }
}

/// Its hits in a file.
pub fn check(file: &File<'_>) -> Vec<Hit> {
    if file.no_transaction {
        return Vec::new();
    }
    let mut held: Vec<(String, usize)> = Vec::new();
    let mut hits = Vec::new();
    for s in stmts(&file.tree) {
        let start: usize = s.syntax().text_range().start().into();
        if !held.is_empty() && is_slow(&s, file) {
            let line = |at: usize| procrastinate_migrations::lexer::line_of(file.sql, at);
            let tables: Vec<String> = held.iter().map(|(t, at)| format!("{t} (line {})", line(*at))).collect();
            hits.push(Hit {
                rule: RULE.name,
                offset: start,
                message: format!("this may take long, and the ACCESS EXCLUSIVE lock on {} is held while it runs", tables.join(", ")),
            });
        }
        if let Some(t) = locks_exclusively(&s, file) {
            if !held.iter().any(|(h, _)| *h == t) {
                held.push((t, start));
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use crate::lint::tests_support::hits;

    #[test]
    fn a_slow_statement_after_an_exclusive_lock_is_found() {
        let sql = "ALTER TABLE jobs ADD COLUMN worker_id bigint;\nUPDATE jobs SET worker_id = 0;\n";
        let found = hits(sql, false, super::check);
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("ACCESS EXCLUSIVE lock on jobs (line 1)"), "{found:?}");
        // The other way round the lock is held for a moment only; a new table locks nobody out.
        assert!(hits("UPDATE jobs SET worker_id = 0;\nALTER TABLE jobs ADD COLUMN worker_id bigint;\n", false, super::check).is_empty());
        assert!(hits("CREATE TABLE w (id int);\nALTER TABLE w ADD COLUMN c int;\nUPDATE w SET c = 1;\n", false, super::check).is_empty());
    }
}
