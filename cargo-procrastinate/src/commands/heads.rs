//! `heads`: the last file of each set.

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
