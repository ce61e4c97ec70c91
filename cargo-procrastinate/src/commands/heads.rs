//! `heads`: the last file of each set; `show`: one file, its metadata and its SQL.

use serde_json::{Map, Value};

use super::{set_json, Ctx};
use crate::{exit, Failure};

pub(super) fn run(ctx: &Ctx) -> Result<i32, Failure> {
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for i in ctx.selected() {
        let l = &ctx.sets[i];
        let head = l.set.migrations.last().expect("a set is never empty");
        lines.push(format!("{} (head) {}", ctx.label(i, Some(head.revision)), head.file_name));
        let mut obj = set_json(l);
        obj.insert("file_name".into(), Value::String(head.file_name.to_string()));
        sets.push(Value::Object(obj));
    }
    ctx.print_sets(&lines.join("\n"), Map::new(), sets);
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
    let mut obj = set_json(l);
    obj.insert("revision".into(), Value::String(r.to_string()));
    obj.insert("file_name".into(), Value::String(m.file_name.to_string()));
    obj.insert("version".into(), Value::String(m.version.human()));
    obj.insert("phase".into(), Value::String(m.phase.as_str().into()));
    obj.insert("checksum".into(), Value::String(m.checksum.to_string()));
    obj.insert("path".into(), Value::String(path.display().to_string()));
    obj.insert("sql".into(), Value::String(m.sql.to_string()));
    if ctx.json {
        println!("{}", Value::Object(obj));
    } else {
        print!("{human}");
        if !human.ends_with('\n') {
            println!();
        }
    }
    Ok(exit::OK)
}
