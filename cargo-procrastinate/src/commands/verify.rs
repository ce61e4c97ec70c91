//! `verify`: apply a set to a scratch database and compare its catalog with a reference
//! `schema.sql` (the vendored one beside the set, by default).

use std::path::{Path, PathBuf};

use super::Ctx;
use crate::proof::{Proof, REFERENCE};
use crate::scratchpad::Scratchpad;
use crate::{connect, exit, json, Failure};


pub(super) fn run(ctx: &mut Ctx, schema_sql: Option<&Path>, server: Option<&str>) -> Result<i32, Failure> {
    let selected = ctx.selected();
    if schema_sql.is_some() && selected.len() > 1 {
        return Err(Failure::usage("--schema-sql is the reference of one set: add --set NAME"));
    }
    let server = server.map(connect::parse_env).transpose()?;
    let mut pad = Scratchpad::new(server);
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    let mut code = exit::OK;
    for i in selected.iter().copied() {
        let l = &ctx.sets[i];
        // The installed package's schema.sql when the files are its (no proof is written into a
        // Python environment), else the vendored one beside the files.
        let reference: PathBuf = match (schema_sql, &l.reference) {
            (Some(f), _) => f.to_path_buf(),
            (None, Some(installed)) => installed.clone(),
            (None, None) => l.set.dir.join(REFERENCE),
        };
        let writes_proof = schema_sql.is_none() && l.reference.is_none();
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
        // The sets it depends on (those before it) at their heads, in both scratch databases.
        let deps = ctx.deps(i, &|j| Some(ctx.sets[j].head()));
        let ignore = &l.compare.ignore;
        let built = pad.catalogs(&deps, &l.set.migrations, &l.options)?.per.pop().expect("base and each revision").ignoring(ignore);
        let wanted = pad.catalog_of_sql(&deps, &sql, schema, &l.options.table.name)?.ignoring(ignore);
        let diff = built.diff(&wanted);
        let head = ctx.label(i, Some(l.head()));
        if diff.is_empty() {
            lines.push(format!("{}ok: {head} builds the schema of {} ({} objects)", ctx.prefix(i), reference.display(), built.objects.len()));
            // The vendored reference's proof, for `upgrade --from-schema` on a deploy box.
            if writes_proof {
                let path = Proof::new(&l.set.migrations, &sql, &wanted)
                    .write(&l.set.dir)
                    .map_err(|e| Failure::new(exit::FAILED, format!("cannot write {}: {e}", l.set.dir.join(crate::proof::PROOF).display())))?;
                ctx.log(&format!("{}proof recorded in {} (for `upgrade --from-schema`)", ctx.prefix(i), path.display()));
            }
        } else {
            // A proof from an earlier run is left alone: it names the files' checksums, and
            // `upgrade --from-schema` checks them before it trusts the file.
            code = exit::DIVERGED;
            lines.push(format!(
                "{}{head} does not build the schema of {}: {}",
                ctx.prefix(i),
                reference.display(),
                diff.count()
            ));
            lines.extend(diff.render("the migrations", "the reference").lines().map(|l| format!("  {l}")));
        }
        sets.push(json::Verify {
            id: ctx.set_id(i),
            reference: reference.display().to_string(),
            ok: diff.is_empty(),
            objects: built.objects.len(),
            differences: diff.differences.iter().map(json::Difference::from).collect(),
        });
    }
    if sets.is_empty() {
        return Err(Failure::usage("no set has a reference schema: vendor a release (`cargo procrastinate vendor`) or pass --set NAME --schema-sql FILE"));
    }
    ctx.print_sets(
        "verify",
        &lines.join("\n"),
        &json::Ok {
            ok: code == exit::OK,
        },
        &sets,
    );
    Ok(code)
}
