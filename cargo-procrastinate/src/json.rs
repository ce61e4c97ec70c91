//! `--message-format json`: every object the tool prints, as typed structs in one place, so the
//! contract is read here and nowhere else (the README documents it; tests parse every command).
//!
//! Each line on stdout is one JSON object with `reason` (what it is) and `format_version`
//! ([`FORMAT_VERSION`], raised only when a field changes meaning or goes away; new fields may
//! appear at any time). A command prints one result object, except `upgrade`, which first
//! prints one event per migration as it happens. A failure prints one `error` object.
//!
//! Per-set results list their sets under `sets`; when one set is configured its fields are
//! also at the top level (a script for a single set reads `.current`, not `.sets[0].current`).

use procrastinate_migrations::db::{Divergence, MigrationFailure};
use procrastinate_migrations::diagnostic::Excerpt;
use procrastinate_migrations::{Problem, Revision};
use serde::Serialize;
use serde_json::Value;

/// Raised only when a field changes meaning or is removed.
pub const FORMAT_VERSION: u32 = 1;

/// Prints `body` as one line, tagged with `reason` and the format version.
pub fn emit(reason: &str, body: &impl Serialize) {
    println!("{}", tagged(reason, body));
}

/// Prints a per-set result: `top`'s fields, `sets`, and the single set's fields at the top.
pub fn emit_sets<S: Serialize>(reason: &str, top: &impl Serialize, sets: &[S]) {
    let mut out = object(top);
    let sets: Vec<Value> = sets
        .iter()
        .map(|s| serde_json::to_value(s).expect("plain data serializes"))
        .collect();
    if let [Value::Object(one)] = sets.as_slice() {
        for (k, v) in one {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out.insert("sets".into(), Value::Array(sets));
    emit(reason, &out);
}

fn tagged(reason: &str, body: &impl Serialize) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("reason".into(), reason.into());
    out.insert("format_version".into(), FORMAT_VERSION.into());
    out.extend(object(body));
    Value::Object(out)
}

fn object(body: &impl Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(body).expect("plain data serializes") {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => unreachable!("JSON messages are objects, not {other}"),
    }
}

/// A revision as JSON: `"0038"`, or `null` for base.
pub fn rev(r: Option<Revision>) -> Option<String> {
    r.map(|r| r.to_string())
}

/// The fields every per-set object starts with.
#[derive(Serialize)]
pub struct SetId {
    /// The set's name; `null` for the one set of a plain `migrations = "dir"`.
    pub set: Option<String>,
    /// The files' head revision.
    pub head: String,
}

#[derive(Serialize)]
pub struct DivergenceJson {
    /// `inserted`, `gone`, `renamed`, `changed` or `ahead`.
    pub kind: &'static str,
    pub message: String,
}

impl DivergenceJson {
    pub fn new(d: &Divergence, set: Option<&str>) -> DivergenceJson {
        DivergenceJson {
            kind: d.kind(),
            message: d.display_in(set),
        }
    }
}

/// `current`, per set.
#[derive(Serialize)]
pub struct Current {
    #[serde(flatten)]
    pub id: SetId,
    pub current: Option<String>,
    pub at_head: bool,
    pub ahead: Vec<String>,
    pub beyond: Vec<String>,
    pub tracking_table: String,
    pub divergences: Vec<DivergenceJson>,
}

#[derive(Serialize)]
pub struct AtHead {
    pub at_head: bool,
}

/// `check`, per set and (`ok`, `exit_code`) over all.
#[derive(Serialize)]
pub struct Check {
    #[serde(flatten)]
    pub id: SetId,
    pub ok: bool,
    pub exit_code: i32,
    pub current: Option<String>,
    pub beyond: Vec<String>,
    pub pending: Vec<String>,
    pub revised_upstream: Vec<Revised>,
    pub divergences: Vec<DivergenceJson>,
}

#[derive(Serialize)]
pub struct Verdict {
    pub ok: bool,
    pub exit_code: i32,
}

/// An applied file that upstream edited after release.
#[derive(Serialize)]
pub struct Revised {
    pub revision: String,
    pub file_name: String,
    pub revised_in: &'static str,
    pub needs_rerun: bool,
    pub message: String,
}

/// `history` and `pending`, per set.
#[derive(Serialize)]
pub struct History {
    #[serde(flatten)]
    pub id: SetId,
    pub current: Option<String>,
    pub migrations: Vec<HistoryRow>,
    pub recorded_without_file: Vec<Orphan>,
}

#[derive(Serialize)]
pub struct HistoryRow {
    pub revision: String,
    pub file_name: String,
    pub version: String,
    pub serial: u8,
    pub phase: &'static str,
    pub description: String,
    pub checksum: String,
    /// `applied`, `stamped`, `pending`, or `unknown` (no database).
    pub state: String,
    pub applied_at: Option<String>,
    pub applied_by: Option<String>,
    pub duration_ms: Option<i64>,
    pub recorded_checksum: Option<String>,
}

#[derive(Serialize)]
pub struct Orphan {
    pub revision: String,
    pub file_name: String,
}

/// `plan`, per set.
#[derive(Serialize)]
pub struct Plan {
    #[serde(flatten)]
    pub id: SetId,
    pub current: Option<String>,
    pub steps: Vec<PlanStep>,
}

#[derive(Serialize)]
pub struct PlanStep {
    pub release: String,
    /// `apply_pre`, `deploy`, `apply_post` or `interrupt`.
    pub action: &'static str,
    pub description: String,
    pub through: Option<String>,
    pub command: Option<String>,
}

/// `heads`, per set.
#[derive(Serialize)]
pub struct Head {
    #[serde(flatten)]
    pub id: SetId,
    pub file_name: String,
}

/// `show REV`.
#[derive(Serialize)]
pub struct Show {
    #[serde(flatten)]
    pub id: SetId,
    pub revision: String,
    pub file_name: String,
    pub version: String,
    pub phase: &'static str,
    pub checksum: String,
    pub path: String,
    pub sql: String,
}

/// `stamp`, per set.
#[derive(Serialize)]
pub struct Stamp {
    #[serde(flatten)]
    pub id: SetId,
    /// `--detect`: what was found (`null`: none of the set's objects), and from where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub recorded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Option<String>>,
    pub purged: bool,
}

/// `verify`, per set.
#[derive(Serialize)]
pub struct Verify {
    #[serde(flatten)]
    pub id: SetId,
    pub reference: String,
    pub ok: bool,
    pub objects: usize,
    pub differences: Vec<Difference>,
}

#[derive(Serialize)]
pub struct Ok {
    pub ok: bool,
}

#[derive(Serialize)]
pub struct Difference {
    /// `missing`, `extra` or `differs`.
    pub change: &'static str,
    pub kind: String,
    pub name: String,
}

/// `vendor`.
#[derive(Serialize)]
pub struct Vendor {
    pub release: String,
    pub source: String,
    pub wheel_sha256: Option<String>,
    pub dir: String,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
}

/// `new`.
#[derive(Serialize)]
pub struct New {
    pub set: Option<String>,
    pub path: String,
    pub file_name: String,
    pub revision: String,
}

/// `upgrade`: one event per migration as it happens (reason `migration`), then this per set.
#[derive(Serialize)]
pub struct Upgrade {
    #[serde(flatten)]
    pub id: SetId,
    pub from: Option<String>,
    pub to: Option<String>,
    pub applied: Vec<Applied>,
    pub applied_elsewhere: Vec<String>,
    /// The zero-downtime step that comes next, when the run stopped between a pre and a post.
    pub next: Option<String>,
}

#[derive(Serialize, Clone)]
pub struct Applied {
    pub revision: String,
    pub file_name: String,
    pub phase: &'static str,
    pub duration_ms: u64,
}

/// One line of `upgrade`'s event stream (reason `migration`).
#[derive(Serialize)]
pub struct Event {
    pub set: Option<String>,
    /// `started`, `applied`, `applied_elsewhere`, `waiting`, `retrying`, `accepted`, `revised`.
    pub event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// What a person would read on stderr.
    pub message: String,
}

/// A failure (reason `error`): the message as printed on stderr, the exit code, and the
/// structured parts when there are some.
#[derive(Serialize)]
pub struct Error {
    pub message: String,
    pub exit_code: i32,
    /// A failing migration: where, and what the server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<FailedMigration>,
    /// A malformed set: every problem found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemJson>,
}

#[derive(Serialize, Debug, Clone)]
pub struct FailedMigration {
    pub set: Option<String>,
    pub revision: String,
    pub file_name: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub sqlstate: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub context: Option<String>,
    pub excerpt: Option<Excerpt>,
    /// The revision the set is at after the rollback.
    pub current: Option<String>,
}

impl From<&MigrationFailure> for FailedMigration {
    fn from(f: &MigrationFailure) -> FailedMigration {
        FailedMigration {
            set: f.set.clone(),
            revision: f.revision.to_string(),
            file_name: f.file_name.clone(),
            line: f.line,
            column: f.column,
            sqlstate: f.sqlstate.clone(),
            message: f.message.clone(),
            detail: f.detail.clone(),
            hint: f.hint.clone(),
            context: f.context.clone(),
            excerpt: f.excerpt.clone(),
            current: rev(f.current),
        }
    }
}

#[derive(Serialize, Debug, Clone)]
pub struct ProblemJson {
    /// The directory of the set.
    pub dir: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    pub excerpt: Option<Excerpt>,
}

impl ProblemJson {
    pub fn new(dir: &std::path::Path, p: &Problem) -> ProblemJson {
        ProblemJson {
            dir: dir.display().to_string(),
            file: p.file.clone(),
            line: p.line,
            message: p.message.clone(),
            excerpt: p.excerpt.clone(),
        }
    }
}
