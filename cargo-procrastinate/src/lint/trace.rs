//! `lint --trace`: what a migration really locks, measured on a real server (as eugene does).
//! The file runs in a scratch database built at the revision before it, whose tables the file
//! touches hold some rows; statement by statement, the locks its session holds are read from
//! `pg_locks` (in a transaction, on the same session; outside one, by a second session that
//! polls while the statement runs), and a table whose `relfilenode` changed was rewritten. A
//! lock is held from the statement that takes it until the file commits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use postgres::SimpleQueryMessage;
use procrastinate_migrations::db::Session;
use procrastinate_migrations::tracking::{quote_ident, quote_literal};
use squawk_syntax::ast::AstNode;

use crate::scratchpad::Connector;

/// One lock a statement took.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Lock {
    /// The table or index, as `regclass` prints it.
    pub relation: String,
    /// `AccessExclusiveLock`, `ShareLock`...
    pub mode: String,
    /// What it blocks: `reads and writes`, `writes`, or `schema changes` (the weak modes).
    pub blocks: &'static str,
    /// From the statement that took it until the file committed (the statement's own run for a
    /// `-- no-transaction` file), in milliseconds.
    pub held_ms: f64,
}

/// One statement, traced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Statement {
    /// 1-based line of its start.
    pub line: usize,
    /// Its first words.
    pub text: String,
    /// How long it ran, in milliseconds.
    pub took_ms: f64,
    /// The locks it took (a lock an earlier statement took is not repeated).
    pub locks: Vec<Lock>,
    /// Tables (or indexes) it rewrote: their `relfilenode` changed.
    pub rewrote: Vec<String>,
}

/// One file, traced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FileTrace {
    /// The file.
    pub file: String,
    /// The rows each touched table held when it ran.
    pub rows: BTreeMap<String, i64>,
    /// Its statements, in order.
    pub statements: Vec<Statement>,
}

/// What a lock mode blocks, for people.
pub fn blocks(mode: &str) -> &'static str {
    match mode {
        "AccessExclusiveLock" => "reads and writes",
        "ExclusiveLock" | "ShareRowExclusiveLock" | "ShareLock" => "writes",
        "ShareUpdateExclusiveLock" => "schema changes, VACUUM and other index builds",
        _ => "schema changes",
    }
}

fn rows(client: &mut dyn Session, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    Ok(client
        .simple_query(sql)
        .map_err(|e| procrastinate_migrations::db::describe(&e))?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}

/// The tables a file's statements name, that exist in `schema`.
pub fn touched(client: &mut dyn Session, sql: &str, schema: &str) -> Result<Vec<String>, String> {
    let tree = squawk_syntax::SourceFile::parse(sql).tree();
    let mut names: Vec<String> = tree.stmts().filter_map(|s| super::table_of(s.syntax())).collect();
    names.sort();
    names.dedup();
    let list = names.iter().map(|n| quote_literal(n)).collect::<Vec<_>>().join(", ");
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let found = rows(
        client,
        &format!(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = {} AND c.relkind IN ('r', 'p') AND c.relname IN ({list}) ORDER BY 1",
            quote_literal(schema)
        ),
    )?;
    Ok(found.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect())
}

/// Fills each table with `n` rows where it can: every column with no default gets a value of
/// its type (a foreign key, a row of the table it references, filled first). A table it cannot
/// fill (a check it does not meet) is left as it is, which the report shows.
pub fn seed(client: &mut dyn Session, tables: &[String], schema: &str, n: usize) -> Result<BTreeMap<String, i64>, String> {
    // The tables they reference first.
    let mut order: Vec<String> = Vec::new();
    fn visit(client: &mut dyn Session, t: &str, schema: &str, order: &mut Vec<String>, depth: usize) -> Result<(), String> {
        if order.iter().any(|o| o == t) || depth > 8 {
            return Ok(());
        }
        let refs = rows(
            client,
            &format!(
                "SELECT DISTINCT r.relname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid \
                 JOIN pg_namespace n ON n.oid = t.relnamespace WHERE c.contype = 'f' AND n.nspname = {} AND t.relname = {} AND r.oid <> t.oid",
                quote_literal(schema),
                quote_literal(t)
            ),
        )?;
        for r in refs.into_iter().filter_map(|r| r.into_iter().next().flatten()) {
            visit(client, &r, schema, order, depth + 1)?;
        }
        order.push(t.to_string());
        Ok(())
    }
    for t in tables {
        visit(client, t, schema, &mut order, 0)?;
    }
    let mut counts = BTreeMap::new();
    for t in &order {
        let qualified = format!("{}.{}", quote_ident(schema), quote_ident(t));
        let cols = rows(
            client,
            &format!(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), ty.typtype, ty.oid::regtype::text, \
                   (SELECT quote_ident(r.relname) || '.' || quote_ident(ra.attname) FROM pg_constraint c \
                      JOIN pg_class r ON r.oid = c.confrelid JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1] \
                     WHERE c.conrelid = a.attrelid AND c.contype = 'f' AND c.conkey[1] = a.attnum LIMIT 1) \
                 FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid \
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 WHERE a.attrelid = {}::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                   AND a.attnotnull AND d.adbin IS NULL AND a.attidentity = '' AND a.attgenerated = '' ORDER BY a.attnum",
                quote_literal(&qualified)
            ),
        )?;
        let mut names = Vec::new();
        let mut values = Vec::new();
        for c in cols {
            let [Some(name), Some(ty), Some(kind), Some(regtype), fk] = <[Option<String>; 5]>::try_from(c).map_err(|_| "unexpected row".to_string())? else { continue };
            let value = match (fk, kind.as_str(), ty.as_str()) {
                (Some(fk), _, _) => {
                    let (table, col) = fk.split_once('.').unwrap_or((&fk, "id"));
                    format!("(SELECT {col} FROM {}.{table} ORDER BY 1 OFFSET (g % greatest(1, (SELECT count(*) FROM {}.{table}))) LIMIT 1)", quote_ident(schema), quote_ident(schema))
                }
                (None, "e", _) => format!("(enum_range(NULL::{regtype}))[1]"),
                (None, _, t) if t.contains("int") || t.starts_with("numeric") || t == "real" || t == "double precision" => "g".into(),
                (None, _, t) if t.starts_with("character") || t == "text" => format!("left('x' || g, {})", t.split_once('(').and_then(|(_, n)| n.trim_end_matches(')').parse::<usize>().ok()).unwrap_or(64)),
                (None, _, "boolean") => "false".into(),
                (None, _, t) if t.starts_with("timestamp") || t == "date" => "now()".into(),
                (None, _, "jsonb" | "json") => "'{}'".into(),
                (None, _, "uuid") => "md5(g::text)::uuid".into(),
                (None, _, t) if t.ends_with("[]") => "'{}'".into(),
                (None, _, t) => format!("NULL::{t}"),
            };
            names.push(quote_ident(&name));
            values.push(value);
        }
        let insert = if names.is_empty() {
            format!("INSERT INTO {qualified} SELECT FROM generate_series(1, {n}) g")
        } else {
            format!("INSERT INTO {qualified} ({}) SELECT {} FROM generate_series(1, {n}) g", names.join(", "), values.join(", "))
        };
        // One statement, so all or nothing: a table that cannot be filled so stays as it is.
        let _ = client.batch_execute(&insert);
        let count = rows(client, &format!("SELECT count(*) FROM {qualified}"))?;
        counts.insert(t.clone(), count.first().and_then(|r| r.first().cloned().flatten()).and_then(|c| c.parse().ok()).unwrap_or(0));
    }
    client.batch_execute("ANALYZE").map_err(|e| procrastinate_migrations::db::describe(&e))?;
    Ok(counts)
}

/// The relations of `schema` and their files.
fn files(client: &mut dyn Session, schema: &str) -> Result<BTreeMap<String, String>, String> {
    let found = rows(
        client,
        &format!(
            "SELECT c.relname, c.relfilenode::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = {} AND c.relkind IN ('r', 'p', 'm', 'i')",
            quote_literal(schema)
        ),
    )?;
    Ok(found.into_iter().filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.clone()?))).collect())
}

const LOCKS: &str = "SELECT l.relation::regclass::text, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.locktype = 'relation' AND l.granted AND n.nspname = ";

/// Runs `sql` (a migration file) on `client`, statement by statement, and traces it.
/// `connector` opens the second session that watches a statement run outside a transaction.
pub fn trace(client: &mut dyn Session, connector: &Connector, file: &str, sql: &str, no_transaction: bool, schema: &str, rows_in: BTreeMap<String, i64>) -> Result<FileTrace, String> {
    let statements = procrastinate_migrations::lexer::statements(sql).map_err(|e| e.message)?;
    client
        .batch_execute(&format!("SET search_path TO {}", quote_ident(schema)))
        .map_err(|e| procrastinate_migrations::db::describe(&e))?;
    let pid = rows(client, "SELECT pg_backend_pid()")?.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_default();
    let own_locks = format!("{LOCKS}{} AND l.pid = pg_backend_pid()", quote_literal(schema));
    let mut out = Vec::new();
    let started = Instant::now();
    let mut taken: Vec<(String, String, Duration, usize)> = Vec::new();
    if !no_transaction {
        client.batch_execute("BEGIN").map_err(|e| procrastinate_migrations::db::describe(&e))?;
    }
    for st in &statements {
        let text = &sql[st.span.clone()];
        let before = files(client, schema)?;
        let at = started.elapsed();
        let (took, seen) = if no_transaction {
            // Its locks go with it: a second session watches while it runs.
            let watcher = connector.clone();
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            let query = format!("{LOCKS}{} AND l.pid = {}", quote_literal(schema), pid.parse::<i32>().unwrap_or(0));
            let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
            let handle = std::thread::spawn(move || -> Vec<(String, String)> {
                let Ok(mut side) = watcher.connect() else {
                    let _ = ready_tx.send(());
                    return Vec::new();
                };
                let mut seen: Vec<(String, String)> = Vec::new();
                let mut first = true;
                // As often as the server answers (a statement shorter than one answer may show
                // nothing), until the statement is done; the first answer says "ready".
                loop {
                    let done = flag.load(std::sync::atomic::Ordering::Relaxed);
                    if let Ok(found) = rows(&mut *side, &query) {
                        for r in found {
                            if let [Some(rel), Some(mode)] = r.as_slice() {
                                if !seen.iter().any(|(a, b)| a == rel && b == mode) {
                                    seen.push((rel.clone(), mode.clone()));
                                }
                            }
                        }
                    }
                    if first {
                        first = false;
                        let _ = ready_tx.send(());
                    }
                    if done {
                        break;
                    }
                }
                seen
            });
            // Watching before it starts (the connection is bounded by its connect timeout).
            let _ = ready.recv_timeout(Duration::from_secs(30));
            let t = Instant::now();
            let result = client.batch_execute(text);
            let took = t.elapsed();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let seen = handle.join().unwrap_or_default();
            result.map_err(|e| format!("line {}: {}", st.line, procrastinate_migrations::db::describe(&e)))?;
            (took, seen.into_iter().map(|(r, m)| (r, m, took)).collect::<Vec<_>>())
        } else {
            let t = Instant::now();
            client.batch_execute(text).map_err(|e| format!("line {}: {}", st.line, procrastinate_migrations::db::describe(&e)))?;
            let took = t.elapsed();
            let held: Vec<(String, String, Duration)> = rows(client, &own_locks)?
                .into_iter()
                .filter_map(|r| match r.as_slice() {
                    [Some(rel), Some(mode)] => Some((rel.clone(), mode.clone(), Duration::ZERO)),
                    _ => None,
                })
                .collect();
            (took, held)
        };
        let after = files(client, schema)?;
        let rewrote: Vec<String> = before.iter().filter(|(k, v)| after.get(*k).is_some_and(|a| a != *v)).map(|(k, _)| k.clone()).collect();
        let mut locks = Vec::new();
        for (rel, mode, held) in seen {
            if taken.iter().any(|(r, m, _, _)| *r == rel && *m == mode) {
                continue;
            }
            if no_transaction {
                locks.push(Lock { blocks: blocks(&mode), relation: rel, mode, held_ms: held.as_secs_f64() * 1e3 });
            } else {
                taken.push((rel, mode, at, out.len()));
            }
        }
        let first: String = text.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
        out.push(Statement { line: st.line, text: first, took_ms: took.as_secs_f64() * 1e3, locks, rewrote });
    }
    if !no_transaction {
        client.batch_execute("COMMIT").map_err(|e| procrastinate_migrations::db::describe(&e))?;
        let end = started.elapsed();
        for (rel, mode, at, i) in taken {
            out[i].locks.push(Lock { blocks: blocks(&mode), relation: rel, mode, held_ms: (end - at).as_secs_f64() * 1e3 });
        }
    }
    Ok(FileTrace { file: file.to_string(), rows: rows_in, statements: out })
}

/// The trace as text: each statement with its time, then the locks that block readers or
/// writers (the weak ones summed up), and what it rewrote.
pub fn text(t: &FileTrace) -> String {
    let rows: Vec<String> = t.rows.iter().map(|(k, v)| format!("{k}: {v} rows")).collect();
    let mut out = format!("trace {} ({}):\n", t.file, if rows.is_empty() { "no table of it exists yet".to_string() } else { rows.join(", ") });
    for s in &t.statements {
        out.push_str(&format!("  line {:<4} {:>9.1} ms  {}\n", s.line, s.took_ms, s.text));
        for l in &s.locks {
            if l.blocks == "schema changes" {
                continue;
            }
            out.push_str(&format!("             {} on {}: blocks {} for {:.1} ms\n", l.mode, l.relation, l.blocks, l.held_ms));
        }
        let weak = s.locks.iter().filter(|l| l.blocks == "schema changes").count();
        if weak > 0 {
            out.push_str(&format!("             and {weak} weaker locks (they block schema changes only)\n"));
        }
        for r in &s.rewrote {
            out.push_str(&format!("             rewrote {r}\n"));
        }
    }
    out
}
