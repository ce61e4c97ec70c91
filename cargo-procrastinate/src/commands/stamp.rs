//! `stamp`: record a revision of each selected set without running any SQL. Safe: before
//! recording, the database's schema is compared with the schema the set has at that revision
//! (built in a scratch database); `--detect` finds the revision of a database this tool did
//! not build (Alembic's or Django's records, else its catalog).

use super::Ctx;
use crate::json;
use crate::scratchpad::{Built, Dep, Scratchpad};
use crate::{connect, exit, Failure};
use procrastinate_migrations::adopt::{self, CatalogMatch};
use procrastinate_migrations::catalog::{self, Catalog};

use procrastinate_migrations::range::Point;
use procrastinate_migrations::db::Session;
use procrastinate_migrations::{db, Revision};

/// `stamp`'s flags.
pub(super) struct Flags<'a> {
    pub target: Option<&'a str>,
    pub purge: bool,
    pub detect: bool,
    pub dry_run: bool,
    pub force: bool,
    pub server: Option<&'a str>,
    pub claimed: bool,
}

pub(super) fn run(ctx: &mut Ctx, f: Flags<'_>) -> Result<i32, Failure> {
    let targets: Vec<(usize, Option<Point>)> = match (f.target, f.detect) {
        (Some(_), true) => return Err(Failure::usage("give either a TARGET or --detect, not both")),
        (None, false) => return Err(Failure::usage("stamp needs a TARGET (a revision, `head`, NAME@REV) or --detect")),
        (None, true) => ctx.selected().into_iter().map(|i| (i, None)).collect(),
        (Some(t), false) => ctx.targets(t)?.into_iter().map(|(i, p)| (i, Some(p))).collect(),
    };
    if f.purge && targets.iter().any(|(_, p)| *p == Some(Point::Current)) {
        return Err(Failure::usage("`stamp --purge current` would record nothing: name the revision to record"));
    }
    if f.claimed {
        return claimed(ctx, &targets);
    }
    let server = f.server.map(connect::parse_env).transpose()?;
    let mut pad = Scratchpad::new(server);
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    // Where each set is, as this run establishes it (a detected revision counts, also in a dry
    // run): what the scratch builds of the sets after it build first.
    let mut established: std::collections::HashMap<usize, Option<Revision>> = std::collections::HashMap::new();
    for (i, point) in targets {
        let status = ctx.status(&mut client, i)?;
        let mut recorded = Vec::new();
        for j in 0..i {
            let at = match established.get(&j) {
                Some(at) => *at,
                None => ctx.status(&mut client, j)?.current,
            };
            recorded.push(at);
        }
        let l = &ctx.sets[i];
        let p = ctx.prefix(i);
        let mut obj = json::Stamp {
            id: ctx.set_id(i),
            detected: None,
            source: None,
            recorded: false,
            current: None,
            purged: f.purge,
        };
        let deps = ctx.deps(i, &|j| recorded[j]);
        let mut per_revision: Option<Built> = None;
        let target = match point {
            Some(point) => ctx.resolve(i, point, if f.purge { None } else { status.current })?,
            None => {
                if !status.applied.is_empty() {
                    lines.push(format!(
                        "{p}already tracked by this tool at {}: nothing to detect",
                        ctx.label(i, status.current)
                    ));
                    established.insert(i, status.current);
                    sets.push(obj);
                    continue;
                }
                let (found, source) = detect(ctx, i, &deps, &mut client, &mut pad, &mut per_revision)?;
                established.insert(i, found);
                lines.push(format!("{p}detected {} from {source}", ctx.label(i, found)));
                obj.detected = Some(json::rev(found));
                obj.source = Some(source);
                if found.is_none() {
                    lines.push(format!(
                        "{p}none of the set's objects are here: nothing to stamp (run `upgrade`)"
                    ));
                    sets.push(obj);
                    continue;
                }
                found
            }
        };
        // What the records allow first (a lower target needs --purge): cheap, and the clearer no.
        procrastinate_migrations::state::plan_stamp(&l.set.migrations, &status, target, f.purge)
            .map_err(|r| db::Error::refused(r, &l.options))?;
        // Safe: the schema must be the one the set has at the target.
        if target.is_some() {
            let built = match per_revision.take() {
                Some(built) => built,
                None => {
                    ctx.log(&format!("{p}building the set's schema at each revision in a scratch database, to compare..."));
                    pad.catalogs(&deps, &l.set.migrations, &l.options)?
                }
            };
            let here = adopt::known_only(&read_catalog(&mut client, &l.options)?.without(&built.base), &built.per);
            let diff = here.diff(&built.per[target.map_or(0, |r| r.number() as usize)]);
            if !diff.is_empty() {
                let head = format!(
                    "{p}the database's schema is not the schema of {} ({}):",
                    ctx.label(i, target),
                    diff.count()
                );
                let body: Vec<String> = diff.render("the database", "that revision").lines().map(|l| format!("  {l}")).collect();
                if !f.force {
                    return Err(Failure::new(
                        exit::DIVERGED,
                        format!("{head}\n{}\nnothing was recorded; bring the schema to that revision, or (knowing why) record it anyway with --force", body.join("\n")),
                    ));
                }
                ctx.log(&format!("warning: --force: recording it anyway. {head}\n{}", body.join("\n")));
            }
        }
        established.insert(i, target);
        if f.dry_run {
            lines.push(format!(
                "{p}dry run: would record {} (nothing was written)",
                ctx.label(i, target)
            ));
            obj.recorded = false;
        } else {
            let after = db::stamp(&mut client, &l.set.migrations, target, f.purge, &l.options)?;
            established.insert(i, after.current);
            lines.push(format!(
                "stamped {}{}",
                ctx.label(i, after.current),
                if f.purge {
                    " (records purged first)"
                } else {
                    ""
                }
            ));
            obj.recorded = true;
            obj.current = Some(json::rev(after.current));
        }
        sets.push(obj);
    }
    ctx.print_sets("stamp", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}

/// `stamp --claimed REV`: records a `-- no-transaction` migration whose run died after it
/// finished (see `db::record_claimed`, which checks it all under the migration lock).
fn claimed(ctx: &mut Ctx, targets: &[(usize, Option<Point>)]) -> Result<i32, Failure> {
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for &(i, point) in targets {
        let status = ctx.status(&mut client, i)?;
        let l = &ctx.sets[i];
        let point = point.ok_or_else(|| Failure::usage("stamp --claimed needs the revision (`0004`, `NAME@REV`)"))?;
        let Some(rev) = ctx.resolve(i, point, status.current)? else {
            return Err(Failure::usage("stamp --claimed needs a revision, not base"));
        };
        let after = db::record_claimed(&mut client, &l.set.migrations, rev, &l.options)?;
        lines.push(format!(
            "stamped {}: {} ran to completion before its process died; recorded as stamped",
            ctx.label(i, after.current),
            l.set.migrations[rev.index()].file_name
        ));
        sets.push(json::Stamp { id: ctx.set_id(i), detected: None, source: None, recorded: true, current: Some(json::rev(after.current)), purged: false });
    }
    ctx.print_sets("stamp", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}

fn read_catalog(client: &mut dyn Session, opts: &db::Options) -> Result<Catalog, Failure> {
    catalog::read(client, opts.schema.as_deref().unwrap_or("public"), &opts.table.name)
        .map_err(|e| Failure::new(exit::FAILED, format!("cannot read the database's catalog: {}", db::describe(&e))))
}

/// The revision of set `i` by the first source that knows: Alembic, Django, the catalog.
fn detect(
    ctx: &Ctx,
    i: usize,
    deps: &[Dep<'_>],
    client: &mut dyn Session,
    pad: &mut Scratchpad,
    per_revision: &mut Option<Built>,
) -> Result<(Option<Revision>, String), Failure> {
    let l = &ctx.sets[i];
    let migrations = &l.set.migrations;
    let rows = |client: &mut dyn Session, sql: &str| -> Result<Vec<String>, Failure> {
        let msgs = client.simple_query(sql).map_err(|e| Failure::new(exit::FAILED, format!("{sql}: {}", db::describe(&e))))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect())
    };
    let exists = |client: &mut dyn Session, table: &str| -> Result<bool, Failure> {
        Ok(rows(client, &format!("SELECT to_regclass('{table}') IS NOT NULL"))?.first().map(String::as_str) == Some("t"))
    };
    if exists(client, "alembic_version")? {
        for version in rows(client, "SELECT version_num FROM alembic_version")? {
            if let Some(r) = adopt::from_alembic(&version, migrations) {
                return Ok((Some(r), format!("alembic_version ({version})")));
            }
        }
    }
    if exists(client, "django_migrations")? {
        let names = rows(client, "SELECT name FROM django_migrations WHERE app = 'procrastinate' ORDER BY id")?;
        if let Some(last) = names.last() {
            match adopt::from_django(&names, migrations) {
                Ok(Some(r)) => return Ok((Some(r), format!("django_migrations ({} rows, the last {last})", names.len()))),
                Ok(None) => {}
                Err(e) => ctx.log(&format!("{}django_migrations does not say: {e}", ctx.prefix(i))),
            }
        }
    }
    ctx.log(&format!("{}building the set's schema at each revision in a scratch database, to compare...", ctx.prefix(i)));
    let built = pad.catalogs(deps, migrations, &l.options)?;
    let here = read_catalog(client, &l.options)?.without(&built.base);
    let per = &built.per;
    let found = match adopt::from_catalog(&here, per) {
        CatalogMatch::Exact(revs) if revs.len() > 1 => {
            // Migrations that change no object compared (data: an UPDATE, an INSERT) leave
            // the same catalog: the schema cannot tell whether they ran. Never guess.
            let names: Vec<String> = revs.iter().map(|r| ctx.label(i, *r)).collect();
            let files: Vec<String> = revs.iter().flatten().skip(1).map(|r| format!("{} {}", ctx.label(i, Some(*r)), migrations[r.index()].file_name)).collect();
            let choose = match revs[0] {
                Some(r) => format!("`cargo procrastinate stamp {}` if they did not run (then `upgrade` runs them)", ctx.label(i, Some(r))),
                None => format!("`cargo procrastinate upgrade{}` if none ran", ctx.set_flag(i)),
            };
            return Err(Failure::new(
                exit::DIVERGED,
                format!(
                    "{}the schema is exactly that of several revisions: {} (after {} the migrations change no object the \
                     schema shows: {}), so it cannot tell which of them ran; nothing was recorded. Choose: {choose}, or \
                     `cargo procrastinate stamp REV` with the revision whose migrations you know ran",
                    ctx.prefix(i),
                    names.join(", "),
                    names[0],
                    files.join(", "),
                ),
            ));
        }
        CatalogMatch::Exact(revs) => (revs[0], "the catalog (it is exactly the schema of that revision)".to_string()),
        CatalogMatch::Closest { revision, diff } => {
            let body: Vec<String> = diff.render("the database", "that revision").lines().map(|l| format!("  {l}")).collect();
            return Err(Failure::new(
                exit::DIVERGED,
                format!(
                    "{}no revision has exactly this schema, so nothing is guessed or recorded; the closest is {}, from which {}:\n{}",
                    ctx.prefix(i),
                    ctx.label(i, revision),
                    diff.count(),
                    body.join("\n")
                ),
            ));
        }
    };
    *per_revision = Some(built);
    Ok(found)
}
