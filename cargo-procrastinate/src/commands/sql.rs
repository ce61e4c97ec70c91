//! `sql`: the psql script that `upgrade` would run, for every selected set in order.

use procrastinate_migrations::range::Range;
use procrastinate_migrations::script::{self, Part};
use procrastinate_migrations::{db, Revision};

use std::io::Write;

use super::Ctx;
use crate::{exit, Failure};

pub(super) fn run(ctx: &mut Ctx, offline: bool, range: Option<String>, from: Option<String>, dry_run: bool, down: bool) -> Result<i32, Failure> {
    let range_text = match (range, from) {
        (Some(r), _) => r,
        (None, Some(f)) => format!("{f}:head"),
        (None, None) if offline => "base:head".to_string(),
        (None, None) => "current:head".to_string(),
    };
    let (selected, bare) = ctx.sets_for(&range_text)?;
    let range: Range = bare.parse().map_err(Failure::usage)?;
    let mut client = if offline { None } else { Some(ctx.client()?) };
    let mut bounds = Vec::new();
    for i in selected {
        let current = match &mut client {
            Some(c) => Some(ctx.status(c, i)?.current.map_or(0, Revision::number)),
            None => None,
        };
        let (from, to) = range.resolve(ctx.sets[i].head(), current).map_err(|e| {
            if offline && e.contains("needs a database") {
                Failure::usage("`current` needs a database: with --offline give a revision, e.g. `sql --offline 0029:head` or `--from 0029`")
            } else {
                Failure::usage(format!("{}{e}", ctx.prefix(i)))
            }
        })?;
        bounds.push((i, from, to));
    }
    if dry_run {
        // What the script would hold, one migration a line (JSON: per set), and no script.
        let mut lines = Vec::new();
        let mut sets = Vec::new();
        for &(i, from, to) in &bounds {
            let run = &ctx.sets[i].set.migrations[from as usize..to as usize];
            lines.extend(run.iter().map(|m| format!("{} {:<8} {}", ctx.label(i, Some(m.revision)), m.phase, m.file_name)));
            sets.push(crate::json::SqlDryRun {
                id: ctx.set_id(i),
                migrations: run.iter().map(|m| crate::json::Planned { revision: m.revision.to_string(), file_name: m.file_name.to_string(), phase: m.phase.as_str() }).collect(),
            });
        }
        if lines.is_empty() {
            ctx.log("nothing in that range: the script would hold no migration");
        }
        ctx.print_sets("sql", &lines.join("\n"), &(), &sets);
        return Ok(exit::OK);
    }
    // A file `new` wrote and nobody filled in never goes into a script.
    for &(i, from, to) in &bounds {
        let l = &ctx.sets[i];
        for m in &l.set.migrations[from as usize..to as usize] {
            let unwritten = if down { m.down.as_deref().is_some_and(|d| d.lines().any(|x| x.trim() == procrastinate_migrations::NOT_WRITTEN)) } else { m.not_written() };
            if down && m.down.is_none() {
                return Err(db::Error::refused(
                    procrastinate_migrations::state::Refusal::NoDown { revision: m.revision, file_name: m.file_name.to_string(), none_in_set: l.set.migrations.iter().all(|m| m.down.is_none()) },
                    &l.options,
                )
                .into());
            }
            if unwritten {
                return Err(Failure::usage(format!(
                    "{} {} is not written yet (it still holds `{}`): write it first",
                    ctx.label(i, Some(m.revision)),
                    m.file_name,
                    procrastinate_migrations::NOT_WRITTEN
                )));
            }
        }
    }
    let multi = ctx.multi();
    let parts: Vec<Part<'_>> = bounds
        .into_iter()
        .map(|(i, from, to)| {
            let l = &ctx.sets[i];
            Part {
                migrations: &l.set.migrations,
                from,
                to,
                table: &l.options.table,
                set_name: l.options.set_name(),
                label: l.options.set.as_deref().filter(|_| multi),
                claim_unnamed: l.options.claim_unnamed,
                schema: l.options.schema.as_deref(),
            }
        })
        .collect();
    // Streamed: memory stays at one migration's text. A reader that closes the pipe early
    // (`| head`) has what it wanted: that is not a failure.
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let render = if down { script::write_down } else { script::write };
    let written = render(&parts, &range_text, &mut |chunk| out.write_all(chunk.as_bytes())).and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(exit::OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(exit::OK),
        Err(e) => Err(Failure::new(exit::FAILED, format!("cannot write the script: {e}"))),
    }
}
