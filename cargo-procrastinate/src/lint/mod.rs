//! `lint`: a review of migration files that knows Procrastinate's zero-downtime contract. Each
//! file is parsed by squawk's PostgreSQL parser; squawk's rules (`rules/squawk.rs`) and this
//! tool's own (one per file in `rules/`) find statements that lock, rewrite, fail or break the
//! previous release's code; the file's phase decides how much each weighs (`rules/phase.rs`: a
//! dropped column is an error in `pre`, allowed in `post`). Findings can be allowed per
//! statement (`-- cargo-procrastinate: allow RULE`) and per set (`lint-allow`).

pub mod report;
pub mod rules;
pub mod trace;

use std::collections::HashSet;

use procrastinate_migrations::diagnostic::Excerpt;
use procrastinate_migrations::Phase;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{SourceFile, SyntaxKind, SyntaxNode};

use rules::{phase, Hit};

/// How much a finding weighs: an error fails `lint` and stops `upgrade --lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Worth reading; does not fail.
    Warning,
    /// Fails `lint` and stops `upgrade --lint`.
    Error,
}

impl Level {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}

/// One finding: the rule, where, and what to do.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// The rule's name.
    pub rule: &'static str,
    /// Its weight in this file's phase.
    pub level: Level,
    /// The file, as given (a path).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the statement does.
    pub message: String,
    /// Why it matters here (the phase's part first).
    pub why: String,
    /// The safe way.
    pub safe: String,
    /// The lines around it, the place marked.
    pub excerpt: Excerpt,
}

/// One file to review.
pub struct Input<'a> {
    /// Its path, as findings name it.
    pub path: String,
    /// Its text.
    pub sql: &'a str,
    /// Its phase, from its name.
    pub phase: Phase,
    /// Whether it runs outside a transaction (`-- no-transaction`).
    pub no_transaction: bool,
    /// Rules allowed for it (the set's `lint-allow`).
    pub allow: &'a [String],
    /// Upstream's file as vendored (unchanged since): its findings are said, as warnings, since
    /// only upstream can change it (the README reviews Procrastinate's own).
    pub upstream: bool,
}

/// One parsed file, what every rule looks at.
pub struct File<'a> {
    /// The text.
    pub sql: &'a str,
    /// squawk's tree of it.
    pub tree: ast::SourceFile,
    /// Whether it runs outside a transaction.
    pub no_transaction: bool,
    /// Tables that files before it in this run create (with its own, they are new: nothing
    /// waits on them).
    pub new_tables: &'a HashSet<String>,
}

/// Reviews `files`, in the order they run. A table the file creates, or an earlier file of the
/// same release in this run, is new (empty, nobody waits on it); one an earlier release
/// created has rows and users, whatever the run.
pub fn lint(files: &[Input<'_>]) -> Vec<Finding> {
    let release = |path: &str| {
        let name = path.rsplit('/').next().unwrap_or(path);
        procrastinate_migrations::name::parse(name).ok().map(|p| p.version)
    };
    let mut created: Vec<(String, Option<procrastinate_migrations::Version>)> = Vec::new();
    let mut findings = Vec::new();
    for input in files {
        let parse = SourceFile::parse(input.sql);
        let tree = parse.tree();
        let this = release(&input.path);
        created.extend(created_tables(&tree).into_iter().map(|t| (t, this)));
        let new_tables: HashSet<String> = created.iter().filter(|(_, r)| *r == this).map(|(t, _)| t.clone()).collect();
        let file = File { sql: input.sql, tree, no_transaction: input.no_transaction, new_tables: &new_tables };
        let mut hits: Vec<Hit> = rules::squawk::hits(&parse, input.sql, !input.no_transaction);
        // squawk knows the tables this file creates; the run knows those of the files before.
        hits.retain(|h| !about_new_table(&file, h) && !replaced_later(&file, h));
        hits.extend(rules::no_transaction_required::check(&file));
        hits.extend(rules::no_transaction_unneeded::check(&file));
        hits.extend(rules::no_transaction_misplaced::check(&file));
        hits.extend(rules::exclusive_lock_held::check(&file));
        if let Some(e) = parse.errors().first() {
            let offset: usize = e.range().start().into();
            findings.push(finding(input, offset, PARSE, format!("squawk's parser could not read this: {}; rules may miss what follows", e.message()), None, Level::Warning));
        }
        let allowed = allow_comments(&file);
        for h in hits {
            let Some(rule) = rules::find(h.rule) else { continue };
            let Some(level) = phase::level(rule.kind, input.phase) else { continue };
            let level = if input.upstream { Level::Warning } else { level };
            let statement = statement_at(&file.tree, h.offset);
            if input.allow.iter().any(|a| a == rule.name) || statement.is_some_and(|s| allowed.iter().any(|(at, names)| *at == s && names.iter().any(|n| n == rule.name))) {
                continue;
            }
            let why = match phase::why(rule.kind, input.phase) {
                Some(p) => format!("{p}; {}", rule.why),
                None => rule.why.to_string(),
            };
            findings.push(finding(input, h.offset, rule.name, h.message, Some((why, rule.safe.to_string())), level));
        }
    }
    findings.sort_by(|a, b| (&a.file, a.line, a.column, a.rule).cmp(&(&b.file, b.line, b.column, b.rule)));
    findings.dedup_by(|a, b| a.file == b.file && a.line == b.line && a.rule == b.rule);
    findings
}

/// The pseudo-rule of a file squawk's parser could not read.
const PARSE: &str = "parse";

fn finding(input: &Input<'_>, offset: usize, rule: &'static str, message: String, why_safe: Option<(String, String)>, level: Level) -> Finding {
    let excerpt = Excerpt::at_offset(input.sql, offset);
    let (why, safe) = why_safe.unwrap_or_default();
    Finding { rule, level, file: input.path.clone(), line: excerpt.line, column: excerpt.column.unwrap_or(1), message, why, safe, excerpt }
}

/// The statements of a file, in order.
pub fn stmts(tree: &ast::SourceFile) -> Vec<ast::Stmt> {
    tree.stmts().collect()
}

/// The index of the statement around byte `offset`.
fn statement_at(tree: &ast::SourceFile, offset: usize) -> Option<usize> {
    tree.stmts().position(|s| {
        let r = s.syntax().text_range();
        usize::from(r.start()) <= offset && offset < usize::from(r.end()).max(usize::from(r.start()) + 1)
    })
}

/// `-- cargo-procrastinate: allow RULE[, RULE]` comments, each with the statement it allows
/// them for: the next one, or the one it is inside.
fn allow_comments(file: &File<'_>) -> Vec<(usize, Vec<String>)> {
    let stmts = stmts(&file.tree);
    let mut out = Vec::new();
    for token in file.tree.syntax().descendants_with_tokens().filter_map(|e| e.into_token()) {
        if token.kind() != SyntaxKind::COMMENT {
            continue;
        }
        let Some(rest) = token.text().trim_start_matches('-').trim().strip_prefix("cargo-procrastinate:") else { continue };
        let Some(names) = rest.trim().strip_prefix("allow") else { continue };
        let names: Vec<String> = names.split([',', ' ']).map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect();
        let at: usize = token.text_range().start().into();
        if let Some(i) = stmts.iter().position(|s| usize::from(s.syntax().text_range().end()) > at) {
            out.push((i, names));
        }
    }
    out
}

/// Tables a file creates (`CREATE TABLE`), by name.
pub fn created_tables(tree: &ast::SourceFile) -> Vec<String> {
    tree.stmts()
        .filter_map(|s| match s {
            ast::Stmt::CreateTable(t) => t.table_name().and_then(|n| n.path()).and_then(|p| p.segment()).map(|s| s.text()),
            _ => None,
        })
        .collect()
}

/// The first table a statement names (its target), unqualified, as PostgreSQL folds it.
pub fn table_of(node: &SyntaxNode) -> Option<String> {
    let name = node.descendants().find(|n| matches!(n.kind(), SyntaxKind::TABLE_NAME_REF | SyntaxKind::RELATION_NAME_REF))?;
    let text = name.text().to_string();
    let last = text.rsplit('.').next().unwrap_or(&text).trim().to_string();
    Some(procrastinate_migrations::lexer::ident(&last))
}

/// Whether the node holds the keyword (a token of its own statement, not of a nested one).
pub fn has_keyword(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.descendants_with_tokens().filter_map(|e| e.into_token()).any(|t| t.kind() == kind)
}

/// Whether a dropped function or view is created again, under the same name, later in the same
/// file: one transaction replaces it, and no code sees it missing.
fn replaced_later(file: &File<'_>, hit: &Hit) -> bool {
    if !matches!(hit.rule, "ban-drop-function" | "ban-drop-view") {
        return false;
    }
    let Some(i) = statement_at(&file.tree, hit.offset) else { return false };
    let all = stmts(&file.tree);
    let Some(name) = first_name(all[i].syntax()) else { return false };
    all[i + 1..].iter().any(|s| match s {
        ast::Stmt::CreateFunction(_) | ast::Stmt::CreateView(_) => first_name(s.syntax()).as_deref() == Some(name.as_str()),
        _ => false,
    })
}

/// The first name a statement has (the object it drops or creates), unqualified.
fn first_name(node: &SyntaxNode) -> Option<String> {
    let path = node.descendants().find(|n| matches!(n.kind(), SyntaxKind::PATH | SyntaxKind::PATH_REF))?;
    let text = path.text().to_string();
    let last = text.rsplit('.').next().unwrap_or(&text).trim().to_string();
    Some(procrastinate_migrations::lexer::ident(&last))
}

/// Whether a hit of a rule about existing tables is about a table this run creates.
fn about_new_table(file: &File<'_>, hit: &Hit) -> bool {
    const ABOUT_EXISTING: [&str; 8] = [
        "require-concurrent-index-creation",
        "constraint-missing-not-valid",
        "adding-field-with-default",
        "adding-required-field",
        "adding-not-nullable-field",
        "adding-serial-primary-key-field",
        "disallowed-unique-constraint",
        "changing-column-type",
    ];
    if !ABOUT_EXISTING.contains(&hit.rule) {
        return false;
    }
    let Some(i) = statement_at(&file.tree, hit.offset) else { return false };
    let stmt = &stmts(&file.tree)[i];
    table_of(stmt.syntax()).is_some_and(|t| file.new_tables.contains(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(files: &[(&str, &str)]) -> Vec<(String, &'static str, Level)> {
        let inputs: Vec<Input<'_>> = files
            .iter()
            .map(|(name, sql)| Input {
                path: name.to_string(),
                sql,
                phase: procrastinate_migrations::name::parse(name).map(|p| p.phase).unwrap_or(Phase::Unmarked),
                no_transaction: sql.starts_with("-- no-transaction\n"),
                allow: &[],
                upstream: false,
            })
            .collect();
        lint(&inputs).into_iter().map(|f| (f.file, f.rule, f.level)).collect()
    }

    #[test]
    fn the_phase_decides_a_dropped_column() {
        let pre = run(&[("01.00.00_01_pre_x.sql", "ALTER TABLE t DROP COLUMN c;")]);
        assert_eq!(pre, [("01.00.00_01_pre_x.sql".into(), "ban-drop-column", Level::Error)]);
        assert!(run(&[("01.00.00_50_post_x.sql", "ALTER TABLE t DROP COLUMN c;")]).is_empty());
        assert_eq!(run(&[("01.00.00_01_x.sql", "ALTER TABLE t DROP COLUMN c;")])[0].2, Level::Warning);
        assert!(run(&[("01.00.00_01_pre_x.sql", "ALTER TABLE t ADD COLUMN c text;")]).is_empty());
    }

    #[test]
    fn a_table_an_earlier_file_creates_is_new_for_the_later_ones() {
        let found = run(&[
            ("01.00.00_01_pre_a.sql", "CREATE TABLE lines (id bigint, order_id bigint);"),
            ("01.00.00_02_pre_b.sql", "CREATE INDEX lines_order_idx ON lines (order_id);"),
        ]);
        assert!(found.is_empty(), "{found:?}");
        let existing = run(&[("01.00.00_02_pre_b.sql", "CREATE INDEX lines_order_idx ON lines (order_id);")]);
        assert_eq!(existing[0].1, "require-concurrent-index-creation");
    }

    #[test]
    fn a_function_dropped_and_created_again_in_one_file_is_replaced() {
        let sql = "DROP FUNCTION IF EXISTS fetch_job(q text);\nCREATE FUNCTION fetch_job(q text, p int) RETURNS int LANGUAGE sql AS 'SELECT 1';\n";
        assert!(run(&[("01.00.00_01_pre_x.sql", sql)]).is_empty());
        assert_eq!(run(&[("01.00.00_01_pre_x.sql", "DROP FUNCTION IF EXISTS fetch_job(q text);\n")]).len(), 1);
    }

    #[test]
    fn a_comment_allows_a_rule_for_its_statement_only() {
        let sql = "-- cargo-procrastinate: allow ban-drop-column\nALTER TABLE t DROP COLUMN c;\nALTER TABLE t DROP COLUMN d;\n";
        let found = run(&[("01.00.00_01_pre_x.sql", sql)]);
        assert_eq!(found.len(), 1, "{found:?}");
        let inputs = [Input { path: "f".into(), sql: "ALTER TABLE t DROP COLUMN c;", phase: Phase::Pre, no_transaction: false, allow: &["ban-drop-column".to_string()], upstream: false }];
        assert!(lint(&inputs).is_empty());
    }
}

/// What the rules' own tests share.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// One rule's hits in `sql`, alone (the tables the file creates count as new, as in [`lint`]).
    pub fn hits(sql: &str, no_transaction: bool, check: fn(&File<'_>) -> Vec<Hit>) -> Vec<Hit> {
        let tree = SourceFile::parse(sql).tree();
        let new_tables: HashSet<String> = created_tables(&tree).into_iter().collect();
        check(&File { sql, tree, no_transaction, new_tables: &new_tables })
    }
}
