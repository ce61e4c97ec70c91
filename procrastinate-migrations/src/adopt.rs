//! Finding the revision of a database this tool did not build (pure): from Alembic's
//! `alembic_version`, from Django's `django_migrations`, or from its catalog compared with the
//! catalog after each revision. `stamp --detect` tries them in that order; the safe `stamp`
//! compares catalogs before recording anything.

use std::collections::HashSet;

use crate::catalog::{Catalog, Diff, Kind};
use crate::migration::{Migration, Revision};

/// Django's migrations of app `procrastinate`, in order, with the SQL file each runs (`None`:
/// models only). Data derived from the real Django migrations (a test rederives it).
pub fn django_migrations() -> Vec<(&'static str, Option<&'static str>)> {
    include_str!("django_migrations.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, file) = l.split_once(' ')?;
            Some((name, (file != "-").then_some(file)))
        })
        .collect()
}

/// The revision that the `django_migrations` rows of app `procrastinate` (their names) say:
/// the last file they ran, provided every file before it in the set ran too.
pub fn from_django(recorded: &[String], migrations: &[Migration]) -> Result<Option<Revision>, String> {
    let map = django_migrations();
    let mut ran: HashSet<&str> = HashSet::new();
    for name in recorded {
        match map.iter().find(|(n, _)| n == name) {
            Some((_, Some(file))) => {
                ran.insert(file);
            }
            Some((_, None)) => {}
            None => return Err(format!("django_migrations records `{name}`, which this tool does not know (a newer Procrastinate?)")),
        }
    }
    let Some(last) = migrations.iter().rposition(|m| ran.contains(&*m.file_name)) else { return Ok(None) };
    if let Some(gap) = migrations[..last].iter().find(|m| !ran.contains(&*m.file_name)) {
        return Err(format!("django_migrations records {} but not the migration that runs {}", migrations[last].file_name, gap.file_name));
    }
    if ran.len() != last + 1 {
        return Err("django_migrations records files that this set does not have".into());
    }
    Ok(Some(migrations[last].revision))
}

/// The revision an `alembic_version` row means: the seed documents' ids (`0001`, one per
/// file) or upstream's proposed branch (`procrastinate_0000`, zero-based). `None` for other
/// ids (an application's own).
pub fn from_alembic(version_num: &str, migrations: &[Migration]) -> Option<Revision> {
    let n: u32 = match version_num.strip_prefix("procrastinate_") {
        Some(zero_based) if zero_based.len() == 4 => zero_based.parse::<u32>().ok()? + 1,
        None if version_num.len() == 4 => version_num.parse::<u32>().ok()?,
        _ => return None,
    };
    (n >= 1 && n as usize <= migrations.len()).then(|| Revision::new(n))
}

/// The names of the relations, types and routines that `migrations` create (`CREATE TABLE`,
/// `CREATE TYPE`, `CREATE FUNCTION`, `CREATE VIEW`, ...), as the server folds them (schema
/// qualifiers dropped), in the order the files create them, each once. Read from each
/// statement's tokens, comments and strings understood: enough to see whether a database
/// already holds a set it does not record.
pub fn created_names(migrations: &[Migration]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for m in migrations {
        let Ok(statements) = crate::lexer::statements(&m.sql) else { continue };
        for st in statements {
            if let Some(name) = created_name(&st.head) {
                if seen.insert(name.clone()) {
                    names.push(name);
                }
            }
        }
    }
    names
}

/// The object a `CREATE ...` statement's first tokens name, for the kinds [`created_names`] keeps.
fn created_name(head: &[String]) -> Option<String> {
    let mut t = head.iter().map(String::as_str).peekable();
    if t.next()? != "CREATE" {
        return None;
    }
    if t.peek() == Some(&"OR") {
        t.next();
        (t.next()? == "REPLACE").then_some(())?;
    }
    while matches!(t.peek(), Some(&("TEMP" | "TEMPORARY" | "UNLOGGED" | "GLOBAL" | "LOCAL" | "RECURSIVE" | "MATERIALIZED"))) {
        t.next();
    }
    if !matches!(t.next()?, "TABLE" | "TYPE" | "FUNCTION" | "PROCEDURE" | "VIEW" | "SEQUENCE" | "DOMAIN") {
        return None;
    }
    if t.peek() == Some(&"IF") {
        let (a, b) = (t.next(), t.next());
        (a == Some("IF") && t.next()? == "EXISTS" && b == Some("NOT")).then_some(())?;
    }
    let mut name = t.next()?;
    while t.peek() == Some(&".") {
        t.next();
        name = t.next()?;
    }
    let first = name.chars().next()?;
    (first == '"' || first.is_alphabetic() || first == '_').then(|| crate::lexer::ident(name))
}

/// The index a `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON ...` statement's
/// first tokens name, as the server folds it (`None` for an unnamed index or another statement).
pub fn created_index(head: &[String]) -> Option<String> {
    let mut t = head.iter().map(String::as_str).peekable();
    (t.next()? == "CREATE").then_some(())?;
    if t.peek() == Some(&"UNIQUE") {
        t.next();
    }
    (t.next()? == "INDEX").then_some(())?;
    if t.peek() == Some(&"CONCURRENTLY") {
        t.next();
    }
    if t.peek() == Some(&"IF") {
        t.next();
        (t.next()? == "NOT" && t.next()? == "EXISTS").then_some(())?;
    }
    let name = t.next()?;
    (name != "ON").then(|| crate::lexer::ident(name))
}

/// What the catalog says.
#[derive(Debug)]
pub enum CatalogMatch {
    /// Equal to the catalog after these revisions (`None`: base, nothing of the set); more than
    /// one when consecutive revisions leave the same catalog.
    Exact(Vec<Option<Revision>>),
    /// Equal to none: the closest, and how the database differs from it.
    Closest {
        /// The revision whose catalog differs least (`None`: base); the later one on a tie.
        revision: Option<Revision>,
        /// How the database differs from that revision's catalog.
        diff: Diff,
    },
}

/// Compares `db` (the schema's catalog) with `per_revision` (`[0]` base, `[k]` after revision
/// k), looking only at objects some revision has: the application's own tables do not count.
pub fn from_catalog(db: &Catalog, per_revision: &[Catalog]) -> CatalogMatch {
    let db = known_only(db, per_revision);
    let rev = |k: usize| (k > 0).then(|| Revision::new(k as u32));
    let diffs: Vec<Diff> = per_revision.iter().map(|c| db.diff(c)).collect();
    let exact: Vec<Option<Revision>> = diffs.iter().enumerate().filter(|(_, d)| d.is_empty()).map(|(k, _)| rev(k)).collect();
    if !exact.is_empty() {
        return CatalogMatch::Exact(exact);
    }
    let (k, diff) = diffs.into_iter().enumerate().min_by_key(|(k, d)| (d.len(), usize::MAX - k)).expect("base at least");
    CatalogMatch::Closest { revision: rev(k), diff }
}

/// `db` with only the objects that some revision's catalog has (by kind and name), or that
/// belong to a table some revision has: a column, index or trigger added to the set's table by
/// hand counts, the application's own tables do not.
pub fn known_only(db: &Catalog, per_revision: &[Catalog]) -> Catalog {
    let known: HashSet<(Kind, &str)> = per_revision.iter().flat_map(|c| c.objects.iter().map(|o| (o.kind, o.name.as_str()))).collect();
    db.only(|o| known.contains(&(o.kind, o.name.as_str())) || o.parent().is_some_and(|t| known.contains(&(Kind::Table, t))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Object;
    use crate::MigrationSet;

    fn set(n: usize) -> Vec<Migration> {
        let map = django_migrations();
        let files: Vec<&str> = map.iter().filter_map(|(_, f)| *f).collect();
        let files = files.iter().take(n).map(|f| (f.to_string(), b"SELECT 1;".to_vec())).collect();
        MigrationSet::from_files("d".into(), files).unwrap().migrations
    }

    #[test]
    fn django_names_map_through_the_data_not_arithmetic() {
        let ms = set(38);
        let names: Vec<String> = django_migrations().iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names.len(), 41);
        assert_eq!(from_django(&names, &ms), Ok(Some(Revision::new(38))));
        // Up to 0036_add_worker_model (models only): the last file is 0035's.
        let upto = |last: &str| names[..=names.iter().position(|n| n == last).unwrap()].to_vec();
        let r = from_django(&upto("0036_add_worker_model"), &ms).unwrap().unwrap();
        assert_eq!(&*ms[r.index()].file_name, "03.01.00_50_post_add_heartbeat.sql");
        assert_eq!(from_django(&upto("0031_add_indexes_for_fetch_job"), &ms), Ok(Some(Revision::new(29))));
        assert!(from_django(&["0099_future".into()], &ms).is_err());
        assert_eq!(from_django(&[], &ms), Ok(None));
    }

    #[test]
    fn alembic_ids_of_both_spellings() {
        let ms = set(38);
        assert_eq!(from_alembic("0029", &ms), Some(Revision::new(29)));
        assert_eq!(from_alembic("procrastinate_0028", &ms), Some(Revision::new(29)));
        assert_eq!(from_alembic("procrastinate_0000", &ms), Some(Revision::new(1)));
        assert_eq!(from_alembic("0039", &ms), None);
        assert_eq!(from_alembic("ae1027a6acf", &ms), None);
    }

    #[test]
    fn created_names_come_from_the_statements_not_their_text() {
        let sql = "-- CREATE TABLE not_this (x int);\nCREATE TABLE IF NOT EXISTS public.orders (id int);\n\
                   CREATE OR REPLACE FUNCTION \"Total\"() RETURNS int AS $$ CREATE TABLE nor_this () $$ LANGUAGE sql;\n\
                   CREATE UNLOGGED TABLE scratch (x int); CREATE TYPE status AS ENUM ('a');\n\
                   CREATE INDEX orders_idx ON orders (id); CREATE MATERIALIZED VIEW totals AS SELECT 1;\n\
                   INSERT INTO orders VALUES (1); CREATE TABLE orders_copy (LIKE orders);";
        let set = MigrationSet::from_files("d".into(), vec![("01.00.00_01_a.sql".into(), sql.as_bytes().to_vec())]).unwrap();
        assert_eq!(created_names(&set.migrations), ["orders", "Total", "scratch", "status", "totals", "orders_copy"]);
    }

    #[test]
    fn the_catalog_finds_the_revision_or_the_closest() {
        let o = |n: &str| Object::new(Kind::Table, n);
        let per = vec![Catalog::default(), Catalog::new(vec![o("a")]), Catalog::new(vec![o("a"), o("b")])];
        let db = Catalog::new(vec![o("a"), o("orders")]);
        assert!(matches!(from_catalog(&db, &per), CatalogMatch::Exact(v) if v == [Some(Revision::new(1))]));
        let odd = Catalog::new(vec![o("b")]);
        assert!(matches!(from_catalog(&odd, &per), CatalogMatch::Closest { revision: Some(r), .. } if r == Revision::new(2)));
        // A column added by hand to a table of the set counts; a table of the application's does not.
        let hack = Object::new(Kind::Column, "a.hack").with(".parent", "a").with("type", "integer");
        let drifted = Catalog::new(vec![o("a"), hack, o("orders")]);
        assert!(matches!(from_catalog(&drifted, &per), CatalogMatch::Closest { revision: Some(r), ref diff } if r == Revision::new(1) && diff.len() == 1));
    }
}
