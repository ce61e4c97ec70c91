//! What the tracking table says, and how it compares with the files.

use std::fmt;

use postgres::SimpleQueryMessage;

use super::{db_err, Error};
use crate::migration::{Checksum, Migration, Revision};
use crate::tracking::{quote_literal, TrackingTable};

/// One row of the tracking table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// As stored; not necessarily a revision of the current files.
    pub revision: String,
    pub file_name: String,
    pub checksum: String,
    /// UTC, RFC 3339.
    pub applied_at: String,
    pub duration_ms: Option<i64>,
    pub applied_by: String,
    pub stamped: bool,
}

impl Applied {
    /// The stored revision, if it is one (`0030`; a hand-written `30` counts too).
    pub fn revision(&self) -> Option<Revision> {
        self.revision.parse().ok()
    }
}

/// How the database differs from the files, beyond simply being behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// The database records a revision the files do not have.
    Unknown { revision: String, file_name: String },
    /// Same revision, different file: the set was reordered or a file was inserted before it.
    Renamed { revision: Revision, recorded: String, file_name: String },
    /// The file changed after it was applied.
    Changed { revision: Revision, file_name: String, recorded: String, actual: Checksum },
    /// A revision is missing below one that is recorded.
    Missing { revision: Revision, file_name: String },
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Divergence::Unknown { revision, file_name } => write!(
                f,
                "{revision} ({file_name}) is recorded in the database but is not in the migration files \
                 (files from a newer release, or the wrong `migrations` directory?)"
            ),
            Divergence::Renamed { revision, recorded, file_name } => write!(
                f,
                "{revision} was applied from {recorded} but that revision is now {file_name} (files inserted or renamed?)"
            ),
            Divergence::Changed { revision, file_name, recorded, actual } => write!(
                f,
                "{revision} {file_name} changed after it was applied (recorded sha256 {recorded}, file has {actual}); \
                 review the change, then accept it with `upgrade --accept-changed {revision}`"
            ),
            Divergence::Missing { revision, file_name } => write!(
                f,
                "{revision} {file_name} is not recorded although later revisions are"
            ),
        }
    }
}

/// The database against the files.
#[derive(Clone, Debug)]
pub struct Status {
    /// Whether the tracking table exists at all.
    pub tracked: bool,
    pub applied: Vec<Applied>,
    /// Highest recorded revision that the files also have; `None` is base.
    pub current: Option<Revision>,
    pub divergences: Vec<Divergence>,
}

impl Status {
    pub fn compare(applied: Option<Vec<Applied>>, migrations: &[Migration]) -> Status {
        let tracked = applied.is_some();
        let applied = applied.unwrap_or_default();
        let mut divergences = Vec::new();
        let mut current: Option<Revision> = None;
        for row in &applied {
            let known = row.revision().and_then(|r| migrations.get(r.index()));
            let Some(m) = known else {
                divergences.push(Divergence::Unknown { revision: row.revision.clone(), file_name: row.file_name.clone() });
                continue;
            };
            current = current.max(Some(m.revision));
            if row.file_name != m.file_name {
                divergences.push(Divergence::Renamed {
                    revision: m.revision,
                    recorded: row.file_name.clone(),
                    file_name: m.file_name.to_string(),
                });
            } else if row.checksum != m.checksum.to_string() {
                divergences.push(Divergence::Changed {
                    revision: m.revision,
                    file_name: m.file_name.to_string(),
                    recorded: row.checksum.clone(),
                    actual: m.checksum,
                });
            }
        }
        if let Some(current) = current {
            for m in &migrations[..current.index()] {
                if !applied.iter().any(|row| row.revision() == Some(m.revision)) {
                    divergences.push(Divergence::Missing { revision: m.revision, file_name: m.file_name.to_string() });
                }
            }
        }
        Status { tracked, applied, current, divergences }
    }

    pub fn pending<'m>(&self, migrations: &'m [Migration]) -> &'m [Migration] {
        &migrations[self.current.map_or(0, |r| r.number() as usize)..]
    }

    pub fn row(&self, revision: Revision) -> Option<&Applied> {
        self.applied.iter().find(|row| row.revision() == Some(revision))
    }
}

/// `None` when the tracking table does not exist yet.
pub(super) fn read_applied(tx: &mut postgres::Transaction<'_>, table: &TrackingTable) -> Result<Option<Vec<Applied>>, Error> {
    let exists = simple_rows(tx, &format!("SELECT to_regclass({}) IS NOT NULL", quote_literal(&table.sql())))
        .map_err(db_err(format!("cannot look for the tracking table {table}")))?;
    if exists.first().and_then(|r| r.first()).and_then(|v| v.as_deref()) != Some("t") {
        return Ok(None);
    }
    let rows = simple_rows(
        tx,
        &format!(
            "SELECT revision, file_name, checksum, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             duration_ms, applied_by, stamped FROM {} ORDER BY revision",
            table.sql()
        ),
    )
    .map_err(db_err(format!("cannot read the tracking table {table}")))?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(Some(
        rows.into_iter()
            .map(|r| Applied {
                revision: text(&r[0]),
                file_name: text(&r[1]),
                checksum: text(&r[2]),
                applied_at: text(&r[3]),
                duration_ms: r[4].as_deref().and_then(|d| d.parse().ok()),
                applied_by: text(&r[5]),
                stamped: r[6].as_deref() == Some("t"),
            })
            .collect(),
    ))
}

/// Rows of a simple query as text (the simple protocol is what PgBouncer pools safely).
pub(super) fn simple_rows(tx: &mut postgres::Transaction<'_>, sql: &str) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    Ok(tx
        .simple_query(sql)?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MigrationSet;

    fn set() -> Vec<Migration> {
        let files = (1..=3).map(|i| (format!("01.00.00_0{i}_m.sql"), format!("SELECT {i};").into_bytes())).collect();
        MigrationSet::from_files("d".into(), files).unwrap().migrations
    }

    fn row(m: &Migration) -> Applied {
        Applied {
            revision: m.revision.to_string(),
            file_name: m.file_name.to_string(),
            checksum: m.checksum.to_string(),
            applied_at: String::new(),
            duration_ms: None,
            applied_by: String::new(),
            stamped: false,
        }
    }

    #[test]
    fn behind_is_not_divergent() {
        let ms = set();
        let s = Status::compare(Some(vec![row(&ms[0])]), &ms);
        assert_eq!(s.current, Some(Revision::new(1)));
        assert!(s.divergences.is_empty());
        assert_eq!(s.pending(&ms).len(), 2);
        assert_eq!(Status::compare(None, &ms).pending(&ms).len(), 3);
    }

    #[test]
    fn every_kind_of_divergence() {
        let ms = set();
        let mut changed = row(&ms[2]);
        changed.checksum = "00".repeat(32);
        let mut renamed = row(&ms[1]);
        renamed.file_name = "01.00.00_02_old.sql".into();
        let unknown = Applied { revision: "0009".into(), ..row(&ms[0]) };
        let s = Status::compare(Some(vec![renamed, changed, unknown]), &ms);
        let kinds: Vec<String> = s.divergences.iter().map(|d| format!("{d:?}").split(' ').next().unwrap().to_string()).collect();
        assert_eq!(kinds, ["Renamed", "Changed", "Unknown", "Missing"]);
        assert_eq!(s.current, Some(Revision::new(3)));
        assert!(s.divergences[1].to_string().contains("--accept-changed 0003"));
    }
}
