//! `heads`: the last file of each set; `show`: one file, its metadata and its SQL.

use super::Ctx;
use crate::{exit, json, Failure};

pub(super) fn run(ctx: &mut Ctx) -> Result<i32, Failure> {
    // With a database configured, where each set stands against its files; one that cannot be
    // reached leaves the files' heads to show.
    let mut client = match ctx.session() {
        Ok(client) => client,
        Err(f) => {
            ctx.log(&format!("warning: {} (the files' heads only)", f.message));
            None
        }
    };
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for i in ctx.selected() {
        let status = client.as_mut().map(|c| ctx.status(c, i)).transpose()?;
        let l = &ctx.sets[i];
        let head = l.set.migrations.last().expect("a set is never empty");
        let mut line = format!("{} (head) {}", ctx.label(i, Some(head.revision)), head.file_name);
        let database = status.as_ref().map(|s| {
            let pending = s.gaps.len() + s.pending(&l.set.migrations).len();
            let state = if !s.divergences.is_empty() {
                "diverged"
            } else if pending > 0 {
                "behind"
            } else if !s.beyond.is_empty() {
                "beyond"
            } else {
                "at_head"
            };
            // A second line only when the database is not at this head.
            match state {
                "diverged" => line.push_str(&format!("\n  the database diverges from the files ({} to settle):", s.divergences.len())),
                "behind" => line.push_str(&format!("\n  the database is at {}, {pending} pending", ctx.label(i, s.current))),
                "beyond" => line.push_str(&format!("\n  the database is beyond it: {}", s.beyond.join(", "))),
                _ => {}
            }
            json::HeadDatabase { state, current: json::rev(s.current), pending, divergences: ctx.divergences_json(i, s) }
        });
        lines.push(line);
        if let Some(s) = &status {
            lines.extend(s.divergences.iter().map(|d| format!("    {}", d.display_in(ctx.set_name(i)))));
        }
        sets.push(json::Head { id: ctx.set_id(i), file_name: head.file_name.to_string(), database });
    }
    ctx.print_sets("heads", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}

/// `repair`: records the new names of files renamed since they were applied (same checksum).
pub(super) fn repair(ctx: &mut Ctx) -> Result<i32, Failure> {
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for i in ctx.selected() {
        let l = &ctx.sets[i];
        let renamed = procrastinate_migrations::db::repair(&mut client, &l.set.migrations, &l.options)?;
        if renamed.is_empty() {
            lines.push(format!("{}nothing to repair: no applied file was renamed", ctx.prefix(i)));
        }
        for (from, to) in &renamed {
            lines.push(format!("{}recorded `{from}` as `{to}` (the same checksum)", ctx.prefix(i)));
        }
        let after = ctx.status(&mut client, i)?;
        for d in &after.divergences {
            lines.push(format!("  still: {}", d.display_in(ctx.set_name(i))));
        }
        sets.push(json::Repair {
            id: ctx.set_id(i),
            renamed: renamed.into_iter().map(|(recorded, now)| json::Renamed { recorded, now }).collect(),
            divergences: ctx.divergences_json(i, &after),
        });
    }
    ctx.print_sets("repair", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}

pub(super) fn show(ctx: &Ctx, rev: &str) -> Result<i32, Failure> {
    let targets = ctx.targets(rev)?;
    let [(i, point)] = targets.as_slice() else {
        return Err(Failure::usage(format!("`{rev}` names several sets' revisions: name one, e.g. NAME@{rev}")));
    };
    let l = &ctx.sets[*i];
    let Some(r) = ctx.resolve(*i, *point, None)? else {
        return Err(Failure::usage("`base` is before the first migration: name a revision"));
    };
    let m = &l.set.migrations[r.index()];
    let path = l.set.dir.join(&*m.file_name);
    let human = format!(
        "-- revision {}: {}\n-- release {}, phase {}, sha256 {}\n-- {}\n{}",
        ctx.label(*i, Some(r)),
        m.file_name,
        m.version.human(),
        m.phase,
        m.checksum,
        path.display(),
        m.sql
    );
    if ctx.json {
        json::emit(
            "show",
            &json::Show {
                id: ctx.set_id(*i),
                revision: r.to_string(),
                file_name: m.file_name.to_string(),
                version: m.version.human(),
                phase: m.phase.as_str(),
                checksum: m.checksum.to_string(),
                path: path.display().to_string(),
                sql: m.sql.to_string(),
            },
        );
    } else {
        crate::term::data(&human);
        if !human.ends_with('\n') {
            crate::term::data("\n");
        }
    }
    Ok(exit::OK)
}
