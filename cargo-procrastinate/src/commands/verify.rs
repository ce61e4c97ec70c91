//! `verify`: apply a set to a scratch database and compare its catalog with a reference
//! `schema.sql` (the vendored one beside the set, by default).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{set_json, Ctx};
use crate::scratchpad::Scratchpad;
use crate::{connect, exit, Failure};

/// Where `vendor` puts a release's `schema.sql`, inside the set's directory.
pub(super) const REFERENCE: &str = "reference/schema.sql";

pub(super) fn run(ctx: &mut Ctx, schema_sql: Option<&Path>, server: Option<&str>) -> Result<i32, Failure> {
    let selected = ctx.selected();
    if schema_sql.is_some() && selected.len() > 1 {
        return Err(Failure::usage("--schema-sql is the reference of one set: add --set NAME"));
    }
    let server = server.map(|url| connect::parse(url, &|_| None)).transpose()?;
    let mut pad = Scratchpad::new(server);
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    let mut code = exit::OK;
    for i in selected.iter().copied() {
        let l = &ctx.sets[i];
        let reference: PathBuf = match schema_sql {
            Some(f) => f.to_path_buf(),
            None => l.set.dir.join(REFERENCE),
        };
        if !reference.is_file() {
            if selected.len() == 1 {
                return Err(Failure::usage(format!(
                    "{}no reference schema: {} does not exist; vendor a release (`cargo procrastinate vendor`) or pass --schema-sql FILE",
                    ctx.prefix(i),
                    reference.display()
                )));
            }
            ctx.log(&format!("{}skipped: no {}", ctx.prefix(i), reference.display()));
            continue;
        }
        let sql = std::fs::read_to_string(&reference).map_err(|e| Failure::usage(format!("cannot read {}: {e}", reference.display())))?;
        ctx.log(&format!("{}applying {} migrations to a scratch database, and {} to another", ctx.prefix(i), l.set.migrations.len(), reference.display()));
        let schema = l.options.schema.as_deref();
        let built = pad.catalogs(&l.set.migrations, &l.options)?.pop().expect("base and each revision");
        let wanted = pad.catalog_of_sql(&sql, schema, &l.options.table.name)?;
        let diff = built.diff(&wanted);
        let head = ctx.label(i, Some(l.head()));
        if diff.is_empty() {
            lines.push(format!("{}ok: {head} builds the schema of {} ({} objects)", ctx.prefix(i), reference.display(), built.objects.len()));
        } else {
            code = exit::DIVERGED;
            lines.push(format!(
                "{}{head} does not build the schema of {}: {} objects differ (\"here\" is what the migrations built)",
                ctx.prefix(i),
                reference.display(),
                diff.len()
            ));
            lines.extend(diff.to_string().lines().map(|l| format!("  {l}")));
        }
        let mut obj = set_json(l);
        obj.insert("reference".into(), Value::String(reference.display().to_string()));
        obj.insert("ok".into(), Value::Bool(diff.is_empty()));
        obj.insert("objects".into(), Value::from(built.objects.len()));
        obj.insert(
            "differences".into(),
            diff.missing
                .iter()
                .map(|o| json!({ "change": "missing", "kind": o.kind, "name": o.name }))
                .chain(diff.extra.iter().map(|o| json!({ "change": "extra", "kind": o.kind, "name": o.name })))
                .chain(diff.changed.iter().map(|(o, _)| json!({ "change": "differs", "kind": o.kind, "name": o.name })))
                .collect(),
        );
        sets.push(Value::Object(obj));
    }
    if sets.is_empty() {
        return Err(Failure::usage("no set has a reference schema: vendor a release (`cargo procrastinate vendor`) or pass --set NAME --schema-sql FILE"));
    }
    let mut top = Map::new();
    top.insert("ok".into(), Value::Bool(code == exit::OK));
    ctx.print_sets(&lines.join("\n"), top, sets);
    Ok(code)
}
