//! SQL text for the planner's statements: identifiers quoted only when needed, the DDL of a
//! column, an index, a view, a sequence, and the small facts about types it needs.

use super::Hazard;
use crate::catalog::{Catalog, Kind, Object};
/// Whether a view's definition names the table (as a whole word: `orders` in `FROM orders` or
/// `orders.id`, not in `orders_archive`).
pub(super) fn mentions(definition: &str, table: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    definition.match_indices(table).any(|(at, _)| {
        let before = definition[..at].chars().next_back();
        let after = definition[at + table.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

pub(super) fn view_replaceable(here: &Object, there: &Object) -> bool {
    if here.kind != Kind::View || here.get("options") != there.get("options") {
        return false;
    }
    // CREATE OR REPLACE VIEW keeps the columns there were, and may only add more at the end.
    let (old, new) = (here.get("columns").unwrap_or(""), there.get("columns").unwrap_or(""));
    new == old || new.starts_with(&format!("{old}, "))
}

pub(super) fn create_view(o: &Object) -> String {
    let def = o.get("definition").unwrap_or("").trim_end().trim_end_matches(';');
    let with = o.get("options").map(|o| format!(" WITH ({o})")).unwrap_or_default();
    format!("CREATE {} {}{with} AS\n{def};", o.kind.as_str().to_uppercase(), ident(&o.name))
}

pub(super) fn create_index(o: &Object, concurrently: bool) -> String {
    format!(
        "CREATE {}INDEX {}{} ON {} USING {};",
        if o.is("unique") { "UNIQUE " } else { "" },
        if concurrently { "CONCURRENTLY " } else { "" },
        ident(&o.name),
        ident(o.get("table").unwrap_or("")),
        o.get("using").unwrap_or("")
    )
}

pub(super) fn invalid_index(name: &str) -> Hazard {
    Hazard {
        code: "invalid-index",
        text: format!("if it fails (a duplicate, a cancel), it leaves {name} INVALID: DROP INDEX CONCURRENTLY {name}; then run upgrade again"),
    }
}

pub(super) fn column_definition(o: &Object, with_not_null: bool) -> String {
    let mut s = format!("{} {}", ident(o.local_name()), o.column_type());
    if let Some(d) = o.get("default") {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    if with_not_null && o.is("not null") && o.get("identity").is_none() {
        s.push_str(" NOT NULL");
    }
    s
}

pub(super) fn sequence_options(o: &Object) -> String {
    let mut s = String::new();
    for (key, word) in [("type", "AS"), ("increment", "INCREMENT BY"), ("min", "MINVALUE"), ("max", "MAXVALUE"), ("start", "START WITH"), ("cache", "CACHE")] {
        if let Some(v) = o.get(key) {
            s.push_str(&format!(" {word} {v}"));
        }
    }
    if o.is("cycle") {
        s.push_str(" CYCLE");
    }
    s
}

pub(super) fn position(o: &Object) -> i64 {
    o.get(".position").and_then(|p| p.parse().ok()).unwrap_or(i64::MAX)
}

/// Where each kind of dropped object goes: what depends on others first.
pub(super) fn drop_rank(o: &Object) -> (u8, bool, String) {
    let rank = match o.kind {
        Kind::Comment | Kind::Owner | Kind::Privileges => 0,
        Kind::Trigger => 1,
        Kind::MaterializedView => 2,
        Kind::View => 3,
        Kind::Constraint => 4,
        Kind::Index => 5,
        Kind::Column => 6,
        Kind::Table => 7,
        Kind::Function | Kind::Procedure | Kind::Aggregate => 8,
        Kind::Sequence => 9,
        Kind::Type => 10,
        Kind::Extension => 11,
    };
    // Foreign keys before the keys they reference.
    (rank, o.get("type") != Some("foreign key"), o.name.clone())
}

/// The relation a comment, owner or privileges object is about, if it is a relation or a part
/// of one.
pub(super) fn comment_relation(o: &Object) -> Option<String> {
    o.about()?;
    o.relation().map(str::to_string)
}

/// Whether the object a comment (owner, privileges) is about is still there.
pub(super) fn comment_target_exists(o: &Object, to: &Catalog) -> bool {
    o.about().is_some_and(|(k, name)| to.get(k, name).is_some())
}

pub(super) fn routine_parts(name: &str) -> (&str, &str) {
    match name.split_once('(') {
        Some((n, rest)) => (n, rest.strip_suffix(')').unwrap_or(rest)),
        None => (name, ""),
    }
}

/// An enum's labels, each still quoted as `catalog.sql` quotes them.
pub(super) fn labels(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut chars = list.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' if in_quote && chars.peek() == Some(&'\'') => {
                cur.push_str("''");
                chars.next();
            }
            '\'' => {
                in_quote = !in_quote;
                cur.push('\'');
            }
            ',' if !in_quote => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(ch),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Whether `ALTER COLUMN TYPE` from one type to the other only changes the catalog (no
/// rewrite): a longer or unbounded `varchar`, `varchar` to `text`, an unbounded `numeric`.
pub(super) fn binary_coercible(from: &str, to: &str) -> bool {
    let bound = |t: &str, base: &str| -> Option<Option<u32>> {
        let rest = t.strip_prefix(base)?;
        if rest.is_empty() {
            return Some(None);
        }
        rest.strip_prefix('(')?.strip_suffix(')')?.parse().ok().map(Some)
    };
    if let Some(f) = bound(from, "character varying") {
        if to == "text" {
            return true;
        }
        if let Some(t) = bound(to, "character varying") {
            return match (f, t) {
                (_, None) => true,
                (Some(a), Some(b)) => b >= a,
                (None, Some(_)) => false,
            };
        }
    }
    (from.starts_with("numeric") && to == "numeric") || (from == "text" && to == "character varying")
}

/// Whether a default is computed per row (the table is rewritten to fill existing rows).
pub(super) fn volatile(default: &str) -> bool {
    ["nextval(", "random(", "gen_random_uuid(", "uuid_generate_", "clock_timestamp(", "timeofday("].iter().any(|f| default.contains(f))
}

/// PostgreSQL's longest identifier (63 bytes), cut on a character boundary.
pub(super) fn truncate_ident(name: &str) -> String {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// `'text'`, quoted for SQL.
pub(super) fn literal(text: &str) -> String {
    crate::tracking::quote_literal(text)
}

/// An identifier as SQL needs it: bare when it is a plain lower-case name that is not a
/// reserved word, quoted otherwise.
pub fn ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !RESERVED.contains(&name);
    if plain {
        name.to_string()
    } else {
        crate::tracking::quote_ident(name)
    }
}

/// PostgreSQL's reserved key words (and those that cannot name a type or function), which a
/// column or table name must quote.
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary", "both", "case", "cast", "check",
    "collate", "collation", "column", "concurrently", "constraint", "create", "cross", "current_catalog", "current_date", "current_role",
    "current_schema", "current_time", "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end",
    "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike", "in", "initially", "inner",
    "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left", "like", "limit", "localtime", "localtimestamp", "natural",
    "not", "notnull", "null", "offset", "on", "only", "or", "order", "outer", "overlaps", "placing", "primary", "references", "returning",
    "right", "select", "session_user", "similar", "some", "symmetric", "system_user", "table", "tablesample", "then", "to", "trailing",
    "true", "union", "unique", "user", "using", "variadic", "verbose", "when", "where", "window", "with",
];

pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

