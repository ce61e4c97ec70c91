//! `downgrade`: undo migrations that have down files, last first (`db::downgrade`, the planner
//! `state::plan_downgrade`). A set whose files have no down files keeps the refusal, naming it.

use procrastinate_migrations::db;
use procrastinate_migrations::Revision;

use super::Ctx;
use crate::{exit, json, Failure};

pub(super) fn run(ctx: &mut Ctx, text: &str, force: bool, dry_run: bool) -> Result<i32, Failure> {
    // `NAME@-1`, `-1`, `0002`, `base`: the set, then how far down.
    let (sets, rest) = match text.split_once('@') {
        Some((name, rest)) => (vec![ctx.find_set(name.trim())?], rest.trim().to_string()),
        None if ctx.sets.len() > 1 && ctx.only.is_none() => {
            let names: Vec<&str> = ctx.sets.iter().filter_map(|l| l.options.set.as_deref()).collect();
            return Err(Failure::usage(format!(
                "`downgrade {text}` with several sets: name the set, e.g. `downgrade {}@{text}`, or pass --set NAME",
                names.last().copied().unwrap_or("app")
            )));
        }
        None => (ctx.selected(), text.trim().to_string()),
    };
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut out = Vec::new();
    for i in sets {
        let status = ctx.status(&mut client, i)?;
        let current = status.current.map_or(0, Revision::number);
        let target = match rest.as_str() {
            "base" => None,
            back if back.starts_with('-') => {
                let n: u32 = back[1..].parse().ok().filter(|n| *n >= 1).ok_or_else(|| Failure::usage(format!("`{back}` is not -N (N >= 1)")))?;
                (current > n).then(|| Revision::new(current - n))
            }
            rev => ctx.resolve(i, rev.parse().map_err(Failure::usage)?, status.current)?,
        };
        let l = &ctx.sets[i];
        let p = ctx.prefix(i);
        if dry_run {
            let undo = procrastinate_migrations::state::plan_downgrade(&l.set.migrations, &status, target, force).map_err(|r| Failure::from(db::Error::refused(r, &l.options)))?;
            lines.extend(undo.iter().map(|m| format!("{p}would undo {} {} (runs {}{})", ctx.label(i, Some(m.revision)), m.file_name, m.file_name.trim_end_matches(".sql"), procrastinate_migrations::DOWN_SUFFIX)));
            lines.push(format!("{p}dry run: would downgrade {} -> {}; nothing was changed", ctx.label(i, status.current), ctx.label(i, target)));
            out.push(json::Downgrade { id: ctx.set_id(i), dry_run: true, from: json::rev(status.current), to: json::rev(target), reverted: undo.iter().map(|m| m.revision.to_string()).collect() });
            continue;
        }
        let label = |r: Revision| ctx.label(i, Some(r));
        let report = db::downgrade(&mut client, &l.set.migrations, target, force, &l.options, &mut |m, took| {
            crate::term::log(&format!("undone {} {} in {} ms", label(m.revision), m.file_name, took.as_millis()));
        })?;
        ctx.log(&format!("downgraded {} -> {}", ctx.label(i, report.from), ctx.label(i, report.to)));
        out.push(json::Downgrade {
            id: ctx.set_id(i),
            dry_run: false,
            from: json::rev(report.from),
            to: json::rev(report.to),
            reverted: report.reverted.iter().map(ToString::to_string).collect(),
        });
    }
    ctx.print_sets("downgrade", &lines.join("\n"), &(), &out);
    Ok(exit::OK)
}
