//! `upgrade`: every selected set to its target, set by set in the configured order.

use procrastinate_migrations::db::{self, AcceptChanged, Event, Session};
use procrastinate_migrations::deploy::{Goal, Reach, Why};
use procrastinate_migrations::{Migration, Phase, Revision};
use std::time::Duration;

use super::Ctx;
use crate::{exit, json, term, Failure};

/// What the command line asked for.
pub(super) enum How {
    /// `head`, a revision, `+N`, `NAME@REV`.
    Target(String),
    /// `--phase pre|post` or `--to-version X.Y.Z`, for every selected set.
    Goal(Goal),
}

pub(super) fn run(ctx: &mut Ctx, how: How, accept: &[String], from_schema: bool, dry_run: bool, lint: bool) -> Result<i32, Failure> {
    // Checked before anything runs; each set then accepts only what names it.
    for i in ctx.selected() {
        accept_for(ctx, i, accept)?;
    }
    let mut client = ctx.client()?;
    // Ctrl-C or SIGTERM cancels the statement in flight instead of leaving it to the server.
    let interrupts = crate::signals::Interrupts::install().map_err(|e| Failure::new(exit::FAILED, format!("cannot watch for signals: {e}")))?;
    if let Some(target) = &ctx.connected {
        interrupts.watch(target.clone(), client.cancel_token());
    }
    // Every set's target first, so that a refusal comes before anything is applied.
    let mut planned: Vec<(usize, Option<Revision>, Revision)> = Vec::new();
    let mut statuses: std::collections::HashMap<usize, db::Status> = std::collections::HashMap::new();
    // Each set's status comes from the read `upgrade` starts from: asked once, not twice.
    let mut seen: std::collections::HashMap<usize, db::Seen> = std::collections::HashMap::new();
    let mut read = |ctx: &Ctx, client: &mut dyn Session, i: usize| -> Result<db::Status, Failure> {
        let l = &ctx.sets[i];
        let first = db::Seen::read(client, &l.options);
        let status = match first.applied(&l.options) {
            Some(applied) => db::Status::compare_with(applied, &l.set.migrations, l.options.out_of_order),
            None => ctx.status(client, i)?,
        };
        seen.insert(i, first);
        Ok(status)
    };
    match how {
        How::Target(text) => {
            for (i, point) in ctx.targets(&text)? {
                let status = read(ctx, &mut client, i)?;
                let current = status.current;
                statuses.insert(i, status);
                match ctx.resolve(i, point, current)? {
                    Some(target) => planned.push((i, current, target)),
                    None => return Err(Failure::usage("`upgrade base` would undo every migration: downgrades are not supported")),
                }
            }
        }
        How::Goal(goal) => {
            for i in ctx.selected() {
                let status = read(ctx, &mut client, i)?;
                let current = status.current;
                statuses.insert(i, status);
                let reach = ctx.sets[i].releases().reach(current, goal).map_err(|e| Failure::usage(format!("{}--to-version: {e}", ctx.prefix(i))))?;
                match reach {
                    Reach::To(target) => planned.push((i, current, target)),
                    Reach::Nothing(why) => {
                        let flag = ctx.set_flag(i);
                        let why = match why {
                            Why::AtHead => "every migration is applied".to_string(),
                            Why::PostPending { release, deploy } => format!(
                                "the pre migrations of {} are applied and its post migrations pending: deploy {} of your code, \
                                 then `cargo procrastinate upgrade{flag} --phase post`",
                                release.human(),
                                deploy.human()
                            ),
                            Why::PrePending(v) => format!(
                                "the next release, {v}, has its pre migrations pending: `cargo procrastinate upgrade{flag} --phase pre` first",
                                v = v.human()
                            ),
                            Why::NothingUpTo(v) => format!("no pending migration belongs to {} or an earlier release", v.human()),
                        };
                        ctx.log(&format!("{}nothing to do at {}: {why}", ctx.prefix(i), ctx.label(i, current)));
                    }
                    Reach::Interrupt { version, through } => {
                        return Err(Failure::usage(format!(
                            "{}the next migrations (through {}) carry no pre/post marker (files written before Procrastinate 3.0, \
                             or without phases): they cannot be applied while older code runs. Take the service-interruption path: \
                             stop the workers, run `cargo procrastinate upgrade{} --to-version {}`, deploy {}, start the workers",
                            ctx.prefix(i),
                            ctx.label(i, Some(through)),
                            ctx.set_flag(i),
                            version.human(),
                            version.human()
                        )))
                    }
                }
            }
        }
    }
    // Files recorded under another set's name (a deploy box told one directory where the
    // database knows sets): running them again would fail halfway, so nothing runs.
    for &(i, _, _) in &planned {
        if let Some((line, true)) = ctx.untold(&mut client, i, &statuses[&i])? {
            return Err(Failure::new(exit::DIVERGED, format!("{}{line}; nothing was changed", ctx.prefix(i))));
        }
    }
    // Said before anything runs: a plain upgrade across releases is the service-interruption path.
    // Not for a set with nothing applied: no code of any release runs against it yet.
    let mut warnings: Vec<Vec<String>> = vec![Vec::new(); ctx.sets.len()];
    for &(i, current, target) in planned.iter().filter(|(_, current, _)| current.is_some()) {
        let done = current.map_or(0, |r| r.number() as usize);
        let crossed = ctx.sets[i].releases().crossed_posts(done, target.number() as usize);
        if let Some(last) = crossed.last() {
            let names: Vec<String> = crossed.iter().map(|v| v.human()).collect();
            let warning = format!(
                "{}this runs the post migrations of {} together with later releases' migrations: workers still \
                 running a release older than {} may break. For a zero-downtime deploy go one release at a time \
                 (`cargo procrastinate plan{}`).",
                ctx.prefix(i),
                names.join(", "),
                last.human(),
                ctx.set_flag(i),
            );
            ctx.log(&format!("warning: {warning}"));
            warnings[i].push(warning);
        }
    }

    // `--lint`: the files about to run are reviewed first; an error stops everything.
    if lint {
        let mut files = Vec::new();
        for &(i, current, target) in &planned {
            let status = &statuses[&i];
            let l = &ctx.sets[i];
            let gaps = status.gaps.iter().map(|r| &l.set.migrations[r.index()]);
            let upto = |m: &&procrastinate_migrations::Migration| m.revision.number() > current.map_or(0, Revision::number) && m.revision <= target;
            files.extend(gaps.chain(status.pending(&l.set.migrations).iter().filter(upto)).map(|m| (i, m)));
        }
        super::lint::check(ctx, &files)?;
    }
    if dry_run {
        return dry(ctx, &mut client, &planned, accept, &mut warnings);
    }
    let mut sets = Vec::new();
    for (i, current, target) in planned {
        if from_schema {
            if let Some(built) = build_from_schema(ctx, i, &mut client, current, target)? {
                sets.push(built);
                continue;
            }
        }
        let l = &ctx.sets[i];
        let mut options = l.options.clone();
        options.accept_changed = accept_for(ctx, i, accept)?;
        options.interrupt = Some(interrupts.flag.clone());
        let mut applied: Vec<json::Applied> = Vec::new();
        let mut elsewhere = Vec::new();
        let spinner: std::cell::RefCell<Option<term::Spinner>> = Default::default();
        let set_name = l.options.set.clone();
        let label = |r: Revision| ctx.label(i, Some(r));
        // Each event: a line on stderr for people, and with --message-format json one object
        // on stdout as it happens (a deploy script sees progress, not only the end).
        let say = |event: &'static str,
                   m: Option<&Migration>,
                   duration: Option<Option<Duration>>,
                   message: String| {
            if let Some(mut s) = spinner.take() {
                s.clear();
            }
            term::log(&message);
            if ctx.json {
                json::emit(
                    "migration",
                    &json::Event {
                        set: set_name.clone(),
                        event,
                        revision: m.map(|m| m.revision.to_string()),
                        file_name: m.map(|m| m.file_name.to_string()),
                        phase: m.map(|m| m.phase.as_str()),
                        duration_ms: duration.map(|d| d.map(|d| d.as_millis() as u64)),
                        message,
                    },
                );
            }
        };
        let report = db::upgrade_seen(
            &mut client,
            &l.set.migrations,
            Some(target),
            &options,
            seen.remove(&i),
            &mut |event| match event {
                Event::Waiting { holder } => say("waiting", None, None, waiting(holder)),
                Event::Accepted {
                    migration,
                    recorded,
                } => say(
                    "accepted",
                    Some(migration),
                    None,
                    format!(
                        "accepted changed file {} {}: recorded checksum {recorded} replaced by {}; the new text was not run \
                         (the database keeps what the earlier text did: apply any difference yourself, in a new migration)",
                        label(migration.revision),
                        migration.file_name,
                        migration.checksum
                    ),
                ),
                Event::Revised { revised, rerun } => say(
                    "revised",
                    None,
                    None,
                    format!(
                        "note: {}{}",
                        revised.describe(options.schema.as_deref()),
                        if rerun {
                            "\n  done: the revised file ran again and is recorded"
                        } else {
                            "\n  done: recorded"
                        }
                    ),
                ),
                Event::Applying { migrations } => {
                    for m in migrations {
                        term::verbose(&format!("applying {} {} (sha256 {})", label(m.revision), m.file_name, m.checksum));
                    }
                    let (first, last) = (&migrations[0], &migrations[migrations.len() - 1]);
                    let what = if migrations.len() == 1 {
                        format!("{} {:<8} {}", label(first.revision), first.phase, first.file_name)
                    } else {
                        format!("{}..{} ({} migrations, each in its own transaction)", label(first.revision), label(last.revision), migrations.len())
                    };
                    *spinner.borrow_mut() = Some(term::Spinner::start(format!("applying {what}")));
                }
                Event::Retrying {
                    migration,
                    attempt,
                    of,
                    after,
                    reason,
                } => say(
                    "retrying",
                    Some(migration),
                    None,
                    format!(
                        "{} {}: {reason}; trying again once the transactions holding its tables end, without queueing \
                         in front of their readers meanwhile (at most {}; {attempt} of {of})",
                        label(migration.revision),
                        migration.file_name,
                        humantime::format_duration(after)
                    ),
                ),
                Event::Applied {
                    migration,
                    duration,
                } => {
                    applied.push(json::Applied {
                        revision: migration.revision.to_string(),
                        file_name: migration.file_name.to_string(),
                        phase: migration.phase.as_str(),
                        duration_ms: duration.map(|d| d.as_millis() as u64),
                    });
                    // Unknown when what followed it in its round trip failed (see the event).
                    let took = duration.map_or_else(|| " (its duration is unknown)".to_string(), |d| format!(" in {} ms", d.as_millis()));
                    say(
                        "applied",
                        Some(migration),
                        Some(duration),
                        format!("applied {} {:<8} {}{took}", label(migration.revision), migration.phase, migration.file_name),
                    );
                }
                Event::AppliedElsewhere { migration } => {
                    elsewhere.push(migration.revision.to_string());
                    say(
                        "applied_elsewhere",
                        Some(migration),
                        None,
                        format!(
                            "{} {} was applied by another process meanwhile",
                            label(migration.revision),
                            migration.file_name
                        ),
                    );
                }
            },
        )
        .map_err(|e| stamp_hint(reread(ctx, i, e), current))?;
        let head = l.head();
        let at = |r: Option<Revision>| format!("{}{}", ctx.label(i, r), if r == Some(head) { " (head)" } else { "" });
        let human = if report.applied.is_empty() && elsewhere.is_empty() {
            format!("already at {}; nothing to do", at(report.to))
        } else {
            format!("upgraded {} -> {}", ctx.label(i, report.from), at(report.to))
        };
        let hint = deploy_hint(l, report.to, &ctx.set_flag(i));
        if !ctx.json {
            ctx.log(&human);
            if let Some(hint) = &hint {
                ctx.log(hint);
            }
        }
        sets.push(json::Upgrade {
            id: ctx.set_id(i),
            from: json::rev(report.from),
            to: json::rev(report.to),
            applied,
            applied_elsewhere: elsewhere,
            next: hint,
            from_schema: None,
            warnings: std::mem::take(&mut warnings[i]),
        });
    }
    ctx.print_sets("upgrade", "", &(), &sets);
    Ok(exit::OK)
}

/// `upgrade --dry-run`: what the planner says each set would do, read without the lock, and
/// nothing written.
fn dry(ctx: &Ctx, client: &mut dyn Session, planned: &[(usize, Option<Revision>, Revision)], accept: &[String], warnings: &mut [Vec<String>]) -> Result<i32, Failure> {
    let mut lines = Vec::new();
    let mut sets = Vec::new();
    for &(i, current, target) in planned {
        let l = &ctx.sets[i];
        let status = ctx.status(client, i)?;
        let plan = procrastinate_migrations::state::plan_upgrade(&l.set.migrations, &status, Some(target), &accept_for(ctx, i, accept)?)
            .map_err(|r| Failure::from(db::Error::refused(r, &l.options)))?;
        let p = ctx.prefix(i);
        let accepted: Vec<String> = plan
            .accept
            .iter()
            .filter_map(|d| match d {
                db::Divergence::Changed { revision, file_name, .. } => Some(format!("{} {file_name}", ctx.label(i, Some(*revision)))),
                _ => None,
            })
            .collect();
        for a in &accepted {
            lines.push(format!("{p}would accept {a}: record its new checksum (the new text would not run)"));
        }
        for r in &plan.revised {
            lines.push(format!("{p}would record the revised text of {} {}", ctx.label(i, Some(r.revision)), r.file_name));
        }
        for m in plan.run {
            lines.push(format!("{p}would apply {} {:<8} {}", ctx.label(i, Some(m.revision)), m.phase, m.file_name));
        }
        let to = plan.run.last().map(|m| m.revision).or(current);
        lines.push(if plan.run.is_empty() {
            format!("{p}dry run: nothing to apply at {}; nothing was changed", ctx.label(i, current))
        } else {
            format!("{p}dry run: would upgrade {} -> {}; nothing was changed", ctx.label(i, current), ctx.label(i, to))
        });
        sets.push(json::UpgradeDryRun {
            id: ctx.set_id(i),
            dry_run: true,
            from: json::rev(current),
            to: json::rev(to),
            would_apply: plan.run.iter().map(|m| json::Planned { revision: m.revision.to_string(), file_name: m.file_name.to_string(), phase: m.phase.as_str() }).collect(),
            would_accept: accepted,
            would_record_revised: plan.revised.iter().map(|r| r.file_name.clone()).collect(),
            warnings: std::mem::take(&mut warnings[i]),
        });
    }
    ctx.print_sets("upgrade", &lines.join("\n"), &(), &sets);
    Ok(exit::OK)
}

/// The line for a wait on another process's migration lock.
fn waiting(holder: Option<&str>) -> String {
    format!("waiting for the migration lock, held by {}", holder.unwrap_or("another session (gone by now, or not visible to this user)"))
}

/// `--from-schema` for set `i`: builds head from its verified `reference/schema.sql` when the
/// database is fresh for it; `None` (said why, unless it is the usual case of a database that
/// has the set already) when the migrations are to run instead. A proof that no longer holds
/// is an error: the flag asked for the file, and the file is not what the set builds.
fn build_from_schema(ctx: &Ctx, i: usize, client: &mut dyn Session, current: Option<Revision>, target: Revision) -> Result<Option<json::Upgrade>, Failure> {
    let l = &ctx.sets[i];
    let reference = l.set.dir.join(crate::proof::REFERENCE);
    let not_built = |why: &str| ctx.log(&format!("{}not built from schema.sql: {why}; applying migrations", ctx.prefix(i)));
    if !reference.is_file() {
        not_built(&format!("there is no {} (`cargo procrastinate vendor` puts one there)", reference.display()));
        return Ok(None);
    }
    if current.is_some() {
        term::verbose(&format!("{}not built from schema.sql: the database has the set's migrations up to {}", ctx.prefix(i), ctx.label(i, current)));
        return Ok(None);
    }
    if target != l.head() {
        not_built(&format!("schema.sql is head ({}), and the target is {}", ctx.label(i, Some(l.head())), ctx.label(i, Some(target))));
        return Ok(None);
    }
    let (proof, sql) = crate::proof::Proof::check(&l.set.dir, &l.set.migrations).map_err(|e| Failure::usage(format!("{}--from-schema: {e}", ctx.prefix(i))))?;
    let label = reference.display().to_string();
    let built = db::build_from_schema(client, &l.set.migrations, &sql, &label, &proof.objects, &l.options, &mut |event| {
        if let Event::Waiting { holder } = event {
            ctx.log(&waiting(holder));
        }
    })?;
    let report = match built {
        db::FromSchema::Built(report) => report,
        db::FromSchema::NotFresh(why) => {
            not_built(&why);
            return Ok(None);
        }
    };
    let head = ctx.label(i, Some(l.head()));
    if !ctx.json {
        ctx.log(&format!(
            "built {head} (head) from {label} in one transaction, as `verify` proved the set builds it; \
             its {} migrations are recorded as stamped (none of their files ran)",
            l.set.migrations.len()
        ));
    }
    Ok(Some(json::Upgrade {
        id: ctx.set_id(i),
        from: None,
        to: json::rev(report.to),
        applied: Vec::new(),
        applied_elsewhere: Vec::new(),
        next: None,
        from_schema: Some(label),
        warnings: Vec::new(),
    }))
}

/// What `--accept-changed` (`all`, `REV`, `NAME@REV`, repeatable) accepts in set `i`. A bare
/// revision needs a name when several sets are configured (and no `--set`).
fn accept_for(ctx: &Ctx, i: usize, accept: &[String]) -> Result<AcceptChanged, Failure> {
    if accept.iter().any(|a| a == "all") {
        return Ok(AcceptChanged::All);
    }
    let mut revisions = Vec::new();
    for a in accept {
        let (set, rev) = match a.split_once('@') {
            Some((name, rev)) => (ctx.find_set(name)?, rev),
            None if ctx.multi() && ctx.only.is_none() => {
                return Err(Failure::usage(format!("--accept-changed {a}: name the set (`NAME@{a}`) when several sets are configured")))
            }
            None => (i, a.as_str()),
        };
        let rev = rev.parse::<Revision>().map_err(|e| Failure::usage(format!("--accept-changed: {e}")))?;
        if rev > ctx.sets[set].head() {
            return Err(Failure::usage(format!("--accept-changed {a}: there is no such revision (head is {})", ctx.label(set, Some(ctx.sets[set].head())))));
        }
        if set == i {
            revisions.push(rev);
        }
    }
    Ok(AcceptChanged::Only(revisions))
}

/// A migration whose outcome is unknown (the connection was lost while it ran): the position
/// read once on a new connection, so that what is said is what the tracking table holds.
fn reread(ctx: &Ctx, i: usize, mut e: db::Error) -> db::Error {
    if let db::Error::Failed(f) = &mut e {
        if let db::Outcome::Unknown { read } = &mut f.outcome {
            let l = &ctx.sets[i];
            let again = ctx
                .target()
                .ok()
                .flatten()
                .and_then(|t| t.connect().ok())
                .and_then(|mut client| db::status(&mut client, &l.set.migrations, &l.options).ok());
            if let Some(status) = again {
                *read = Some(status.current);
            }
        }
    }
    e
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

/// After stopping at the last `pre` migration of a release: the zero-downtime order, with the
/// exact command (its `post` migrations, or the next release's `pre` when it has none).
fn deploy_hint(set: &super::Loaded, at: Option<Revision>, set_flag: &str) -> Option<String> {
    let migrations = &set.set.migrations;
    let at = at?.index();
    if migrations[at].phase != Phase::Pre {
        return None;
    }
    let releases = set.releases();
    let release = releases.from(0).into_iter().find(|r| r.migrations.iter().any(|m| m.revision.index() == at))?;
    let rest: Vec<&Migration> = release.migrations.iter().filter(|m| m.revision.index() > at).collect();
    match rest.first() {
        Some(next) if next.phase == Phase::Post => Some(format!(
            "next: deploy release {} of your code, then apply its post migrations with `cargo procrastinate upgrade{set_flag} --phase post`",
            release.deploy.human()
        )),
        Some(_) => None,
        None if at + 1 < migrations.len() => Some(format!(
            "next: deploy release {} of your code (it has no post migrations), then `cargo procrastinate upgrade{set_flag} --phase pre`",
            release.deploy.human()
        )),
        None => Some(format!("next: deploy release {} of your code (it has no post migrations)", release.deploy.human())),
    }
}
