//! `check --schema`: the live database's schema against what its recorded migrations build.
//! Every configured set is built in one scratch database, in order, each up to the revision
//! the database records for it; then each schema's catalog is read there and in the database
//! and compared. A difference is the set's whose migrations made the object (an extra column
//! is its table's set's); what no set made is said apart.

use procrastinate_migrations::catalog::{Catalog, Change, Difference, Kind};

use super::Ctx;
use crate::scratchpad::{Dep, Layer, Scratchpad};
use crate::{connect, exit, json, Failure};

pub(super) fn run(ctx: &mut Ctx, server: Option<&str>) -> Result<i32, Failure> {
    let server = server.map(connect::parse_env).transpose()?;
    let mut client = ctx.client()?;
    let all: Vec<usize> = (0..ctx.sets.len()).collect();
    let mut statuses = Vec::with_capacity(all.len());
    for &i in &all {
        statuses.push(ctx.status(&mut client, i)?);
    }
    let (options, ignore) = ctx.compare_settings(&all);
    // The schemas to compare: each set's, in the scratch database and in the live one.
    let mut schemas: Vec<(String, String)> = Vec::new();
    let mut schema_of = Vec::with_capacity(all.len());
    for &i in &all {
        let pair = (ctx.scratch_schema(i).to_string(), ctx.live_schema(&mut client, i)?);
        let k = schemas.iter().position(|p| *p == pair).unwrap_or_else(|| {
            schemas.push(pair.clone());
            schemas.len() - 1
        });
        schema_of.push(k);
    }
    ctx.log("building what the recorded migrations make in a scratch database, to compare...");
    let layers: Vec<Layer<'_>> = all
        .iter()
        .map(|&i| {
            Layer::Set(Dep {
                migrations: &ctx.sets[i].set.migrations,
                opts: &ctx.sets[i].options,
                upto: statuses[i].current,
                label: ctx.sets[i].options.label(statuses[i].current),
            })
        })
        .collect();
    let tables = ctx.tracking_tables();
    let scratch_names: Vec<&str> = schemas.iter().map(|(s, _)| s.as_str()).collect();
    let built = Scratchpad::new(server).layers(&layers, &scratch_names, &tables, options)?;
    let selected = ctx.selected();
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    let mut unowned_json = Vec::new();
    let mut worst = exit::OK;
    for (k, (_, live_name)) in schemas.iter().enumerate() {
        let expected = built.last().map(|per| per[k].ignoring(&ignore)).unwrap_or_default();
        let live = procrastinate_migrations::catalog::read_with(&mut client, live_name, &tables, options)
            .map_err(|e| Failure::new(exit::FAILED, format!("cannot read the database's catalog: {}", procrastinate_migrations::db::describe(&e))))?
            .ignoring(&ignore);
        // What each set's migrations made in this schema.
        let own: Vec<Catalog> = (0..all.len())
            .map(|i| if i == 0 { built[0][k].clone() } else { built[i][k].without(&built[i - 1][k]) })
            .collect();
        let diff = live.diff(&expected);
        let mut by_set: Vec<Vec<&Difference>> = vec![Vec::new(); all.len()];
        let mut unowned: Vec<&Difference> = Vec::new();
        for d in &diff.differences {
            match owner(d, &own) {
                Some(i) => by_set[i].push(d),
                None => unowned.push(d),
            }
        }
        for &i in selected.iter().filter(|&&i| schema_of[i] == k) {
            let status = &statuses[i];
            let p = ctx.prefix(i);
            let mine = &by_set[i];
            let at = ctx.label(i, status.current);
            let code = if mine.is_empty() { exit::OK } else { exit::DIVERGED };
            if code != exit::OK {
                worst = exit::DIVERGED;
            }
            if !status.tracked || status.applied.is_empty() {
                lines.push(format!("{p}nothing is recorded for this set: compared with base (`upgrade` or `stamp` records it)"));
            }
            if mine.is_empty() {
                lines.push(format!("{p}ok: schema {live_name} is what the migrations recorded ({at}) build"));
            } else {
                let (n, listed) = listed(mine, "its migrations");
                lines.push(format!(
                    "{p}schema {live_name} is not what the migrations recorded ({at}) build: {}",
                    if n == 1 { "1 object differs".to_string() } else { format!("{n} objects differ") }
                ));
                lines.extend(listed);
            }
            if !status.divergences.is_empty() {
                lines.push(format!(
                    "  note: {} applied files changed since they ran: the comparison builds them as they are now (`check` lists them)",
                    status.divergences.len()
                ));
            }
            if !status.gaps.is_empty() {
                lines.push("  note: files that sort before applied ones are not applied yet: the comparison builds every file up to the recorded revision".into());
            }
            sets.push(json::SchemaCheck {
                id: ctx.set_id(i),
                ok: code == exit::OK,
                exit_code: code,
                current: json::rev(status.current),
                schema: live_name.clone(),
                differences: mine.iter().map(|d| json::Difference::from(*d)).collect(),
            });
        }
        if !unowned.is_empty() && selected.iter().any(|&i| schema_of[i] == k) {
            worst = exit::DIVERGED;
            let (n, listed) = listed(&unowned, "the migrations");
            lines.push(format!(
                "schema {live_name} has {} that no set's migrations make (`compare-ignore` leaves objects out):",
                if n == 1 { "1 object".to_string() } else { format!("{n} objects") }
            ));
            lines.extend(listed);
            unowned_json.extend(unowned.iter().map(|d| json::Difference::from(*d)));
        }
    }
    ctx.print_sets(
        "check",
        &lines.join("\n"),
        &json::SchemaVerdict { ok: worst == exit::OK, exit_code: worst, unowned: unowned_json },
        &sets,
    );
    Ok(worst)
}

/// `differences` as listed under a verdict, indented, and how many objects that is (counted as
/// listed: a table's columns go with the table).
fn listed(differences: &[&Difference], there: &str) -> (usize, Vec<String>) {
    let rendered = procrastinate_migrations::catalog::Diff { differences: differences.iter().map(|d| (*d).clone()).collect() }.render("the database", there);
    let lines: Vec<String> = rendered.lines().map(|l| format!("  {l}")).collect();
    (lines.len(), lines)
}

/// The set whose migrations made the object a difference is about: the last whose own objects
/// have it, else the set of its table (a column or index added by hand), else of the object
/// a comment is on.
fn owner(d: &Difference, own: &[Catalog]) -> Option<usize> {
    let made = |kind: Kind, name: &str| (0..own.len()).rev().find(|&i| own[i].get(kind, name).is_some());
    if let Some(i) = made(d.kind, &d.name) {
        return Some(i);
    }
    let object = match &d.change {
        Change::Missing(o) | Change::Extra(o) => o,
        Change::Changed { there, .. } => there,
    };
    if let Some(i) = object.parent().and_then(|t| made(Kind::Table, t)) {
        return Some(i);
    }
    let (kind, name) = object.about()?;
    made(kind, name).or_else(|| object.relation().and_then(|t| made(Kind::Table, t)))
}
