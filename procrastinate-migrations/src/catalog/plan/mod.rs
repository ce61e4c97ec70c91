//! The statements that turn one catalog into another, for `new --autogenerate` and
//! `diff --sql`: pure (two catalogs in, statements out), split by Procrastinate's zero-downtime
//! contract, and online where PostgreSQL allows it.
//!
//! - `pre` (before the release is deployed; the previous release's code keeps working):
//!   additive and backward-compatible changes: new types, sequences, tables, nullable columns
//!   (or columns with a default), functions, views, triggers, comments; relaxed nullability
//!   and new defaults; constraints on existing tables added `NOT VALID` and validated in a
//!   transaction of their own; indexes on existing tables built `CONCURRENTLY`, each in a
//!   `-- no-transaction` file of its own.
//! - `post` (after it is deployed, when nothing runs the previous code): drops, `SET NOT NULL`
//!   (through a `NOT VALID` check, validated, so that no scan holds a lock), type changes,
//!   dropped defaults, redefined constraints and anything incompatible.
//!
//! Each statement that can hurt carries a [`Hazard`]: what it does and the safe sequence. A
//! change that cannot be made safely by a statement (removing an enum label, changing a
//! generated expression) becomes a `manual` hazard with a commented-out step. Renames cannot be
//! told from a drop and a create: the plan drops and creates, with `data-loss` named.

mod ddl;
mod planner;

use super::Catalog;
pub use ddl::ident;
use ddl::wrap;

/// When a step runs, relative to the deploy (Procrastinate's `pre`/`post`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before the release is deployed: the previous release's code must keep working.
    Pre,
    /// After it is deployed.
    Post,
}

/// Which file of its phase a step goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// One `-- no-transaction` file per statement (`CREATE INDEX CONCURRENTLY`), run before
    /// the main file in `post` (drops) and after it in `pre` (builds on new columns).
    Concurrent,
    /// The phase's main file, one transaction.
    Main,
    /// A second transaction: `VALIDATE CONSTRAINT` (which blocks no writes) and what needs it.
    Validate,
}

/// Something a statement does that can hurt, named, with the safe way spelled out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Hazard {
    /// `data-loss`, `table-rewrite`, `lock`, `backfill`, `validation`, `invalid-index`,
    /// `dependents` or `manual`.
    pub code: &'static str,
    /// What happens, and what to do instead or first.
    pub text: String,
}

/// One statement of a plan.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Before or after the deploy.
    pub phase: Phase,
    /// Which file of the phase.
    pub slot: Slot,
    /// The object it changes (`column orders.total`).
    pub object: String,
    /// The statement, ending in `;` (a `manual` step's is commented out).
    pub sql: String,
    /// What can hurt, if anything.
    pub hazard: Option<Hazard>,
}

/// The steps from one catalog to another, in the order they run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Sorted by phase and slot (concurrent first in `post`, last in `pre`), each slot in
    /// dependency order.
    pub steps: Vec<Step>,
}

/// One migration file of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Its phase.
    pub phase: Phase,
    /// Its slot.
    pub slot: Slot,
    /// Its steps (exactly one in a [`Slot::Concurrent`] file).
    pub steps: Vec<Step>,
}

impl File {
    /// Whether it runs outside any transaction (`-- no-transaction`).
    pub fn no_transaction(&self) -> bool {
        self.slot == Slot::Concurrent
    }

    /// A word for its file name after the description: `""` for the main file, `validate`,
    /// or the index a concurrent file builds or drops.
    pub fn suffix(&self) -> String {
        match self.slot {
            Slot::Main => String::new(),
            Slot::Validate => "validate".into(),
            Slot::Concurrent => self.steps[0].object.rsplit(' ').next().unwrap_or("index").replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_"),
        }
    }

    /// The file's text: `-- no-transaction` first when it is one, a header, then each
    /// statement with its hazard above it.
    pub fn render(&self, header: &str) -> String {
        let mut out = String::new();
        if self.no_transaction() {
            out.push_str(crate::migration::NO_TRANSACTION);
            out.push('\n');
        }
        for line in header.lines() {
            out.push_str(&format!("-- {line}\n").replace("-- \n", "--\n"));
        }
        for s in &self.steps {
            out.push('\n');
            if let Some(h) = &s.hazard {
                for (i, line) in wrap(&h.text, 96).iter().enumerate() {
                    out.push_str(&if i == 0 { format!("-- hazard ({}): {line}\n", h.code) } else { format!("--   {line}\n") });
                }
            }
            out.push_str(&s.sql);
            out.push('\n');
        }
        out
    }
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps of one phase.
    pub fn phase(&self, phase: Phase) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.phase == phase)
    }

    /// The migration files, in the order they run: `pre` (main, each concurrent, validate),
    /// then `post` (each concurrent, main, validate).
    pub fn files(&self) -> Vec<File> {
        let mut files: Vec<File> = Vec::new();
        for s in &self.steps {
            match files.last_mut() {
                Some(f) if f.phase == s.phase && f.slot == s.slot && s.slot != Slot::Concurrent => f.steps.push(s.clone()),
                _ => files.push(File { phase: s.phase, slot: s.slot, steps: vec![s.clone()] }),
            }
        }
        files
    }

    /// The whole plan as one script for reading (`diff --sql`): each file under a comment
    /// that says its phase and whether it runs in a transaction.
    pub fn script(&self) -> String {
        self.files()
            .iter()
            .map(|f| {
                let what = match f.slot {
                    Slot::Main => "one transaction",
                    Slot::Validate => "a second transaction",
                    Slot::Concurrent => "outside any transaction",
                };
                f.render(&format!("{} ({what})", match f.phase {
                    Phase::Pre => "pre",
                    Phase::Post => "post",
                }))
                .replace(&format!("{}\n", crate::migration::NO_TRANSACTION), "")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The plan that turns `from` (the schema the set's migrations build now) into `to` (the
/// schema wanted). Both are whole catalogs of one schema.
pub fn plan(from: &Catalog, to: &Catalog) -> Plan {
    planner::Planner::new(from, to).run()
}


#[cfg(test)]
mod tests {
    use super::ddl::{binary_coercible, labels};
    use super::*;
    use crate::catalog::{Kind, Object};

    fn col(table: &str, name: &str, ty: &str, pos: u32) -> Object {
        Object::new(Kind::Column, format!("{table}.{name}")).with(".parent", table).with(".position", pos.to_string()).with("type", ty)
    }

    fn orders(third: &str) -> Vec<Object> {
        vec![
            Object::new(Kind::Table, "orders"),
            col("orders", "id", "bigint", 1).with("not null", "true"),
            col("orders", "note", "text", 2),
            col("orders", third, "numeric", 3),
            Object::new(Kind::Constraint, "orders.orders_pkey").with(".parent", "orders").with("type", "primary key").with("definition", "PRIMARY KEY (id)"),
            Object::new(Kind::Index, "orders_pkey").with(".parent", "orders").with("table", "orders").with("unique", "true").with("using", "btree (id)").with("constraint", "orders_pkey"),
        ]
    }

    #[test]
    fn additive_changes_go_pre_and_destructive_ones_post() {
        let from = Catalog::new(orders("old"));
        let mut to = orders("total");
        to.extend([
            Object::new(Kind::Table, "lines"),
            col("lines", "order_id", "bigint", 1).with("not null", "true"),
            Object::new(Kind::Constraint, "lines.lines_order_id_fkey")
                .with(".parent", "lines")
                .with("type", "foreign key")
                .with("definition", "FOREIGN KEY (order_id) REFERENCES orders(id)"),
            Object::new(Kind::Index, "orders_note_idx").with(".parent", "orders").with("table", "orders").with("using", "btree (note)"),
        ]);
        let plan = plan(&from, &Catalog::new(to));
        let pre: Vec<&str> = plan.phase(Phase::Pre).map(|s| s.sql.as_str()).collect();
        let post: Vec<&str> = plan.phase(Phase::Post).map(|s| s.sql.as_str()).collect();
        assert_eq!(
            pre,
            [
                "CREATE TABLE lines (\n    order_id bigint NOT NULL\n);",
                "ALTER TABLE orders ADD COLUMN total numeric;",
                "ALTER TABLE lines ADD CONSTRAINT lines_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders(id);",
                "CREATE INDEX CONCURRENTLY orders_note_idx ON orders USING btree (note);",
            ]
        );
        assert_eq!(post, ["ALTER TABLE orders DROP COLUMN old;"]);
        assert_eq!(plan.steps.iter().find(|s| s.phase == Phase::Post).unwrap().hazard.as_ref().unwrap().code, "data-loss");
        let files = plan.files();
        assert_eq!(files.len(), 3, "pre, its concurrent index, post");
        assert!(files[1].render("h").starts_with("-- no-transaction\n"));
    }

    #[test]
    fn not_null_on_an_existing_table_waits_for_post_and_never_scans_under_lock() {
        let from = Catalog::new(orders("old"));
        let to = Catalog::new(orders("old").into_iter().chain([col("orders", "paid", "boolean", 4).with("not null", "true")]).collect());
        let plan = plan(&from, &to);
        let sql: Vec<(Phase, Slot, &str)> = plan.steps.iter().map(|s| (s.phase, s.slot, s.sql.as_str())).collect();
        assert_eq!(
            sql,
            [
                (Phase::Pre, Slot::Main, "ALTER TABLE orders ADD COLUMN paid boolean;"),
                (Phase::Post, Slot::Main, "ALTER TABLE orders ADD CONSTRAINT orders_paid_not_null CHECK (paid IS NOT NULL) NOT VALID;"),
                (Phase::Post, Slot::Validate, "ALTER TABLE orders VALIDATE CONSTRAINT orders_paid_not_null;"),
                (Phase::Post, Slot::Validate, "ALTER TABLE orders ALTER COLUMN paid SET NOT NULL;"),
                (Phase::Post, Slot::Validate, "ALTER TABLE orders DROP CONSTRAINT orders_paid_not_null;"),
            ]
        );
    }

    #[test]
    fn enum_labels_are_added_in_place_and_removals_are_named() {
        let t = |labels: &str| Catalog::new(vec![Object::new(Kind::Type, "status").with("type", "enum").with("labels", labels)]);
        let added = plan(&t("'todo', 'done'"), &t("'todo', 'doing', 'done', 'failed'"));
        let sql: Vec<&str> = added.steps.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sql, ["ALTER TYPE status ADD VALUE 'doing' BEFORE 'done';", "ALTER TYPE status ADD VALUE 'failed';"]);
        let removed = plan(&t("'todo', 'done'"), &t("'done'"));
        assert_eq!(removed.steps[0].hazard.as_ref().unwrap().code, "manual");
        assert!(removed.steps[0].sql.starts_with("-- "));
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(ident("orders"), "orders");
        assert_eq!(ident("user"), "\"user\"");
        assert_eq!(ident("Orders"), "\"Orders\"");
        assert_eq!(ident("1st"), "\"1st\"");
        assert_eq!(labels("'a', 'it''s, ok', 'c'"), ["'a'", "'it''s, ok'", "'c'"]);
        assert!(binary_coercible("character varying(10)", "character varying(20)"));
        assert!(!binary_coercible("character varying(20)", "character varying(10)"));
        assert!(binary_coercible("character varying(20)", "text"));
        assert!(!binary_coercible("integer", "bigint"));
    }
}
