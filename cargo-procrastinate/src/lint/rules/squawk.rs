//! The rules squawk implements (the `squawk-linter` crate, on squawk's PostgreSQL parser), which
//! `lint` builds on rather than rewriting: which of them run, and for each, why it matters for a
//! Procrastinate-style deploy and how its level follows the phase. Rules squawk has that this
//! tool covers otherwise are left out: transaction control and session settings (the set's
//! resolver refuses them), `CONCURRENTLY` inside a transaction (`no-transaction-required`
//! covers every such statement), timeouts (`upgrade` sets `lock_timeout` itself), and style
//! rules (`prefer-bigint-over-int`, `prefer-robust-stmts`, ...).

use squawk_linter::Rule as S;
use squawk_syntax::{Parse, SourceFile};

use super::{Hit, Kind, Rule};
use crate::lint::Level;

const PREVIOUS: &str = "the previous release's code, still running during a `pre`, was written for the schema before it";

/// Each squawk rule that runs, and its description here.
pub const RULES: &[(S, Rule)] = &[
    (S::BanDropColumn, Rule {
        name: "ban-drop-column",
        summary: "drops a column",
        why: "the previous release's code may still read or write the column",
        safe: "drop it in a `post` file, applied once the code that used it is gone",
        kind: Kind::BreaksPrevious,
    }),
    (S::BanDropTable, Rule {
        name: "ban-drop-table",
        summary: "drops a table",
        why: "the previous release's code may still use the table, and its rows are gone",
        safe: "drop it in a `post` file, applied once the code that used it is gone",
        kind: Kind::BreaksPrevious,
    }),
    (S::BanDropDefault, Rule {
        name: "ban-drop-default",
        summary: "drops a column's default",
        why: "the previous release's inserts that leave the column out rely on it",
        safe: "drop it in a `post` file",
        kind: Kind::BreaksPrevious,
    }),
    (S::BanDropView, Rule { name: "ban-drop-view", summary: "drops a view", why: PREVIOUS, safe: "drop it in a `post` file", kind: Kind::BreaksPrevious }),
    (S::BanDropFunction, Rule {
        name: "ban-drop-function",
        summary: "drops a function",
        why: "the previous release's code (Procrastinate's workers call its functions) may still call it",
        safe: "drop it in a `post` file; a changed signature is a new function created in `pre`",
        kind: Kind::BreaksPrevious,
    }),
    (S::BanDropType, Rule { name: "ban-drop-type", summary: "drops a type", why: PREVIOUS, safe: "drop it in a `post` file", kind: Kind::BreaksPrevious }),
    (S::BanDropSequence, Rule { name: "ban-drop-sequence", summary: "drops a sequence", why: PREVIOUS, safe: "drop it in a `post` file", kind: Kind::BreaksPrevious }),
    (S::BanDropDomain, Rule { name: "ban-drop-domain", summary: "drops a domain", why: PREVIOUS, safe: "drop it in a `post` file", kind: Kind::BreaksPrevious }),
    (S::BanDropSchema, Rule { name: "ban-drop-schema", summary: "drops a schema", why: PREVIOUS, safe: "drop it in a `post` file", kind: Kind::BreaksPrevious }),
    (S::BanDropExtension, Rule { name: "ban-drop-extension", summary: "drops an extension", why: PREVIOUS, safe: "drop it in a `post` file", kind: Kind::BreaksPrevious }),
    (S::BanSetSchema, Rule {
        name: "ban-set-schema",
        summary: "moves an object to another schema",
        why: "code that names it unqualified no longer finds it",
        safe: "do it in a `post` file, once the code looks for it there",
        kind: Kind::BreaksPrevious,
    }),
    (S::RenamingColumn, Rule {
        name: "renaming-column",
        summary: "renames a column",
        why: "code on each side of the deploy uses one name: whichever phase it runs in, one of them breaks",
        safe: "add the new column (pre), write both and backfill, switch reads to it, drop the old one in a later `post`",
        kind: Kind::Always(Level::Error),
    }),
    (S::RenamingTable, Rule {
        name: "renaming-table",
        summary: "renames a table",
        why: "code on each side of the deploy uses one name: whichever phase it runs in, one of them breaks",
        safe: "create the new table or an updatable view under the new name (pre), switch the code, drop the old name in a later `post`",
        kind: Kind::Always(Level::Error),
    }),
    (S::RenamingObject, Rule {
        name: "renaming-object",
        summary: "renames an object",
        why: "code that uses the old name breaks from the moment it runs",
        safe: "create it under the new name beside the old one, switch the code, drop the old one in a later `post`",
        kind: Kind::BreaksPrevious,
    }),
    (S::ChangingColumnType, Rule {
        name: "changing-column-type",
        summary: "changes a column's type",
        why: "rewrites the table and its indexes under an ACCESS EXCLUSIVE lock (readers and writers wait: were it \
              procrastinate_jobs, every worker), and code that reads the old type may break",
        safe: "add a column of the new type (pre), backfill it in batches, switch the code, drop the old one (post)",
        kind: Kind::BreaksPreviousAndLocks(Level::Warning),
    }),
    (S::AddingRequiredField, Rule {
        name: "adding-required-field",
        summary: "adds a NOT NULL column without a default",
        why: "it fails on a table that has rows, and the previous release's inserts, which leave it out, fail after it",
        safe: "add it nullable or with a constant default (pre); set NOT NULL in `post` through a validated CHECK",
        kind: Kind::Always(Level::Error),
    }),
    (S::AddingNotNullableField, Rule {
        name: "adding-not-nullable-field",
        summary: "sets NOT NULL without a validated CHECK",
        why: "it scans the whole table under an ACCESS EXCLUSIVE lock; in `pre`, the previous release may still write NULLs",
        safe: "in `post`: ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; in the next file VALIDATE CONSTRAINT c; \
               then SET NOT NULL (which uses it, without a scan) and DROP CONSTRAINT c",
        kind: Kind::BreaksPreviousAndLocks(Level::Error),
    }),
    (S::RequireConcurrentIndexCreation, Rule {
        name: "require-concurrent-index-creation",
        summary: "builds an index on an existing table without CONCURRENTLY",
        why: "every write to the table waits until the index is built (were it procrastinate_jobs: every defer and every worker)",
        safe: "CREATE INDEX CONCURRENTLY, alone in a file whose first line is `-- no-transaction`",
        kind: Kind::Always(Level::Error),
    }),
    (S::RequireConcurrentIndexDeletion, Rule {
        name: "require-concurrent-index-deletion",
        summary: "drops an index without CONCURRENTLY",
        why: "it takes an ACCESS EXCLUSIVE lock on the table, and waits behind every query on it while blocking the next ones",
        safe: "DROP INDEX CONCURRENTLY, alone in a `-- no-transaction` file",
        kind: Kind::Always(Level::Warning),
    }),
    (S::ConstraintMissingNotValid, Rule {
        name: "constraint-missing-not-valid",
        summary: "adds a constraint that checks every existing row at once",
        why: "the check scans the table while holding a lock that blocks writes (with ADD in the same transaction, reads too)",
        safe: "ADD CONSTRAINT ... NOT VALID in one file, VALIDATE CONSTRAINT in the next (its own transaction; it blocks no writes)",
        kind: Kind::Always(Level::Error),
    }),
    (S::AddingFieldWithDefault, Rule {
        name: "adding-field-with-default",
        summary: "adds a column whose default is computed per row (or a generated column)",
        why: "every row is rewritten under an ACCESS EXCLUSIVE lock (a constant default is not: PostgreSQL 11+ stores it once)",
        safe: "add the column without the default, backfill in batches, then SET DEFAULT",
        kind: Kind::Always(Level::Error),
    }),
    (S::AddingSerialPrimaryKeyField, Rule {
        name: "adding-serial-primary-key-field",
        summary: "adds a primary key that builds its index under lock",
        why: "the index is built, and the table scanned, while writes (and reads) wait",
        safe: "CREATE UNIQUE INDEX CONCURRENTLY (no-transaction file), then ADD CONSTRAINT ... PRIMARY KEY USING INDEX",
        kind: Kind::Always(Level::Error),
    }),
    (S::DisallowedUniqueConstraint, Rule {
        name: "disallowed-unique-constraint",
        summary: "adds a UNIQUE constraint that builds its index under lock",
        why: "the index is built while writes to the table wait",
        safe: "CREATE UNIQUE INDEX CONCURRENTLY (no-transaction file), then ADD CONSTRAINT ... UNIQUE USING INDEX",
        kind: Kind::Always(Level::Error),
    }),
    (S::BanDropDatabase, Rule {
        name: "ban-drop-database",
        summary: "drops a database",
        why: "a migration is no place to drop a database",
        safe: "`cargo procrastinate database drop`, by hand",
        kind: Kind::Always(Level::Error),
    }),
    (S::BanTruncateCascade, Rule {
        name: "ban-truncate-cascade",
        summary: "TRUNCATE ... CASCADE",
        why: "it empties every table that references this one, too",
        safe: "truncate the tables by name",
        kind: Kind::Always(Level::Warning),
    }),
    (S::RequireConcurrentReindex, Rule {
        name: "require-concurrent-reindex",
        summary: "REINDEX without CONCURRENTLY",
        why: "writes to the table wait until the index is rebuilt",
        safe: "REINDEX ... CONCURRENTLY, alone in a `-- no-transaction` file",
        kind: Kind::Always(Level::Warning),
    }),
    (S::RequireConcurrentPartitionDetach, Rule {
        name: "require-concurrent-partition-detach",
        summary: "DETACH PARTITION without CONCURRENTLY",
        why: "it takes an ACCESS EXCLUSIVE lock on the parent table",
        safe: "DETACH PARTITION ... CONCURRENTLY, alone in a `-- no-transaction` file",
        kind: Kind::Always(Level::Warning),
    }),
    (S::BanCreateDomainWithConstraint, Rule {
        name: "ban-create-domain-with-constraint",
        summary: "a domain with a CHECK",
        why: "changing the check later scans every column of the type under lock",
        safe: "put the CHECK on the columns instead",
        kind: Kind::Always(Level::Warning),
    }),
    (S::BanAlterDomainWithAddConstraint, Rule {
        name: "ban-alter-domain-with-add-constraint",
        summary: "adds a CHECK to a domain",
        why: "it checks every column of the type, under lock",
        safe: "put the CHECK on the columns, NOT VALID then VALIDATE",
        kind: Kind::Always(Level::Warning),
    }),
    (S::IdentifierTooLong, Rule {
        name: "identifier-too-long",
        summary: "a name longer than 63 bytes",
        why: "PostgreSQL cuts it, so the object is not called what the file says",
        safe: "a shorter name",
        kind: Kind::Always(Level::Warning),
    }),
    (S::BanDuplicateColumnAssignments, Rule {
        name: "ban-duplicate-column-assignments",
        summary: "assigns a column twice",
        why: "PostgreSQL refuses it",
        safe: "assign each column once",
        kind: Kind::Always(Level::Error),
    }),
];

/// A squawk finding, with squawk's own message.
pub fn hits(parse: &Parse<SourceFile>, text: &str, in_transaction: bool) -> Vec<Hit> {
    let mut linter = squawk_linter::Linter::from(RULES.iter().map(|(s, _)| *s));
    linter.settings.assume_in_transaction = in_transaction;
    linter
        .lint(parse, text)
        .into_iter()
        .filter_map(|v| {
            let rule = RULES.iter().find(|(s, _)| *s == v.code)?.1;
            let offset: usize = v.text_range.start().into();
            Some(Hit { rule: rule.name, offset, message: v.message })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<&'static str> {
        hits(&SourceFile::parse(sql), sql, true).into_iter().map(|h| h.rule).collect()
    }

    /// Each rule: a statement it finds, and the safe form it lets pass.
    #[test]
    fn every_rule_finds_its_case_and_passes_the_safe_one() {
        let cases: &[(&str, &str, &str)] = &[
            ("ban-drop-column", "ALTER TABLE t DROP COLUMN c;", "ALTER TABLE t ADD COLUMN c text;"),
            ("ban-drop-table", "DROP TABLE t;", "CREATE TABLE t (id bigint);"),
            ("ban-drop-default", "ALTER TABLE t ALTER COLUMN c DROP DEFAULT;", "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1;"),
            ("ban-drop-view", "DROP VIEW v;", "CREATE VIEW v AS SELECT 1;"),
            ("ban-drop-function", "DROP FUNCTION f();", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';"),
            ("ban-drop-type", "DROP TYPE e;", "CREATE TYPE e AS ENUM ('a');"),
            ("ban-drop-sequence", "DROP SEQUENCE s;", "CREATE SEQUENCE s;"),
            ("ban-drop-domain", "DROP DOMAIN d;", "CREATE DOMAIN d AS int;"),
            ("ban-drop-schema", "DROP SCHEMA s;", "CREATE SCHEMA s;"),
            ("ban-drop-extension", "DROP EXTENSION pgcrypto;", "CREATE EXTENSION IF NOT EXISTS pgcrypto;"),
            ("ban-set-schema", "ALTER TABLE t SET SCHEMA s;", "ALTER TABLE t SET (fillfactor = 90);"),
            ("renaming-column", "ALTER TABLE t RENAME COLUMN a TO b;", "ALTER TABLE t ADD COLUMN b text;"),
            ("renaming-table", "ALTER TABLE t RENAME TO u;", "CREATE TABLE u (id bigint);"),
            ("renaming-object", "ALTER FUNCTION f() RENAME TO g;", "CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1';"),
            ("changing-column-type", "ALTER TABLE t ALTER COLUMN c TYPE bigint;", "ALTER TABLE t ADD COLUMN c2 bigint;"),
            ("adding-required-field", "ALTER TABLE t ADD COLUMN c text NOT NULL;", "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT '';"),
            (
                "adding-not-nullable-field",
                "ALTER TABLE t ALTER COLUMN c SET NOT NULL;",
                "ALTER TABLE t ADD CONSTRAINT c_nn CHECK (c IS NOT NULL) NOT VALID;",
            ),
            ("require-concurrent-index-creation", "CREATE INDEX i ON t (c);", "CREATE TABLE t (c int); CREATE INDEX i ON t (c);"),
            ("require-concurrent-index-deletion", "DROP INDEX i;", "CREATE TABLE t2 (c int);"),
            (
                "constraint-missing-not-valid",
                "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0);",
                "ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID;",
            ),
            ("adding-field-with-default", "ALTER TABLE t ADD COLUMN c uuid DEFAULT gen_random_uuid();", "ALTER TABLE t ADD COLUMN c int DEFAULT 0;"),
            (
                "adding-serial-primary-key-field",
                "ALTER TABLE t ADD PRIMARY KEY (id);",
                "ALTER TABLE t ADD CONSTRAINT t_pkey PRIMARY KEY USING INDEX t_id_idx;",
            ),
            (
                "disallowed-unique-constraint",
                "ALTER TABLE t ADD CONSTRAINT u UNIQUE (c);",
                "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u_idx;",
            ),
            ("ban-drop-database", "DROP DATABASE d;", "SELECT 1;"),
            ("ban-truncate-cascade", "TRUNCATE t CASCADE;", "TRUNCATE t;"),
            ("require-concurrent-reindex", "REINDEX INDEX i;", "SELECT 1;"),
            ("require-concurrent-partition-detach", "ALTER TABLE p DETACH PARTITION c;", "ALTER TABLE p ATTACH PARTITION c DEFAULT;"),
            ("ban-create-domain-with-constraint", "CREATE DOMAIN d AS int CHECK (VALUE > 0);", "CREATE DOMAIN d AS int;"),
            ("ban-alter-domain-with-add-constraint", "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0);", "ALTER DOMAIN d SET DEFAULT 1;"),
            (
                "identifier-too-long",
                "CREATE TABLE a_table_name_that_goes_on_and_on_for_far_longer_than_sixty_three_bytes (id bigint);",
                "CREATE TABLE short (id bigint);",
            ),
            ("ban-duplicate-column-assignments", "UPDATE t SET a = 1, a = 2;", "UPDATE t SET a = 1, b = 2;"),
        ];
        assert_eq!(cases.len(), RULES.len(), "a case per rule");
        for (rule, bad, good) in cases {
            assert!(names(bad).contains(rule), "{rule} misses `{bad}`: {:?}", names(bad));
            assert!(!names(good).contains(rule), "{rule} finds the safe `{good}`: {:?}", names(good));
        }
    }
}
