//! One function per subcommand. Data goes to stdout (human or JSON), progress to stderr.

use procrastinate_migrations::db::{self, AcceptChanged, Divergence, Event, Status};
use procrastinate_migrations::range::{resolve_point, Point, Range};
use procrastinate_migrations::script::{self, ScriptOptions};
use procrastinate_migrations::{Migration, MigrationSet, Revision};
use serde_json::{json, Value};

use crate::cli::{Cli, Command, MessageFormat};
use crate::connect::{self, Target};
use crate::settings::{self, FlagLayer, Resolved};
use crate::{exit, Failure};

struct Ctx {
    settings: Resolved,
    set: MigrationSet,
    json: bool,
    quiet: bool,
    database_url: Option<String>,
    /// Kept alive for the whole command; dropping it stops the cluster.
    scratch: Option<pg_scratch::Scratch>,
    /// Whether "connected to ..." was said already (some commands connect twice).
    announced: bool,
}

impl Ctx {
    fn log(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    fn migrations(&self) -> &[Migration] {
        &self.set.migrations
    }

    fn target(&mut self) -> Result<Option<Target>, Failure> {
        if self.scratch.is_none() {
            return connect::target(
                self.database_url.as_deref(),
                &self.settings.database_url_env,
                self.settings.manifest_dir.as_ref().map(|d| d.as_std_path()),
            );
        }
        let scratch = self.scratch.as_ref().expect("checked");
        connect::parse(&scratch.url("scratch"), &|_| None).map(Some)
    }

    fn client(&mut self) -> Result<postgres::Client, Failure> {
        match self.target()? {
            Some(target) => self.connect(&target),
            None => Err(self.no_database()),
        }
    }

    fn connect(&mut self, target: &Target) -> Result<postgres::Client, Failure> {
        let client = target.connect()?;
        if !std::mem::replace(&mut self.announced, true) {
            let schema = self.settings.options.schema.as_deref().map(|s| format!(", schema {s}")).unwrap_or_default();
            self.log(&format!("connected to {}{schema}", target.display()));
        }
        Ok(client)
    }

    fn no_database(&self) -> Failure {
        Failure::usage(format!(
            "no database configured: pass --database-url URL, set {} (or put it in .env beside Cargo.toml), \
             set PGHOST/PGDATABASE/..., or use --scratch for a throwaway local PostgreSQL",
            self.settings.database_url_env
        ))
    }

    fn status(&mut self) -> Result<(postgres::Client, Status), Failure> {
        let mut client = self.client()?;
        let status = db::status(&mut client, &self.set.migrations, &self.settings.options)?;
        Ok((client, status))
    }

    fn print(&self, human: &str, json: Value) {
        if self.json {
            println!("{json}");
        } else if !human.is_empty() {
            println!("{human}");
        }
    }
}

pub fn run(cli: Cli) -> Result<i32, Failure> {
    let g = cli.global;
    // Refused before anything is read or started: nothing to configure for a no.
    if let Command::Downgrade { .. } = cli.command {
        return Err(Failure::usage(
            "downgrade is not supported: Procrastinate migrations cannot be reversed safely (schema downgrades \
             can lose data). Restore the database from a backup taken before the migration, then deploy the \
             previous version.",
        ));
    }
    let flags = FlagLayer {
        manifest_path: g.manifest_path,
        package: g.package,
        settings: procrastinate_migrations::config::Settings {
            migrations: g.migrations.map(|p| p.to_string_lossy().into_owned()),
            database_url_env: None,
            schema: g.schema,
            version_table: g.version_table,
            lock_timeout: g.lock_timeout,
            lock_wait: g.lock_wait,
        },
    };
    let quiet = g.quiet;
    let resolved = settings::resolve(flags, &|l| {
        if !quiet {
            eprintln!("{l}")
        }
    })?;
    let set = MigrationSet::from_dir(&resolved.migrations)
        .map_err(|e| Failure::usage(format!("{e}\n(the directory is set by {})", resolved.migrations_origin)))?;
    let scratch = if g.scratch {
        if !quiet {
            eprintln!("starting a throwaway PostgreSQL (removed when this command ends)...");
        }
        let s = pg_scratch::Scratch::start().map_err(|e| Failure::connect(format!("cannot start the scratch PostgreSQL: {e}")))?;
        s.create_database("scratch").map_err(|e| Failure::connect(format!("cannot create the scratch database: {e}")))?;
        Some(s)
    } else {
        None
    };
    let mut ctx = Ctx {
        settings: resolved,
        set,
        json: g.message_format == MessageFormat::Json,
        quiet,
        database_url: g.database_url,
        scratch,
        announced: false,
    };
    let show_after = ctx.scratch.is_some() && matches!(cli.command, Command::Upgrade { .. } | Command::Stamp { .. });
    let code = match cli.command {
        Command::Current => current(&mut ctx),
        Command::Upgrade { target, accept_changed } => upgrade(&mut ctx, &target, &accept_changed),
        Command::Stamp { target, purge } => stamp(&mut ctx, &target, purge),
        Command::History { verbose, range } => history(&mut ctx, &range, verbose),
        Command::Pending { verbose } => history(&mut ctx, "current:head", verbose),
        Command::Heads => heads(&ctx),
        Command::Check => check(&mut ctx),
        Command::Sql { offline, range, from } => sql(&mut ctx, offline, range, from),
        Command::Downgrade { .. } => unreachable!("refused above"),
    }?;
    if show_after && !ctx.json {
        // The scratch database disappears with this process: show what it ended up as.
        println!();
        history(&mut ctx, "base:head", false)?;
        ctx.log("\nThat was a throwaway database. Point the tool at yours with --database-url or DATABASE_URL.");
    }
    Ok(code)
}

fn rev_json(r: Option<Revision>) -> Value {
    r.map_or(Value::Null, |r| Value::String(r.to_string()))
}

fn show_rev(r: Option<Revision>) -> String {
    r.map_or_else(|| "base".to_string(), |r| r.to_string())
}

fn divergence_json(d: &Divergence) -> Value {
    let kind = match d {
        Divergence::Unknown { .. } => "unknown",
        Divergence::Renamed { .. } => "renamed",
        Divergence::Changed { .. } => "changed",
        Divergence::Missing { .. } => "missing",
    };
    json!({ "kind": kind, "message": d.to_string() })
}

fn current(ctx: &mut Ctx) -> Result<i32, Failure> {
    let (_client, status) = ctx.status()?;
    let head = ctx.set.head();
    for d in &status.divergences {
        ctx.log(&format!("warning: {d}"));
    }
    let human = match status.current {
        Some(r) if r == head => format!("{r} (head)"),
        Some(r) => r.to_string(),
        None if !status.tracked => format!("base (nothing recorded: no table {})", ctx.settings.options.table),
        None => "base (nothing recorded)".to_string(),
    };
    ctx.print(
        &human,
        json!({
            "current": rev_json(status.current),
            "head": head.to_string(),
            "at_head": status.current == Some(head),
            "tracking_table": ctx.settings.options.table.to_string(),
            "divergences": status.divergences.iter().map(divergence_json).collect::<Vec<_>>(),
        }),
    );
    Ok(exit::OK)
}

fn parse_point(s: &str) -> Result<Point, Failure> {
    s.parse::<Point>().map_err(Failure::usage)
}

fn resolve(point: Point, head: Revision, current: Option<Revision>) -> Result<Option<Revision>, Failure> {
    let n = resolve_point(point, head, Some(current.map_or(0, Revision::number)), current.map_or(0, Revision::number))
        .map_err(Failure::usage)?;
    Ok((n > 0).then(|| Revision::new(n)))
}

fn upgrade(ctx: &mut Ctx, target: &str, accept: &[String]) -> Result<i32, Failure> {
    ctx.settings.options.accept_changed = if accept.iter().any(|a| a == "all") {
        AcceptChanged::All
    } else {
        AcceptChanged::Only(
            accept.iter().map(|a| a.parse::<Revision>().map_err(|e| Failure::usage(format!("--accept-changed: {e}")))).collect::<Result<_, _>>()?,
        )
    };
    let point = parse_point(target)?;
    let (mut client, status) = ctx.status()?;
    let head = ctx.set.head();
    let Some(target) = resolve(point, head, status.current)? else {
        return Err(Failure::usage("`upgrade base` would undo every migration: downgrades are not supported"));
    };
    let mut applied = Vec::new();
    let mut elsewhere = Vec::new();
    let quiet = ctx.quiet;
    let log = |line: String| {
        if !quiet {
            eprintln!("{line}")
        }
    };
    let report = db::upgrade(&mut client, &ctx.set.migrations, target, &ctx.settings.options, &mut |event| match event {
        Event::Waiting { holder } => log(format!(
            "waiting for the migration lock, held by {}",
            holder.unwrap_or("another session (not visible to this user)")
        )),
        Event::Accepted { migration, recorded } => log(format!(
            "accepted changed file {}: recorded checksum {recorded} replaced by {}",
            migration.label(),
            migration.checksum
        )),
        Event::Applying { .. } => {}
        Event::Applied { migration, duration } => {
            log(format!("applied {} {:<8} {} in {} ms", migration.revision, migration.phase, migration.file_name, duration.as_millis()));
            applied.push(json!({
                "revision": migration.revision.to_string(),
                "file_name": migration.file_name,
                "phase": migration.phase.as_str(),
                "duration_ms": duration.as_millis() as u64,
            }));
        }
        Event::AppliedElsewhere { migration } => {
            log(format!("{} was applied by another process meanwhile", migration.label()));
            elsewhere.push(migration.revision.to_string());
        }
    })
    .map_err(|e| stamp_hint(e, status.current))?;
    let human = if report.applied.is_empty() && elsewhere.is_empty() {
        format!("already at {}{}; nothing to do", show_rev(report.to), if report.to == Some(head) { " (head)" } else { "" })
    } else {
        format!("upgraded {} -> {}{}", show_rev(report.from), show_rev(report.to), if report.to == Some(head) { " (head)" } else { "" })
    };
    if !ctx.json {
        ctx.log(&human);
        if let Some(hint) = deploy_hint(&ctx.set.migrations, report.to) {
            ctx.log(&hint);
        }
    }
    ctx.print(
        "",
        json!({
            "from": rev_json(report.from),
            "to": rev_json(report.to),
            "head": head.to_string(),
            "applied": applied,
            "applied_elsewhere": elsewhere,
        }),
    );
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
fn deploy_hint(migrations: &[Migration], at: Option<Revision>) -> Option<String> {
    let last = &migrations[at?.index()];
    let next = migrations.get(at?.index() + 1)?;
    (last.phase == procrastinate_migrations::Phase::Pre && next.phase == procrastinate_migrations::Phase::Post && next.version == last.version)
        .then(|| format!("next: deploy release {}, then `upgrade` again to apply its post migrations", last.version))
}

fn stamp(ctx: &mut Ctx, target: &str, purge: bool) -> Result<i32, Failure> {
    let point = parse_point(target)?;
    let (mut client, status) = ctx.status()?;
    let target = resolve(point, ctx.set.head(), if purge { None } else { status.current })?;
    let after = db::stamp(&mut client, &ctx.set.migrations, target, purge, &ctx.settings.options)?;
    let human = format!("stamped {}{}", show_rev(after.current), if purge { " (records purged first)" } else { "" });
    ctx.print(&human, json!({ "current": rev_json(after.current), "purged": purge }));
    Ok(exit::OK)
}

fn heads(ctx: &Ctx) -> Result<i32, Failure> {
    let head = ctx.set.migrations.last().expect("a set is never empty");
    ctx.print(
        &format!("{} (head) {}", head.revision, head.file_name),
        json!({ "head": head.revision.to_string(), "file_name": head.file_name }),
    );
    Ok(exit::OK)
}

fn history(ctx: &mut Ctx, range: &str, verbose: bool) -> Result<i32, Failure> {
    let range: Range = range.parse().map_err(Failure::usage)?;
    let needs_db = range.from == Point::Current || range.to == Point::Current;
    let status = match ctx.target()? {
        Some(target) => {
            let mut client = ctx.connect(&target)?;
            Some(db::status(&mut client, &ctx.set.migrations, &ctx.settings.options)?)
        }
        None if needs_db => return Err(ctx.no_database()),
        None => {
            ctx.log("(no database configured: showing the files only)");
            None
        }
    };
    let current = status.as_ref().and_then(|s| s.current);
    let head = ctx.set.head();
    let (from, to) = range.resolve(head, Some(current.map_or(0, Revision::number))).map_err(Failure::usage)?;
    let mut lines = Vec::new();
    let mut rows = Vec::new();
    for m in ctx.migrations().iter().filter(|m| m.revision.number() > from && m.revision.number() <= to) {
        let row = status.as_ref().and_then(|s| s.row(m.revision));
        let state = match (&status, row) {
            (None, _) => "?",
            (Some(_), Some(r)) if r.stamped => "stamped",
            (Some(_), Some(_)) => "applied",
            (Some(_), None) => "pending",
        };
        let mut marks = Vec::new();
        if Some(m.revision) == current {
            marks.push("current");
        }
        if m.revision == head {
            marks.push("head");
        }
        let marks = if marks.is_empty() { String::new() } else { format!(" ({})", marks.join(", ")) };
        let mut line = format!("{} {:<8} {:<8} {}{marks}", m.revision, m.phase, state, m.file_name);
        if verbose {
            line.push_str(&format!("\n     sha256 {}", m.checksum));
            if let Some(r) = row {
                let took = r.duration_ms.map(|d| format!(" in {d} ms")).unwrap_or_default();
                line.push_str(&format!("\n     {} {} by {}{took}", state, r.applied_at, r.applied_by));
                if r.checksum != m.checksum.to_string() {
                    line.push_str(&format!("\n     CHANGED since applied: recorded sha256 {}", r.checksum));
                }
            }
        }
        lines.push(line);
        rows.push(json!({
            "revision": m.revision.to_string(),
            "file_name": m.file_name,
            "version": m.version.to_string(),
            "serial": m.serial,
            "phase": m.phase.as_str(),
            "description": m.description,
            "checksum": m.checksum.to_string(),
            "state": state,
            "applied_at": row.map(|r| r.applied_at.clone()),
            "applied_by": row.map(|r| r.applied_by.clone()),
            "duration_ms": row.and_then(|r| r.duration_ms),
            "recorded_checksum": row.map(|r| r.checksum.clone()),
        }));
    }
    if lines.is_empty() {
        lines.push(format!("(nothing in range {range})"));
    }
    ctx.print(&lines.join("\n"), json!({ "current": rev_json(current), "head": head.to_string(), "migrations": rows }));
    Ok(exit::OK)
}

fn check(ctx: &mut Ctx) -> Result<i32, Failure> {
    let (_client, status) = ctx.status()?;
    let head = ctx.set.head();
    let pending: Vec<String> = status.pending(ctx.migrations()).iter().map(Migration::label).collect();
    let (code, summary) = if !status.divergences.is_empty() {
        (exit::DIVERGED, "the database and the migration files disagree".to_string())
    } else if status.current != Some(head) {
        (exit::BEHIND, format!("behind: the database is at {}, head is {head}; {} pending", show_rev(status.current), pending.len()))
    } else {
        (exit::OK, format!("ok: at head {head}; {} applied migrations match their files", status.applied.len()))
    };
    let mut lines = vec![summary];
    lines.extend(status.divergences.iter().map(|d| format!("  {d}")));
    if code == exit::BEHIND {
        lines.extend(pending.iter().map(|p| format!("  pending {p}")));
    }
    ctx.print(
        &lines.join("\n"),
        json!({
            "ok": code == exit::OK,
            "exit_code": code,
            "current": rev_json(status.current),
            "head": head.to_string(),
            "pending": status.pending(ctx.migrations()).iter().map(|m| m.revision.to_string()).collect::<Vec<_>>(),
            "divergences": status.divergences.iter().map(divergence_json).collect::<Vec<_>>(),
        }),
    );
    Ok(code)
}

fn sql(ctx: &mut Ctx, offline: bool, range: Option<String>, from: Option<String>) -> Result<i32, Failure> {
    let range_text = match (range, from) {
        (Some(r), _) => r,
        (None, Some(f)) => format!("{f}:head"),
        (None, None) if offline => "base:head".to_string(),
        (None, None) => "current:head".to_string(),
    };
    let range: Range = range_text.parse().map_err(Failure::usage)?;
    let current = if offline {
        None
    } else {
        Some(ctx.status()?.1.current.map_or(0, Revision::number))
    };
    let (from, to) = range.resolve(ctx.set.head(), current).map_err(|e| {
        if offline && e.contains("needs a database") {
            Failure::usage("`current` needs a database: with --offline give a revision, e.g. `sql --offline 0029:head` or `--from 0029`")
        } else {
            Failure::usage(e)
        }
    })?;
    let opts = ScriptOptions { table: &ctx.settings.options.table, schema: ctx.settings.options.schema.as_deref(), range: &range_text };
    print!("{}", script::render(ctx.migrations(), from, to, &opts));
    Ok(exit::OK)
}
