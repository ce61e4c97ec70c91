//! What a database records against what the files hold, and what to do about it. Pure: no
//! database here, so the CLI, the offline script and an application's start-up check all
//! reach the same verdicts from the same rows.
//!
//! A migration's identity is (set, file name); its revision is only its position in the set.
//! So a file inserted before applied ones, an applied file deleted or renamed, or recorded
//! migrations the files lack each give one [`Divergence`] naming the files involved, never a
//! cascade of shifted positions.

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::migration::{Migration, Revision};
use crate::name;
use crate::upstream;

/// One row of the tracking table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The set it belongs to, as stored (`""`: the unnamed set, or a table from before sets).
    pub set: String,
    /// The revision (position) it had when it was recorded.
    pub revision: String,
    /// The migration's identity within its set.
    pub file_name: String,
    /// Hex SHA-256 of the text that ran, or `claimed:<pid>` while a `-- no-transaction`
    /// migration runs.
    pub checksum: String,
    /// UTC, RFC 3339.
    pub applied_at: String,
    /// How long the migration took, measured by the server; `None` for a stamp (or a claim).
    pub duration_ms: Option<i64>,
    /// The database role that recorded it (`current_user`).
    pub applied_by: String,
    /// Recorded by `stamp` without running.
    pub stamped: bool,
}

impl Applied {
    /// A row with only what identifies it: enough for [`Status::compare`] and the start-up
    /// check, for a caller that reads the table its own way.
    pub fn recorded(revision: String, file_name: String, checksum: String) -> Applied {
        Applied { revision, file_name, checksum, ..Applied::default() }
    }

    /// A row of [`TrackingTable::rows_sql`](crate::tracking::TrackingTable::rows_sql), as text
    /// (what every driver's simple-query protocol gives).
    pub fn from_text(row: &[Option<String>]) -> Applied {
        let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        Applied {
            set: text(0),
            revision: text(1),
            file_name: text(2),
            checksum: text(3),
            applied_at: rfc3339(&text(4)),
            duration_ms: text(5).parse().ok(),
            applied_by: text(6),
            stamped: text(7) == "t",
        }
    }
}

/// Unix seconds as `2026-11-22T08:45:59Z`; anything else as it is.
fn rfc3339(seconds: &str) -> String {
    match seconds.parse::<u64>() {
        Ok(s) => humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)).to_string(),
        Err(_) => seconds.to_string(),
    }
}

/// How the database differs from the files, beyond simply being behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// A file that is not recorded sorts before one that is.
    Inserted {
        /// The file that is not recorded.
        file_name: String,
        /// The first recorded file after it.
        before: String,
        /// The last recorded file: rename the inserted one to sort after it.
        last: String,
    },
    /// A recorded file is no longer among the files (and sorts among them).
    Gone {
        /// The revision it was recorded at.
        revision: String,
        /// The recorded file name.
        file_name: String,
    },
    /// A recorded file is now named differently: the same content (a branch merge that renamed
    /// it), or the same release and serial.
    Renamed {
        /// The name it was applied under.
        recorded: String,
        /// Its name now.
        file_name: String,
        /// Whether the file now has the checksum recorded: then `repair` records the new name.
        same_checksum: bool,
    },
    /// The file changed after it was applied.
    Changed {
        /// The file's revision: what `--accept-changed` takes.
        revision: Revision,
        /// The changed file.
        file_name: String,
        /// The checksum recorded when it was applied.
        recorded: String,
        /// The file's checksum now.
        actual: crate::Checksum,
    },
    /// Recorded migrations that sort after the last file: the database is ahead of the files.
    Ahead {
        /// The recorded file names, sorted.
        file_names: Vec<String>,
    },
    /// A file recorded more than once for the set: the tracking table has lost its primary key.
    Duplicated {
        /// The file recorded more than once.
        file_name: String,
        /// How many rows record it.
        rows: usize,
    },
}

impl Divergence {
    /// Short machine name, for JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Divergence::Inserted { .. } => "inserted",
            Divergence::Gone { .. } => "gone",
            Divergence::Renamed { .. } => "renamed",
            Divergence::Changed { .. } => "changed",
            Divergence::Ahead { .. } => "ahead",
            Divergence::Duplicated { .. } => "duplicated",
        }
    }
}

impl Divergence {
    /// The line, with the `--accept-changed` hint naming the set (`app@0003`) when given.
    pub fn display_in(&self, set: Option<&str>) -> String {
        match (self, set) {
            (Divergence::Changed { revision, .. }, Some(set)) => {
                self.to_string().replace(&format!("--accept-changed {revision}`"), &format!("--accept-changed {set}@{revision}`"))
            }
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Divergence::Inserted { file_name, before, last } => {
                write!(f, "`{file_name}` sorts before the applied `{before}`: rename it to sort after `{last}`")?;
                if before != last {
                    write!(f, " (the last applied file)")?;
                }
                write!(f, ", or remove it if it was added by mistake, or (a file from a merged branch) let it run out of order: \
                           `out-of-order = true` for the set, or `upgrade --out-of-order`")
            }
            Divergence::Gone { revision, file_name } => write!(
                f,
                "`{file_name}` was applied (as {revision}) but its file is gone: restore it (the database keeps what it did)"
            ),
            Divergence::Renamed { recorded, file_name, same_checksum: true } => write!(
                f,
                "`{recorded}` was recorded, and is now named `{file_name}` (the same content): record the new name with \
                 `cargo procrastinate repair` (it checks the checksum), or rename it back"
            ),
            Divergence::Renamed { recorded, file_name, same_checksum: false } => write!(
                f,
                "`{recorded}` was applied but is now named `{file_name}`, and its content changed too: rename it back (a \
                 migration's name is its identity), then see what changed"
            ),
            Divergence::Changed { revision, file_name, recorded, actual } => write!(
                f,
                "{revision} {file_name} changed after it was applied (recorded sha256 {recorded}, file has {actual}); \
                 review the change, then accept it with `upgrade --accept-changed {revision}`"
            ),
            Divergence::Ahead { file_names } => {
                write!(f, "the database is ahead of the files by {}: ", file_names.len())?;
                let shown: Vec<String> = file_names.iter().take(3).map(|n| format!("`{n}`")).collect();
                write!(f, "{}", shown.join(", "))?;
                if file_names.len() > 3 {
                    write!(f, ", ...")?;
                }
                write!(f, " (recorded, after the last file; files from an older release, or the wrong directory?)")
            }
            Divergence::Duplicated { file_name, rows } => write!(
                f,
                "`{file_name}` is recorded {rows} times (the tracking table has lost its primary key): delete all but \
                 one of those rows, then restore the key with `ALTER TABLE <tracking table> ADD PRIMARY KEY (set_name, file_name)`"
            ),
        }
    }
}

/// One set's database state against its files.
#[derive(Clone, Debug)]
pub struct Status {
    /// Whether the tracking table exists at all.
    pub tracked: bool,
    /// The set's rows, without claims (a `-- no-transaction` migration still running is not
    /// applied).
    pub applied: Vec<Applied>,
    /// Position of the last file that is recorded; `None` is base.
    pub current: Option<Revision>,
    /// Every disagreement between the rows and the files; empty when they agree.
    pub divergences: Vec<Divergence>,
    /// Applied files that upstream revised in place since: not drift (see [`crate::upstream`]).
    pub revised: Vec<Revised>,
    /// Recorded after the files' head, and harmless: the next release's `pre` migrations, which
    /// upstream promises this release's code tolerates (the zero-downtime window). Not head.
    pub beyond: Vec<String>,
    /// With out-of-order allowed: files not recorded that sort before the current one (from a
    /// merged branch), pending, to run first.
    pub gaps: Vec<Revision>,
}

/// An applied file whose recorded checksum is an earlier upstream text of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revised {
    /// The file's revision.
    pub revision: Revision,
    /// The file's name, the same in the database and the files.
    pub file_name: String,
    /// Upstream's edit whose earlier text the database recorded.
    pub edit: &'static upstream::Edit,
}

impl Revised {
    /// Whether the earlier text left the schema different in `schema` (not `public`): then
    /// the revised file must run again.
    pub fn needs_rerun(&self, schema: Option<&str>) -> bool {
        self.edit.outside_public.is_some() && schema.is_some_and(|s| s != "public")
    }

    /// The note for `check`, `current` and `upgrade`.
    pub fn describe(&self, schema: Option<&str>) -> String {
        let e = self.edit;
        let mut s = format!(
            "{} {}: upstream revised this file in {}; your database has the earlier text (from {})",
            self.revision, self.file_name, e.revised_in, e.earlier_releases
        );
        match (&e.outside_public, self.needs_rerun(schema)) {
            (Some(o), true) => s.push_str(&format!(
                ". In schema `{}`, {}. Fix: `cargo procrastinate upgrade` runs the revised file again (it is \
                 idempotent) under the migration lock and records it; then `DROP {}` unless another installation \
                 in `public` uses it",
                schema.unwrap_or_default(),
                o.what,
                o.stray
            )),
            _ => s.push_str(", which gives the same schema: `upgrade` records the revised text"),
        }
        s
    }
}

impl Status {
    /// Compares the rows recorded for a set (`None`: no tracking table) with its files.
    pub fn compare(applied: Option<Vec<Applied>>, migrations: &[Migration]) -> Status {
        Status::compare_with(applied, migrations, false)
    }

    /// [`compare`](Self::compare); with `out_of_order`, a file that sorts before applied ones
    /// (from a merged branch) is pending ([`gaps`](Self::gaps)), not a divergence.
    pub fn compare_with(applied: Option<Vec<Applied>>, migrations: &[Migration], out_of_order: bool) -> Status {
        let tracked = applied.is_some();
        // A claim is a `-- no-transaction` migration still running (or abandoned): not applied.
        let applied: Vec<Applied> = applied.unwrap_or_default().into_iter().filter(|r| !r.checksum.starts_with(crate::tracking::CLAIM)).collect();
        let rows: HashMap<&str, &Applied> = applied.iter().map(|r| (r.file_name.as_str(), r)).collect();
        // One row per file, unless the table's primary key is gone.
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for r in &applied {
            *counts.entry(r.file_name.as_str()).or_default() += 1;
        }
        let mut duplicated: Vec<Divergence> = counts
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(f, n)| Divergence::Duplicated { file_name: f.to_string(), rows: *n })
            .collect();
        duplicated.sort_by_key(|a| a.to_string());
        let last = migrations.iter().rposition(|m| rows.contains_key(&*m.file_name));
        let current = last.map(|i| migrations[i].revision);
        let files: HashSet<&str> = migrations.iter().map(|m| &*m.file_name).collect();
        let key = |file: &str| name::parse(file).ok().map(|p| (p.version, p.serial));

        let mut renamed: HashMap<&str, &str> = HashMap::new(); // file -> recorded name
        let mut gone = Vec::new();
        let mut ahead = Vec::new();
        let last_file = migrations.last().map(|m| &*m.file_name);
        for row in applied.iter().filter(|r| !files.contains(r.file_name.as_str())) {
            // The same content under another name (a branch merge renamed it), else the same
            // release and serial.
            let unrecorded = |m: &&Migration| !rows.contains_key(&*m.file_name) && !renamed.contains_key(&*m.file_name);
            let twin = migrations
                .iter()
                .filter(unrecorded)
                .find(|m| m.matches(&row.checksum))
                .or_else(|| key(&row.file_name).and_then(|k| migrations.iter().filter(unrecorded).find(|m| key(&m.file_name) == Some(k))));
            match twin {
                Some(m) => {
                    renamed.insert(&m.file_name, &row.file_name);
                }
                _ if last_file.is_none_or(|l| row.file_name.as_bytes() > l.as_bytes()) => ahead.push(row.file_name.clone()),
                _ => gone.push(Divergence::Gone { revision: row.revision.clone(), file_name: row.file_name.clone() }),
            }
        }

        let mut divergences = duplicated;
        let mut revised = Vec::new();
        let mut gaps = Vec::new();
        for (i, m) in migrations.iter().enumerate() {
            if let Some(recorded) = renamed.get(&*m.file_name) {
                let same_checksum = applied.iter().any(|r| r.file_name == **recorded && m.matches(&r.checksum));
                divergences.push(Divergence::Renamed { recorded: recorded.to_string(), file_name: m.file_name.to_string(), same_checksum });
            } else if let Some(row) = rows.get(&*m.file_name) {
                if let Some(edit) = (!m.matches(&row.checksum)).then(|| upstream::edit_of(&m.file_name, &row.checksum)).flatten() {
                    revised.push(Revised { revision: m.revision, file_name: m.file_name.to_string(), edit });
                } else if !m.matches(&row.checksum) {
                    divergences.push(Divergence::Changed {
                        revision: m.revision,
                        file_name: m.file_name.to_string(),
                        recorded: row.checksum.clone(),
                        actual: m.checksum,
                    });
                }
            } else if let Some(last) = last.filter(|l| i < *l) {
                if out_of_order {
                    gaps.push(m.revision);
                    continue;
                }
                let before = migrations[i..].iter().find(|m| rows.contains_key(&*m.file_name)).expect("last is recorded");
                divergences.push(Divergence::Inserted {
                    file_name: m.file_name.to_string(),
                    before: before.file_name.to_string(),
                    last: migrations[last].file_name.to_string(),
                });
            }
        }
        divergences.extend(gone);
        let mut beyond = Vec::new();
        if !ahead.is_empty() {
            ahead.sort();
            // At head, with only the next release's pre beyond it: between that release's pre
            // and post, which an older build must live with.
            if last.is_some_and(|l| l + 1 == migrations.len()) && next_release_pre_only(migrations, &ahead) {
                beyond = ahead;
            } else {
                divergences.push(Divergence::Ahead { file_names: ahead });
            }
        }
        Status { tracked, applied, current, divergences, revised, beyond, gaps }
    }

    /// The files not yet applied after the current one, in order (see also
    /// [`gaps`](Self::gaps)).
    pub fn pending<'m>(&self, migrations: &'m [Migration]) -> &'m [Migration] {
        &migrations[self.current.map_or(0, |r| r.number() as usize)..]
    }

    /// The row recorded for a file, if any.
    pub fn row(&self, file_name: &str) -> Option<&Applied> {
        self.applied.iter().find(|row| row.file_name == file_name)
    }

    /// Recorded migrations the files lack after their last one (the database is newer).
    pub fn ahead(&self) -> &[String] {
        self.divergences
            .iter()
            .find_map(|d| match d {
                Divergence::Ahead { file_names } => Some(file_names.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// At the files' head, with nothing that disagrees, nothing beyond and no gap.
    pub fn at_head(&self, migrations: &[Migration]) -> bool {
        self.divergences.is_empty() && self.beyond.is_empty() && self.gaps.is_empty() && self.current == migrations.last().map(|m| m.revision)
    }
}

/// Whether `unknown` (recorded after the last file) are all `pre` migrations of one release
/// after the files' last: what upstream promises the files' release tolerates. The recorded
/// names decide, whatever markers the files carry: a build of 2.15 (no markers) runs on a
/// database with 3.0's `pre` applied, and a `post` beyond the head is never tolerated.
pub fn next_release_pre_only(migrations: &[Migration], unknown: &[String]) -> bool {
    let Some(head) = migrations.last().map(|m| m.version) else { return false };
    let parsed: Vec<_> = unknown.iter().map(|f| name::parse(f).ok()).collect();
    let Some(Some(first)) = parsed.first() else { return false };
    parsed.iter().all(|p| p.as_ref().is_some_and(|p| p.phase == crate::Phase::Pre && p.version == first.version && p.version > head))
}

/// Which applied migrations whose file changed since may be accepted by `upgrade`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AcceptChanged {
    /// Accept none: a changed file stops `upgrade` (the default).
    #[default]
    None,
    /// Every changed file (`--accept-changed all`).
    All,
    /// The files at these revisions.
    Only(Vec<Revision>),
}

impl AcceptChanged {
    /// Whether a changed file at revision `r` may be accepted.
    pub fn accepts(&self, r: Revision) -> bool {
        match self {
            AcceptChanged::None => false,
            AcceptChanged::All => true,
            AcceptChanged::Only(list) => list.contains(&r),
        }
    }
}

/// Why there is nothing to do for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The database and the files disagree; nothing may run until that is settled.
    Diverged(Vec<Divergence>),
    /// The target is below what is recorded.
    Backwards {
        /// The revision the database records.
        current: Revision,
        /// What was asked for (`None`: base).
        target: Option<Revision>,
    },
    /// A downgrade's target is not below what is recorded.
    NothingToUndo {
        /// The revision the database records (`None`: base).
        current: Option<Revision>,
        /// What was asked for.
        target: Option<Revision>,
    },
    /// A migration's down file still holds the line `new` writes.
    DownNotWritten {
        /// Its revision.
        revision: Revision,
        /// The migration's file.
        file_name: String,
    },
    /// A migration to undo has no down file.
    NoDown {
        /// Its revision.
        revision: Revision,
        /// Its file.
        file_name: String,
        /// Whether no file of the set has one (Procrastinate's, say).
        none_in_set: bool,
    },
}

/// The planner for `downgrade`: the migrations to undo, from the current one down to (not
/// including) `target`, in that order, each with its down file. A changed file (its recorded
/// checksum is not the file's) is a divergence unless `force`: the down file may not undo what
/// the earlier text did.
pub fn plan_downgrade<'m>(migrations: &'m [Migration], status: &Status, target: Option<Revision>, force: bool) -> Result<Vec<&'m Migration>, Refusal> {
    let blocking: Vec<Divergence> = status
        .divergences
        .iter()
        .filter(|d| !(force && matches!(d, Divergence::Changed { revision, .. } if Some(*revision) > target)))
        .cloned()
        .collect();
    if !blocking.is_empty() {
        return Err(Refusal::Diverged(blocking));
    }
    if status.current <= target {
        return Err(Refusal::NothingToUndo { current: status.current, target });
    }
    let from = target.map_or(0, |r| r.number() as usize);
    let to = status.current.map_or(0, |r| r.number() as usize);
    let undo: Vec<&Migration> = migrations[from..to].iter().rev().collect();
    if let Some(m) = undo.iter().find(|m| m.down.is_none()) {
        return Err(Refusal::NoDown { revision: m.revision, file_name: m.file_name.to_string(), none_in_set: migrations.iter().all(|m| m.down.is_none()) });
    }
    if let Some(m) = undo.iter().find(|m| m.down.as_deref().is_some_and(|d| d.lines().any(|l| l.trim() == crate::NOT_WRITTEN))) {
        return Err(Refusal::DownNotWritten { revision: m.revision, file_name: m.file_name.to_string() });
    }
    Ok(undo)
}

/// What `upgrade` does to one set: accept these changed files, record the revised text of
/// files upstream edited in place (running again those that need it), then run these
/// migrations.
#[derive(Debug)]
pub struct Plan<'m> {
    /// The accepted [`Divergence::Changed`] files: their rows take the file's checksum.
    pub accept: Vec<Divergence>,
    /// The files upstream revised in place that the database has the earlier text of.
    pub revised: Vec<Revised>,
    /// Files from a merged branch that sort before applied ones, to run first (out of order).
    pub gaps: Vec<&'m Migration>,
    /// The migrations to apply, in order.
    pub run: &'m [Migration],
}

/// The planner for `upgrade`: from a set's status to `target` (`None`: base).
pub fn plan_upgrade<'m>(
    migrations: &'m [Migration],
    status: &Status,
    target: Option<Revision>,
    accept: &AcceptChanged,
) -> Result<Plan<'m>, Refusal> {
    let (accepted, refused): (Vec<_>, Vec<_>) = status
        .divergences
        .iter()
        .cloned()
        .partition(|d| matches!(d, Divergence::Changed { revision, .. } if accept.accepts(*revision)));
    if !refused.is_empty() {
        return Err(Refusal::Diverged(refused));
    }
    if let Some(current) = status.current {
        if target < Some(current) {
            return Err(Refusal::Backwards { current, target });
        }
    }
    let from = status.current.map_or(0, |r| r.index() + 1);
    let to = target.map_or(0, |r| r.index() + 1);
    let gaps = status.gaps.iter().map(|r| &migrations[r.index()]).filter(|m| target.is_some_and(|t| m.revision <= t)).collect();
    Ok(Plan { accept: accepted, revised: status.revised.clone(), gaps, run: &migrations[from..to] })
}

/// The planner for `stamp`: the migrations to record without running them. With `purge`, what
/// is recorded is cleared first, so any target is allowed.
pub fn plan_stamp<'m>(
    migrations: &'m [Migration],
    status: &Status,
    target: Option<Revision>,
    purge: bool,
) -> Result<&'m [Migration], Refusal> {
    if purge {
        return Ok(&migrations[..target.map_or(0, |r| r.index() + 1)]);
    }
    plan_upgrade(migrations, status, target, &AcceptChanged::None).map(|p| p.run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MigrationSet;

    fn set(names: &[&str]) -> Vec<Migration> {
        let files = names.iter().map(|n| (n.to_string(), format!("SELECT '{n}';").into_bytes())).collect();
        MigrationSet::from_files("d".into(), files).unwrap().migrations
    }

    fn row(m: &Migration) -> Applied {
        Applied {
            set: String::new(),
            revision: m.revision.to_string(),
            file_name: m.file_name.to_string(),
            checksum: m.checksum.to_string(),
            applied_at: String::new(),
            duration_ms: None,
            applied_by: String::new(),
            stamped: false,
        }
    }

    const THREE: [&str; 3] = ["01.00.00_01_a.sql", "01.00.00_02_b.sql", "01.00.00_03_c.sql"];

    #[test]
    fn behind_is_not_divergent() {
        let ms = set(&THREE);
        let s = Status::compare(Some(vec![row(&ms[0])]), &ms);
        assert_eq!(s.current, Some(Revision::new(1)));
        assert!(s.divergences.is_empty());
        assert_eq!(s.pending(&ms).len(), 2);
        assert!(!s.at_head(&ms));
        assert_eq!(Status::compare(None, &ms).pending(&ms).len(), 3);
        let plan = plan_upgrade(&ms, &s, Some(Revision::new(3)), &AcceptChanged::None).unwrap();
        assert_eq!(plan.run.len(), 2);
        assert_eq!(plan_upgrade(&ms, &s, None, &AcceptChanged::None).unwrap_err(), Refusal::Backwards { current: Revision::new(1), target: None });
    }

    #[test]
    fn an_inserted_file_is_one_line_naming_both_files() {
        let old = set(&["01.00.00_01_a.sql", "01.00.00_03_c.sql"]);
        let new = set(&THREE);
        let s = Status::compare(Some(old.iter().map(row).collect()), &new);
        assert_eq!(s.divergences.len(), 1, "{:?}", s.divergences);
        let line = s.divergences[0].to_string();
        assert!(line.starts_with("`01.00.00_02_b.sql` sorts before the applied `01.00.00_03_c.sql`"), "{line}");
        assert_eq!(s.current, Some(Revision::new(3)));
        assert!(matches!(plan_upgrade(&new, &s, Some(Revision::new(3)), &AcceptChanged::All), Err(Refusal::Diverged(_))));
    }

    #[test]
    fn a_file_added_last_is_pending() {
        let old = set(&THREE[..2]);
        let new = set(&THREE);
        let s = Status::compare(Some(old.iter().map(row).collect()), &new);
        assert!(s.divergences.is_empty(), "{:?}", s.divergences);
        assert_eq!(s.pending(&new).iter().map(|m| m.file_name.to_string()).collect::<Vec<_>>(), [THREE[2]]);
    }

    #[test]
    fn gone_renamed_changed_and_ahead() {
        let ms = set(&THREE);
        let mut rows: Vec<Applied> = ms.iter().map(row).collect();
        rows[2].checksum = "00".repeat(32);
        let s = Status::compare(Some(rows.clone()), &ms[..2]);
        assert_eq!(s.divergences, [Divergence::Ahead { file_names: vec![THREE[2].into()] }]);
        assert!(!s.at_head(&ms[..2]));
        assert_eq!(s.ahead(), [THREE[2].to_string()]);
        let s = Status::compare(Some(rows.clone()), &ms);
        assert_eq!(s.divergences.len(), 1);
        assert!(s.divergences[0].to_string().contains("--accept-changed 0003"));
        let accepted = plan_upgrade(&ms, &s, Some(Revision::new(3)), &AcceptChanged::Only(vec![Revision::new(3)])).unwrap();
        assert_eq!((accepted.accept.len(), accepted.run.len()), (1, 0));

        let without_b = set(&[THREE[0], THREE[2]]);
        let s = Status::compare(Some(ms.iter().map(row).collect()), &without_b);
        assert_eq!(s.divergences, [Divergence::Gone { revision: "0002".into(), file_name: THREE[1].into() }]);
        assert!(s.divergences[0].to_string().contains("its file is gone"));

        let renamed = set(&[THREE[0], "01.00.00_02_bee.sql", THREE[2]]);
        let s = Status::compare(Some(ms.iter().map(row).collect()), &renamed);
        assert_eq!(s.divergences.len(), 1, "{:?}", s.divergences);
        assert_eq!(s.divergences[0].kind(), "renamed");
    }

    #[test]
    fn stamp_plans() {
        let ms = set(&THREE);
        let s = Status::compare(Some(vec![row(&ms[0]), row(&ms[1])]), &ms);
        assert_eq!(plan_stamp(&ms, &s, Some(Revision::new(3)), false).unwrap().len(), 1);
        assert!(plan_stamp(&ms, &s, Some(Revision::new(1)), false).is_err());
        assert_eq!(plan_stamp(&ms, &s, Some(Revision::new(1)), true).unwrap().len(), 1);
    }
}
