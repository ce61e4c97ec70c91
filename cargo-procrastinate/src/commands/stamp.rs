//! `stamp`: record a revision of each selected set without running any SQL.

use procrastinate_migrations::db;
use serde_json::{Map, Value};

use super::{rev_json, set_json, Ctx};
use crate::{exit, Failure};

pub(super) fn run(ctx: &mut Ctx, target: &str, purge: bool) -> Result<i32, Failure> {
    let targets = ctx.targets(target)?;
    if purge && targets.iter().any(|(_, p)| *p == procrastinate_migrations::range::Point::Current) {
        return Err(Failure::usage("`stamp --purge current` would record nothing: name the revision to record"));
    }
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for (i, point) in targets {
        let status = ctx.status(&mut client, i)?;
        let target = ctx.resolve(i, point, if purge { None } else { status.current })?;
        let l = &ctx.sets[i];
        let after = db::stamp(&mut client, &l.set.migrations, target, purge, &l.options)?;
        lines.push(format!("stamped {}{}", ctx.label(i, after.current), if purge { " (records purged first)" } else { "" }));
        let mut obj = set_json(l);
        obj.insert("current".into(), rev_json(after.current));
        obj.insert("purged".into(), Value::Bool(purge));
        sets.push(Value::Object(obj));
    }
    ctx.print_sets(&lines.join("\n"), Map::new(), sets);
    Ok(exit::OK)
}
