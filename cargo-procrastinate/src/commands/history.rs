//! `history` and `pending`: each file of the selected sets with the state recorded for it.

use super::Ctx;
use crate::{exit, json, Failure};
use procrastinate_migrations::db::{self, Status};
use procrastinate_migrations::range::{Point, Range};
use procrastinate_migrations::Revision;

pub(super) fn run(ctx: &mut Ctx, range_text: &str, verbose: bool) -> Result<i32, Failure> {
    let (selected, bare) = ctx.sets_for(range_text)?;
    let range: Range = bare.parse().map_err(Failure::usage)?;
    let needs_db = range.from == Point::Current || range.to == Point::Current;
    let mut client = match ctx.session()? {
        Some(client) => Some(client),
        None if needs_db => return Err(ctx.no_database()),
        None => {
            ctx.log("(no database configured: showing the files only)");
            None
        }
    };
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for i in selected {
        let l = &ctx.sets[i];
        let status: Option<Status> = match &mut client {
            Some(c) => Some(db::status(c, &l.set.migrations, &l.options)?),
            None => None,
        };
        let current = status.as_ref().and_then(|s| s.current);
        let head = l.head();
        let (from, to) = range
            .resolve(head, Some(current.map_or(0, Revision::number)))
            .map_err(|e| Failure::usage(format!("{}{e}", ctx.prefix(i))))?;
        let mut rows = Vec::new();
        let before = lines.len();
        for m in l.set.migrations.iter().filter(|m| m.revision.number() > from && m.revision.number() <= to) {
            // The state recorded for this file, found by its name: never inferred from a position.
            let row = status.as_ref().and_then(|s| s.row(&m.file_name));
            let state = match (&status, row) {
                (None, _) => "?",
                (Some(_), Some(r)) if r.stamped => "stamped",
                (Some(_), Some(_)) => "applied",
                (Some(_), None) => "pending",
            };
            let mut marks = Vec::new();
            if Some(m.revision) == current {
                marks.push("current");
            }
            if m.revision == head {
                marks.push("head");
            }
            let marks = if marks.is_empty() { String::new() } else { format!(" ({})", marks.join(", ")) };
            let mut line = format!("{} {:<8} {:<8} {}{marks}", ctx.label(i, Some(m.revision)), m.phase, state, m.file_name);
            if verbose {
                line.push_str(&format!("\n     sha256 {}", m.checksum));
                if let Some(r) = row {
                    let took = r.duration_ms.map(|d| format!(" in {d} ms")).unwrap_or_default();
                    line.push_str(&format!("\n     {} {} by {}{took}", state, r.applied_at, r.applied_by));
                    if !m.matches(&r.checksum) {
                        line.push_str(&format!("\n     CHANGED since applied: recorded sha256 {}", r.checksum));
                    }
                }
            }
            lines.push(line);
            rows.push(json::HistoryRow {
                revision: m.revision.to_string(),
                file_name: m.file_name.to_string(),
                version: m.version.to_string(),
                serial: m.serial,
                phase: m.phase.as_str(),
                description: m.description.to_string(),
                checksum: m.checksum.to_string(),
                state: state.to_string(),
                applied_at: row.map(|r| r.applied_at.clone()),
                applied_by: row.map(|r| r.applied_by.clone()),
                duration_ms: row.and_then(|r| r.duration_ms),
                recorded_checksum: row.map(|r| r.checksum.clone()),
            });
        }
        // What the database records for files that are not there (deleted, renamed, or newer).
        let orphans: Vec<&db::Applied> = status
            .as_ref()
            .map(|s| s.applied.iter().filter(|r| !l.set.migrations.iter().any(|m| m.file_name == r.file_name)).collect())
            .unwrap_or_default();
        if range.to == Point::Head {
            let set = ctx.set_name(i).map(|s| format!("{s}@")).unwrap_or_default();
            for r in &orphans {
                lines.push(format!("{set}{} recorded (no such file) {}", r.revision, r.file_name));
            }
        }
        if lines.len() == before {
            lines.push(format!("{}(nothing in range {range})", ctx.prefix(i)));
        }
        let recorded_without_file = orphans
            .iter()
            .map(|r| json::Orphan {
                revision: r.revision.clone(),
                file_name: r.file_name.clone(),
            })
            .collect();
        sets.push(json::History {
            id: ctx.set_id(i),
            current: json::rev(current),
            migrations: rows,
            recorded_without_file,
        });
    }
    ctx.print_sets("history", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}
