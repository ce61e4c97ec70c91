//! `heads`: the last file of each set; `show`: one file, its metadata and its SQL.

use super::Ctx;
use crate::{exit, json, Failure};

pub(super) fn run(ctx: &Ctx) -> Result<i32, Failure> {
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for i in ctx.selected() {
        let l = &ctx.sets[i];
        let head = l.set.migrations.last().expect("a set is never empty");
        lines.push(format!(
            "{} (head) {}",
            ctx.label(i, Some(head.revision)),
            head.file_name
        ));
        sets.push(json::Head {
            id: ctx.set_id(i),
            file_name: head.file_name.to_string(),
        });
    }
    ctx.print_sets("heads", &lines.join("\n"), &(), &sets);
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
