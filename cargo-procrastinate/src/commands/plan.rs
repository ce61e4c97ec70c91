//! `plan`: the zero-downtime deploy steps from the database's state, with the command for each.

use super::Ctx;
use crate::{exit, json, Failure};
use procrastinate_migrations::db::Error as DbError;
use procrastinate_migrations::deploy::Step;
use procrastinate_migrations::Version;

pub(super) fn run(ctx: &mut Ctx, to: Option<&str>) -> Result<i32, Failure> {
    let to: Option<Version> = to.map(|v| v.parse().map_err(|e| Failure::usage(format!("--to: {e}")))).transpose()?;
    let mut client = ctx.client()?;
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for i in ctx.selected() {
        let status = ctx.status(&mut client, i)?;
        let unadopted = ctx.unadopted(&mut client, i, &status)?;
        let l = &ctx.sets[i];
        if !status.divergences.is_empty() {
            return Err(DbError::Diverged { set: l.options.set.clone(), divergences: status.divergences }.into());
        }
        if !unadopted.is_empty() {
            let command = format!("cargo procrastinate stamp{} --detect", ctx.set_flag(i));
            lines.push(format!("{}the database is at {}, {}", ctx.prefix(i), ctx.label(i, None), super::current::unadopted_line(&unadopted, &ctx.set_flag(i))));
            lines.push(format!("   1. adopt it (find its revision and record it):  {command}"));
            sets.push(json::Plan {
                id: ctx.set_id(i),
                current: None,
                steps: vec![json::PlanStep {
                    release: String::new(),
                    action: "adopt",
                    description: "adopt it (find its revision and record it)".into(),
                    through: None,
                    command: Some(command),
                }],
                unadopted,
            });
            continue;
        }
        let p = ctx.prefix(i);
        let flag = ctx.set_flag(i);
        let releases = l.releases();
        let at = releases.position(status.current).map(|r| format!(" ({r})")).unwrap_or_default();
        lines.push(format!("{p}the database is at {}{at}; head is {}", ctx.label(i, status.current), ctx.label(i, Some(l.head()))));
        let steps = releases.plan(status.current, to).map_err(|e| Failure::usage(format!("{p}--to: {e}")))?;
        if steps.is_empty() {
            lines.push("  nothing to do".into());
        }
        let mut rows = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            let (action, what, command) = match step {
                Step::ApplyPre { version, through } => (
                    "apply_pre",
                    format!("apply the pre migrations of {} (through {})", version.human(), ctx.label(i, Some(*through))),
                    Some(format!("cargo procrastinate upgrade{flag} --phase pre")),
                ),
                Step::Deploy { version, of } => {
                    let no_post = !steps.get(n + 1).is_some_and(|s| matches!(s, Step::ApplyPost { .. }));
                    let mut notes = Vec::new();
                    if no_post {
                        notes.push(format!("{} has no post migrations", of.human()));
                    }
                    let same = releases.count_of(*version).map(|n| releases.shipping(n)).unwrap_or_default();
                    if same.len() > 1 {
                        notes.push(format!("any of {} to {} has these migrations", same[0].human(), same[same.len() - 1].human()));
                    }
                    let note = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) };
                    ("deploy", format!("deploy release {} of your code{note}", version.human()), None)
                }
                Step::ApplyPost { version, through } => (
                    "apply_post",
                    format!("apply the post migrations of {} (through {})", version.human(), ctx.label(i, Some(*through))),
                    Some(format!("cargo procrastinate upgrade{flag} --phase post")),
                ),
                Step::Interrupt { version, through } => (
                    "interrupt",
                    format!(
                        "files without a pre/post marker (through {}): stop the workers, run the command, deploy {}, start the workers",
                        ctx.label(i, Some(*through)),
                        version.human()
                    ),
                    Some(format!("cargo procrastinate upgrade{flag} --to-version {}", version.human())),
                ),
            };
            let version = match step {
                Step::ApplyPre { version, .. } | Step::Deploy { version, .. } | Step::ApplyPost { version, .. } | Step::Interrupt { version, .. } => version,
            };
            let through = match step {
                Step::ApplyPre { through, .. } | Step::ApplyPost { through, .. } | Step::Interrupt { through, .. } => Some(*through),
                Step::Deploy { .. } => None,
            };
            let shown = command.as_ref().map(|c| format!(":  {c}")).unwrap_or_default();
            lines.push(format!("  {:>2}. {what}{shown}", n + 1));
            rows.push(json::PlanStep {
                release: version.human(),
                action,
                description: what,
                through: json::rev(through),
                command,
            });
        }
        sets.push(json::Plan {
            id: ctx.set_id(i),
            current: json::rev(status.current),
            steps: rows,
            unadopted: Vec::new(),
        });
    }
    ctx.print_sets("plan", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}
