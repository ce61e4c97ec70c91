//! How two catalogs differ: object by object, and for an object in both, attribute by
//! attribute, "here" against "there" (what each command calls its two sides: the database and
//! its migrations, the migrations and the reference, FROM and TO).

use std::fmt;

use super::{Catalog, Kind, Object};

/// Every object that differs, in the catalogs' order (kind, then name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// One per object that differs.
    pub differences: Vec<Difference>,
}

/// One object that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// What it is.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// How it differs.
    pub change: Change,
}

/// How one object differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// There only ("missing" here).
    Missing(Object),
    /// Here only ("extra" here).
    Extra(Object),
    /// In both, with attributes that differ.
    Changed {
        /// Here.
        here: Object,
        /// There.
        there: Object,
        /// Each attribute that differs, in key order.
        attrs: Vec<AttrChange>,
    },
}

/// One attribute that differs; `None` where a side does not have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrChange {
    /// Its key (`type`, `not null`, `using`).
    pub attr: String,
    /// Its value here.
    pub here: Option<String>,
    /// Its value there.
    pub there: Option<String>,
}

impl Change {
    /// `missing`, `extra` or `differs`, as the JSON messages say it.
    pub fn word(&self) -> &'static str {
        match self {
            Change::Missing(_) => "missing",
            Change::Extra(_) => "extra",
            Change::Changed { .. } => "differs",
        }
    }
}

/// How `here` differs from `there`.
pub fn diff(here: &Catalog, there: &Catalog) -> Diff {
    let (mut a, mut b) = (here.objects.iter().peekable(), there.objects.iter().peekable());
    let mut differences = Vec::new();
    loop {
        let order = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => (x.kind, &x.name).cmp(&(y.kind, &y.name)),
        };
        match order {
            std::cmp::Ordering::Less => {
                let x = a.next().expect("peeked");
                differences.push(Difference { kind: x.kind, name: x.name.clone(), change: Change::Extra(x.clone()) });
            }
            std::cmp::Ordering::Greater => {
                let y = b.next().expect("peeked");
                differences.push(Difference { kind: y.kind, name: y.name.clone(), change: Change::Missing(y.clone()) });
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (a.next().expect("peeked"), b.next().expect("peeked"));
                let attrs = attr_changes(x, y);
                if !attrs.is_empty() {
                    differences.push(Difference { kind: x.kind, name: x.name.clone(), change: Change::Changed { here: x.clone(), there: y.clone(), attrs } });
                }
            }
        }
    }
    Diff { differences }
}

fn attr_changes(here: &Object, there: &Object) -> Vec<AttrChange> {
    let mut keys: Vec<&str> = here.compared().chain(there.compared()).map(|(k, _)| k).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| here.get(k) != there.get(k))
        .map(|k| AttrChange { attr: k.to_string(), here: here.get(k).map(str::to_string), there: there.get(k).map(str::to_string) })
        .collect()
}

impl Diff {
    /// Whether the two catalogs are equal.
    pub fn is_empty(&self) -> bool {
        self.differences.is_empty()
    }

    /// How many objects differ.
    pub fn len(&self) -> usize {
        self.differences.len()
    }

    /// `1 object differs`, `3 objects differ`.
    pub fn count(&self) -> String {
        match self.len() {
            1 => "1 object differs".to_string(),
            n => format!("{n} objects differ"),
        }
    }

    /// The objects there only.
    pub fn missing(&self) -> impl Iterator<Item = &Object> {
        self.differences.iter().filter_map(|d| if let Change::Missing(o) = &d.change { Some(o) } else { None })
    }

    /// The objects here only.
    pub fn extra(&self) -> impl Iterator<Item = &Object> {
        self.differences.iter().filter_map(|d| if let Change::Extra(o) = &d.change { Some(o) } else { None })
    }

    /// One line per object, each side called by its name (`the database`, `its migrations`):
    /// `column orders.total: only in its migrations: numeric NOT NULL`, or, for an object in
    /// both, each attribute that differs (`type: text in the database, integer in its
    /// migrations`), a long value by its first line that differs.
    ///
    /// A table on one side only takes its columns into its own line (`table lines: only in
    /// its migrations: id bigint NOT NULL, qty integer`); the JSON lists them one by one.
    pub fn render(&self, here: &str, there: &str) -> String {
        let whole: std::collections::HashSet<(&str, &str)> = self
            .differences
            .iter()
            .filter(|d| d.kind == Kind::Table && !matches!(d.change, Change::Changed { .. }))
            .map(|d| (d.change.word(), d.name.as_str()))
            .collect();
        let mut lines = Vec::new();
        for d in &self.differences {
            let folded = |d: &Difference| match &d.change {
                Change::Missing(o) | Change::Extra(o) => d.kind == Kind::Column && o.parent().is_some_and(|t| whole.contains(&(d.change.word(), t))),
                Change::Changed { .. } => false,
            };
            if folded(d) {
                continue;
            }
            if whole.contains(&(d.change.word(), d.name.as_str())) {
                let mut columns: Vec<&Object> = self
                    .differences
                    .iter()
                    .filter(|c| folded(c) && c.change.word() == d.change.word())
                    .filter_map(|c| match &c.change {
                        Change::Missing(o) | Change::Extra(o) if o.parent() == Some(d.name.as_str()) => Some(o),
                        _ => None,
                    })
                    .collect();
                columns.sort_by_key(|o| o.get(".position").and_then(|p| p.parse::<i64>().ok()).unwrap_or(i64::MAX));
                let list: Vec<String> = columns.iter().map(|o| format!("{} {}", o.local_name(), o.summary())).collect();
                let side = if matches!(d.change, Change::Missing(_)) { there } else { here };
                lines.push(format!("table {}: only in {side}{}", d.name, if list.is_empty() { String::new() } else { format!(": {}", list.join(", ")) }));
                continue;
            }
            lines.push(d.render(here, there));
        }
        lines.join("\n")
    }
}

impl Difference {
    /// One line (see [`Diff::render`]).
    pub fn render(&self, here: &str, there: &str) -> String {
        match &self.change {
            Change::Missing(o) => format!("{} {}: only in {there}{}", self.kind, self.name, summary(o)),
            Change::Extra(o) => format!("{} {}: only in {here}{}", self.kind, self.name, summary(o)),
            Change::Changed { attrs, .. } => {
                let parts: Vec<String> = attrs.iter().map(|a| a.render(here, there)).collect();
                format!("{} {}: {}", self.kind, self.name, parts.join("; "))
            }
        }
    }
}

impl AttrChange {
    /// `type: text in A, integer in B`; a yes-or-no attribute as `not null: yes in A, no in B`.
    pub fn render(&self, here: &str, there: &str) -> String {
        // An enum's labels: which are on one side only, or that their order differs.
        if let (true, Some(a), Some(b)) = (self.attr == "labels", &self.here, &self.there) {
            let (a, b): (Vec<&str>, Vec<&str>) = (a.split(", ").collect(), b.split(", ").collect());
            let only = |x: &[&str], y: &[&str]| x.iter().filter(|l| !y.contains(l)).copied().collect::<Vec<_>>().join(", ");
            let (in_a, in_b) = (only(&a, &b), only(&b, &a));
            let mut parts = Vec::new();
            if !in_a.is_empty() {
                parts.push(format!("{in_a} only in {here}"));
            }
            if !in_b.is_empty() {
                parts.push(format!("{in_b} only in {there}"));
            }
            if parts.is_empty() {
                parts.push(format!("in another order ({} in {there})", b.join(", ")));
            }
            return format!("labels: {}", parts.join("; "));
        }
        let boolean = [&self.here, &self.there].iter().all(|v| v.as_deref().is_none_or(|v| v == "true"));
        let (a, b) = match (&self.here, &self.there) {
            _ if boolean => (yes_no(&self.here).to_string(), yes_no(&self.there).to_string()),
            (Some(a), Some(b)) => {
                let (x, y) = first_difference(a, b);
                (x.to_string(), y.to_string())
            }
            (a, b) => (shown(a), shown(b)),
        };
        format!("{}: {a} in {here}, {b} in {there}", self.attr)
    }
}

/// `: ` and the object's summary, when it has one.
fn summary(o: &Object) -> String {
    let s = o.summary();
    let s = first_line(&s);
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

fn yes_no(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "yes"
    } else {
        "no"
    }
}

fn shown(v: &Option<String>) -> String {
    v.as_deref().map_or_else(|| "none".to_string(), |v| first_line(v).to_string())
}

impl fmt::Display for Diff {
    /// [`render`](Diff::render) with the sides called `here` and `the reference`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("here", "the reference"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_object_and_attribute() {
        let there = Catalog::new(vec![
            Object::new(Kind::Table, "jobs"),
            Object::new(Kind::Column, "jobs.id").with("type", "bigint").with("not null", "true"),
            Object::new(Kind::Function, "f()").with("body", "BEGIN\n  x;\nEND").with("returns", "void").with("language", "plpgsql"),
        ]);
        let here = Catalog::new(vec![
            Object::new(Kind::Table, "jobs"),
            Object::new(Kind::Column, "jobs.id").with("type", "integer"),
            Object::new(Kind::Index, "jobs_idx").with("using", "btree (id)").with("table", "jobs"),
        ]);
        let d = here.diff(&there);
        assert_eq!(d.len(), 3);
        let text = d.render("the database", "its migrations");
        assert!(text.contains("column jobs.id: not null: no in the database, yes in its migrations; type: integer in the database, bigint in its migrations"), "{text}");
        assert!(text.contains("function f(): only in its migrations: returns void (plpgsql)"), "{text}");
        assert!(text.contains("index jobs_idx: only in the database: btree (id) on jobs"), "{text}");
        assert!(there.diff(&there).is_empty());
        assert_eq!(d.missing().count(), 1);
        assert_eq!(d.extra().count(), 1);
    }

    #[test]
    fn a_long_value_shows_its_first_differing_line() {
        let a = Object::new(Kind::View, "v").with("definition", "SELECT a,\n  b\nFROM t");
        let b = Object::new(Kind::View, "v").with("definition", "SELECT a,\n  c\nFROM t");
        let d = Catalog::new(vec![a]).diff(&Catalog::new(vec![b]));
        assert_eq!(d.render("A", "B"), "view v: definition: b in A, c in B");
    }

    #[test]
    fn a_table_on_one_side_lists_its_columns_and_labels_say_which_differ() {
        let col = |n: &str, t: &str, p: &str| Object::new(Kind::Column, format!("lines.{n}")).with(".parent", "lines").with(".position", p).with("type", t);
        let there = Catalog::new(vec![Object::new(Kind::Table, "lines"), col("qty", "integer", "2"), col("id", "bigint", "1")]);
        assert_eq!(Catalog::default().diff(&there).render("A", "B"), "table lines: only in B: id bigint, qty integer");
        let e = |l: &str| Catalog::new(vec![Object::new(Kind::Type, "s").with("type", "enum").with("labels", l)]);
        assert_eq!(e("'a', 'b'").diff(&e("'a', 'b', 'c'")).render("A", "B"), "type s: labels: 'c' only in B");
        assert_eq!(e("'a', 'b'").diff(&e("'b', 'a'")).render("A", "B"), "type s: labels: in another order ('b', 'a' in B)");
    }
}
