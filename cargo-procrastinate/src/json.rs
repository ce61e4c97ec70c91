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

use procrastinate_migrations::db::{Divergence, MigrationFailure, Outcome};
use procrastinate_migrations::diagnostic::Excerpt;
use procrastinate_migrations::{Problem, Revision};
use serde::Serialize;
use serde_json::Value;

/// Raised only when a field changes meaning or is removed.
pub const FORMAT_VERSION: u32 = 1;

/// Prints `body` as one line, tagged with `reason` and the format version.
pub fn emit(reason: &str, body: &impl Serialize) {
    crate::term::data_line(&tagged(reason, body).to_string());
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

/// One disagreement between the database and the files.
#[derive(Serialize)]
pub struct DivergenceJson {
    /// `inserted`, `gone`, `renamed`, `changed`, `ahead` or `duplicated`.
    pub kind: &'static str,
    /// The line as printed: the files involved and what to do.
    pub message: String,
}

impl DivergenceJson {
    /// `d` in set `set`, whose name the `--accept-changed` hint then carries (`NAME@REV`).
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
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The last recorded revision (`"0038"`); `null` for base.
    pub current: Option<String>,
    /// At the files' head, with nothing that disagrees and nothing beyond it.
    pub at_head: bool,
    /// File names recorded after the last file: the database is ahead of the files (also one of
    /// `divergences`).
    pub ahead: Vec<String>,
    /// File names of the next release's `pre` migrations, recorded beyond the head: the
    /// zero-downtime window, not a disagreement.
    pub beyond: Vec<String>,
    /// The tracking table, `schema.name` or `name`, unquoted.
    pub tracking_table: String,
    /// Every disagreement with the files.
    pub divergences: Vec<DivergenceJson>,
    /// Nothing of the set is recorded, yet these of its objects exist (a few): a database built
    /// without this tool, to adopt with `stamp --detect`. Empty otherwise.
    pub unadopted: Vec<String>,
    /// Nothing of the set is recorded, but the tracking table records other sets (a run not
    /// told about them): the line as printed; `null` otherwise.
    pub other_sets: Option<String>,
}

/// `current`'s top-level field, over every set.
#[derive(Serialize)]
pub struct AtHead {
    /// Whether every set is at head.
    pub at_head: bool,
}

/// `check`, per set and (`ok`, `exit_code`) over all.
#[derive(Serialize)]
pub struct Check {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// Whether this set passes: at head, and every applied file unchanged.
    pub ok: bool,
    /// This set's verdict: 0 ok, 4 behind, 5 the files and the database disagree (or an earlier
    /// upstream text left this schema different).
    pub exit_code: i32,
    /// The last recorded revision; `null` for base.
    pub current: Option<String>,
    /// File names of the next release's `pre` migrations beyond the head: a note, not a failure.
    pub beyond: Vec<String>,
    /// The revisions not applied yet (`"0039"`), in order.
    pub pending: Vec<String>,
    /// Applied files that upstream revised in place since; one with `needs_rerun` fails.
    pub revised_upstream: Vec<Revised>,
    /// Every disagreement with the files; any one fails.
    pub divergences: Vec<DivergenceJson>,
    /// Nothing of the set is recorded, yet these of its objects exist (a few): a database built
    /// without this tool, to adopt with `stamp --detect` (exit 4). Empty otherwise.
    pub unadopted: Vec<String>,
}

/// `check --compatible`, per set: the start-up check's verdict.
#[derive(Serialize)]
pub struct Compatible {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// Whether a build of these files may run on the database.
    pub ok: bool,
    /// 0 compatible, 4 needs an upgrade (or adopting), 5 too new for these files or diverged.
    pub exit_code: i32,
    /// `compatible`, `needs_upgrade`, `unadopted`, `too_new` or `diverged`.
    pub verdict: &'static str,
    /// The last recorded revision; `null` for base.
    pub current: Option<String>,
    /// The oldest revision a build of these files runs on.
    pub oldest: String,
    /// The verdict as printed, with what to do.
    pub message: String,
}

/// `check`'s top-level fields: the worst verdict over every set.
#[derive(Serialize)]
pub struct Verdict {
    /// Whether every set passes.
    pub ok: bool,
    /// The process's exit code: 5 if a set disagrees, else 4 if one is behind, else 0.
    pub exit_code: i32,
}

/// An applied file that upstream edited after release.
#[derive(Serialize)]
pub struct Revised {
    /// The file's revision.
    pub revision: String,
    /// The file.
    pub file_name: String,
    /// The release that shipped the revised text (`3.5.2`).
    pub revised_in: &'static str,
    /// The earlier text left this schema different: `upgrade` runs the revised file again.
    pub needs_rerun: bool,
    /// The note as printed, with what to do.
    pub message: String,
}

/// `history` and `pending`, per set.
#[derive(Serialize)]
pub struct History {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The last recorded revision; `null` for base, or when no database is configured.
    pub current: Option<String>,
    /// The files in the range, in revision order.
    pub migrations: Vec<HistoryRow>,
    /// Rows whose file is not among the files (deleted, renamed, or of a newer release).
    pub recorded_without_file: Vec<Orphan>,
}

/// One file of `history`, with what the database records for it.
#[derive(Serialize)]
pub struct HistoryRow {
    /// The file's revision (`"0030"`).
    pub revision: String,
    /// The file.
    pub file_name: String,
    /// The release as the file name writes it (`03.00.00`).
    pub version: String,
    /// The two-digit serial, as a number.
    pub serial: u8,
    /// `pre`, `post` or `unmarked`.
    pub phase: &'static str,
    /// The name's last part, without `.sql`.
    pub description: String,
    /// SHA-256 of the file's text, hex.
    pub checksum: String,
    /// `applied`, `stamped`, `pending`, or `?` when no database is configured.
    pub state: String,
    /// When it was recorded, UTC, RFC 3339; `null` when it is not.
    pub applied_at: Option<String>,
    /// The database role that recorded it; `null` when it is not recorded.
    pub applied_by: Option<String>,
    /// How long it ran, measured by the server; `null` for a stamp, or when it is not recorded.
    pub duration_ms: Option<i64>,
    /// The checksum the database recorded; `null` when it is not recorded.
    pub recorded_checksum: Option<String>,
}

/// A row whose file is not among the files.
#[derive(Serialize)]
pub struct Orphan {
    /// The revision it was recorded at.
    pub revision: String,
    /// The recorded file name.
    pub file_name: String,
}

/// `plan`, per set.
#[derive(Serialize)]
pub struct Plan {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The last recorded revision; `null` for base.
    pub current: Option<String>,
    /// The steps, in order; empty when nothing is pending (up to `--to`).
    pub steps: Vec<PlanStep>,
    /// Nothing of the set is recorded, yet these of its objects exist: the one step is `adopt`.
    pub unadopted: Vec<String>,
}

/// One step of a zero-downtime deploy.
#[derive(Serialize)]
pub struct PlanStep {
    /// The release the step is about (`3.0.0`).
    pub release: String,
    /// `apply_pre`, `deploy`, `apply_post`, `interrupt`, or `adopt` (record the revision of a
    /// database built without this tool).
    pub action: &'static str,
    /// The step in words, as printed.
    pub description: String,
    /// The last revision the step applies; `null` for `deploy`.
    pub through: Option<String>,
    /// The command that takes the step; `null` for `deploy` (deploying the code is yours).
    pub command: Option<String>,
}

/// `heads`, per set.
#[derive(Serialize)]
pub struct Head {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The head revision's file.
    pub file_name: String,
    /// Where the database stands against the files; `null` when no database is configured.
    pub database: Option<HeadDatabase>,
}

/// `heads`: where the database stands against a set's files.
#[derive(Serialize)]
pub struct HeadDatabase {
    /// `at_head`, `behind`, `beyond` (the next release's pre) or `diverged`.
    pub state: &'static str,
    /// The last recorded revision; `null` for base.
    pub current: Option<String>,
    /// How many files are not applied (out-of-order ones included).
    pub pending: usize,
    /// Every disagreement, with what to do.
    pub divergences: Vec<DivergenceJson>,
}

/// `repair`, per set.
#[derive(Serialize)]
pub struct Repair {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The rows that took their file's new name.
    pub renamed: Vec<Renamed>,
    /// What still disagrees afterwards.
    pub divergences: Vec<DivergenceJson>,
}

/// A recorded name and the file's name now.
#[derive(Serialize)]
pub struct Renamed {
    /// The name the row had.
    pub recorded: String,
    /// The file's name, which the row now has.
    pub now: String,
}

/// `show REV`.
#[derive(Serialize)]
pub struct Show {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The revision shown (`"0030"`).
    pub revision: String,
    /// Its file.
    pub file_name: String,
    /// The release (`3.0.0`).
    pub version: String,
    /// `pre`, `post` or `unmarked`.
    pub phase: &'static str,
    /// SHA-256 of the file's text, hex: what the tracking table records.
    pub checksum: String,
    /// The file's path: the set's directory and the file name.
    pub path: String,
    /// The file's SQL.
    pub sql: String,
}

/// `stamp`, per set.
#[derive(Serialize)]
pub struct Stamp {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// `--detect`: what was found (`null`: none of the set's objects), and from where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<Option<String>>,
    /// `--detect`: where it was found, in words (`alembic_version (0029)`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Whether anything was written: `false` for `--dry-run`, or when there was nothing to record.
    pub recorded: bool,
    /// The revision the set is at after the stamp (`null`: base); absent when nothing was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Option<String>>,
    /// Whether `--purge` was given: the set's records are cleared first (not with `--dry-run`).
    pub purged: bool,
}

/// `verify`, per set.
#[derive(Serialize)]
pub struct Verify {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The reference `schema.sql` compared with.
    pub reference: String,
    /// Whether the migrations build exactly the reference's schema.
    pub ok: bool,
    /// How many objects the migrations built (of the kinds compared).
    pub objects: usize,
    /// Every object that differs; empty when `ok`.
    pub differences: Vec<Difference>,
}

/// `verify`'s top-level field, over every set.
#[derive(Serialize)]
pub struct Ok {
    /// Whether every set builds its reference's schema.
    pub ok: bool,
}

/// One object that differs between two schemas (`verify`, `check --schema`, `diff`): the same
/// facts as the text line.
#[derive(Serialize)]
pub struct Difference {
    /// `missing` (there only), `extra` (here only) or `differs`.
    pub change: &'static str,
    /// `table`, `column`, `constraint`, `index`, `sequence`, `view`, `materialized view`,
    /// `function`, `procedure`, `aggregate`, `trigger`, `type`, `extension`, `comment`, `owner`
    /// or `privileges`.
    pub kind: String,
    /// The object's name (`table.column` for a column, constraint or trigger).
    pub name: String,
    /// For `missing` and `extra`: what the object is, in a few words (`numeric NOT NULL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// For `differs`: each attribute that differs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeDifference>,
}

/// One attribute of an object that differs; `null` on the side that does not have it.
#[derive(Serialize)]
pub struct AttributeDifference {
    /// `type`, `not null`, `default`, `using`, `definition`, `body`...
    pub attribute: String,
    /// Its value here (the database for `check --schema`, FROM for `diff`).
    pub here: Option<String>,
    /// Its value there (the migrations, the reference, TO).
    pub there: Option<String>,
}

impl From<&procrastinate_migrations::catalog::Difference> for Difference {
    fn from(d: &procrastinate_migrations::catalog::Difference) -> Difference {
        use procrastinate_migrations::catalog::Change;
        let (summary, attributes) = match &d.change {
            Change::Missing(o) | Change::Extra(o) => (Some(o.summary()), Vec::new()),
            Change::Changed { attrs, .. } => (
                None,
                attrs.iter().map(|a| AttributeDifference { attribute: a.attr.clone(), here: a.here.clone(), there: a.there.clone() }).collect(),
            ),
        };
        Difference { change: d.change.word(), kind: d.kind.to_string(), name: d.name.clone(), summary, attributes }
    }
}

/// `check --schema`, one set: its part of the live schema against what its recorded
/// migrations build.
#[derive(Serialize)]
pub struct SchemaCheck {
    /// The set's name and head.
    #[serde(flatten)]
    pub id: SetId,
    /// Whether nothing of the set differs.
    pub ok: bool,
    /// 0, or 5 when something differs.
    pub exit_code: i32,
    /// The revision recorded, which the comparison builds to; `null`: base.
    pub current: Option<String>,
    /// The schema compared, in the database.
    pub schema: String,
    /// What differs ("here" is the database, "there" what its migrations build).
    pub differences: Vec<Difference>,
}

/// `check --schema`'s top-level fields.
#[derive(Serialize)]
pub struct SchemaVerdict {
    /// Whether every set's schema is what its migrations build, and nothing else is there.
    pub ok: bool,
    /// The command's exit code.
    pub exit_code: i32,
    /// Differences no set's migrations account for (objects made by hand).
    pub unowned: Vec<Difference>,
}

/// `diff FROM TO`.
#[derive(Serialize)]
pub struct Diff {
    /// FROM, as given.
    pub from: String,
    /// TO, as given.
    pub to: String,
    /// The schema compared.
    pub schema: String,
    /// Whether they are the same.
    pub same: bool,
    /// What differs ("here" is FROM, "there" TO).
    pub differences: Vec<Difference>,
    /// With `--sql`: the statements from FROM to TO, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<Vec<Statement>>,
}

/// One generated statement (`diff --sql`, `new --autogenerate`).
#[derive(Serialize)]
pub struct Statement {
    /// `pre` or `post`.
    pub phase: &'static str,
    /// Whether it runs outside any transaction (`CREATE INDEX CONCURRENTLY`).
    pub no_transaction: bool,
    /// The object it changes (`column orders.total`).
    pub object: String,
    /// The statement.
    pub sql: String,
    /// What can hurt, if anything.
    pub hazard: Option<Hazard>,
}

/// A generated statement's hazard.
#[derive(Serialize)]
pub struct Hazard {
    /// `data-loss`, `table-rewrite`, `lock`, `backfill`, `validation`, `invalid-index`,
    /// `dependents` or `manual`.
    pub code: &'static str,
    /// What happens, and the safe way.
    pub message: String,
}

impl From<&procrastinate_migrations::catalog::plan::Step> for Statement {
    fn from(s: &procrastinate_migrations::catalog::plan::Step) -> Statement {
        use procrastinate_migrations::catalog::plan::{Phase, Slot};
        Statement {
            phase: if s.phase == Phase::Pre { "pre" } else { "post" },
            no_transaction: s.slot == Slot::Concurrent,
            object: s.object.clone(),
            sql: s.sql.clone(),
            hazard: s.hazard.as_ref().map(|h| Hazard { code: h.code, message: h.text.clone() }),
        }
    }
}

/// `new --autogenerate`.
#[derive(Serialize)]
pub struct Autogenerate {
    /// The set written to; `null` for the one set of a plain `migrations = "dir"`.
    pub set: Option<String>,
    /// The desired schema's file.
    pub desired_schema: String,
    /// The files written, in the order they run; empty when the head has the desired schema.
    pub files: Vec<GeneratedFile>,
    /// Whether applying them on top of the head gave exactly the desired schema (checked in a
    /// scratch database); `true` when nothing was written.
    pub proved: bool,
    /// What still differs after them ("here" is what they build, "there" the desired schema).
    pub remaining: Vec<Difference>,
}

/// One file `new --autogenerate` wrote.
#[derive(Serialize)]
pub struct GeneratedFile {
    /// Its path.
    pub path: String,
    /// Its name.
    pub file_name: String,
    /// `pre` or `post`.
    pub phase: &'static str,
    /// Whether it is a `-- no-transaction` file.
    pub no_transaction: bool,
    /// Its statements.
    pub statements: Vec<Statement>,
}

/// `lint`.
#[derive(Serialize)]
pub struct Lint {
    /// Whether no finding is an error.
    pub ok: bool,
    /// 0, or 8 when a finding is an error.
    pub exit_code: i32,
    /// `1 error, 2 warnings in 3 files`.
    pub summary: String,
    /// The files reviewed, in order.
    pub files: Vec<String>,
    /// Each finding: `rule`, `level`, `file`, `line`, `column`, `message`, `why`, `safe`, and
    /// the `excerpt` (as in `error` objects).
    pub findings: Vec<crate::lint::Finding>,
    /// With `--trace`: each file's statements, their time, the locks they took (`relation`,
    /// `mode`, `blocks`, `held_ms`) and the tables they rewrote.
    pub traces: Vec<crate::lint::trace::FileTrace>,
}

/// `vendor`.
#[derive(Serialize)]
pub struct Vendor {
    /// The release vendored (`3.10.0`).
    pub release: String,
    /// Where it came from, in words (`wheel procrastinate-3.10.0-py3-none-any.whl`).
    pub source: String,
    /// SHA-256 of the wheel; `null` when the files came from an installed package.
    pub wheel_sha256: Option<String>,
    /// The set's directory, written to.
    pub dir: String,
    /// Migration files that were not there.
    pub added: Vec<String>,
    /// Migration files whose content was replaced by the release's (`--allow-changes`).
    pub changed: Vec<String>,
    /// Migration files the release does not have, deleted (`--allow-changes`).
    pub removed: Vec<String>,
    /// How many of the release's migration files were there already, as they are.
    pub unchanged: usize,
}

/// `init`.
#[derive(Serialize)]
pub struct Init {
    /// The manifest that was edited.
    pub manifest: String,
    /// The sets it configures, with their directories (created).
    pub sets: Vec<InitSet>,
    /// What to do next, in order, as printed.
    pub next: Vec<String>,
}

/// A set `init` configured.
#[derive(Serialize)]
pub struct InitSet {
    /// Its name; `null` for the one set of `--procrastinate-only`.
    pub name: Option<String>,
    /// Its directory.
    pub dir: String,
}

/// `new`.
#[derive(Serialize)]
pub struct New {
    /// The set written to; `null` for the one set of a plain `migrations = "dir"`.
    pub set: Option<String>,
    /// The new file's path.
    pub path: String,
    /// The new file's name.
    pub file_name: String,
    /// The revision it takes (`"0039"`).
    pub revision: String,
    /// `--reversible`: the down file's path; `null` otherwise.
    pub down: Option<String>,
}

/// `upgrade`: one event per migration as it happens (reason `migration`), then this per set.
#[derive(Serialize)]
pub struct Upgrade {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// The revision the set was at before; `null` for base.
    pub from: Option<String>,
    /// The revision it is at now; `null` for base.
    pub to: Option<String>,
    /// The migrations this run applied, in order.
    pub applied: Vec<Applied>,
    /// Revisions another process applied while this one waited for the lock.
    pub applied_elsewhere: Vec<String>,
    /// The zero-downtime step that comes next, when the run stopped between a pre and a post.
    pub next: Option<String>,
    /// With `--from-schema`, when the set was built from this `schema.sql` instead of running
    /// its migrations (each recorded as stamped); `null` otherwise.
    pub from_schema: Option<String>,
    /// What was said before anything ran, as printed on stderr after `warning: `: a plain
    /// upgrade that runs a release's `post` together with later releases' migrations.
    pub warnings: Vec<String>,
}

/// `sql --dry-run`, per set: the migrations the script would hold.
#[derive(Serialize)]
pub struct SqlDryRun {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// In order.
    pub migrations: Vec<Planned>,
}

/// A migration that would run.
#[derive(Serialize, Clone)]
pub struct Planned {
    /// Its revision.
    pub revision: String,
    /// Its file.
    pub file_name: String,
    /// `pre`, `post` or `unmarked`.
    pub phase: &'static str,
}

/// `upgrade --dry-run`, per set: what would happen, in order, with nothing changed.
#[derive(Serialize)]
pub struct UpgradeDryRun {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// Always `true`: nothing was changed.
    pub dry_run: bool,
    /// The revision the set is at; `null` for base.
    pub from: Option<String>,
    /// The revision it would be at.
    pub to: Option<String>,
    /// The migrations that would run, in order.
    pub would_apply: Vec<Planned>,
    /// Changed files whose new checksum would be recorded (`--accept-changed`), without running them.
    pub would_accept: Vec<String>,
    /// Files upstream revised in place whose revised text would be recorded.
    pub would_record_revised: Vec<String>,
    /// What a real run says before it starts (see `upgrade`'s `warnings`).
    pub warnings: Vec<String>,
}

/// `downgrade`, per set.
#[derive(Serialize)]
pub struct Downgrade {
    /// `set` and `head`, at this object's top level.
    #[serde(flatten)]
    pub id: SetId,
    /// `--dry-run`: nothing was changed, `reverted` is what would be.
    pub dry_run: bool,
    /// The revision the set was at; `null` for base.
    pub from: Option<String>,
    /// The revision it is at now (or would be); `null` for base.
    pub to: Option<String>,
    /// The revisions undone, in the order they were (last first).
    pub reverted: Vec<String>,
}

/// A migration this `upgrade` applied.
#[derive(Serialize, Clone)]
pub struct Applied {
    /// Its revision.
    pub revision: String,
    /// Its file.
    pub file_name: String,
    /// `pre`, `post` or `unmarked`.
    pub phase: &'static str,
    /// How long it took, in milliseconds; null when unknown (what followed it in its round
    /// trip failed and took its end back with it).
    pub duration_ms: Option<u64>,
}

/// One line of `upgrade`'s event stream (reason `migration`).
#[derive(Serialize)]
pub struct Event {
    /// The set's name; `null` for the one set of a plain `migrations = "dir"`.
    pub set: Option<String>,
    /// `applied`, `applied_elsewhere`, `waiting`, `retrying`, `accepted` or `revised`.
    pub event: &'static str,
    /// The migration's revision; absent for `waiting` and `revised`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The migration's file; absent for `waiting` and `revised`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// `pre`, `post` or `unmarked`; absent for `waiting` and `revised`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// Milliseconds the migration took; on `applied` only, where it is null when unknown (the
    /// transaction after it in the same round trip failed and took its end back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<Option<u64>>,
    /// What a person would read on stderr.
    pub message: String,
}

/// A failure (reason `error`): the message as printed on stderr, the exit code, and the
/// structured parts when there are some.
#[derive(Serialize)]
pub struct Error {
    /// The message as printed on stderr.
    pub message: String,
    /// The process's exit code.
    pub exit_code: i32,
    /// A failing migration: where, and what the server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<FailedMigration>,
    /// A malformed set: every problem found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemJson>,
}

/// The migration that failed: where in its file, and what the server said.
#[derive(Serialize, Debug, Clone)]
pub struct FailedMigration {
    /// The set's name; `null` for the one set of a plain `migrations = "dir"`.
    pub set: Option<String>,
    /// The failed migration's revision.
    pub revision: String,
    /// Its file.
    pub file_name: String,
    /// 1-based line of the server's error position, else of the failing statement; `null` when
    /// unknown.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the error position; `null` when the server gave none.
    pub column: Option<usize>,
    /// The server's five-character error code (`42704`); `null` when the error is not the
    /// server's.
    pub sqlstate: Option<String>,
    /// The server's message, with what to do about it when the tool knows.
    pub message: String,
    /// The server's DETAIL; `null` when none.
    pub detail: Option<String>,
    /// The server's HINT; `null` when none.
    pub hint: Option<String>,
    /// The server's CONTEXT (where in a function or DO block); `null` when none.
    pub context: Option<String>,
    /// The file's lines around `line`, the position marked; `null` when `line` is.
    pub excerpt: Option<Excerpt>,
    /// The revision the set is at after the rollback (`null`: base, or not known: see
    /// `outcome`).
    pub current: Option<String>,
    /// `rolled_back`; `not_recorded` (a `-- no-transaction` file: nothing rolled it back);
    /// `unknown` (the connection was lost: `current` is what a new connection read, or `null`
    /// when none could be made).
    pub outcome: &'static str,
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
            current: match f.outcome {
                Outcome::Unknown { read } => read.and_then(rev),
                _ => rev(f.current),
            },
            outcome: match f.outcome {
                Outcome::RolledBack => "rolled_back",
                Outcome::NotRecorded => "not_recorded",
                Outcome::Unknown { .. } => "unknown",
            },
        }
    }
}

/// One problem of a malformed set (in the `error` object's `problems`).
#[derive(Serialize, Debug, Clone)]
pub struct ProblemJson {
    /// The directory of the set.
    pub dir: String,
    /// The file's name within `dir`; `null` for a problem with the directory itself.
    pub file: Option<String>,
    /// 1-based line, when the problem is inside the file.
    pub line: Option<usize>,
    /// What is wrong, without the file name.
    pub message: String,
    /// The file's lines around `line`; `null` when there is no line (or the file is not text).
    pub excerpt: Option<Excerpt>,
}

impl ProblemJson {
    /// Problem `p` of the set in `dir`.
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
