//! `check`: exit 0 only if every selected set is at head with every applied file unchanged
//! (for CI). `check --compatible`: the start-up check's own verdict on the files at hand (for
//! readiness probes during a zero-downtime deploy).

use procrastinate_migrations::compat::{self, Window};
use procrastinate_migrations::db;

use super::Ctx;
use crate::json;
use crate::{exit, Failure};

pub(super) fn run(ctx: &mut Ctx, compatible: bool) -> Result<i32, Failure> {
    if compatible {
        return run_compatible(ctx);
    }
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    let mut worst = exit::OK;
    for i in ctx.selected() {
        let status = ctx.status(&mut client, i)?;
        let unadopted = ctx.unadopted(&mut client, i, &status)?;
        let untold = ctx.untold(&mut client, i, &status)?;
        let l = &ctx.sets[i];
        let head = l.head();
        let pending = status.pending(&l.set.migrations);
        let p = ctx.prefix(i);
        let schema = l.options.schema.as_deref();
        // Upstream's own in-place edits are not drift; only one that left this schema wrong is.
        let broken_by_upstream = status.revised.iter().any(|r| r.needs_rerun(schema));
        let (code, summary) = if !status.divergences.is_empty() {
            (exit::DIVERGED, format!("{p}the database and the migration files disagree"))
        } else if let Some((line, true)) = &untold {
            (exit::DIVERGED, format!("{p}{line}"))
        } else if broken_by_upstream {
            (exit::DIVERGED, format!("{p}an earlier upstream text left this schema different (see below)"))
        } else if !unadopted.is_empty() {
            (exit::BEHIND, format!("{p}{}", super::current::unadopted_line(&unadopted, &ctx.set_flag(i))))
        } else if status.current != Some(head) || !status.gaps.is_empty() {
            (
                exit::BEHIND,
                format!(
                    "{p}behind: the database is at {}, head is {}; {} pending",
                    ctx.label(i, status.current),
                    ctx.label(i, Some(head)),
                    pending.len() + status.gaps.len()
                ),
            )
        } else {
            (exit::OK, format!("{p}ok: at head {}; {} applied migrations match their files", ctx.label(i, Some(head)), status.applied.len()))
        };
        // DIVERGED outranks BEHIND outranks OK, whatever order the sets come in.
        if rank(code) > rank(worst) {
            worst = code;
        }
        lines.push(summary);
        lines.extend(status.divergences.iter().map(|d| format!("  {}", d.display_in(ctx.set_name(i)))));
        lines.extend(status.revised.iter().map(|r| format!("  note: {}", r.describe(schema))));
        if !status.beyond.is_empty() {
            lines.push(format!(
                "  note: the database also has the next release's pre migrations ({}): these files' code works with them \
                 (upstream's zero-downtime contract); deploy that release, then apply its post migrations",
                status.beyond.join(", ")
            ));
        }
        if code == exit::BEHIND && unadopted.is_empty() {
            let gaps = status.gaps.iter().map(|r| &l.set.migrations[r.index()]);
            for m in gaps {
                lines.push(format!("  pending {} {} (out of order: from a merged branch)", ctx.label(i, Some(m.revision)), m.file_name));
            }
            lines.extend(pending.iter().map(|m| format!("  pending {} {}", ctx.label(i, Some(m.revision)), m.file_name)));
        }
        sets.push(json::Check {
            id: ctx.set_id(i),
            ok: code == exit::OK,
            exit_code: code,
            current: json::rev(status.current),
            beyond: status.beyond.clone(),
            pending: status.gaps.iter().copied().chain(pending.iter().map(|m| m.revision)).map(|r| r.to_string()).collect(),
            revised_upstream: status
                .revised
                .iter()
                .map(|r| json::Revised {
                    revision: r.revision.to_string(),
                    file_name: r.file_name.to_string(),
                    revised_in: r.edit.revised_in,
                    needs_rerun: r.needs_rerun(schema),
                    message: r.describe(schema),
                })
                .collect(),
            divergences: ctx.divergences_json(i, &status),
            unadopted,
        });
    }
    Ok(report(ctx, &lines, worst, &sets))
}

/// `check --compatible`: what the application's start-up check (`db::verify_sets`) would say of
/// a build of these files, set by set: the same code (`compat::verdict`), the same window.
fn run_compatible(ctx: &mut Ctx) -> Result<i32, Failure> {
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    let mut worst = exit::OK;
    for i in ctx.selected() {
        let status = ctx.status(&mut client, i)?;
        let l = &ctx.sets[i];
        let found = if status.applied.is_empty() { db::unadopted(&mut client, &l.set.migrations, &l.options)? } else { Vec::new() };
        let rows = status.tracked.then(|| status.applied.clone());
        let name = ctx.set_name(i);
        let verdict = compat::verdict(name, &l.set.migrations, Window::of(&l.set.migrations), rows, found);
        let code = verdict.exit_code();
        if rank(code) > rank(worst) {
            worst = code;
        }
        lines.push(format!("{}{verdict}", ctx.prefix(i)));
        sets.push(json::Compatible {
            id: ctx.set_id(i),
            ok: code == exit::OK,
            exit_code: code,
            verdict: verdict.kind(),
            current: json::rev(status.current),
            oldest: verdict.window.oldest.to_string(),
            message: verdict.to_string(),
        });
    }
    Ok(report(ctx, &lines, worst, &sets))
}

/// Prints `check`'s verdict, set by set, and returns the worst exit code.
fn report<S: serde::Serialize>(ctx: &Ctx, lines: &[String], worst: i32, sets: &[S]) -> i32 {
    let top = json::Verdict {
        ok: worst == exit::OK,
        exit_code: worst,
    };
    ctx.print_sets("check", &lines.join("\n"), &top, sets);
    worst
}

fn rank(code: i32) -> u8 {
    match code {
        exit::OK => 0,
        exit::BEHIND => 1,
        _ => 2,
    }
}
