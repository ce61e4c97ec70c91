//! One module per subcommand, over a shared `Ctx`. Data goes to stdout (human or JSON),
//! progress to stderr. Every command works on the configured sets in application order, or on
//! the one `--set` (or a `NAME@REV` target) names.

mod autogenerate;
mod check;
mod compare;
mod current;
mod database;
mod diff;
mod downgrade;
mod drift;
mod heads;
mod history;
mod init;
mod lint;
mod new;
mod plan;
mod sql;
mod stamp;
mod upgrade;
mod vendor;
mod verify;

use procrastinate_migrations::db::{self, Conn, Session, Status};
use procrastinate_migrations::range::{resolve_point, Point};
use procrastinate_migrations::{MigrationSet, Revision};

use crate::cli::{Cli, Command, MessageFormat, PhaseArg};
use procrastinate_migrations::deploy::Goal;
use crate::connect::{self, Target};
use crate::settings::{self, FlagLayer, Resolved};
use crate::{exit, json, Failure};

/// One configured set with its files read.
struct Loaded {
    set: MigrationSet,
    /// Its name, schema, tracking table and the run's settings.
    options: db::Options,
    /// The reference schema that comes with the files, when not `reference/schema.sql` beside
    /// them (the installed package's).
    reference: Option<std::path::PathBuf>,
    /// The `template` setting (`new`).
    template: Option<std::path::PathBuf>,
    /// The `desired-schema` setting (`new --autogenerate`).
    desired_schema: Option<std::path::PathBuf>,
    /// The `compare-*` settings.
    compare: crate::settings::Compare,
    /// The `lint-allow` setting.
    lint_allow: Vec<String>,
}

impl Loaded {
    fn head(&self) -> Revision {
        self.set.head()
    }

    /// Its releases: Procrastinate's files by the releases that shipped them (with the one
    /// `vendored.toml` names), any other set's by their names.
    fn releases(&self) -> procrastinate_migrations::deploy::Releases<'_> {
        procrastinate_migrations::deploy::Releases::of(&self.set.migrations, vendor::vendored_release(&self.set.dir))
    }
}

struct Ctx {
    settings: Resolved,
    sets: Vec<Loaded>,
    /// `--set NAME`: the index of the only set to work on.
    only: Option<usize>,
    json: bool,
    /// Where `.env` is looked for from (the current directory); `None` with `--no-dotenv`.
    dotenv: Option<std::path::PathBuf>,
    database_url: Option<String>,
    /// Kept alive for the whole command; dropping it stops the cluster.
    scratch: Option<pg_scratch::Scratch>,
    /// Whether "connected to ..." was said already (some commands connect twice).
    announced: bool,
    /// The connection started before the files were read (see [`Early`]), for the first
    /// [`Ctx::session`].
    early: Option<Early>,
    /// Where the last [`Ctx::session`] connected (for a cancel request, or to read again).
    connected: Option<Target>,
}

/// A connection made while the files are read and checked: the server starting a backend is
/// most of a `current`'s wall time, and the files are read meanwhile. Its errors (a malformed
/// URL or `.env`, a refused connection) wait for the first [`Ctx::session`], so that a set's
/// errors still come first; no query is sent before the set is known to be sound.
type Early = std::thread::JoinHandle<Result<Option<(Target, Conn)>, Failure>>;

/// The database the flag, the variable, a `.env` (looked for from `cwd`, `None` with
/// `--no-dotenv`) or `PG*` name; `None` when none does.
fn configured_target(flag: Option<&str>, url_env: &str, cwd: Option<&std::path::Path>, manifest_dir: Option<&camino::Utf8Path>, round_trip: std::time::Duration) -> Result<Option<Target>, Failure> {
    let target = connect::target(flag, url_env, cwd.map(|cwd| (cwd, manifest_dir.map(|d| d.as_std_path()))))?;
    Ok(target.map(|t| Target { round_trip, ..t }))
}

impl Ctx {
    fn log(&self, line: &str) {
        crate::term::log(line);
    }

    /// Several sets are configured (loaded or left out for having no file yet): revisions are
    /// written `NAME@REV` everywhere.
    fn multi(&self) -> bool {
        self.sets.len() > 1 || self.settings.sets.len() > 1
    }

    /// The sets a command works on, in application order, with their index.
    fn selected(&self) -> Vec<usize> {
        match self.only {
            Some(i) => vec![i],
            None => (0..self.sets.len()).collect(),
        }
    }

    /// `procrastinate@0038` when several sets are configured, `0038` otherwise.
    fn label(&self, set: usize, rev: Option<Revision>) -> String {
        if self.multi() {
            self.sets[set].options.label(rev)
        } else {
            rev.map_or_else(|| "base".to_string(), |r| r.to_string())
        }
    }

    /// The set's name where revisions are written `NAME@REV` (several sets configured).
    fn set_name(&self, set: usize) -> Option<&str> {
        self.sets[set].options.set.as_deref().filter(|_| self.multi())
    }

    /// ` --set NAME` for the commands we print, when several sets are configured.
    fn set_flag(&self, set: usize) -> String {
        match (&self.sets[set].options.set, self.multi()) {
            (Some(name), true) => format!(" --set {name}"),
            _ => String::new(),
        }
    }

    /// `procrastinate: ` before a set's lines when several sets are configured.
    fn prefix(&self, set: usize) -> String {
        match (&self.sets[set].options.set, self.multi()) {
            (Some(name), true) => format!("{name}: "),
            _ => String::new(),
        }
    }

    fn find_set(&self, name: &str) -> Result<usize, Failure> {
        self.sets.iter().position(|l| l.options.set.as_deref() == Some(name)).ok_or_else(|| {
            let names: Vec<&str> = self.sets.iter().filter_map(|l| l.options.set.as_deref()).collect();
            if names.is_empty() {
                Failure::usage(format!("no set is named `{name}`: this package configures one unnamed set (`migrations`)"))
            } else {
                Failure::usage(format!("no set is named `{name}` (sets: {})", names.join(", ")))
            }
        })
    }

    /// Which sets a target or range is about, and the text without its `NAME@` qualifiers:
    /// the named set, `--set`'s, or every selected set when no end is a bare revision
    /// (`head`, `base`, `current`, `+N`); a bare revision needs a name when there are several.
    fn sets_for(&self, text: &str) -> Result<(Vec<usize>, String), Failure> {
        let mut name: Option<&str> = None;
        let mut ends = Vec::new();
        for end in text.split(':') {
            match end.split_once('@') {
                Some((n, rest)) => {
                    if name.is_some_and(|m| m != n.trim()) {
                        return Err(Failure::usage(format!("`{text}` names two sets: a range is within one set")));
                    }
                    name = Some(n.trim());
                    ends.push(rest);
                }
                None => ends.push(end),
            }
        }
        let rest = ends.join(":");
        if let Some(name) = name {
            let i = self.find_set(name)?;
            if self.only.is_some_and(|o| o != i) {
                return Err(Failure::usage(format!("`{text}` names another set than --set")));
            }
            return Ok((vec![i], rest));
        }
        let bare_revision = ends.iter().any(|e| e.trim().parse::<Revision>().is_ok());
        if self.only.is_some() || !self.multi() || !bare_revision {
            return Ok((self.selected(), rest));
        }
        let names: Vec<&str> = self.sets.iter().filter_map(|l| l.options.set.as_deref()).collect();
        Err(Failure::usage(format!(
            "`{text}` is ambiguous with several sets: name the set, e.g. `{}@{text}`, or pass --set NAME (sets: {})",
            names[0],
            names.join(", ")
        )))
    }

    /// Which sets a target (`head`, `app@0002`, `procrastinate@+1`, `0029` with one set) is
    /// about, and its point.
    fn targets(&self, text: &str) -> Result<Vec<(usize, Point)>, Failure> {
        let (sets, rest) = self.sets_for(text)?;
        let point = rest.parse::<Point>().map_err(Failure::usage)?;
        Ok(sets.into_iter().map(|i| (i, point)).collect())
    }

    pub(super) fn target(&self) -> Result<Option<Target>, Failure> {
        if self.scratch.is_none() {
            return configured_target(
                self.database_url.as_deref(),
                &self.settings.database_url_env,
                self.dotenv.as_deref(),
                self.settings.manifest_dir.as_deref(),
                self.settings.round_trip,
            );
        }
        let scratch = self.scratch.as_ref().expect("checked");
        connect::parse(&scratch.url("scratch"), &|_| None).map(|t| Some(Target { round_trip: self.settings.round_trip, ..t }))
    }

    fn client(&mut self) -> Result<Conn, Failure> {
        self.session()?.ok_or_else(|| self.no_database())
    }

    /// A connection to the configured database (the early one, the first time), or `None` when
    /// none is configured.
    fn session(&mut self) -> Result<Option<Conn>, Failure> {
        let (target, client) = match self.early.take() {
            Some(early) => match early.join().map_err(|_| Failure::connect("the connection thread panicked"))?? {
                Some(connected) => connected,
                None => return Ok(None),
            },
            None => match self.target()? {
                Some(target) => {
                    let client = target.connect()?;
                    (target, client)
                }
                None => return Ok(None),
            },
        };
        self.announce(&target);
        self.connected = Some(target);
        Ok(Some(client))
    }

    fn announce(&mut self, target: &Target) {
        if !std::mem::replace(&mut self.announced, true) {
            let schema = match self.sets.as_slice() {
                [one] => one.options.schema.as_deref().map(|s| format!(", schema {s}")).unwrap_or_default(),
                _ => String::new(),
            };
            self.log(&format!("connected to {}{schema}", target.display()));
        }
    }

    pub(super) fn no_database(&self) -> Failure {
        Failure::usage(format!(
            "no database configured: pass --database-url URL, set {} (or put it in a .env file), \
             set PGHOST/PGDATABASE/... or PGSERVICE, or use --scratch for a throwaway local PostgreSQL",
            self.settings.database_url_env
        ))
    }

    /// The status of one set.
    fn status(&self, client: &mut dyn Session, set: usize) -> Result<Status, Failure> {
        let l = &self.sets[set];
        Ok(db::status(client, &l.set.migrations, &l.options)?)
    }

    /// What a scratch build of set `set` builds first: the sets configured before it (a set may
    /// reference what an earlier one creates: `orders.job_id REFERENCES procrastinate_jobs`),
    /// each up to `upto(j)`.
    fn deps(&self, set: usize, upto: &dyn Fn(usize) -> Option<Revision>) -> Vec<crate::scratchpad::Dep<'_>> {
        (0..set)
            .map(|j| crate::scratchpad::Dep {
                migrations: &self.sets[j].set.migrations,
                opts: &self.sets[j].options,
                upto: upto(j),
                label: self.sets[j].options.label(upto(j)),
            })
            .collect()
    }

    /// When nothing of set `set` is recorded but the tracking table records other sets: a line
    /// that says so (the database is not `base`: the run was not told about them), and whether
    /// these very files are recorded under another set's name (then nothing may run).
    fn untold(&self, client: &mut dyn Session, set: usize, status: &Status) -> Result<Option<(String, bool)>, Failure> {
        if !status.applied.is_empty() || !status.tracked {
            return Ok(None);
        }
        let l = &self.sets[set];
        let known: Vec<&str> = self.sets.iter().map(|s| s.options.set_name()).collect();
        let others = db::other_sets(client, &l.set.migrations, &l.options, &known)?;
        if others.is_empty() {
            return Ok(None);
        }
        let named: Vec<String> = others
            .iter()
            .map(|o| {
                let name = if o.name.is_empty() { "(unnamed)".to_string() } else { format!("`{}`", o.name) };
                if o.ours > 0 { format!("{name} ({} migrations, {} of them these files)", o.rows, o.ours) } else { format!("{name} ({} migrations)", o.rows) }
            })
            .collect();
        let mine = others.iter().any(|o| o.ours > 0);
        let line = format!(
            "nothing is recorded for {}, but the tracking table records {}: {}",
            l.options.set.as_deref().map_or_else(|| "this set".to_string(), |n| format!("set `{n}`")),
            named.join(", "),
            if mine {
                "these files are recorded under another set's name; name the sets as the database knows them \
                 (`--set-dir NAME=DIR`, repeatable, or PROCRASTINATE_SETS, or `sets` in Cargo.toml)"
            } else {
                "name every set of the database (`--set-dir NAME=DIR`, repeatable, or PROCRASTINATE_SETS, or `sets` in Cargo.toml)"
            }
        );
        Ok(Some((line, mine)))
    }

    /// When nothing of set `set` is recorded: which of its objects exist anyway (a database
    /// built by schema.sql, Django or Alembic, to adopt with `stamp --detect`). Empty otherwise,
    /// without a query.
    fn unadopted(&self, client: &mut dyn Session, set: usize, status: &Status) -> Result<Vec<String>, Failure> {
        if !status.applied.is_empty() {
            return Ok(Vec::new());
        }
        let l = &self.sets[set];
        Ok(db::unadopted(client, &l.set.migrations, &l.options)?)
    }

    /// Prints the result: `human` on stdout, or the JSON result tagged `reason` (see [`json`]).
    fn print_sets<S: serde::Serialize>(
        &self,
        reason: &str,
        human: &str,
        top: &impl serde::Serialize,
        sets: &[S],
    ) {
        if self.json {
            json::emit_sets(reason, top, sets);
        } else if !human.is_empty() {
            crate::term::data_line(human);
        }
    }

    /// A set's divergences as JSON, written as its commands print them.
    fn divergences_json(&self, set: usize, status: &Status) -> Vec<json::DivergenceJson> {
        status.divergences.iter().map(|d| json::DivergenceJson::new(d, self.set_name(set))).collect()
    }

    /// The fields every per-set JSON object starts with.
    fn set_id(&self, set: usize) -> json::SetId {
        let l = &self.sets[set];
        json::SetId {
            set: l.options.set.clone(),
            head: l.head().to_string(),
        }
    }

    /// Resolves a point of set `set` to a revision (`None`: base); `+N` counts from current.
    fn resolve(&self, set: usize, point: Point, current: Option<Revision>) -> Result<Option<Revision>, Failure> {
        let n = current.map_or(0, Revision::number);
        let n = resolve_point(point, self.sets[set].head(), Some(n), n)
            .map_err(|e| Failure::usage(format!("{}{e}", self.prefix(set))))?;
        Ok((n > 0).then(|| Revision::new(n)))
    }
}

/// Runs the parsed command line: resolves the settings, reads every set, starts the scratch
/// server if asked, then the subcommand. `Ok` is the exit code (`check` behind is not an error).
pub fn run(cli: Cli) -> Result<i32, Failure> {
    let g = cli.global;
    // Positionals that take `-3:current` take anything with a leading `-`: a misspelt flag is
    // said now, before anything is read or connected.
    let positional = match &cli.command {
        Command::Sql { range, .. } => range.as_deref(),
        Command::Upgrade { target, .. } => target.as_deref(),
        Command::Downgrade { target, .. } => Some(target.as_str()),
        Command::History { range } => Some(range.as_str()),
        _ => None,
    };
    if let Some(flag) = positional.filter(|p| p.starts_with("--")) {
        return Err(Failure::usage(format!("unexpected argument `{flag}`: not a flag of this command (see --help), nor a range")));
    }
    if g.message_format == MessageFormat::Json {
        let what = match &cli.command {
            Command::Sql { dry_run: false, .. } => Some("`sql` prints a psql script, which is its data; each block's header comment carries its revision, file and sha256"),
            Command::Completions { .. } => Some("`completions` prints a shell script"),
            Command::Man { .. } => Some("`man` prints a man page"),
            _ => None,
        };
        if let Some(what) = what {
            return Err(Failure::usage(format!(
                "--message-format json: {what}; run it without --message-format json"
            )));
        }
    }
    if let Command::Completions { shell } = cli.command {
        crate::term::data(&crate::cli::completions(shell));
        return Ok(exit::OK);
    }
    if let Command::Man { command } = &cli.command {
        let page = crate::cli::man(command.as_deref()).map_err(Failure::usage)?;
        crate::term::data(&String::from_utf8_lossy(&page));
        return Ok(exit::OK);
    }
    // init writes the settings the rest reads: nothing to resolve yet.
    if let Command::Init { procrastinate_only, procrastinate_dir, app_dir } = &cli.command {
        return init::run(init::Options {
            manifest_path: g.manifest_path.as_deref(),
            package: g.package.as_deref(),
            procrastinate_only: *procrastinate_only,
            procrastinate_dir,
            app_dir,
            json: g.message_format == MessageFormat::Json,
        });
    }
    let flags = FlagLayer {
        manifest_path: g.manifest_path,
        package: g.package,
        set: g.set.clone(),
        settings: procrastinate_migrations::config::Settings {
            migrations: g.migrations.map(|p| p.to_string_lossy().into_owned().into()),
            sets: if g.set_dir.is_empty() { None } else { Some(settings::set_dirs(&g.set_dir, "--set-dir")?) },
            database_url_env: None,
            schema: g.schema.clone().flatten(),
            version_table: g.version_table,
            lock_timeout: g.lock_timeout,
            statement_timeout: g.statement_timeout,
            lock_retries: g.lock_retries,
            lock_wait: g.lock_wait,
            round_trip_timeout: g.round_trip_timeout,
            out_of_order: g.out_of_order.then_some(true),
            ..Default::default()
        },
    };
    // `check --schema` alone is the drift check; anywhere else `--schema` names a schema.
    let schema_check = matches!(g.schema, Some(None));
    if schema_check && !matches!(cli.command, Command::Check { compatible: false, .. }) {
        return Err(Failure::usage("--schema needs a schema name (alone, on `check`, it compares the database's schema with its migrations')"));
    }
    let verbose = g.verbose > 0;
    let resolved = match settings::resolve(flags) {
        Ok(r) => r,
        // Files reviewed outside any configured package: no set is needed for that.
        Err(e) => match &cli.command {
            Command::Lint { targets, trace: false, sarif, .. } if !targets.is_empty() && targets.iter().all(|t| lint::is_file(t)) => {
                return lint::files_alone(targets, *sarif, g.message_format == MessageFormat::Json).map_err(|f| if f.code == exit::USAGE { f } else { e });
            }
            _ => return Err(e),
        },
    };
    // vendor fills a directory that may not hold a set yet: it needs the settings, not the files.
    if let Command::Vendor { wheel, python, version, allow_changes } = &cli.command {
        let source = match (wheel, python, version) {
            (Some(w), _, _) => vendor::Source::Wheel(w),
            (None, Some(p), _) => vendor::Source::Python(p),
            (None, None, Some(v)) => vendor::Source::Version(v),
            (None, None, None) => unreachable!("clap requires one"),
        };
        let log = |l: &str| crate::term::log(l);
        return vendor::run(
            &resolved,
            g.set.as_deref(),
            source,
            *allow_changes,
            g.message_format == MessageFormat::Json,
            &log,
        );
    }
    let dotenv = if g.no_dotenv { None } else { std::env::current_dir().ok() };
    let connects = matches!(
        cli.command,
        Command::Current | Command::Check { .. } | Command::Upgrade { .. } | Command::Plan { .. } | Command::Stamp { .. }
            | Command::History { .. } | Command::Pending | Command::Sql { offline: false, .. } | Command::Heads | Command::Repair
            | Command::Downgrade { .. }
            | Command::Lint { .. }
    );
    let early: Option<Early> = (connects && !g.scratch).then(|| {
        let (flag, url_env) = (g.database_url.clone(), resolved.database_url_env.clone());
        let (cwd, manifest_dir, round_trip) = (dotenv.clone(), resolved.manifest_dir.clone(), resolved.round_trip);
        std::thread::spawn(move || {
            match configured_target(flag.as_deref(), &url_env, cwd.as_deref(), manifest_dir.as_deref(), round_trip)? {
                Some(target) => target.connect().map(|client| Some((target, client))),
                None => Ok(None),
            }
        })
    });
    let mut sets = Vec::with_capacity(resolved.sets.len());
    let writes_first = matches!(cli.command, Command::New { autogenerate: false, .. });
    let several = resolved.sets.len() > 1;
    for s in &resolved.sets {
        let set = match MigrationSet::from_dir(&s.dir) {
            Ok(set) => set,
            // `new` reads the names itself: the set may be empty, or hold a file just written
            // by `new` and not yet filled in.
            Err(_) if writes_first => MigrationSet { dir: s.dir.clone().into_std_path_buf(), migrations: Vec::new() },
            // A set whose directory holds no file yet (just after `init`, before `vendor` or
            // `new`) is left out, said so; the others go on.
            Err(e) if several && e.problems.len() == 1 && e.problems[0].file.is_none() && e.problems[0].message.starts_with("no migration files") => {
                let name = s.options.set.as_deref().unwrap_or("(unnamed)");
                let how = if name == "procrastinate" { "`cargo procrastinate vendor --version X.Y.Z` fills it" } else { "`cargo procrastinate new DESCRIPTION --set NAME` writes its first file" };
                crate::term::log(&format!("warning: set `{name}` has no migration files yet ({}): left out; {how}", s.dir));
                continue;
            }
            Err(e) => {
                let of = s
                    .options
                    .set
                    .as_ref()
                    .map(|n| format!("set `{n}`: "))
                    .unwrap_or_default();
                let mut failure = Failure::usage(format!(
                    "{of}{e}\n(the directory is set by {})",
                    resolved.migrations_origin
                ));
                failure.problems = e
                    .problems
                    .iter()
                    .map(|p| crate::json::ProblemJson::new(&e.dir, p))
                    .collect();
                // An early connection already made is closed properly (the server would log an
                // unexpected EOF); one still in progress is left to the process's exit.
                if let Some(early) = early.filter(|e| e.is_finished()) {
                    let _ = early.join();
                }
                return Err(failure);
            }
        };
        sets.push(Loaded {
            set,
            options: s.options.clone(),
            reference: s.reference.clone().map(Into::into),
            template: s.template.clone(),
            desired_schema: s.desired_schema.clone(),
            compare: s.compare.clone(),
            lint_allow: s.lint_allow.clone(),
        });
    }
    if sets.is_empty() {
        return Err(Failure::usage("no set has migration files yet: `cargo procrastinate vendor --version X.Y.Z` fills Procrastinate's, `new` writes a file of yours"));
    }
    let scratch = if g.scratch {
        crate::term::log("starting a throwaway PostgreSQL (removed when this command ends)...");
        let s = pg_scratch::Scratch::start()
            .map_err(|e| Failure::connect(format!("cannot start the scratch PostgreSQL: {e}")))?;
        s.create_database("scratch")
            .map_err(|e| Failure::connect(format!("cannot create the scratch database: {e}")))?;
        Some(s)
    } else {
        None
    };
    let mut ctx = Ctx {
        settings: resolved,
        sets,
        only: None,
        json: g.message_format == MessageFormat::Json,
        dotenv,
        database_url: g.database_url,
        scratch,
        announced: false,
        early,
        connected: None,
    };
    if let Some(name) = &g.set {
        ctx.only = Some(ctx.find_set(name)?);
    }
    let show_after = ctx.scratch.is_some() && matches!(cli.command, Command::Upgrade { .. } | Command::Stamp { .. });
    // `--scratch check`: a throwaway database is empty, so checking it as it is would only say
    // "behind". What makes sense is the CI question: do the sets apply, and does a build of
    // these files suit the result? The sets are applied first, then checked.
    if ctx.scratch.is_some() && matches!(cli.command, Command::Check { .. }) {
        ctx.log("--scratch: applying every set to the throwaway database first, then checking it");
        let applied = upgrade::run(&mut ctx, upgrade::How::Target("head".into()), &[], false, false, false)?;
        if applied != exit::OK {
            return Ok(applied);
        }
    }
    let code = match cli.command {
        Command::Current => current::run(&mut ctx),
        Command::Upgrade { target, phase, to_version, accept_changed, from_schema, dry_run, lint } => {
            let how = match (phase, to_version) {
                (Some(PhaseArg::Pre), _) => upgrade::How::Goal(Goal::Pre),
                (Some(PhaseArg::Post), _) => upgrade::How::Goal(Goal::Post),
                (None, Some(v)) => upgrade::How::Goal(Goal::ToVersion(v.parse().map_err(|e| Failure::usage(format!("--to-version: {e}")))?)),
                (None, None) => upgrade::How::Target(target.unwrap_or_else(|| "head".into())),
            };
            upgrade::run(&mut ctx, how, &accept_changed, from_schema, dry_run, lint)
        }
        Command::Lint { targets, trace, rows, sarif, server } => {
            lint::run(&mut ctx, lint::Flags { targets: &targets, trace, rows, sarif, server: server.as_deref() })
        }
        Command::Plan { to } => plan::run(&mut ctx, to.as_deref()),
        Command::New { description, version, force, autogenerate: true, server, .. } => {
            autogenerate::run(&mut ctx, &description, version.as_deref(), force, server.as_deref())
        }
        Command::New { description, pre, post, version, reversible, force, .. } => {
            let phase = if pre { procrastinate_migrations::Phase::Pre } else if post { procrastinate_migrations::Phase::Post } else { procrastinate_migrations::Phase::Unmarked };
            new::run(&ctx, &description, phase, version.as_deref(), reversible, force)
        }
        Command::Diff { from, to, sql, server } => diff::run(&mut ctx, &from, &to, sql, server.as_deref()),
        Command::Verify { schema_sql, server } => verify::run(&mut ctx, schema_sql.as_deref(), server.as_deref()),
        Command::Stamp { target, purge, detect, dry_run, force, server, claimed } => stamp::run(
            &mut ctx,
            stamp::Flags { target: target.as_deref(), purge, detect, dry_run, force, server: server.as_deref(), claimed },
        ),
        Command::History { range } => history::run(&mut ctx, &range, verbose),
        Command::Pending => history::run(&mut ctx, "current:head", verbose),
        Command::Heads => heads::run(&mut ctx),
        Command::Repair => heads::repair(&mut ctx),
        Command::Show { rev } => heads::show(&ctx, &rev),
        Command::Check { compatible: false, server } if schema_check => drift::run(&mut ctx, server.as_deref()),
        Command::Check { server: Some(_), .. } => {
            return Err(Failure::usage("--server goes with `check --schema` (the scratch builds' server)"));
        }
        Command::Check { compatible, .. } => check::run(&mut ctx, compatible),
        Command::Sql { offline, range, from, dry_run, down } => sql::run(&mut ctx, offline, range, from, dry_run, down),
        Command::Downgrade { target, force, dry_run } => downgrade::run(&mut ctx, &target, force, dry_run),
        Command::Database(action) => database::run(&mut ctx, action),
        Command::Vendor { .. } | Command::Completions { .. } | Command::Man { .. } | Command::Init { .. } => unreachable!("handled above"),
    }?;
    if show_after && !ctx.json {
        // The scratch database disappears with this process: show what it ended up as.
        crate::term::data("\n");
        history::run(&mut ctx, "base:head", false)?;
        ctx.log("\nThat was a throwaway database. Point the tool at yours with --database-url or DATABASE_URL.");
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(names: &[&str]) -> Ctx {
        let files = vec![("01.00.00_01_a.sql".to_string(), b"SELECT 1;".to_vec())];
        let sets = names
            .iter()
            .map(|n| Loaded {
                set: MigrationSet::from_files("d".into(), files.clone()).unwrap(),
                options: db::Options { set: (!n.is_empty()).then(|| n.to_string()), ..db::Options::default() },
                reference: None,
                template: None,
                desired_schema: None,
                compare: Default::default(),
                lint_allow: Vec::new(),
            })
            .collect();
        let settings = Resolved {
            sets: Vec::new(),
            migrations_origin: String::new(),
            database_url_env: String::new(),
            manifest_dir: None,
            round_trip: std::time::Duration::from_secs(30),
        };
        Ctx {
            settings,
            sets,
            only: None,
            json: false,
            dotenv: None,
            database_url: None,
            scratch: None,
            announced: false,
            early: None,
            connected: None,
        }
    }

    #[test]
    fn targets_name_their_set_when_several_are_configured() {
        let c = ctx(&["procrastinate", "app"]);
        assert_eq!(c.targets("head").unwrap().len(), 2);
        assert_eq!(c.targets("app@0001").unwrap(), [(1, Point::Rev(Revision::new(1)))]);
        assert_eq!(c.targets("procrastinate@+1").unwrap(), [(0, Point::Relative(1))]);
        assert!(c.targets("0001").unwrap_err().message.contains("`procrastinate@0001`"));
        assert!(c.targets("nope@0001").unwrap_err().message.contains("sets: procrastinate, app"));
        assert_eq!(c.sets_for("app@0001:head").unwrap(), (vec![1], "0001:head".to_string()));
        assert_eq!(c.sets_for("current:head").unwrap(), (vec![0, 1], "current:head".to_string()));
        assert!(c.sets_for("app@0001:procrastinate@0002").is_err());
        assert_eq!(c.label(1, Some(Revision::new(2))), "app@0002");
        let one = ctx(&[""]);
        assert_eq!(one.targets("0001").unwrap(), [(0, Point::Rev(Revision::new(1)))]);
        assert_eq!(one.label(0, Some(Revision::new(2))), "0002");
    }
}
