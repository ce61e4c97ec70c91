//! A schema's catalog, to compare databases: what `verify`, `stamp --detect`, the safe `stamp`
//! and the tests all use, so that "equal" means one thing.
//!
//! Objects are (kind, name, definition) rows from `catalog.sql`: relations, columns (by name:
//! their order does not count), indexes, constraints, triggers, sequences, views, types (enum
//! values in order) and functions (whole definitions). The tracking table is left out.

use std::collections::BTreeMap;
use std::fmt;

/// One object of a schema.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Object {
    /// What it is: `relation`, `column`, `index`, `constraint`, `trigger`, `sequence`, `view`,
    /// `type` or `function`.
    pub kind: String,
    /// Its name, unique within the kind: `table.column` for columns, constraints and triggers,
    /// `name(argument types)` for functions.
    pub name: String,
    /// What it is compared by: a column's type, `NOT NULL` and default, an index's or
    /// function's whole definition, a relation's `relkind`, an enum's values in order.
    pub definition: String,
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// A schema's objects, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Catalog {
    /// Sorted and without duplicates when built by [`Catalog::new`].
    pub objects: Vec<Object>,
}

impl Catalog {
    /// A catalog of `objects`, sorted and deduplicated so that equal schemas compare equal.
    pub fn new(mut objects: Vec<Object>) -> Catalog {
        objects.sort();
        objects.dedup();
        Catalog { objects }
    }

    /// Whether it has no objects, as for a schema that is empty or does not exist.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Only the objects whose (kind, name) `keep` says yes to.
    pub fn only(&self, keep: impl Fn(&Object) -> bool) -> Catalog {
        Catalog { objects: self.objects.iter().filter(|o| keep(o)).cloned().collect() }
    }

    /// The objects that `base` does not have exactly so: what a set built on top of its
    /// dependencies adds or changes (an app set's own tables, a column it adds to one of
    /// theirs), without theirs.
    pub fn without(&self, base: &Catalog) -> Catalog {
        let theirs: std::collections::HashSet<&Object> = base.objects.iter().collect();
        self.only(|o| !theirs.contains(o))
    }

    /// How `self` differs from `reference`.
    pub fn diff(&self, reference: &Catalog) -> Diff {
        let index = |c: &Catalog| -> BTreeMap<(String, String), String> {
            c.objects.iter().map(|o| ((o.kind.clone(), o.name.clone()), o.definition.clone())).collect()
        };
        let (ours, theirs) = (index(self), index(reference));
        let mut diff = Diff::default();
        for ((kind, name), def) in &theirs {
            match ours.get(&(kind.clone(), name.clone())) {
                None => diff.missing.push(Object { kind: kind.clone(), name: name.clone(), definition: def.clone() }),
                Some(mine) if mine != def => diff.changed.push((
                    Object { kind: kind.clone(), name: name.clone(), definition: mine.clone() },
                    def.clone(),
                )),
                Some(_) => {}
            }
        }
        for ((kind, name), def) in &ours {
            if !theirs.contains_key(&(kind.clone(), name.clone())) {
                diff.extra.push(Object { kind: kind.clone(), name: name.clone(), definition: def.clone() });
            }
        }
        diff
    }
}

/// How one catalog differs from a reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the reference only.
    pub missing: Vec<Object>,
    /// Here only.
    pub extra: Vec<Object>,
    /// In both, defined differently: (ours, the reference's definition).
    pub changed: Vec<(Object, String)>,
}

impl Diff {
    /// Whether the two catalogs are equal.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }

    /// How many objects differ.
    pub fn len(&self) -> usize {
        self.missing.len() + self.extra.len() + self.changed.len()
    }
}

impl fmt::Display for Diff {
    /// One line per object (`missing`, `extra`, `differs`), and for a definition that differs,
    /// its first differing line on each side.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        for o in &self.missing {
            lines.push(format!("missing {o}: {}", first_line(&o.definition)));
        }
        for o in &self.extra {
            lines.push(format!("extra   {o}: {}", first_line(&o.definition)));
        }
        for (o, theirs) in &self.changed {
            let (a, b) = first_difference(&o.definition, theirs);
            lines.push(format!("differs {o}:\n      here:      {a}\n      reference: {b}"));
        }
        f.write_str(&lines.join("\n"))
    }
}

fn first_line(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// The first line where two texts differ (trimmed), or the texts when they are one line.
fn first_difference<'a>(a: &'a str, b: &'a str) -> (&'a str, &'a str) {
    let (mut la, mut lb) = (a.lines(), b.lines());
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (x, y) => return (x.map_or("(end)", str::trim), y.map_or("(end)", str::trim)),
        }
    }
}

/// Bumped whenever what [`read`] returns for the same schema changes (caches key on it).
pub const FORMAT: u32 = 2;

/// The catalog of `schema` in the connected database, leaving out `tracking_table`. Read with
/// `search_path` set to that schema alone, in a read-only transaction of its own: definitions
/// name other schemas' objects qualified and the schema's own unqualified, whatever the
/// session's `search_path`, so that two databases compare by what they hold.
#[cfg(feature = "postgres")]
pub fn read(client: &mut dyn crate::db::Session, schema: &str, tracking_table: &str) -> Result<Catalog, postgres::Error> {
    use crate::tracking::{quote_ident, quote_literal};
    let sql = format!(
        "BEGIN READ ONLY;\nSELECT set_config('search_path', {}, true);\n{};\nCOMMIT",
        quote_literal(&quote_ident(schema)),
        include_str!("catalog.sql").replace("{schema}", &quote_literal(schema)).replace("{table}", &quote_literal(tracking_table))
    );
    let objects = client
        .simple_query(&sql)
        .inspect_err(|_| {
            let _ = client.batch_execute("ROLLBACK");
        })?
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) if r.len() == 3 => Some(Object {
                kind: r.get(0).unwrap_or_default().to_string(),
                name: r.get(1).unwrap_or_default().to_string(),
                definition: r.get(2).unwrap_or_default().to_string(),
            }),
            _ => None,
        })
        .collect();
    Ok(Catalog::new(objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(kind: &str, name: &str, def: &str) -> Object {
        Object { kind: kind.into(), name: name.into(), definition: def.into() }
    }

    #[test]
    fn differences_name_each_object() {
        let reference = Catalog::new(vec![o("relation", "jobs", "r"), o("column", "jobs.id", "bigint NOT NULL"), o("function", "f()", "BEGIN\n  x;\nEND")]);
        let ours = Catalog::new(vec![o("relation", "jobs", "r"), o("column", "jobs.id", "integer NOT NULL"), o("index", "jobs_idx", "CREATE INDEX ...")]);
        let d = ours.diff(&reference);
        assert_eq!(d.len(), 3);
        let text = d.to_string();
        assert!(text.contains("missing function f(): BEGIN"), "{text}");
        assert!(text.contains("extra   index jobs_idx"), "{text}");
        assert!(text.contains("differs column jobs.id:\n      here:      integer NOT NULL\n      reference: bigint NOT NULL"), "{text}");
        assert!(reference.diff(&reference).is_empty());
    }
}
