//! The planner: walks the diff of two catalogs and decides, object by object, the statements,
//! their phase and slot, and their hazards (the rules are the module's above).

use std::collections::HashSet;

use super::ddl::*;
use super::{Hazard, Phase, Plan, Slot, Step};
use crate::catalog::{Catalog, Change, Kind, Object};

pub(super) struct Planner<'a> {
    from: &'a Catalog,
    to: &'a Catalog,
    steps: Vec<Step>,
    /// Relations dropped and created again (a view whose columns change): their indexes,
    /// triggers and comments are created again too.
    recreated: HashSet<String>,
}

fn is_relation(kind: Kind) -> bool {
    matches!(kind, Kind::Table | Kind::View | Kind::MaterializedView)
}

impl<'a> Planner<'a> {
    pub(super) fn new(from: &'a Catalog, to: &'a Catalog) -> Planner<'a> {
        Planner { from, to, steps: Vec::new(), recreated: HashSet::new() }
    }

    fn step(&mut self, phase: Phase, slot: Slot, object: &Object, sql: String, hazard: Option<Hazard>) {
        self.steps.push(Step { phase, slot, object: object.to_string(), sql, hazard });
    }

    fn manual(&mut self, phase: Phase, object: &Object, what: &str, text: String) {
        let sql = format!("-- {}: {what} (write this step by hand)", object);
        self.step(phase, Slot::Main, object, sql, Some(Hazard { code: "manual", text }));
    }

    /// Whether the table (or view) is created by this plan.
    fn is_new(&self, relation: &str) -> bool {
        !self.from.objects.iter().any(|o| is_relation(o.kind) && o.name == relation) || self.recreated.contains(relation)
    }

    /// Whether the table is dropped by this plan.
    fn is_dropped(&self, relation: &str) -> bool {
        !self.to.objects.iter().any(|o| is_relation(o.kind) && o.name == relation)
    }

    pub(super) fn run(mut self) -> Plan {
        let diff = self.from.diff(self.to);
        // Relations whose change needs a drop and a create, known before anything is planned:
        // views whose columns change, materialized views that change, and any view over a
        // table whose column changes type (PostgreSQL refuses that while the view is there).
        let retyped: Vec<&str> = diff
            .differences
            .iter()
            .filter_map(|d| match &d.change {
                Change::Changed { here, there, .. } if d.kind == Kind::Column && (here.get("type") != there.get("type") || here.get("collation") != there.get("collation")) => here.parent(),
                _ => None,
            })
            .collect();
        for d in &diff.differences {
            if let Change::Changed { here, there, .. } = &d.change {
                if (d.kind == Kind::View && !view_replaceable(here, there)) || d.kind == Kind::MaterializedView {
                    self.recreated.insert(d.name.clone());
                }
            }
        }
        for v in self.to.objects.iter().filter(|o| matches!(o.kind, Kind::View | Kind::MaterializedView)) {
            if retyped.iter().any(|t| mentions(v.get("definition").unwrap_or(""), t)) {
                self.recreated.insert(v.name.clone());
            }
        }
        // Drops first (post, in reverse dependency order): what goes, and the views that are
        // created again; then creations and changes.
        let mut again: Vec<&Object> = self.from.objects.iter().filter(|o| matches!(o.kind, Kind::View | Kind::MaterializedView) && self.recreated.contains(&o.name)).collect();
        again.sort_by_key(|o| drop_rank(o));
        for o in again {
            let text = format!("{} is dropped here and created again below, after the changes it depends on (the previous release's code may read it until then); views on it must be dropped first", o.name);
            let sql = format!("DROP {} {};", o.kind.as_str().to_uppercase(), ident(&o.name));
            self.step(Phase::Post, Slot::Main, o, sql, Some(Hazard { code: "dependents", text }));
        }
        let mut drops: Vec<&Object> = diff.extra().collect();
        drops.sort_by_key(|o| drop_rank(o));
        for o in drops {
            self.drop(o);
        }
        for kind in Kind::ALL {
            let mut missing: Vec<&Object> = diff.missing().filter(|o| o.kind == kind).collect();
            if kind == Kind::Constraint {
                // Keys before the foreign keys that reference them.
                missing.sort_by_key(|o| (o.get("type") == Some("foreign key"), o.name.clone()));
            }
            if kind == Kind::Column {
                missing.sort_by_key(|o| (o.parent().unwrap_or("").to_string(), position(o)));
            }
            for o in missing {
                self.create(o);
            }
            for d in diff.differences.iter().filter(|d| d.kind == kind) {
                if let Change::Changed { here, there, .. } = &d.change {
                    self.change(here, there);
                }
            }
        }
        // A relation created again, unchanged itself, and what belongs to it.
        let again: Vec<Object> = self
            .to
            .objects
            .iter()
            .filter(|o| {
                let relation = if matches!(o.kind, Kind::View | Kind::MaterializedView) {
                    Some(o.name.clone())
                } else {
                    o.parent().map(str::to_string).or_else(|| comment_relation(o))
                };
                relation.is_some_and(|p| self.recreated.contains(&p)) && self.from.get(o.kind, &o.name) == Some(o)
            })
            .cloned()
            .collect();
        for o in &again {
            self.create(o);
        }
        let mut steps = self.steps;
        // Stable: each slot keeps the order above.
        steps.sort_by_key(|s| {
            
            match (s.phase, s.slot) {
                (Phase::Pre, Slot::Main) => 0,
                (Phase::Pre, Slot::Concurrent) => 1,
                (Phase::Pre, Slot::Validate) => 2,
                (Phase::Post, Slot::Concurrent) => 3,
                (Phase::Post, Slot::Main) => 4,
                (Phase::Post, Slot::Validate) => 5,
            }
        });
        Plan { steps }
    }

    fn create(&mut self, o: &Object) {
        let g = |k: &str| o.get(k).unwrap_or("").to_string();
        match o.kind {
            Kind::Extension => self.step(Phase::Pre, Slot::Main, o, format!("CREATE EXTENSION IF NOT EXISTS {};", ident(&o.name)), None),
            Kind::Type => match g("type").as_str() {
                "enum" => self.step(Phase::Pre, Slot::Main, o, format!("CREATE TYPE {} AS ENUM ({});", ident(&o.name), g("labels")), None),
                "domain" => {
                    let mut sql = format!("CREATE DOMAIN {} AS {}", ident(&o.name), g("base"));
                    if let Some(c) = o.get("collation") {
                        sql.push_str(&format!(" COLLATE {c}"));
                    }
                    if let Some(d) = o.get("default") {
                        sql.push_str(&format!(" DEFAULT {d}"));
                    }
                    if o.is("not null") {
                        sql.push_str(" NOT NULL");
                    }
                    if let Some(c) = o.get("checks") {
                        sql.push_str(&format!(" {c}"));
                    }
                    sql.push(';');
                    self.step(Phase::Pre, Slot::Main, o, sql, None);
                }
                "composite" => self.step(Phase::Pre, Slot::Main, o, format!("CREATE TYPE {} AS ({});", ident(&o.name), g("attributes")), None),
                "range" => self.step(Phase::Pre, Slot::Main, o, format!("CREATE TYPE {} AS RANGE (SUBTYPE = {});", ident(&o.name), g("subtype")), None),
                other => self.manual(Phase::Pre, o, "create it", format!("a {other} type is not generated")),
            },
            Kind::Sequence => {
                if self.serial_column(o).is_some() {
                    return; // written `serial` in its table's CREATE TABLE
                }
                self.step(Phase::Pre, Slot::Main, o, format!("CREATE SEQUENCE {}{};", ident(&o.name), sequence_options(o)), None);
            }
            Kind::Table => self.create_table(o),
            Kind::Column => {
                let table = o.parent().unwrap_or("").to_string();
                if self.is_new(&table) {
                    return; // part of CREATE TABLE
                }
                self.add_column(o, &table);
            }
            Kind::Function | Kind::Procedure => match o.get(".ddl") {
                Some(ddl) => self.step(Phase::Pre, Slot::Main, o, format!("{};", ddl.trim_end()), None),
                None => self.manual(Phase::Pre, o, "create it", "PostgreSQL gave no definition for it".into()),
            },
            Kind::Aggregate => {
                let (name, args) = routine_parts(&o.name);
                self.step(Phase::Pre, Slot::Main, o, format!("CREATE AGGREGATE {}({args}) ({});", ident(name), g("aggregate")), None);
            }
            Kind::Constraint => {
                let table = o.parent().unwrap_or("").to_string();
                let phase = Phase::Pre;
                self.add_constraint(o, &table, phase, self.is_new(&table));
            }
            Kind::Index => {
                if o.get("constraint").is_some() {
                    return; // built with its constraint
                }
                let table = g("table");
                let sql = create_index(o, false);
                if self.is_new(&table) {
                    let phase = if self.recreated.contains(&table) { Phase::Post } else { Phase::Pre };
                    self.step(phase, Slot::Main, o, sql, None);
                } else {
                    self.step(Phase::Pre, Slot::Concurrent, o, create_index(o, true), Some(invalid_index(&o.name)));
                }
            }
            Kind::View | Kind::MaterializedView => {
                let phase = if self.recreated.contains(&o.name) { Phase::Post } else { Phase::Pre };
                self.step(phase, Slot::Main, o, create_view(o), None);
            }
            Kind::Trigger => {
                let table = o.parent().unwrap_or("").to_string();
                let phase = if self.recreated.contains(&table) { Phase::Post } else { Phase::Pre };
                self.step(phase, Slot::Main, o, format!("{};", g("definition")), None);
            }
            Kind::Comment => {
                let phase = if comment_relation(o).is_some_and(|r| self.recreated.contains(&r)) { Phase::Post } else { Phase::Pre };
                self.step(phase, Slot::Main, o, format!("COMMENT ON {} IS {};", g(".target"), literal(&g("text"))), None);
            }
            Kind::Owner => self.step(Phase::Pre, Slot::Main, o, format!("ALTER {} OWNER TO {};", g(".target"), ident(&g("role"))), None),
            Kind::Privileges => self.manual(
                Phase::Pre,
                o,
                "grant its privileges",
                format!("privileges are not generated: GRANT what `{}` lists, by hand", g("acl")),
            ),
        }
    }

    fn create_table(&mut self, o: &Object) {
        if o.is("foreign") {
            return self.manual(Phase::Pre, o, "create it", "a foreign table is not generated: CREATE FOREIGN TABLE by hand".into());
        }
        if let Some(parent) = o.get("partition of") {
            let sql = format!("CREATE TABLE {} PARTITION OF {parent} {};", ident(&o.name), o.get("bound").unwrap_or("DEFAULT"));
            return self.step(Phase::Pre, Slot::Main, o, sql, None);
        }
        let mut columns: Vec<&Object> = self.to.of(Kind::Column).filter(|c| c.parent() == Some(o.name.as_str())).collect();
        columns.sort_by_key(|c| position(c));
        let body: Vec<String> = columns
            .iter()
            .map(|c| match self.serial_of(c) {
                Some((pseudo, _)) => format!("    {} {pseudo}", ident(c.local_name())),
                None => format!("    {}", column_definition(c, true)),
            })
            .collect();
        let mut sql = format!(
            "CREATE {}TABLE {} (\n{}\n)",
            if o.is("unlogged") { "UNLOGGED " } else { "" },
            ident(&o.name),
            body.join(",\n")
        );
        if let Some(by) = o.get("partitioned by") {
            sql.push_str(&format!(" PARTITION BY {by}"));
        }
        if let Some(opts) = o.get("options") {
            sql.push_str(&format!(" WITH ({opts})"));
        }
        sql.push(';');
        self.step(Phase::Pre, Slot::Main, o, sql, None);
        // A serial column's sequence belongs to it.
        let owned: Vec<Object> = self
            .to
            .of(Kind::Sequence)
            .filter(|s| s.get("owned by").is_some_and(|c| c.split('.').next() == Some(ident(&o.name).as_str())) && self.serial_column(s).is_none())
            .cloned()
            .collect();
        for s in owned {
            let sql = format!("ALTER SEQUENCE {} OWNED BY {};", ident(&s.name), s.get("owned by").unwrap_or(""));
            self.step(Phase::Pre, Slot::Main, &s, sql, None);
        }
    }

    /// The column of a table this plan creates that a new sequence serves as `serial` does
    /// (its default takes the sequence's next value, the sequence is owned by it and has a
    /// serial's settings): the column is written `serial`, the sequence not at all.
    fn serial_column(&self, seq: &Object) -> Option<&'a Object> {
        let (table, column) = seq.get("owned by")?.split_once('.')?;
        let c = self.to.of(Kind::Column).find(|c| c.parent().is_some_and(|p| ident(p) == table) && ident(c.local_name()) == column)?;
        self.serial_of(c).filter(|(_, s)| s.name == seq.name).map(|_| c)
    }

    /// `serial`, `bigserial` or `smallserial` for a column of a table this plan creates, and
    /// its sequence, when the column is one.
    fn serial_of(&self, c: &Object) -> Option<(&'static str, &'a Object)> {
        let table = c.parent()?;
        if !self.is_new(table) || !c.is("not null") || c.get("identity").is_some() {
            return None;
        }
        let default = c.get("default")?;
        let name = default.strip_prefix("nextval('")?.strip_suffix("'::regclass)")?.replace("''", "'");
        let seq = self.to.of(Kind::Sequence).find(|s| ident(&s.name) == name)?;
        let (pseudo, max) = match c.get("type")? {
            "smallint" => ("smallserial", "32767"),
            "integer" => ("serial", "2147483647"),
            "bigint" => ("bigserial", "9223372036854775807"),
            _ => return None,
        };
        let owned = seq.get("owned by") == Some(format!("{}.{}", ident(table), ident(c.local_name())).as_str());
        let plain = seq.get("type") == c.get("type")
            && [("start", "1"), ("increment", "1"), ("min", "1"), ("max", max), ("cache", "1")].iter().all(|(k, v)| seq.get(k) == Some(v))
            && !seq.is("cycle");
        (owned && plain && self.from.get(Kind::Sequence, &seq.name).is_none()).then_some((pseudo, seq))
    }

    fn add_column(&mut self, o: &Object, table: &str) {
        let t = ident(table);
        let has_value = o.get("default").is_some() || o.get("identity").is_some() || o.get("generated").is_some();
        let rewrite = o.get("identity").is_some() || o.get("generated").is_some() || o.get("default").is_some_and(volatile);
        let hazard = rewrite.then(|| Hazard {
            code: "table-rewrite",
            text: format!(
                "fills every existing row of {table} while holding an ACCESS EXCLUSIVE lock (a volatile default, identity or \
                 generated column): on a large table, add the column without it, backfill in batches, then set it"
            ),
        });
        if o.is("not null") && !has_value {
            // The previous release inserts rows without it: NOT NULL waits for post.
            self.step(Phase::Pre, Slot::Main, o, format!("ALTER TABLE {t} ADD COLUMN {};", column_definition(o, false)), hazard);
            self.set_not_null(o, table, true);
        } else {
            self.step(Phase::Pre, Slot::Main, o, format!("ALTER TABLE {t} ADD COLUMN {};", column_definition(o, true)), hazard);
        }
    }

    /// `SET NOT NULL` without a scan under lock: a `NOT VALID` check, validated in a second
    /// transaction (which blocks no writes), then `SET NOT NULL`, which uses it.
    fn set_not_null(&mut self, o: &Object, table: &str, new_column: bool) {
        let (t, c) = (ident(table), ident(o.local_name()));
        let check = ident(&truncate_ident(&format!("{}_{}_not_null", table, o.local_name())));
        let why = if new_column {
            format!("rows the previous release writes have no {c}: fill them (UPDATE {t} SET {c} = ... WHERE {c} IS NULL) before this runs, or VALIDATE fails")
        } else {
            format!("fails if a row of {table} holds NULL in {c}: fill them first (UPDATE {t} SET {c} = ... WHERE {c} IS NULL)")
        };
        self.step(Phase::Post, Slot::Main, o, format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID;"), None);
        self.step(Phase::Post, Slot::Validate, o, format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check};"), Some(Hazard { code: "backfill", text: why }));
        self.step(Phase::Post, Slot::Validate, o, format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;"), None);
        self.step(Phase::Post, Slot::Validate, o, format!("ALTER TABLE {t} DROP CONSTRAINT {check};"), None);
    }

    fn add_constraint(&mut self, o: &Object, table: &str, phase: Phase, new_table: bool) {
        let (t, c) = (ident(table), ident(o.local_name()));
        let def = o.get("definition").unwrap_or("");
        let wanted_not_valid = o.is("not valid");
        if new_table {
            // An empty table: nothing to check, nothing to wait for.
            let nv = if wanted_not_valid { " NOT VALID" } else { "" };
            return self.step(phase, Slot::Main, o, format!("ALTER TABLE {t} ADD CONSTRAINT {c} {def}{nv};"), None);
        }
        match o.get("type") {
            Some("check") | Some("foreign key") => {
                self.step(phase, Slot::Main, o, format!("ALTER TABLE {t} ADD CONSTRAINT {c} {def} NOT VALID;"), None);
                if !wanted_not_valid {
                    let find = match def.strip_prefix("CHECK ") {
                        Some(expr) => format!("SELECT * FROM {t} WHERE NOT {expr}"),
                        None => "a SELECT of the rows whose key has no match".to_string(),
                    };
                    let text = format!(
                        "new rows are checked from the first file on (the previous release's code must not write rows that \
                         break it); this checks the rows already there, and fails if one breaks it: find them with {find}, \
                         and fix them first"
                    );
                    self.step(phase, Slot::Validate, o, format!("ALTER TABLE {t} VALIDATE CONSTRAINT {c};"), Some(Hazard { code: "validation", text }));
                }
            }
            Some("primary key") | Some("unique") => {
                // The index first, concurrently; then the constraint takes it over.
                let index = self.to.of(Kind::Index).find(|i| i.get("constraint") == Some(o.local_name()) && i.get("table") == Some(table)).cloned();
                match index {
                    Some(i) => {
                        self.step(phase, Slot::Concurrent, &i, create_index(&i, true), Some(invalid_index(&i.name)));
                        let kind = if o.get("type") == Some("primary key") { "PRIMARY KEY" } else { "UNIQUE" };
                        let hazard = (kind == "PRIMARY KEY").then(|| Hazard {
                            code: "lock",
                            text: format!("a primary key sets its columns NOT NULL, which scans {table} under an ACCESS EXCLUSIVE lock unless a validated CHECK (col IS NOT NULL) exists"),
                        });
                        self.step(phase, Slot::Validate, o, format!("ALTER TABLE {t} ADD CONSTRAINT {c} {kind} USING INDEX {};", ident(&i.name)), hazard);
                    }
                    None => self.step(phase, Slot::Main, o, format!("ALTER TABLE {t} ADD CONSTRAINT {c} {def};"), None),
                }
            }
            _ => {
                let text = format!("builds its index and checks every row of {table} under an ACCESS EXCLUSIVE lock: no online way exists");
                self.step(phase, Slot::Main, o, format!("ALTER TABLE {t} ADD CONSTRAINT {c} {def};"), Some(Hazard { code: "lock", text }));
            }
        }
    }

    fn drop(&mut self, o: &Object) {
        let parent_dropped = o.parent().is_some_and(|p| self.is_dropped(p));
        match o.kind {
            Kind::Trigger | Kind::Constraint | Kind::Column | Kind::Index if parent_dropped => {}
            Kind::Comment | Kind::Owner | Kind::Privileges => {
                let target = comment_target_exists(o, self.to);
                if target && o.kind == Kind::Comment {
                    self.step(Phase::Pre, Slot::Main, o, format!("COMMENT ON {} IS NULL;", o.get(".target").unwrap_or("")), None);
                } else if target && o.kind == Kind::Privileges {
                    self.manual(Phase::Post, o, "revoke its privileges", format!("privileges are not generated: REVOKE what `{}` lists, by hand", o.get("acl").unwrap_or("")));
                }
            }
            Kind::Trigger => {
                let sql = format!("DROP TRIGGER {} ON {};", ident(o.local_name()), ident(o.parent().unwrap_or("")));
                self.step(Phase::Post, Slot::Main, o, sql, None);
            }
            Kind::View | Kind::MaterializedView => {
                let sql = format!("DROP {} {};", o.kind.as_str().to_uppercase(), ident(&o.name));
                self.step(Phase::Post, Slot::Main, o, sql, None);
            }
            Kind::Constraint => {
                if matches!(o.get("type"), Some("primary key" | "unique")) && self.dropped_with_columns(o) {
                    return; // goes with its columns
                }
                let sql = format!("ALTER TABLE {} DROP CONSTRAINT {};", ident(o.parent().unwrap_or("")), ident(o.local_name()));
                self.step(Phase::Post, Slot::Main, o, sql, None);
            }
            Kind::Index => {
                if o.get("constraint").is_some() {
                    return; // dropped with its constraint
                }
                self.step(Phase::Post, Slot::Concurrent, o, format!("DROP INDEX CONCURRENTLY IF EXISTS {};", ident(&o.name)), None);
            }
            Kind::Column => {
                let text = format!("deletes the column's data; the previous release's code must not read or write {} any more", o.name);
                let sql = format!("ALTER TABLE {} DROP COLUMN {};", ident(o.parent().unwrap_or("")), ident(o.local_name()));
                self.step(Phase::Post, Slot::Main, o, sql, Some(Hazard { code: "data-loss", text }));
            }
            Kind::Table => {
                let text = format!("deletes every row of {}: if it was renamed, write ALTER TABLE ... RENAME instead", o.name);
                self.step(Phase::Post, Slot::Main, o, format!("DROP TABLE {};", ident(&o.name)), Some(Hazard { code: "data-loss", text }));
            }
            Kind::Function | Kind::Procedure | Kind::Aggregate => {
                let (name, args) = routine_parts(&o.name);
                let sql = format!("DROP {} {}({args});", o.kind.as_str().to_uppercase(), ident(name));
                self.step(Phase::Post, Slot::Main, o, sql, None);
            }
            Kind::Sequence => self.step(Phase::Post, Slot::Main, o, format!("DROP SEQUENCE IF EXISTS {};", ident(&o.name)), None),
            Kind::Type => {
                let what = if o.get("type") == Some("domain") { "DOMAIN" } else { "TYPE" };
                self.step(Phase::Post, Slot::Main, o, format!("DROP {what} {};", ident(&o.name)), None);
            }
            Kind::Extension => self.step(Phase::Post, Slot::Main, o, format!("DROP EXTENSION {};", ident(&o.name)), None),
        }
    }

    /// Whether every column of a key is dropped too (PostgreSQL drops the key with them).
    fn dropped_with_columns(&self, key: &Object) -> bool {
        let (Some(table), Some(def)) = (key.parent(), key.get("definition")) else { return false };
        let Some(cols) = def.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map(|(c, _)| c) else { return false };
        cols.split(',').map(str::trim).all(|c| {
            let name = format!("{table}.{}", c.trim_matches('"'));
            self.from.get(Kind::Column, &name).is_some() && self.to.get(Kind::Column, &name).is_none()
        })
    }

    fn change(&mut self, here: &Object, there: &Object) {
        let g = |k: &str| there.get(k).unwrap_or("").to_string();
        match there.kind {
            Kind::Extension => self.step(Phase::Pre, Slot::Main, there, format!("ALTER EXTENSION {} UPDATE TO {};", ident(&there.name), literal(&g("version"))), None),
            Kind::Type => self.change_type(here, there),
            Kind::Sequence => {
                if here.get("owned by") != there.get("owned by") {
                    let sql = format!("ALTER SEQUENCE {} OWNED BY {};", ident(&there.name), there.get("owned by").unwrap_or("NONE"));
                    self.step(Phase::Pre, Slot::Main, there, sql, None);
                }
                if here.compared().filter(|(k, _)| *k != "owned by").ne(there.compared().filter(|(k, _)| *k != "owned by")) {
                    let sql = format!("ALTER SEQUENCE {}{}{};", ident(&there.name), sequence_options(there), if there.is("cycle") { "" } else { " NO CYCLE" });
                    self.step(Phase::Pre, Slot::Main, there, sql, None);
                }
            }
            Kind::Table => {
                let t = ident(&there.name);
                if here.is("unlogged") != there.is("unlogged") {
                    let sql = format!("ALTER TABLE {t} SET {};", if there.is("unlogged") { "UNLOGGED" } else { "LOGGED" });
                    let text = format!("rewrites {} under an ACCESS EXCLUSIVE lock", there.name);
                    self.step(Phase::Post, Slot::Main, there, sql, Some(Hazard { code: "table-rewrite", text }));
                }
                if here.get("options") != there.get("options") {
                    match there.get("options") {
                        Some(o) => self.step(Phase::Pre, Slot::Main, there, format!("ALTER TABLE {t} SET ({o});"), None),
                        None => self.manual(Phase::Pre, there, "reset its storage options", format!("RESET the options `{}`", here.get("options").unwrap_or(""))),
                    }
                }
                for key in ["partitioned by", "partition of", "bound", "foreign"] {
                    if here.get(key) != there.get(key) {
                        self.manual(
                            Phase::Post,
                            there,
                            &format!("change `{key}`"),
                            format!("changing how {} is partitioned means a new table and a data copy: create it, copy in batches, swap names", there.name),
                        );
                    }
                }
            }
            Kind::Column => self.change_column(here, there),
            Kind::Function | Kind::Procedure => {
                let signature_changed = here.get("returns") != there.get("returns") || here.get("arguments") != there.get("arguments");
                let Some(ddl) = there.get(".ddl") else { return self.manual(Phase::Pre, there, "redefine it", "PostgreSQL gave no definition for it".into()) };
                if signature_changed {
                    let (name, args) = routine_parts(&there.name);
                    let text = "its result type or argument names or defaults change, which CREATE OR REPLACE cannot do: it is dropped and \
                         created again after the deploy; views, triggers and defaults that use it must be dropped first and \
                         created again after".to_string();
                    let drop = format!("DROP {} {}({args});", there.kind.as_str().to_uppercase(), ident(name));
                    self.step(Phase::Post, Slot::Main, there, drop, Some(Hazard { code: "dependents", text }));
                    self.step(Phase::Post, Slot::Main, there, format!("{};", ddl.trim_end()), None);
                } else {
                    self.step(Phase::Pre, Slot::Main, there, format!("{};", ddl.trim_end()), None);
                }
            }
            Kind::Aggregate => {
                let (name, args) = routine_parts(&there.name);
                self.step(Phase::Post, Slot::Main, there, format!("DROP AGGREGATE {}({args});", ident(name)), None);
                self.step(Phase::Post, Slot::Main, there, format!("CREATE AGGREGATE {}({args}) ({});", ident(name), g("aggregate")), None);
            }
            Kind::Constraint => {
                let table = there.parent().unwrap_or("").to_string();
                let only_validity = here.get("definition") == there.get("definition") && here.get("type") == there.get("type");
                if only_validity {
                    if there.is("not valid") {
                        return self.manual(Phase::Post, there, "mark it NOT VALID", "a validated constraint cannot become NOT VALID: drop and add it".into());
                    }
                    let sql = format!("ALTER TABLE {} VALIDATE CONSTRAINT {};", ident(&table), ident(there.local_name()));
                    let text = format!("fails if existing rows of {table} break it: fix them first");
                    return self.step(Phase::Pre, Slot::Validate, there, sql, Some(Hazard { code: "validation", text }));
                }
                let sql = format!("ALTER TABLE {} DROP CONSTRAINT {};", ident(&table), ident(there.local_name()));
                self.step(Phase::Post, Slot::Main, there, sql, None);
                let is_new = self.is_new(&table);
                self.add_constraint(there, &table, Phase::Post, is_new);
            }
            Kind::Index => {
                if there.get("constraint").is_some() || here.get("constraint").is_some() {
                    return; // its constraint's change rebuilds it
                }
                let table = g("table");
                if self.is_new(&table) {
                    return self.create(there);
                }
                if here.get("using") == there.get("using") && here.is("unique") == there.is("unique") && here.get("table") == there.get("table") {
                    // Only validity: a failed concurrent build left it invalid.
                    let sql = format!("REINDEX INDEX CONCURRENTLY {};", ident(&there.name));
                    return self.step(Phase::Pre, Slot::Concurrent, there, sql, None);
                }
                // Built beside the old one, then swapped: queries never go without it.
                let new_name = truncate_ident(&format!("{}_new", there.name));
                let mut built = there.clone();
                built.name = new_name.clone();
                let sql = create_index(&built, true);
                self.step(Phase::Pre, Slot::Concurrent, there, sql, Some(invalid_index(&new_name)));
                self.step(Phase::Post, Slot::Main, there, format!("DROP INDEX {};", ident(&there.name)), Some(Hazard {
                    code: "lock",
                    text: format!("takes an ACCESS EXCLUSIVE lock on {table} for a moment (it waits behind long queries); the new index is in place already"),
                }));
                self.step(Phase::Post, Slot::Main, there, format!("ALTER INDEX {} RENAME TO {};", ident(&new_name), ident(&there.name)), None);
            }
            // Dropped with the drops above.
            Kind::View | Kind::MaterializedView if self.recreated.contains(&there.name) => {
                self.step(Phase::Post, Slot::Main, there, create_view(there), None);
            }
            Kind::View => {
                self.step(Phase::Pre, Slot::Main, there, create_view(there).replacen("CREATE VIEW", "CREATE OR REPLACE VIEW", 1), None);
            }
            Kind::MaterializedView => unreachable!("a changed materialized view is always created again"),
            Kind::Trigger => {
                let table = there.parent().unwrap_or("");
                if here.get("definition") != there.get("definition") {
                    // One transaction: no write goes between the two.
                    self.step(Phase::Pre, Slot::Main, there, format!("DROP TRIGGER {} ON {};", ident(there.local_name()), ident(table)), None);
                    self.step(Phase::Pre, Slot::Main, there, format!("{};", g("definition")), None);
                }
                if here.get("enabled") != there.get("enabled") {
                    let how = match there.get("enabled") {
                        Some("disabled") => "DISABLE TRIGGER".to_string(),
                        Some("replica") => "ENABLE REPLICA TRIGGER".to_string(),
                        Some("always") => "ENABLE ALWAYS TRIGGER".to_string(),
                        _ => "ENABLE TRIGGER".to_string(),
                    };
                    self.step(Phase::Pre, Slot::Main, there, format!("ALTER TABLE {} {how} {};", ident(table), ident(there.local_name())), None);
                }
            }
            Kind::Comment => self.create(there),
            Kind::Owner => self.create(there),
            Kind::Privileges => self.manual(
                Phase::Pre,
                there,
                "change its privileges",
                format!("privileges are not generated: from `{}` to `{}`, by hand", here.get("acl").unwrap_or(""), g("acl")),
            ),
        }
    }

    fn change_type(&mut self, here: &Object, there: &Object) {
        let t = ident(&there.name);
        match (here.get("type"), there.get("type")) {
            (Some("enum"), Some("enum")) => {
                let old = labels(here.get("labels").unwrap_or(""));
                let new = labels(there.get("labels").unwrap_or(""));
                let kept: Vec<&String> = new.iter().filter(|l| old.contains(l)).collect();
                if old.iter().collect::<Vec<_>>() != kept {
                    let text = format!(
                        "PostgreSQL cannot remove or reorder an enum's labels: create the new type ({}), ALTER each column to it \
                         USING col::text::new_type after the deploy, then drop {} and rename the new one",
                        there.get("labels").unwrap_or(""),
                        there.name
                    );
                    return self.manual(Phase::Post, there, "replace the enum", text);
                }
                for (i, l) in new.iter().enumerate() {
                    if old.contains(l) {
                        continue;
                    }
                    let place = match new[i + 1..].iter().find(|n| old.contains(n)) {
                        Some(next) => format!(" BEFORE {next}"),
                        None => String::new(),
                    };
                    self.step(Phase::Pre, Slot::Main, there, format!("ALTER TYPE {t} ADD VALUE {l}{place};"), None);
                }
            }
            (Some("domain"), Some("domain")) if here.get("base") == there.get("base") && here.get("checks") == there.get("checks") && here.get("collation") == there.get("collation") => {
                if here.get("default") != there.get("default") {
                    let sql = match there.get("default") {
                        Some(d) => format!("ALTER DOMAIN {t} SET DEFAULT {d};"),
                        None => format!("ALTER DOMAIN {t} DROP DEFAULT;"),
                    };
                    self.step(Phase::Pre, Slot::Main, there, sql, None);
                }
                if here.is("not null") != there.is("not null") {
                    if there.is("not null") {
                        let text = format!("checks every column of type {} under lock, and fails on a NULL", there.name);
                        self.step(Phase::Post, Slot::Main, there, format!("ALTER DOMAIN {t} SET NOT NULL;"), Some(Hazard { code: "validation", text }));
                    } else {
                        self.step(Phase::Pre, Slot::Main, there, format!("ALTER DOMAIN {t} DROP NOT NULL;"), None);
                    }
                }
            }
            _ => self.manual(
                Phase::Post,
                there,
                "redefine the type",
                format!("{} changes from {} to {}: create the new type, convert the columns that use it, drop the old one", there.name, here.summary(), there.summary()),
            ),
        }
    }

    fn change_column(&mut self, here: &Object, there: &Object) {
        let table = there.parent().unwrap_or("").to_string();
        let (t, c) = (ident(&table), ident(there.local_name()));
        if here.get("generated") != there.get("generated") {
            let text = format!(
                "a generated column's expression cannot change in place: add a new column with it, switch the code over, then drop {}",
                there.name
            );
            return self.manual(Phase::Post, there, "change its generated expression", text);
        }
        if here.get("type") != there.get("type") || here.get("collation") != there.get("collation") {
            let ty = there.get("type").unwrap_or("");
            let collate = there.get("collation").map(|c| format!(" COLLATE {c}")).unwrap_or_default();
            let sql = format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {ty}{collate} USING {c}::{ty};");
            let hazard = (!binary_coercible(here.get("type").unwrap_or(""), ty) || here.get("collation") != there.get("collation")).then(|| Hazard {
                code: "table-rewrite",
                text: format!(
                    "rewrites {table} and its indexes under an ACCESS EXCLUSIVE lock (and fails or truncates if a value does not \
                     convert); on a large table: add a new column, backfill it in batches, switch the code, then drop the old one"
                ),
            });
            self.step(Phase::Post, Slot::Main, there, sql, hazard);
        }
        if here.get("default") != there.get("default") {
            match there.get("default") {
                Some(d) => self.step(Phase::Pre, Slot::Main, there, format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d};"), None),
                // The previous release may insert rows that rely on it.
                None => self.step(Phase::Post, Slot::Main, there, format!("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT;"), None),
            }
        }
        if here.get("identity") != there.get("identity") {
            match (here.get("identity"), there.get("identity")) {
                (None, Some(how)) => {
                    let sql = format!("ALTER TABLE {t} ALTER COLUMN {c} ADD GENERATED {} AS IDENTITY;", how.to_uppercase());
                    self.step(Phase::Pre, Slot::Main, there, sql, None);
                }
                (Some(_), None) => self.step(Phase::Post, Slot::Main, there, format!("ALTER TABLE {t} ALTER COLUMN {c} DROP IDENTITY;"), None),
                (_, Some(how)) => {
                    let sql = format!("ALTER TABLE {t} ALTER COLUMN {c} SET GENERATED {};", how.to_uppercase());
                    self.step(Phase::Pre, Slot::Main, there, sql, None);
                }
                (None, None) => {}
            }
        }
        if here.is("not null") != there.is("not null") {
            if there.is("not null") {
                if there.get("identity").is_none() || here.get("identity").is_some() {
                    self.set_not_null(there, &table, false);
                }
            } else {
                self.step(Phase::Pre, Slot::Main, there, format!("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL;"), None);
            }
        }
    }
}

