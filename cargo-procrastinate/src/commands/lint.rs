//! `lint [FILES|RANGE]`: the phase-aware review (`crate::lint`) of the files given, the files of
//! a range, the files not yet applied to the configured database, or (with no database) every
//! file of the selected sets; `--trace` also runs each in a scratch database and reports what
//! it locked. `upgrade --lint` calls [`check`] before it applies anything.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use procrastinate_migrations::range::Range;
use procrastinate_migrations::{Migration, Phase, Revision};

use super::Ctx;
use crate::lint::{self, report, trace, Finding, Input, Level};
use crate::scratchpad::{Layer, Scratchpad};
use crate::{connect, exit, json, Failure};

/// What `lint` reviews: each file, with its set when it belongs to one.
struct Target {
    set: Option<usize>,
    /// Upstream's file, as vendored and unchanged.
    upstream: bool,
    path: String,
    sql: String,
    phase: Phase,
    no_transaction: bool,
    revision: Option<Revision>,
}

pub(super) struct Flags<'a> {
    pub targets: &'a [String],
    pub trace: bool,
    pub rows: usize,
    pub sarif: bool,
    pub server: Option<&'a str>,
}

pub(super) fn run(ctx: &mut Ctx, f: Flags<'_>) -> Result<i32, Failure> {
    check_allow(ctx)?;
    let targets = targets(ctx, f.targets)?;
    let allow: Vec<Vec<String>> = targets.iter().map(|t| t.set.map(|i| ctx.sets[i].lint_allow.clone()).unwrap_or_default()).collect();
    let traces = if f.trace { traces(ctx, &targets, f.rows, f.server)? } else { Vec::new() };
    Ok(show(&targets, &allow, traces, f.sarif, ctx.json))
}

/// Whether a `lint` argument names a file (rather than a range).
pub(super) fn is_file(text: &str) -> bool {
    text.ends_with(".sql") || Path::new(text).is_file()
}

/// `lint FILE...` outside a configured package: each file by its name's phase.
pub(super) fn files_alone(given: &[String], sarif: bool, json: bool) -> Result<i32, Failure> {
    let mut targets = Vec::new();
    for g in given {
        targets.push(loose(g)?);
    }
    let allow = vec![Vec::new(); targets.len()];
    Ok(show(&targets, &allow, Vec::new(), sarif, json))
}

/// A file that belongs to no set: its phase from its name, its marker from its first line.
fn loose(g: &str) -> Result<Target, Failure> {
    let path = Path::new(g);
    let sql = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("cannot read {g}: {e}")))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let phase = procrastinate_migrations::name::parse(&name).map(|p| p.phase).unwrap_or(Phase::Unmarked);
    let no_transaction = sql.lines().next().is_some_and(|l| l.trim() == procrastinate_migrations::NO_TRANSACTION);
    Ok(Target { set: None, upstream: false, path: g.to_string(), sql, phase, no_transaction, revision: None })
}

/// Reviews `targets` and prints the result; the exit code.
fn show(targets: &[Target], allow: &[Vec<String>], traces: Vec<trace::FileTrace>, sarif: bool, json: bool) -> i32 {
    let inputs: Vec<Input<'_>> = targets
        .iter()
        .zip(allow)
        .map(|(t, allow)| Input { path: t.path.clone(), sql: &t.sql, phase: t.phase, no_transaction: t.no_transaction, allow, upstream: t.upstream })
        .collect();
    let findings = lint::lint(&inputs);
    let errors = findings.iter().filter(|x| x.level == Level::Error).count();
    let code = if errors > 0 { exit::LINT } else { exit::OK };
    let summary = report::summary(&findings, targets.len());
    if sarif {
        crate::term::data_line(&report::sarif(&findings).to_string());
    } else if json {
        json::emit(
            "lint",
            &json::Lint { ok: errors == 0, exit_code: code, summary: summary.clone(), files: targets.iter().map(|t| t.path.clone()).collect(), findings, traces },
        );
    } else {
        let mut out: Vec<String> = findings.iter().map(report::text).collect();
        out.extend(traces.iter().map(trace::text));
        out.push(format!("lint: {summary}"));
        crate::term::data(&out.join("\n"));
        crate::term::data("\n");
    }
    code
}

/// `upgrade --lint`: reviews the files about to run; an error-level finding stops everything.
pub(super) fn check(ctx: &Ctx, files: &[(usize, &Migration)]) -> Result<(), Failure> {
    check_allow(ctx)?;
    let up: Vec<HashSet<String>> = ctx.sets.iter().map(|l| super::vendor::upstream_files(&l.set.dir)).collect();
    let inputs: Vec<Input<'_>> = files
        .iter()
        .map(|(i, m)| Input {
            path: ctx.sets[*i].set.dir.join(&*m.file_name).display().to_string(),
            sql: &m.sql,
            phase: m.phase,
            no_transaction: m.no_transaction(),
            allow: &ctx.sets[*i].lint_allow,
            upstream: up[*i].contains(&*m.file_name),
        })
        .collect();
    let findings = lint::lint(&inputs);
    let errors: Vec<&Finding> = findings.iter().filter(|x| x.level == Level::Error).collect();
    for x in &findings {
        ctx.log(report::text(x).trim_end());
    }
    if errors.is_empty() {
        return Ok(());
    }
    let mut files: Vec<&str> = errors.iter().map(|x| x.file.rsplit('/').next().unwrap_or(&x.file)).collect();
    files.dedup();
    Err(Failure::new(
        exit::LINT,
        format!("upgrade --lint: {} (errors in {}): nothing was applied", report::summary(&findings, inputs.len()), files.join(", ")),
    ))
}

/// Every `lint-allow` names a rule: a misspelt one would silently allow nothing.
fn check_allow(ctx: &Ctx) -> Result<(), Failure> {
    for l in &ctx.sets {
        for name in &l.lint_allow {
            if lint::rules::find(name).is_none() {
                let names: Vec<&str> = lint::rules::all().iter().map(|r| r.name).collect();
                return Err(Failure::usage(format!("setting `lint-allow`: no rule is named `{name}` (rules: {})", names.join(", "))));
            }
        }
    }
    Ok(())
}

fn target_of(ctx: &Ctx, i: usize, m: &Migration, upstream: &[HashSet<String>]) -> Target {
    Target {
        set: Some(i),
        upstream: upstream[i].contains(&*m.file_name),
        path: ctx.sets[i].set.dir.join(&*m.file_name).display().to_string(),
        sql: m.sql.to_string(),
        phase: m.phase,
        no_transaction: m.no_transaction(),
        revision: Some(m.revision),
    }
}

/// The files to review: as given (paths, or one range), else what the database has pending,
/// else every file of the selected sets.
fn targets(ctx: &mut Ctx, given: &[String]) -> Result<Vec<Target>, Failure> {
    let mut out = Vec::new();
    let up: Vec<HashSet<String>> = ctx.sets.iter().map(|l| super::vendor::upstream_files(&l.set.dir)).collect();
    if given.is_empty() {
        match ctx.session()? {
            Some(mut client) => {
                for i in ctx.selected() {
                    let status = ctx.status(&mut client, i)?;
                    let l = &ctx.sets[i];
                    let gaps = status.gaps.iter().map(|r| &l.set.migrations[r.index()]);
                    let pending: Vec<&Migration> = gaps.chain(status.pending(&l.set.migrations)).collect();
                    if pending.is_empty() {
                        ctx.log(&format!("{}nothing pending at {}: nothing to review (name files or a range to review those)", ctx.prefix(i), ctx.label(i, status.current)));
                    }
                    out.extend(pending.into_iter().map(|m| target_of(ctx, i, m, &up)));
                }
            }
            None => {
                ctx.log("(no database configured: reviewing every file)");
                for i in ctx.selected() {
                    out.extend(ctx.sets[i].set.migrations.iter().map(|m| target_of(ctx, i, m, &up)));
                }
            }
        }
        return Ok(out);
    }
    for g in given {
        let path = Path::new(g);
        if is_file(g) {
            // A file of a set is reviewed as the set has it.
            let canonical = path.canonicalize().ok();
            let found = ctx.sets.iter().enumerate().find_map(|(i, l)| {
                let m = l.set.migrations.iter().find(|m| canonical.as_deref().is_some_and(|c| l.set.dir.join(&*m.file_name).canonicalize().ok().as_deref() == Some(c)))?;
                Some((i, m))
            });
            match found {
                Some((i, m)) => out.push(Target { path: g.clone(), ..target_of(ctx, i, m, &up) }),
                None => out.push(loose(g)?),
            }
            continue;
        }
        let (sets, bare) = ctx.sets_for(g).map_err(|e| Failure::usage(format!("`{g}` is neither a file nor a range: {}", e.message)))?;
        let range: Range = bare.parse().map_err(|e| Failure::usage(format!("`{g}` is neither a file nor a range: {e}")))?;
        let needs_db = range.from == procrastinate_migrations::range::Point::Current || range.to == procrastinate_migrations::range::Point::Current;
        for i in sets {
            let current = if needs_db {
                let mut client = ctx.client()?;
                ctx.status(&mut client, i)?.current
            } else {
                None
            };
            let (from, to) = range
                .resolve(ctx.sets[i].head(), Some(current.map_or(0, Revision::number)))
                .map_err(|e| Failure::usage(format!("{}{e}", ctx.prefix(i))))?;
            let picked: Vec<Target> = ctx.sets[i].set.migrations.iter().filter(|m| m.revision.number() > from && m.revision.number() <= to).map(|m| target_of(ctx, i, m, &up)).collect();
            out.extend(picked);
        }
    }
    Ok(out)
}

/// Each file of a set, run in a scratch database at the revision before it.
fn traces(ctx: &Ctx, targets: &[Target], rows: usize, server: Option<&str>) -> Result<Vec<trace::FileTrace>, Failure> {
    let server = server.map(connect::parse_env).transpose()?;
    let mut pad = Scratchpad::new(server);
    let mut out = Vec::new();
    for t in targets {
        let (Some(i), Some(rev)) = (t.set, t.revision) else {
            ctx.log(&format!("{}: not traced (it belongs to no set, so there is no revision before it to build)", t.path));
            continue;
        };
        let before = (rev.number() > 1).then(|| Revision::new(rev.number() - 1));
        ctx.log(&format!("tracing {}: building {} in a scratch database with {rows} rows in the tables it touches...", t.path, ctx.label(i, before)));
        let layers: Vec<Layer<'_>> = ctx.layers_at(i, before);
        let mut client = pad.built("trace", &layers)?;
        let connector = pad.connector().ok_or_else(|| Failure::new(exit::FAILED, "the scratch database is gone"))?;
        let schema = ctx.scratch_schema(i).to_string();
        let fail = |e: String| Failure::new(exit::FAILED, format!("tracing {}: {e}", t.path));
        let touched = trace::touched(&mut *client, &t.sql, &schema).map_err(fail)?;
        let counts: BTreeMap<String, i64> = trace::seed(&mut *client, &touched, &schema, rows).map_err(fail)?;
        let traced = trace::trace(&mut *client, &connector, &t.path, &t.sql, t.no_transaction, &schema, counts).map_err(fail)?;
        out.push(traced);
    }
    Ok(out)
}
