//! The schema-diff engine, in three steps (as Atlas and pg-schema-diff have them): a schema's
//! [`Catalog`] read from PostgreSQL ([`read`]), how two catalogs differ ([`diff`]), and the
//! statements that turn one into the other, split into `pre` and `post` ([`plan`]). Every
//! command that compares schemas calls it: `verify`, `stamp` (checked and `--detect`),
//! `check --schema`, `diff` and `new --autogenerate`, so that "equal" means one thing.
//!
//! A catalog is a sorted list of [`Object`]s, each a [`Kind`], a name unique within its kind, and
//! the attributes it is compared by (a column's type, nullability, default, identity, generated
//! expression and collation; an index's method, keys, `INCLUDE`, predicate, uniqueness and
//! validity; a function's signature, body, volatility and security; ...). Attributes whose key
//! starts with `.` are read but never compared: a column's table and position, PostgreSQL's own
//! statement for an index or function. Column order does not count (a database built by the
//! migrations orders `procrastinate_jobs`' columns differently from `schema.sql`); enum labels
//! keep theirs.

use std::collections::BTreeMap;
use std::fmt;

pub mod diff;
pub mod plan;
#[cfg(feature = "postgres")]
mod read;

pub use diff::{AttrChange, Change, Diff, Difference};
#[cfg(feature = "postgres")]
pub use read::{read, read_with, Options};

/// Bumped whenever what [`read`] returns for the same schema changes (caches key on it).
pub const FORMAT: u32 = 3;

/// What an object is. The order is the order objects are created in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// `CREATE EXTENSION`, installed in the schema.
    #[serde(rename = "extension")]
    Extension,
    /// An enum, domain, composite or range type.
    #[serde(rename = "type")]
    Type,
    /// A sequence (not an identity column's, which is the column's).
    #[serde(rename = "sequence")]
    Sequence,
    /// A table (plain, partitioned or foreign).
    #[serde(rename = "table")]
    Table,
    /// A table's column, named `table.column`.
    #[serde(rename = "column")]
    Column,
    /// A function, named `name(argument types)`.
    #[serde(rename = "function")]
    Function,
    /// A procedure, named `name(argument types)`.
    #[serde(rename = "procedure")]
    Procedure,
    /// An aggregate, named `name(argument types)`.
    #[serde(rename = "aggregate")]
    Aggregate,
    /// A table's constraint (primary key, unique, foreign key, check, exclusion), named
    /// `table.constraint`.
    #[serde(rename = "constraint")]
    Constraint,
    /// An index (those that back a constraint say which).
    #[serde(rename = "index")]
    Index,
    /// A view.
    #[serde(rename = "view")]
    View,
    /// A materialized view.
    #[serde(rename = "materialized view")]
    MaterializedView,
    /// A table's trigger, named `table.trigger`.
    #[serde(rename = "trigger")]
    Trigger,
    /// An object's comment, named `kind name` after its object.
    #[serde(rename = "comment")]
    Comment,
    /// An object's owner (read only when asked: [`Options::privileges`]).
    #[serde(rename = "owner")]
    Owner,
    /// An object's privileges (read only when asked).
    #[serde(rename = "privileges")]
    Privileges,
}

impl Kind {
    /// Every kind, in creation order.
    pub const ALL: [Kind; 16] = [
        Kind::Extension,
        Kind::Type,
        Kind::Sequence,
        Kind::Table,
        Kind::Column,
        Kind::Function,
        Kind::Procedure,
        Kind::Aggregate,
        Kind::Constraint,
        Kind::Index,
        Kind::View,
        Kind::MaterializedView,
        Kind::Trigger,
        Kind::Comment,
        Kind::Owner,
        Kind::Privileges,
    ];

    /// As PostgreSQL's catalogs and this tool's output say it: `column`, `materialized view`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Extension => "extension",
            Kind::Type => "type",
            Kind::Sequence => "sequence",
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::Function => "function",
            Kind::Procedure => "procedure",
            Kind::Aggregate => "aggregate",
            Kind::Constraint => "constraint",
            Kind::Index => "index",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::Trigger => "trigger",
            Kind::Comment => "comment",
            Kind::Owner => "owner",
            Kind::Privileges => "privileges",
        }
    }

    /// The kind [`as_str`](Self::as_str) names.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether objects of this kind are created by name in a schema (the rest belong to one of
    /// them): tables, sequences, views, types and routines.
    pub fn is_named(self) -> bool {
        matches!(
            self,
            Kind::Table | Kind::Sequence | Kind::View | Kind::MaterializedView | Kind::Type | Kind::Function | Kind::Procedure | Kind::Aggregate
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of a schema.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// Its name, unique within the kind: `table.column` for columns, constraints and triggers,
    /// `name(argument types)` for routines, `kind name` for a comment, owner or privileges.
    pub name: String,
    /// What it is compared by, and (keys starting with `.`) what is read but not compared.
    pub attrs: BTreeMap<String, String>,
}

/// Equal when kind, name and every compared attribute are.
impl PartialEq for Object {
    fn eq(&self, other: &Object) -> bool {
        self.kind == other.kind && self.name == other.name && self.compared().eq(other.compared())
    }
}

impl Eq for Object {}

impl Object {
    /// An object without attributes.
    pub fn new(kind: Kind, name: impl Into<String>) -> Object {
        Object { kind, name: name.into(), attrs: BTreeMap::new() }
    }

    /// With one more attribute (builder style, for tests and the planner).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Object {
        self.attrs.insert(key.to_string(), value.into());
        self
    }

    /// An attribute's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(String::as_str)
    }

    /// Whether a yes-or-no attribute (`not null`, `unique`) is set.
    pub fn is(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    /// The table of a column, constraint, index or trigger.
    pub fn parent(&self) -> Option<&str> {
        self.get(".parent")
    }

    /// The attributes it is compared by, in key order.
    pub fn compared(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().filter(|(k, _)| !k.starts_with('.')).map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// For a comment, owner or privileges: the kind and name of the object it is about.
    pub fn about(&self) -> Option<(Kind, &str)> {
        if !matches!(self.kind, Kind::Comment | Kind::Owner | Kind::Privileges) {
            return None;
        }
        Kind::ALL.into_iter().find_map(|k| self.name.strip_prefix(k.as_str()).and_then(|rest| rest.strip_prefix(' ')).map(|rest| (k, rest)))
    }

    /// The table an object belongs to, or that the object a comment is about belongs to (or
    /// is).
    pub fn relation(&self) -> Option<&str> {
        if let Some(p) = self.parent() {
            return Some(p);
        }
        match self.about()? {
            (Kind::Table | Kind::View | Kind::MaterializedView, name) => Some(name),
            (Kind::Column | Kind::Constraint | Kind::Trigger, name) => name.split_once('.').map(|(t, _)| t),
            _ => None,
        }
    }

    /// The part of the name after its table (`column` for `table.column`).
    pub fn local_name(&self) -> &str {
        match self.parent() {
            Some(p) => self.name.strip_prefix(p).and_then(|n| n.strip_prefix('.')).unwrap_or(&self.name),
            None => &self.name,
        }
    }

    /// A column's type as DDL spells it: the type, its collation, and whether it is generated
    /// or an identity.
    pub fn column_type(&self) -> String {
        let mut s = self.get("type").unwrap_or("").to_string();
        if let Some(c) = self.get("collation") {
            s.push_str(&format!(" COLLATE {c}"));
        }
        if let Some(e) = self.get("generated") {
            s.push_str(&format!(" GENERATED ALWAYS AS ({e}) STORED"));
        }
        if let Some(i) = self.get("identity") {
            s.push_str(&format!(" GENERATED {} AS IDENTITY", i.to_uppercase()));
        }
        s
    }

    /// What it is, in a few words: a column's type and constraints, an index's method and keys.
    pub fn summary(&self) -> String {
        let g = |k: &str| self.get(k).unwrap_or("");
        match self.kind {
            Kind::Column => {
                let mut s = self.column_type();
                if self.is("not null") {
                    s.push_str(" NOT NULL");
                }
                if let Some(d) = self.get("default") {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                s
            }
            Kind::Constraint => format!("{}{}", g("definition"), if self.is("not valid") { " NOT VALID" } else { "" }),
            Kind::Index => format!("{}{} on {}{}", if self.is("unique") { "UNIQUE " } else { "" }, g("using"), g("table"), if self.is("not valid") { " (invalid)" } else { "" }),
            Kind::Table => self.compared().map(|(k, v)| if v == "true" { k.to_string() } else { format!("{k} {v}") }).collect::<Vec<_>>().join(", "),
            Kind::Sequence => g("type").to_string(),
            Kind::View | Kind::MaterializedView => format!("({})", g("columns")),
            Kind::Function | Kind::Aggregate => format!("returns {} ({})", g("returns"), g("language")),
            Kind::Procedure => format!("({})", g("language")),
            Kind::Trigger => g("definition").to_string(),
            Kind::Type => match g("type") {
                "enum" => format!("enum ({})", g("labels")),
                "domain" => format!("domain over {}", g("base")),
                "composite" => format!("composite ({})", g("attributes")),
                other => other.to_string(),
            },
            Kind::Extension => format!("version {}", g("version")),
            Kind::Comment => format!("'{}'", g("text")),
            Kind::Owner => g("role").to_string(),
            Kind::Privileges => g("acl").to_string(),
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// A schema's objects, sorted by kind and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Catalog {
    /// Sorted, one per (kind, name), when built by [`Catalog::new`].
    pub objects: Vec<Object>,
}

impl Catalog {
    /// A catalog of `objects`, sorted, and one per (kind, name), so that equal schemas compare equal.
    pub fn new(mut objects: Vec<Object>) -> Catalog {
        objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        objects.dedup_by(|a, b| a.kind == b.kind && a.name == b.name);
        Catalog { objects }
    }

    /// Whether it has no objects, as for a schema that is empty or does not exist.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The object of that kind and name.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&Object> {
        self.objects
            .binary_search_by(|o| (o.kind, o.name.as_str()).cmp(&(kind, name)))
            .ok()
            .map(|i| &self.objects[i])
    }

    /// The objects of one kind.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    /// Only the objects `keep` says yes to.
    pub fn only(&self, keep: impl Fn(&Object) -> bool) -> Catalog {
        Catalog { objects: self.objects.iter().filter(|o| keep(o)).cloned().collect() }
    }

    /// The objects that `base` does not have exactly so: what a set built on top of its
    /// dependencies adds or changes (an app set's own tables, a column it adds to one of
    /// theirs), without theirs.
    pub fn without(&self, base: &Catalog) -> Catalog {
        self.only(|o| base.get(o.kind, &o.name) != Some(o))
    }

    /// Without the objects `patterns` name (the `compare-ignore` setting): each pattern a name,
    /// `*` matching any run of characters, optionally after `kind ` (`index legacy_*`). An
    /// ignored table takes its columns, constraints, indexes and triggers with it, and any
    /// object's comment, owner and privileges go with the object.
    pub fn ignoring(&self, patterns: &[String]) -> Catalog {
        if patterns.is_empty() {
            return self.clone();
        }
        let hit = |kind: Kind, name: &str| {
            patterns.iter().any(|p| match p.split_once(' ').and_then(|(k, rest)| Kind::parse(k).map(|k| (k, rest))) {
                Some((k, rest)) => k == kind && glob(rest, name),
                None => glob(p, name),
            })
        };
        let ignored = |o: &Object| -> bool {
            hit(o.kind, &o.name) || o.about().is_some_and(|(k, n)| hit(k, n)) || o.relation().is_some_and(|t| hit(Kind::Table, t))
        };
        self.only(|o| !ignored(o))
    }

    /// How `self` ("here") differs from `reference` ("there").
    pub fn diff(&self, reference: &Catalog) -> Diff {
        diff::diff(self, reference)
    }
}

/// Whether `name` matches `pattern`, whose `*` matches any run of characters.
pub fn glob(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut left) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return left.ends_with(part);
        }
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("legacy_*", "legacy_orders"));
        assert!(glob("*_old", "orders_old"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("orders", "orders"));
        assert!(!glob("orders", "orders2"));
    }

    #[test]
    fn ignoring_a_table_ignores_what_belongs_to_it() {
        let c = Catalog::new(vec![
            Object::new(Kind::Table, "legacy_orders"),
            Object::new(Kind::Column, "legacy_orders.id").with(".parent", "legacy_orders").with("type", "integer"),
            Object::new(Kind::Comment, "column legacy_orders.id").with("text", "old"),
            Object::new(Kind::Table, "orders"),
            Object::new(Kind::Index, "orders_idx").with(".parent", "orders"),
        ]);
        let kept = c.ignoring(&["legacy_*".into(), "index orders_*".into()]);
        assert_eq!(kept.objects.iter().map(|o| o.to_string()).collect::<Vec<_>>(), ["table orders"]);
    }

    #[test]
    fn attributes_after_a_dot_are_not_compared() {
        let a = Object::new(Kind::Column, "t.a").with("type", "integer").with(".position", "1");
        let b = Object::new(Kind::Column, "t.a").with("type", "integer").with(".position", "4");
        assert_eq!(a, b);
        assert_ne!(a, b.clone().with("not null", "true"));
        let base = Catalog::new(vec![a.clone()]);
        assert!(Catalog::new(vec![b.clone()]).without(&base).is_empty());
        assert_eq!(Catalog::new(vec![b.with("not null", "true")]).without(&base).objects.len(), 1);
    }
}
