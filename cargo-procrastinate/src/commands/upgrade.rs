//! `upgrade`: every selected set to its target, set by set in the configured order.

use procrastinate_migrations::db::{self, AcceptChanged, Event};
use procrastinate_migrations::{Migration, Phase, Revision};
use serde_json::{json, Map, Value};

use super::{rev_json, set_json, Ctx};
use crate::{exit, Failure};

pub(super) fn run(ctx: &mut Ctx, target: &str, accept: &[String]) -> Result<i32, Failure> {
    let accept_changed = if accept.iter().any(|a| a == "all") {
        AcceptChanged::All
    } else {
        AcceptChanged::Only(
            accept
                .iter()
                .map(|a| a.rsplit('@').next().unwrap_or(a).parse::<Revision>().map_err(|e| Failure::usage(format!("--accept-changed: {e}"))))
                .collect::<Result<_, _>>()?,
        )
    };
    let targets = ctx.targets(target)?;
    let mut client = ctx.client()?;
    let mut sets = Vec::new();
    for (i, point) in targets {
        let status = ctx.status(&mut client, i)?;
        let Some(target) = ctx.resolve(i, point, status.current)? else {
            return Err(Failure::usage("`upgrade base` would undo every migration: downgrades are not supported"));
        };
        let l = &ctx.sets[i];
        let mut options = l.options.clone();
        options.accept_changed = accept_changed.clone();
        let mut applied = Vec::new();
        let mut elsewhere = Vec::new();
        let quiet = ctx.quiet;
        let log = |line: String| {
            if !quiet {
                eprintln!("{line}")
            }
        };
        let label = |r: Revision| ctx.label(i, Some(r));
        let report = db::upgrade(&mut client, &l.set.migrations, Some(target), &options, &mut |event| match event {
            Event::Waiting { holder } => log(format!(
                "waiting for the migration lock, held by {}",
                holder.unwrap_or("another session (not visible to this user)")
            )),
            Event::Accepted { migration, recorded } => log(format!(
                "accepted changed file {} {}: recorded checksum {recorded} replaced by {}",
                label(migration.revision),
                migration.file_name,
                migration.checksum
            )),
            Event::Applying { .. } => {}
            Event::Applied { migration, duration } => {
                log(format!("applied {} {:<8} {} in {} ms", label(migration.revision), migration.phase, migration.file_name, duration.as_millis()));
                applied.push(json!({
                    "revision": migration.revision.to_string(),
                    "file_name": migration.file_name,
                    "phase": migration.phase.as_str(),
                    "duration_ms": duration.as_millis() as u64,
                }));
            }
            Event::AppliedElsewhere { migration } => {
                log(format!("{} {} was applied by another process meanwhile", label(migration.revision), migration.file_name));
                elsewhere.push(migration.revision.to_string());
            }
        })
        .map_err(|e| stamp_hint(e, status.current))?;
        let head = l.head();
        let at = |r: Option<Revision>| format!("{}{}", ctx.label(i, r), if r == Some(head) { " (head)" } else { "" });
        let human = if report.applied.is_empty() && elsewhere.is_empty() {
            format!("already at {}; nothing to do", at(report.to))
        } else {
            format!("upgraded {} -> {}", ctx.label(i, report.from), at(report.to))
        };
        if !ctx.json {
            ctx.log(&human);
            if let Some(hint) = deploy_hint(&l.set.migrations, report.to, &ctx.label(i, report.to)) {
                ctx.log(&hint);
            }
        }
        let mut obj = set_json(l);
        obj.insert("from".into(), rev_json(report.from));
        obj.insert("to".into(), rev_json(report.to));
        obj.insert("applied".into(), Value::Array(applied));
        obj.insert("applied_elsewhere".into(), json!(elsewhere));
        sets.push(Value::Object(obj));
    }
    ctx.print_sets("", Map::new(), sets);
    Ok(exit::OK)
}

/// A first migration failing on objects that already exist: a schema built from schema.sql or
/// by hand, which wants `stamp`, not `upgrade`.
fn stamp_hint(e: db::Error, current: Option<Revision>) -> Failure {
    let exists = matches!(&e, db::Error::Failed(f) if current.is_none()
        && matches!(f.sqlstate.as_deref(), Some("42P07" | "42710" | "42723" | "42P06")));
    let mut failure = Failure::from(e);
    if exists {
        failure.message.push_str(
            "\nhint: nothing is recorded but the objects exist: if this schema was built from schema.sql (or by hand), \
             record its revision with `cargo procrastinate stamp <revision>` instead of upgrading",
        );
    }
    failure
}

/// After stopping at a `pre` migration whose release has `post` ones: the zero-downtime order.
fn deploy_hint(migrations: &[Migration], at: Option<Revision>, label: &str) -> Option<String> {
    let last = &migrations[at?.index()];
    let next = migrations.get(at?.index() + 1)?;
    let now = if label.contains('@') { format!(" (the database is at {label})") } else { String::new() };
    (last.phase == Phase::Pre && next.phase == Phase::Post && next.version == last.version).then(|| {
        format!("next: deploy release {}{now}, then `upgrade` again to apply its post migrations", last.version)
    })
}
