//! Reading a schema's [`Catalog`] from PostgreSQL: one query (`catalog.sql`), one row per
//! attribute.

use std::collections::BTreeMap;

use super::{Catalog, Kind, Object};
use crate::tracking::{quote_ident, quote_literal};

/// What [`read_with`] reads beyond the schema's objects.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Owners and privileges too (the `compare-privileges` setting): off by default, since a
    /// scratch database's objects belong to whoever built them.
    pub privileges: bool,
}

/// The catalog of `schema` in the connected database, leaving out `tracking_table`; see
/// [`read_with`].
pub fn read(client: &mut dyn crate::db::Session, schema: &str, tracking_table: &str) -> Result<Catalog, postgres::Error> {
    read_with(client, schema, &[tracking_table], Options::default())
}

/// The catalog of `schema`, leaving out the `tracking_tables` (every set's in that schema).
/// Read with `search_path` set to that schema alone, in a read-only transaction of its own: definitions name other schemas' objects
/// qualified and the schema's own unqualified, whatever the session's `search_path`, so that two
/// databases compare by what they hold.
pub fn read_with(client: &mut dyn crate::db::Session, schema: &str, tracking_tables: &[&str], options: Options) -> Result<Catalog, postgres::Error> {
    let tables: Vec<String> = tracking_tables.iter().map(|t| quote_literal(t)).collect();
    let sql = format!(
        "BEGIN READ ONLY;\nSELECT set_config('search_path', {}, true);\n{};\nCOMMIT",
        quote_literal(&quote_ident(schema)),
        include_str!("catalog.sql")
            .replace("{schema}", &quote_literal(schema))
            .replace("{tables}", &format!("ARRAY[{}]::text[]", tables.join(", ")))
            .replace("{privileges}", if options.privileges { "true" } else { "false" })
    );
    let rows = client.simple_query(&sql).inspect_err(|_| {
        let _ = client.batch_execute("ROLLBACK");
    })?;
    let mut objects: BTreeMap<(Kind, String), BTreeMap<String, String>> = BTreeMap::new();
    for m in rows {
        let postgres::SimpleQueryMessage::Row(r) = m else { continue };
        if r.len() != 4 {
            continue;
        }
        let Some(kind) = r.get(0).and_then(Kind::parse) else { continue };
        let name = r.get(1).unwrap_or_default().to_string();
        let attrs = objects.entry((kind, name)).or_default();
        let key = r.get(2).unwrap_or_default();
        if !key.is_empty() {
            attrs.insert(key.to_string(), r.get(3).unwrap_or_default().to_string());
        }
    }
    Ok(Catalog::new(objects.into_iter().map(|((kind, name), attrs)| Object { kind, name, attrs }).collect()))
}
