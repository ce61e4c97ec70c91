//! Names and SQL of the tracking table, shared by the online migrator and the offline script so
//! that both leave identical rows behind.

use std::fmt;

use crate::migration::Migration;

/// The DDL, from `sql/tracking.sql` (the project's own SQL lives in `sql/`).
const DDL_TEMPLATE: &str = include_str!("../../sql/tracking.sql");

/// `"ident"`, with embedded quotes doubled: every configured name goes through here.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Where tracking lives: the `version-table` setting, qualified by `schema` when it is not
/// qualified itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingTable {
    pub schema: Option<String>,
    pub name: String,
}

impl TrackingTable {
    /// `version_table` is `name` or `schema.name`; `schema` is the `schema` setting.
    pub fn new(version_table: &str, schema: Option<&str>) -> Result<TrackingTable, String> {
        let (table_schema, name) = match version_table.split_once('.') {
            Some((s, n)) => (Some(s.to_string()), n.to_string()),
            None => (schema.map(str::to_string), version_table.to_string()),
        };
        let valid = |s: &str| !s.is_empty() && !s.contains('.') && s.len() <= 63;
        if !valid(&name) || !table_schema.as_deref().is_none_or(valid) {
            return Err(format!("`{version_table}` is not a table name (`name` or `schema.name`, at most 63 bytes each)"));
        }
        if name == "procrastinate_version" {
            return Err("`procrastinate_version` cannot be the tracking table: Procrastinate's own migrations create and drop a table of that name".into());
        }
        Ok(TrackingTable { schema: table_schema, name })
    }

    /// The quoted name as SQL (`"ops"."migrations"`).
    pub fn sql(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }

    /// Idempotent creation, including the table's schema when it is named.
    pub fn create_sql(&self) -> String {
        let schema = match &self.schema {
            Some(s) => format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote_ident(s)),
            None => String::new(),
        };
        let ddl: String = DDL_TEMPLATE.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
        format!("{schema}{}", ddl.replace("{table}", &self.sql()))
    }

    /// Key of the advisory lock that serializes `upgrade`s of this table's database.
    pub fn lock_key(&self) -> i64 {
        // FNV-1a: stable across versions and platforms, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let text = format!("cargo-procrastinate\0{}\0{}", self.schema.as_deref().unwrap_or(""), self.name);
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h as i64
    }

    /// The row an applied (or, `stamped`, recorded without running) migration leaves. The
    /// duration is measured by the server from the start of the migration's transaction, the
    /// same online and in the offline script; a stamp has none.
    pub fn insert_sql(&self, m: &Migration, stamped: bool) -> String {
        let duration = if stamped { "NULL" } else { "(extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint" };
        format!(
            "INSERT INTO {} (revision, file_name, checksum, duration_ms, stamped) VALUES ({}, {}, {}, {duration}, {stamped});",
            self.sql(),
            quote_literal(&m.revision.to_string()),
            quote_literal(&m.file_name),
            quote_literal(&m.checksum.to_string()),
        )
    }
}

impl fmt::Display for TrackingTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_qualified() {
        let t = TrackingTable::new("migs", Some("jobs")).unwrap();
        assert_eq!(t.sql(), "\"jobs\".\"migs\"");
        let t = TrackingTable::new("ops.migs", Some("jobs")).unwrap();
        assert_eq!(t.sql(), "\"ops\".\"migs\"");
        assert_eq!(TrackingTable::new("we\"ird", None).unwrap().sql(), "\"we\"\"ird\"");
        assert!(TrackingTable::new("procrastinate_version", None).is_err());
        assert!(TrackingTable::new("a.b.c", None).is_err());
        assert!(t.create_sql().starts_with("CREATE SCHEMA IF NOT EXISTS \"ops\";\nCREATE TABLE IF NOT EXISTS \"ops\".\"migs\" ("));
        assert_ne!(t.lock_key(), TrackingTable::new("migs", Some("jobs")).unwrap().lock_key());
    }
}
