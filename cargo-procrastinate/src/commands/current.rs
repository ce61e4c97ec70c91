//! `current`: where each set of the database stands.

use super::Ctx;
use crate::json;
use crate::{exit, Failure};
use procrastinate_migrations::db::Status;

pub(super) fn run(ctx: &mut Ctx) -> Result<i32, Failure> {
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    let mut all_at_head = true;
    for i in ctx.selected() {
        let status = ctx.status(&mut client, i)?;
        let unadopted = ctx.unadopted(&mut client, i, &status)?;
        let untold = ctx.untold(&mut client, i, &status)?;
        let l = &ctx.sets[i];
        for d in status.divergences.iter().filter(|d| d.kind() != "ahead") {
            ctx.log(&format!("warning: {}{}", ctx.prefix(i), d.display_in(ctx.set_name(i))));
        }
        for r in &status.revised {
            ctx.log(&format!("note: {}{}", ctx.prefix(i), r.describe(l.options.schema.as_deref())));
        }
        let at_head = status.at_head(&l.set.migrations);
        all_at_head &= at_head;
        let rev = status.current.map_or_else(|| "base".to_string(), |r| r.to_string());
        let state = match (&untold, unadopted.is_empty()) {
            (Some((line, _)), _) => format!("base ({line})"),
            (None, true) => describe(&status, at_head, &l.options.table.to_string(), &rev),
            (None, false) => format!("base ({})", unadopted_line(&unadopted, &ctx.set_flag(i))),
        };
        lines.push(match (&l.options.set, ctx.multi()) {
            (Some(name), true) => format!("{name} {state}"),
            _ => state,
        });
        sets.push(json::Current {
            id: ctx.set_id(i),
            current: json::rev(status.current),
            at_head,
            ahead: status.ahead().to_vec(),
            beyond: status.beyond.clone(),
            tracking_table: l.options.table.to_string(),
            divergences: ctx.divergences_json(i, &status),
            unadopted,
            other_sets: untold.map(|(line, _)| line),
        });
    }
    ctx.print_sets(
        "current",
        &lines.join("\n"),
        &json::AtHead {
            at_head: all_at_head,
        },
        &sets,
    );
    Ok(exit::OK)
}

/// What `current`, `check` and `plan` say of a set with nothing recorded whose objects exist.
pub(super) fn unadopted_line(found: &[String], set_flag: &str) -> String {
    format!(
        "nothing recorded, but the set's objects exist ({}): the database was built without this tool (schema.sql, \
         Django, Alembic, by hand); adopt it with `cargo procrastinate stamp{set_flag} --detect`, not `upgrade`",
        found.join(", ")
    )
}

/// `0038 (head)`, `0036`, `0036, ahead of the files by 2: ...`, `base (nothing recorded)`.
fn describe(status: &Status, at_head: bool, table: &str, rev: &str) -> String {
    let ahead = status.ahead();
    if !ahead.is_empty() {
        let names: Vec<&str> = ahead.iter().map(String::as_str).collect();
        return format!("{rev}, and ahead of the files by {}: {} (not head; files of an older release?)", ahead.len(), names.join(", "));
    }
    if !status.beyond.is_empty() {
        return format!(
            "{rev} (the files' head), and beyond it the next release's pre migrations: {} (not head; fine for these files until that release's post)",
            status.beyond.join(", ")
        );
    }
    match status.current {
        Some(_) if at_head => format!("{rev} (head)"),
        Some(_) => rev.to_string(),
        None if !status.tracked => format!("base (nothing recorded: no table {table})"),
        None => "base (nothing recorded)".to_string(),
    }
}
