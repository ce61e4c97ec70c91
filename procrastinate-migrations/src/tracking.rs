//! Names and SQL of the tracking table, shared by the online migrator and the offline script so
//! that both leave identical rows behind.

use std::fmt;

use crate::migration::Migration;

/// The DDL. It lives inside the crate so that the crate packages on its own.
const DDL_TEMPLATE: &str = include_str!("tracking.sql");

/// The columns after the set's, in the order `Applied::from_text` reads them. `applied_at` as
/// Unix seconds, formatted by the reader: `to_char(.. AT TIME ZONE 'UTC')` loads the time zone
/// on a fresh backend, a quarter of what `current` costs the server.
const ROW_COLUMNS: &str = "revision, file_name, checksum, extract(epoch FROM applied_at)::bigint, duration_ms, applied_by, stamped";

/// `'app', ''`: the set's name, and the unnamed set's when it takes those rows over.
fn set_names(set: &str, claim_unnamed: bool) -> String {
    if claim_unnamed && set != UNNAMED_SET {
        format!("{}, {}", quote_literal(set), quote_literal(UNNAMED_SET))
    } else {
        quote_literal(set)
    }
}

/// Checksum prefix of the row that claims a `-- no-transaction` migration while it runs
/// (`claimed:<pid>`): others wait for it, or take over when that session is gone. Readers treat
/// such a row as not applied.
pub const CLAIM: &str = "claimed:";

/// Names the unnamed set in the table: the one set of a plain `migrations = "dir"`, and every
/// row written before sets existed.
pub const UNNAMED_SET: &str = "";

/// `"ident"`, with embedded quotes doubled: every configured name goes through here.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled; text with a backslash as `E'...'` with backslashes
/// doubled too, as libpq's `PQescapeLiteral` does: both mean the text whatever the session's
/// `standard_conforming_strings` (with it off, a backslash in a plain literal escapes the
/// quote after it, and a crafted value would end the literal).
pub fn quote_literal(text: &str) -> String {
    if text.contains('\\') {
        format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// A `text[]` literal of `items` (`'{"a","b"}'`): each element in double quotes, with its
/// double quotes and backslashes escaped, the whole quoted as [`quote_literal`] does.
fn text_array<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let elements: Vec<String> = items.map(|i| format!("\"{}\"", i.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    quote_literal(&format!("{{{}}}", elements.join(",")))
}

/// Where tracking lives: the `version-table` setting, qualified by `schema` when it is not
/// qualified itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackingTable {
    /// The table's schema: the one `version-table` names, else the `schema` setting (`None`:
    /// unqualified, found through `search_path`).
    pub schema: Option<String>,
    /// The table's own name, unquoted.
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

    /// The table (and its schema) created where neither exists yet, in plain DDL: what a first
    /// run under the lock sends when it has just read that there is no table, instead of the
    /// plpgsql block of [`ensure_sql`](Self::ensure_sql) that also upgrades the first layout.
    pub fn create_sql(&self, schema_missing: bool) -> String {
        let mut sql = String::new();
        if let (Some(s), true) = (&self.schema, schema_missing) {
            sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote_ident(s)));
        }
        let ddl: String = DDL_TEMPLATE.lines().filter(|l| !l.starts_with("--")).collect::<Vec<_>>().join("\n");
        sql.push_str(&ddl.replacen("CREATE TABLE {table}", "CREATE TABLE IF NOT EXISTS {table}", 1).replace("{table}", &self.sql()));
        sql.trim_end().trim_end_matches(';').to_string()
    }

    /// Creates the table (and its schema) when missing, or brings a table of the first layout
    /// (keyed by revision alone, before sets existed) to the current one, keeping its rows as
    /// the unnamed set's. One statement, idempotent, that touches nothing when the table is
    /// current; run under the migration lock, online and in the offline script alike. It asks
    /// for no CREATE privilege unless something is really created.
    pub fn ensure_sql(&self) -> String {
        let lit = quote_literal(&self.sql());
        let table = self.sql();
        let schema = match &self.schema {
            Some(s) => format!(
                "    IF to_regnamespace({lit_s}) IS NULL THEN\n        CREATE SCHEMA {s};\n    END IF;\n",
                lit_s = quote_literal(&quote_ident(s)),
                s = quote_ident(s)
            ),
            None => String::new(),
        };
        let ddl: String = DDL_TEMPLATE
            .lines()
            .filter(|l| !l.starts_with("--"))
            .map(|l| format!("        {l}"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("{table}", &table);
        format!(
            "DO $cargo_procrastinate$\nDECLARE\n    pkey name;\nBEGIN\n{schema}    \
             IF to_regclass({lit}) IS NULL THEN\n{ddl}\n    \
             ELSIF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass({lit}) \
             AND attname = 'set_name' AND NOT attisdropped) THEN\n        \
             SELECT conname INTO pkey FROM pg_constraint WHERE conrelid = to_regclass({lit}) AND contype = 'p';\n        \
             ALTER TABLE {table} ADD COLUMN set_name text NOT NULL DEFAULT '';\n        \
             IF pkey IS NOT NULL THEN\n            EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', {lit}, pkey);\n        END IF;\n        \
             ALTER TABLE {table} ADD PRIMARY KEY (set_name, file_name);\n    \
             END IF;\nEND\n$cargo_procrastinate$;"
        )
    }

    /// One row: whether the table exists (`t`/`f`). Run it before [`rows_sql`](Self::rows_sql),
    /// which fails on a missing table.
    pub fn exists_sql(&self) -> String {
        format!("SELECT to_regclass({}) IS NOT NULL", quote_literal(&self.sql()))
    }

    /// The rows of `set` (with the unnamed set's when `claim_unnamed`), as text columns in the
    /// order [`Applied::from_text`](crate::state::Applied::from_text) reads: set, revision,
    /// file name, checksum, applied_at (Unix seconds), duration_ms, applied_by, stamped. It
    /// reads a table of either layout (`to_jsonb` of the row has `set_name` only in the new
    /// one), so an application can check a database the CLI has not touched since. Where the
    /// set and the unnamed set both record a file, the set's own row wins.
    pub fn rows_sql(&self, set: &str, claim_unnamed: bool) -> String {
        format!(
            "SELECT s, {ROW_COLUMNS} \
             FROM (SELECT DISTINCT ON (file_name) coalesce(to_jsonb(t) ->> 'set_name', {u}) AS s, * FROM {table} t \
             WHERE coalesce(to_jsonb(t) ->> 'set_name', {u}) IN ({names}) ORDER BY file_name, coalesce(to_jsonb(t) ->> 'set_name', {u}) = {u}) r \
             ORDER BY file_name",
            u = quote_literal(UNNAMED_SET),
            table = self.sql(),
            names = set_names(set, claim_unnamed),
        )
    }

    /// Every row of a table of the current layout, in plain columns and in no order, for the
    /// caller to filter and sort: on a fresh connection, which is what `current` and `check`
    /// pay, the planner's work for a `WHERE` (it weighs the primary key) and an `ORDER BY`
    /// costs more than the server reading the whole small table, and jsonb (`rows_sql`) more
    /// again. On a table of the first layout it fails with 42703 (no `set_name`); the caller
    /// then asks `rows_sql`.
    pub fn current_layout_rows_sql(&self) -> String {
        format!("SELECT set_name, {ROW_COLUMNS} FROM {}", self.sql())
    }

    /// Gives the unnamed set's rows to `set` (the first configured set): what a package that
    /// moves from `migrations = "dir"` to `sets = [...]`, or from a table written before sets,
    /// expects. Rows the set already has under its name are left alone.
    pub fn claim_sql(&self, set: &str) -> String {
        format!(
            "UPDATE {t} SET set_name = {s} WHERE set_name = {u} AND file_name NOT IN (SELECT file_name FROM {t} WHERE set_name = {s});",
            t = self.sql(),
            s = quote_literal(set),
            u = quote_literal(UNNAMED_SET),
        )
    }

    /// The row that claims `m` (a `-- no-transaction` migration) for this session while it runs.
    pub fn claim_row_sql(&self, set: &str, m: &Migration) -> String {
        format!(
            "INSERT INTO {} (set_name, revision, file_name, checksum, stamped) VALUES ({}, {}, {}, {} || pg_backend_pid(), false)",
            self.sql(),
            quote_literal(set),
            quote_literal(&m.revision.to_string()),
            quote_literal(&m.file_name),
            quote_literal(CLAIM),
        )
    }

    /// The row that records `m` at the start of its own transaction, before its SQL runs:
    /// `applied_at` is when it started (set to when it ended, with its duration, by
    /// [`TrackingTable::finish_rows_sql`] once the run ends), `stamped` is `stamped_expr`
    /// (`false`, computed by the guard that takes the lock: see `db::lock::claim_sql`). The
    /// primary key is the re-read under the lock: a row another process committed for the file,
    /// whatever this statement's snapshot, makes it fail (23505) before the file runs (that the
    /// key is there, [`TrackingTable::key_check_sql`] makes sure once a run). Returns the file's
    /// name (in a column named `mark`) and its start, in Unix seconds.
    pub fn start_row_sql(&self, set: &str, m: &Migration, stamped_expr: &str, mark: &str) -> String {
        format!(
            "INSERT INTO {} (set_name, revision, file_name, checksum, applied_at, stamped) VALUES ({}, {}, {}, {}, clock_timestamp(), {stamped_expr}) \
             RETURNING file_name AS {mark}, date_part('epoch', applied_at)",
            self.sql(),
            quote_literal(set),
            quote_literal(&m.revision.to_string()),
            quote_literal(&m.file_name),
            quote_literal(&m.checksum.to_string()),
        )
    }

    /// Inserts nothing, and fails (42P10) when the table has no unique key on
    /// (set_name, file_name), which is what keeps two processes from applying one file.
    pub fn key_check_sql(&self) -> String {
        format!("INSERT INTO {} (set_name, revision, file_name, checksum) SELECT '', '', '', '' WHERE false ON CONFLICT (set_name, file_name) DO NOTHING", self.sql())
    }

    /// Completes the rows [`TrackingTable::start_row_sql`] wrote, from what the client read
    /// back: each file's duration in milliseconds and when it ended (Unix seconds), in one
    /// statement for a whole run. The values go as three array literals, which the server
    /// reads in one pass, rather than a `VALUES` list whose every row it parses and casts:
    /// 7.3 ms for 1,000 rows where `VALUES` took 11 (BENCHMARKS.md).
    pub fn finish_rows_sql(&self, set: &str, done: &[(&str, u64, f64)]) -> String {
        let files = text_array(done.iter().map(|(file, _, _)| *file));
        let ms: Vec<String> = done.iter().map(|(_, ms, _)| ms.to_string()).collect();
        let ended: Vec<String> = done.iter().map(|(_, _, ended)| ended.to_string()).collect();
        format!(
            "UPDATE {t} t SET duration_ms = v.ms, applied_at = to_timestamp(v.ended) \
             FROM unnest({files}::text[], '{{{}}}'::bigint[], '{{{}}}'::float8[]) v(file_name, ms, ended) \
             WHERE t.set_name = {s} AND t.file_name = v.file_name AND t.duration_ms IS NULL AND NOT t.stamped",
            ms.join(","),
            ended.join(","),
            t = self.sql(),
            s = quote_literal(set),
        )
    }

    /// Completes the rows [`TrackingTable::start_row_sql`] wrote for `files` (consecutive files
    /// of one batch that committed, in bytewise order of their names) when the client could
    /// not read their starts back (the batch stopped at an error): each one's duration runs
    /// from its start to the next one's start (its `COMMIT` included); the last one's end is
    /// not known, and stays so (`NULL`). Returns each file's name and duration.
    pub fn durations_sql(&self, set: &str, files: &[&str], mark: &str) -> String {
        let names: Vec<String> = files.iter().map(|f| quote_literal(f)).collect();
        format!(
            "UPDATE {t} t SET duration_ms = greatest(0, round(date_part('epoch', d.ended - t.applied_at) * 1000))::bigint, applied_at = d.ended \
             FROM (SELECT file_name, lead(applied_at) OVER w AS ended FROM {t} WHERE set_name = {s} AND file_name IN ({names}) AND duration_ms IS NULL AND NOT stamped \
             WINDOW w AS (ORDER BY file_name COLLATE \"C\")) d \
             WHERE t.set_name = {s} AND t.file_name = d.file_name AND d.ended IS NOT NULL \
             RETURNING t.file_name AS {mark}, t.duration_ms",
            t = self.sql(),
            s = quote_literal(set),
            names = names.join(", "),
        )
    }

    /// The key of the advisory lock that serializes `upgrade`s of this table, as a SQL
    /// `bigint` expression: a hash of the table's schema as the server resolves it (the
    /// `search_path`'s first schema for an unqualified name) and its name, so that
    /// `schema = "public"` and no schema at all take the same lock when they mean one table.
    pub fn lock_key(&self) -> String {
        let schema = match &self.schema {
            Some(s) => quote_literal(s),
            None => "coalesce(current_schema(), '')".to_string(),
        };
        format!(
            "('x' || left(md5('cargo-procrastinate|' || {schema} || '|' || {}), 16))::bit(64)::bigint",
            quote_literal(&self.name)
        )
    }

    /// The row an applied (or, `stamped`, recorded without running) migration leaves, at the
    /// end of its transaction: the offline script's, where each statement is a message of its
    /// own, so the duration runs from the transaction's start (`now()`); a stamp has none.
    /// (`upgrade` writes its rows at the start instead: [`TrackingTable::start_row_sql`].)
    pub fn insert_sql(&self, set: &str, m: &Migration, stamped: bool) -> String {
        let duration = if stamped {
            "NULL".to_string()
        } else {
            "((extract(epoch FROM clock_timestamp()) - extract(epoch FROM now())) * 1000)::bigint".to_string()
        };
        format!(
            "INSERT INTO {} (set_name, revision, file_name, checksum, duration_ms, stamped, applied_at) VALUES ({}, {}, {}, {}, {duration}, {stamped}, clock_timestamp());",
            self.sql(),
            quote_literal(set),
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
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal(r"a\'; DROP TABLE t; --"), r"E'a\\''; DROP TABLE t; --'");
        let ensure = t.ensure_sql();
        assert!(ensure.contains("CREATE SCHEMA \"ops\";") && ensure.contains("CREATE TABLE \"ops\".\"migs\" ("), "{ensure}");
        assert!(ensure.contains("PRIMARY KEY (set_name, file_name)"), "{ensure}");
        assert_ne!(t.lock_key(), TrackingTable::new("migs", Some("jobs")).unwrap().lock_key());
        assert!(TrackingTable::new("migs", None).unwrap().lock_key().contains("current_schema()"));
    }
}
