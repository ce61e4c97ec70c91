//! The command line. Cargo runs `cargo-procrastinate procrastinate ARGS`; run directly it is
//! `cargo-procrastinate ARGS`. Both spellings reach the same parser.

use std::path::PathBuf;

use clap::{Args as ClapArgs, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// The parsed command line: the global flags and one subcommand.
#[derive(Parser, Debug)]
#[command(
    name = "cargo-procrastinate",
    bin_name = "cargo procrastinate",
    version,
    about = "Manage the Procrastinate PostgreSQL schema (and SQL migrations written the same way) from Cargo"
)]
pub struct Cli {
    /// The flags every subcommand takes.
    #[command(flatten)]
    pub global: Global,
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every subcommand takes: settings, where the database is, and how to report.
#[derive(ClapArgs, Debug)]
pub struct Global {
    /// Path to Cargo.toml (default: the nearest one from the current directory up).
    #[arg(long, global = true, value_name = "PATH", help_heading = "Package options")]
    pub manifest_path: Option<PathBuf>,
    /// Package whose [package.metadata.procrastinate] to use.
    #[arg(short = 'p', long, global = true, value_name = "SPEC", help_heading = "Package options")]
    pub package: Option<String>,
    /// Database URL (default: $DATABASE_URL, then a .env file, then PG* variables and
    /// PGSERVICE).
    #[arg(long, global = true, value_name = "URL", help_heading = "Connection options")]
    pub database_url: Option<String>,
    /// Read no `.env` file (by default the nearest one from the current directory up to the
    /// workspace root supplies the database URL variable).
    #[arg(long, global = true, help_heading = "Connection options")]
    pub no_dotenv: bool,
    /// Run against a throwaway local PostgreSQL started (and removed) by this command.
    #[arg(long, global = true, conflicts_with = "database_url", help_heading = "Connection options")]
    pub scratch: bool,
    /// Work on this set only (of the `sets` setting); targets may also say `NAME@REV`.
    #[arg(long, global = true, value_name = "NAME", help_heading = "Package options")]
    pub set: Option<String>,
    /// Directory of migration files (setting `migrations`).
    #[arg(long, global = true, value_name = "DIR", help_heading = "Package options")]
    pub migrations: Option<PathBuf>,
    /// A named set and its directory, repeatable, in order (setting `sets`, without Cargo.toml:
    /// a deploy box); also PROCRASTINATE_SETS="procrastinate=db/p,app=db/app".
    #[arg(long, global = true, value_name = "NAME=DIR", conflicts_with = "migrations", help_heading = "Package options")]
    pub set_dir: Vec<String>,
    /// PostgreSQL schema that migrations and tracking live in (setting `schema`). On `check`,
    /// `--schema` alone compares the database's schema with what its migrations build.
    #[arg(long, global = true, value_name = "NAME", num_args = 0..=1, help_heading = "Package options")]
    pub schema: Option<Option<String>>,
    /// Tracking table, optionally schema-qualified (setting `version-table`).
    #[arg(long, global = true, value_name = "TABLE", help_heading = "Package options")]
    pub version_table: Option<String>,
    /// Longest a migration waits for a table lock, e.g. 5s (setting `lock-timeout`).
    #[arg(long, global = true, value_name = "DURATION", help_heading = "Migrations options")]
    pub lock_timeout: Option<String>,
    /// Longest one statement of a migration may run, e.g. 30min, 0 for no limit (setting
    /// `statement-timeout`; default: the server's).
    #[arg(long, global = true, value_name = "DURATION", help_heading = "Migrations options")]
    pub statement_timeout: Option<String>,
    /// Try a migration that ran out of lock-timeout again, up to N times, backing off 1s, 2s,
    /// 4s... (setting `lock-retries`, default 0).
    #[arg(long, global = true, value_name = "N", help_heading = "Migrations options")]
    pub lock_retries: Option<u32>,
    /// Longest to wait for another upgrade's migration lock, e.g. 10min (setting `lock-wait`).
    #[arg(long, global = true, value_name = "DURATION", help_heading = "Migrations options")]
    pub lock_wait: Option<String>,
    /// Longest to wait for the server's answer to one of the tool's own statements, and how often
    /// a long migration is checked on (setting `round-trip-timeout`, default 30s).
    #[arg(long, global = true, value_name = "DURATION", help_heading = "Connection options")]
    pub round_trip_timeout: Option<String>,
    /// Run files that sort before applied ones (from a merged branch) first, instead of refusing
    /// them (setting `out-of-order`).
    #[arg(long, global = true, help_heading = "Migrations options")]
    pub out_of_order: bool,
    /// Output format for data on stdout.
    #[arg(long, global = true, value_enum, default_value_t = MessageFormat::Human, help_heading = "Output options")]
    pub message_format: MessageFormat,
    /// No progress on stderr (errors are still printed).
    #[arg(short, long, global = true, conflicts_with = "verbose", help_heading = "Output options")]
    pub quiet: bool,
    /// More detail: checksums and timings in `history`, each migration's checksum as it starts.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = "Output options")]
    pub verbose: u8,
    /// Colour on stderr: auto (when a terminal), always, never (default: $CARGO_TERM_COLOR,
    /// then NO_COLOR, then auto).
    #[arg(long, global = true, value_enum, value_name = "WHEN", help_heading = "Output options")]
    pub color: Option<crate::term::ColorChoice>,
}

/// `--message-format`: text for people, or JSON documents on stdout for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Text for people.
    Human,
    /// One JSON object per line (see the README's "JSON output").
    Json,
}

/// `upgrade --phase`: which half of the next release's zero-downtime deploy to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PhaseArg {
    /// The next release's pre migrations (before deploying it).
    Pre,
    /// The post migrations of the release whose pre is applied (after deploying it).
    Post,
}

/// The subcommands; each variant's doc comment is its `--help` text.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the revision recorded in the database.
    #[command(
        after_help = "Examples:\n  cargo procrastinate current\n  cargo procrastinate current --message-format json | jq -r .current\n  DATABASE_URL=postgres://app@db.internal/app cargo procrastinate current"
    )]
    Current,
    /// Apply pending migrations, each in its own transaction (TARGET: head, a revision, +N, NAME@REV).
    #[command(
        after_help = "Examples:\n  cargo procrastinate upgrade                  # everything pending\n  cargo procrastinate upgrade 0029             # up to and including 0029\n  cargo procrastinate upgrade +1               # the next migration only\n  cargo procrastinate upgrade --phase pre      # zero-downtime: before deploying the release\n  cargo procrastinate upgrade --phase post     # zero-downtime: after deploying it\n  cargo procrastinate upgrade --message-format json   # one object per migration, then the result\n  cargo procrastinate upgrade --from-schema    # a fresh database: built from the verified schema.sql\n  cargo procrastinate upgrade --dry-run        # what would run; nothing is changed"
    )]
    Upgrade {
        /// Where to stop (default: head); or use --phase / --to-version.
        #[arg(allow_hyphen_values = true)]
        target: Option<String>,
        /// `pre`: the next release's pre migrations; `post`: the post migrations of the release
        /// whose pre is applied. One release at a time, for zero-downtime deploys.
        #[arg(long, value_enum, conflicts_with_all = ["target", "to_version"])]
        phase: Option<PhaseArg>,
        /// Every migration of the releases up to this one (e.g. 3.4.0).
        #[arg(long, value_name = "X.Y.Z", conflicts_with = "target")]
        to_version: Option<String>,
        /// Accept applied migrations whose file changed since (a revision, repeatable, or `all`),
        /// recording their new checksum.
        #[arg(long, value_name = "REV|all")]
        accept_changed: Vec<String>,
        /// On a fresh database, build head from the set's `reference/schema.sql` in one
        /// transaction and record every migration as stamped, when `verify` proved the set
        /// builds exactly that file; otherwise apply the migrations as usual.
        #[arg(long, conflicts_with_all = ["phase", "to_version"])]
        from_schema: bool,
        /// List what would run (and what would be accepted or recorded), and change nothing.
        #[arg(long, conflicts_with = "from_schema")]
        dry_run: bool,
        /// Review the files about to run first (as `lint`): an error-level finding applies nothing.
        #[arg(long)]
        lint: bool,
    },
    /// The zero-downtime deploy steps from the database's state, one release at a time, with
    /// the command for each.
    #[command(
        after_help = "Examples:\n  cargo procrastinate plan\n  cargo procrastinate plan --to 3.4.0"
    )]
    Plan {
        /// Stop after this release (default: every pending release).
        #[arg(long, value_name = "X.Y.Z")]
        to: Option<String>,
    },
    /// Record TARGET as applied without running any SQL (for databases built from schema.sql),
    /// after checking that the schema is the set's at TARGET.
    #[command(
        after_help = "Examples:\n  cargo procrastinate stamp head               # a database built from schema.sql\n  cargo procrastinate stamp --detect           # from alembic_version, django_migrations or the schema\n  cargo procrastinate stamp 0029 --dry-run\n  cargo procrastinate stamp --purge 0029       # re-record from scratch"
    )]
    Stamp {
        /// The revision to record (`head`, `0029`, `NAME@REV`); or use --detect.
        target: Option<String>,
        /// Clear the set's records first.
        #[arg(long)]
        purge: bool,
        /// Find the revision: from alembic_version, django_migrations, else the schema itself.
        #[arg(long)]
        detect: bool,
        /// Say what would be recorded, and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Record even when the database's schema is not the set's schema at that revision.
        #[arg(long)]
        force: bool,
        /// Build the comparison schemas on this server instead of an embedded PostgreSQL.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Record a `-- no-transaction` migration whose run died after it finished (its claim's
        /// process is gone, its index exists and is valid): checked, then recorded.
        #[arg(long, conflicts_with_all = ["purge", "detect", "force"])]
        claimed: bool,
    },
    /// List migrations with their state (RANGE as in Alembic: base:head, current:head, 0025:0030).
    #[command(
        after_help = "Examples:\n  cargo procrastinate history\n  cargo procrastinate history -r current:head  # what is pending\n  cargo procrastinate history -r -3:current    # the last three applied\n  cargo procrastinate -v history               # with checksums and when each was applied\n  cargo procrastinate history                  # with no database configured: the files"
    )]
    History {
        /// Which migrations (Alembic's forms: `base:head`, `current:head`, `-3:current`,
        /// `current:+2`, `0025:0030`).
        #[arg(
            short = 'r',
            long = "rev-range",
            value_name = "RANGE",
            default_value = "base:head",
            allow_hyphen_values = true
        )]
        range: String,
    },
    /// Migrations not yet applied (same as `history -r current:head`).
    #[command(
        after_help = "Examples:\n  cargo procrastinate pending\n  cargo procrastinate pending --message-format json"
    )]
    Pending,
    /// Show the head revision of the migration files (and, with a database, where it stands).
    #[command(
        after_help = "With a database configured, each set's line also says whether the files and the database\ndiverge (a renamed file to `repair`, a file from a merged branch to run out of order).\n\nExamples:\n  cargo procrastinate heads\n  cargo procrastinate heads --set app"
    )]
    Heads,
    /// Record the new names of files renamed since they were applied (a branch merge), after
    /// checking that their content is what was recorded.
    #[command(
        after_help = "Examples:\n  cargo procrastinate repair                   # every set\n  cargo procrastinate repair --set app"
    )]
    Repair,
    /// Print one migration's SQL, after its metadata (REV: `0030`, `head`, NAME@REV).
    #[command(
        after_help = "Examples:\n  cargo procrastinate show 0030\n  cargo procrastinate show head\n  cargo procrastinate show app@0002 --message-format json"
    )]
    Show {
        /// The revision: `0030`, `head`, `+1` (after current: none here, so the first), NAME@REV.
        rev: String,
    },
    /// Exit 0 only if the database is at head and every applied file is unchanged (--compatible: may this build run on it; --schema: is its schema what its migrations build).
    #[command(
        after_help = "Plain `check` is strict, for CI: at head or not. During a zero-downtime deploy the database is\nbetween a release's pre and post migrations: a readiness probe wants `check --compatible`, the\napplication's own start-up check (same code, same window), or the rollout stalls before `--phase post`.\n`check --schema` looks for drift: the live schema against what the recorded migrations build in a\nscratch database (an index dropped or a column added by hand), each difference under its set.\n\nExamples:\n  cargo procrastinate check                    # CI: exit 0 at head, 4 behind, 5 diverged\n  cargo procrastinate check --compatible       # probe: exit 0 if this build runs on it, 4 needs an upgrade, 5 too new\n  cargo procrastinate check --schema           # drift: exit 0 when the schema is what the migrations build, 5 otherwise\n  cargo procrastinate check -q || echo \"migrate first\""
    )]
    Check {
        /// The start-up check's verdict instead: exit 0 when a build of these files may run on the
        /// database (its post migrations may be pending, the next release's pre applied).
        #[arg(long)]
        compatible: bool,
        /// With --schema: build the comparison schema on this server instead of an embedded PostgreSQL.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Review migration files: statements that lock, rewrite, fail, or break the previous
    /// release's code in a `pre` file (FILES, a RANGE, or what the database has pending).
    #[command(
        after_help = "Rules come from squawk (its PostgreSQL parser and linter) and from this tool (the phase rule: a\ndropped column is an error in a `pre` file, allowed in `post`; `-- no-transaction` files; locks held\nacross slow statements). Allow a rule for one statement with `-- cargo-procrastinate: allow RULE`\nabove it, or for a set with the `lint-allow` setting. Exit 0, or 8 when a finding is an error.\n\nExamples:\n  cargo procrastinate lint                          # what the database has pending (every file without one)\n  cargo procrastinate lint db/app/01.02.00_01_pre_orders.sql\n  cargo procrastinate lint app@0003:head --trace    # and what each file locks, on a scratch server\n  cargo procrastinate lint --sarif > lint.sarif     # for code scanning\n  cargo procrastinate upgrade --lint                # refuse to apply a file with an error"
    )]
    Lint {
        /// Files, or one range (`0029:head`, `app@0002:head`); default: the pending files.
        targets: Vec<String>,
        /// Also run each file in a scratch database at the revision before it, with rows in the
        /// tables it touches, and report what each statement locked, for how long, and what it rewrote.
        #[arg(long)]
        trace: bool,
        /// With --trace: rows put in each table the file touches.
        #[arg(long, value_name = "N", default_value_t = 10_000, requires = "trace")]
        rows: usize,
        /// Print SARIF 2.1.0 (for code scanning) instead.
        #[arg(long)]
        sarif: bool,
        /// With --trace: build the scratch databases on this server instead of an embedded PostgreSQL.
        #[arg(long, value_name = "URL", requires = "trace")]
        server: Option<String>,
    },
    /// Compare two schemas: each `db` (the configured database), a database URL, a set at a
    /// revision (`head`, `app@0002`), or a SQL file; exit 0 when the same, 5 when they differ.
    #[command(
        after_help = "A revision is built in a scratch database on top of the sets before its set, at their heads; a SQL\nfile is run there the same way. The schema compared is the set's (`--set`, else the last set's).\n`--sql` prints the statements from FROM to TO instead: pre and post, online where PostgreSQL allows,\neach hazard named above its statement.\n\nExamples:\n  cargo procrastinate diff db head                       # drift against the files' head\n  cargo procrastinate diff app@head db/schema.sql --sql  # what a migration to the desired schema holds\n  cargo procrastinate diff 0029 0038                     # what a range of migrations changed\n  cargo procrastinate diff postgres://prod/app postgres://staging/app"
    )]
    Diff {
        /// One side ("here").
        from: String,
        /// The other side ("there").
        to: String,
        /// Print the statements from FROM to TO instead of the differences.
        #[arg(long)]
        sql: bool,
        /// Build revisions and SQL files on this server instead of an embedded PostgreSQL.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Print the SQL that `upgrade` would run, as a script for psql.
    #[command(
        after_help = "Examples:\n  cargo procrastinate sql --offline > all.sql  # every migration, for psql -f\n  cargo procrastinate sql --offline --from 0029 > upgrade.sql\n  cargo procrastinate sql                      # what is pending in the database\n  psql -v ON_ERROR_STOP=1 -f upgrade.sql"
    )]
    Sql {
        /// Do not connect: RANGE must not mention `current` (default range base:head).
        #[arg(long)]
        offline: bool,
        /// RANGE (`head`, `0029:head`, `:0030`); default `current:head` online, `base:head` offline.
        #[arg(allow_hyphen_values = true)]
        range: Option<String>,
        /// Start after this revision (the one the target database is at); same as `REV:head`.
        #[arg(long, value_name = "REV", conflicts_with = "range")]
        from: Option<String>,
        /// List the migrations the script would hold (one per line), not the script.
        #[arg(long)]
        dry_run: bool,
        /// The downgrade script: undo the range's migrations with their down files, last first
        /// (`sql --offline --down 0002:head` takes a database at head back to 0002).
        #[arg(long)]
        down: bool,
    },
    /// Create, drop or reset (drop, create, upgrade) the configured database.
    #[command(
        subcommand,
        after_help = "The server and the maintenance database are libpq's: the configured URL's host, port and user,\nconnected to `postgres` (or `template1`).\n\nExamples:\n  cargo procrastinate database create\n  cargo procrastinate database reset --force   # in a script: no question asked"
    )]
    Database(DatabaseAction),
    /// Add [package.metadata.procrastinate] to this package's Cargo.toml (every other line kept)
    /// and create the sets' directories.
    #[command(
        after_help = "Examples:\n  cargo procrastinate init                     # Procrastinate's set and yours (db/procrastinate, db/app)\n  cargo procrastinate init --procrastinate-only\n  cargo procrastinate -p worker init           # a member of the workspace"
    )]
    Init {
        /// One set, Procrastinate's (`migrations = ...`), and no set of your own.
        #[arg(long)]
        procrastinate_only: bool,
        /// Procrastinate's set's directory, relative to the package.
        #[arg(long, value_name = "DIR", default_value = "db/procrastinate")]
        procrastinate_dir: String,
        /// Your own set's directory, relative to the package.
        #[arg(long, value_name = "DIR", default_value = "db/app", conflicts_with = "procrastinate_only")]
        app_dir: String,
    },
    /// Write the next migration file of a set, correctly named: `{version}_{serial}_{pre|post}_{description}.sql`.
    #[command(
        after_help = "The file holds a line `-- cargo-procrastinate: not written yet` until you write its SQL: the set\nbuilds with it, and `upgrade` refuses to run it. A `template` setting gives the text of new files\n({description}, {version}, {phase}, {file} are replaced).\n\nExamples:\n  cargo procrastinate new \"add the orders table\" --pre\n  cargo procrastinate new \"add the orders table\" --reversible   # and its down file\n  cargo procrastinate new \"drop the old column\" --post --version 1.3.0\n  cargo procrastinate new \"index jobs\" --set app\n  cargo procrastinate new evolve --autogenerate  # from the `desired-schema` setting"
    )]
    New {
        /// What it does, in a few words (becomes the file's description).
        description: String,
        /// A `pre` migration (serial 01..49): apply before deploying the release.
        #[arg(long, conflicts_with = "post")]
        pre: bool,
        /// A `post` migration (serial 50..99): apply after deploying the release.
        #[arg(long)]
        post: bool,
        /// The release it belongs to (default: the package's version; each part 0..99).
        #[arg(long, value_name = "X.Y.Z")]
        version: Option<String>,
        /// Also write its down file (`NAME.down.sql`), which `downgrade` runs to undo it.
        #[arg(long)]
        reversible: bool,
        /// Write it even when a file of the set already has this description.
        #[arg(long)]
        force: bool,
        /// Write the migrations from the set's head to its `desired-schema` (pre and post files,
        /// online where PostgreSQL allows, hazards named), then prove them in a scratch database.
        #[arg(long, conflicts_with_all = ["pre", "post", "reversible"])]
        autogenerate: bool,
        /// With --autogenerate: build the schemas on this server instead of an embedded PostgreSQL.
        #[arg(long, value_name = "URL", requires = "autogenerate")]
        server: Option<String>,
    },
    /// Copy a Procrastinate release's SQL set into the set's directory, with its schema.sql
    /// (for `verify`) and a provenance file.
    #[command(
        after_help = "Examples:\n  cargo procrastinate vendor --version 3.10.0   # with pip\n  cargo procrastinate vendor --wheel procrastinate-3.10.0-py3-none-any.whl\n  cargo procrastinate vendor --python .venv/bin/python"
    )]
    #[command(group(clap::ArgGroup::new("source").required(true).args(["wheel", "python", "version"])))]
    Vendor {
        /// A wheel file (procrastinate-X.Y.Z-py3-none-any.whl).
        #[arg(long, value_name = "FILE")]
        wheel: Option<PathBuf>,
        /// The package installed for this Python interpreter (default python3).
        #[arg(long, value_name = "INTERPRETER", num_args = 0..=1, default_missing_value = "python3")]
        python: Option<String>,
        /// A release, downloaded with pip.
        #[arg(long, value_name = "X.Y.Z")]
        version: Option<String>,
        /// Change or remove files already in the directory when the release differs.
        #[arg(long)]
        allow_changes: bool,
    },
    /// Apply the set to a scratch database and compare the schema it builds with a reference
    /// schema.sql (default: the vendored reference/schema.sql beside the set).
    #[command(
        after_help = "Examples:\n  cargo procrastinate verify\n  cargo procrastinate verify --schema-sql schema.sql --server postgres://postgres@localhost/postgres"
    )]
    Verify {
        /// The reference schema (a release's schema.sql).
        #[arg(long, value_name = "FILE")]
        schema_sql: Option<PathBuf>,
        /// Create (and drop) the scratch databases on this server instead of an embedded PostgreSQL.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell), e.g.
    /// `cargo procrastinate completions bash > ~/.local/share/bash-completion/completions/cargo-procrastinate`.
    #[command(
        after_help = "Examples:\n  cargo procrastinate completions bash > ~/.local/share/bash-completion/completions/cargo-procrastinate\n  cargo procrastinate completions zsh > ~/.zfunc/_cargo-procrastinate\n  cargo procrastinate completions fish > ~/.config/fish/completions/cargo-procrastinate.fish"
    )]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of the tool, or of one command, from this binary.
    #[command(
        after_help = "Examples:\n  cargo procrastinate man | man -l -\n  cargo procrastinate man upgrade | man -l -\n  cargo procrastinate man > ~/.local/share/man/man1/cargo-procrastinate.1"
    )]
    Man {
        /// A command (`upgrade`, `lint`...); default: the tool's own page.
        command: Option<String>,
    },
    /// Undo migrations that have down files (`NAME.down.sql`), last first, each in its own
    /// transaction (TARGET: -1, -N, a revision to go down to, base, NAME@...).
    #[command(
        after_help = "A set whose files have no down files (Procrastinate's) cannot be downgraded: restore the\ndatabase from a backup taken before the migration, then deploy the previous version of your code.\n\nExamples:\n  cargo procrastinate downgrade -1             # undo the last migration\n  cargo procrastinate downgrade 0002           # undo everything after 0002\n  cargo procrastinate downgrade app@-1         # with several sets: name the set\n  cargo procrastinate downgrade -1 --dry-run   # what would be undone"
    )]
    Downgrade {
        /// `-1` (the last migration), `-N`, a revision to go down to (it stays applied), `base`,
        /// or any of them as NAME@... with several sets.
        #[arg(allow_hyphen_values = true)]
        target: String,
        /// Undo files changed since they were applied (their down file may not undo what the
        /// earlier text did).
        #[arg(long)]
        force: bool,
        /// List what would be undone, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `database create|drop|reset`.
#[derive(Subcommand, Debug)]
pub enum DatabaseAction {
    /// Create the configured database (nothing to do when it exists).
    Create,
    /// Drop the configured database, after asking (`--force` in scripts).
    Drop {
        /// Do not ask, and end other sessions connected to it.
        #[arg(long)]
        force: bool,
    },
    /// Drop the configured database (after asking), create it, and apply every set.
    Reset {
        /// Do not ask, and end other sessions connected to it.
        #[arg(long)]
        force: bool,
    },
}

/// The completion script for `shell`, from the same definition the parser uses. Cargo runs the
/// binary as `cargo-procrastinate procrastinate ARGS`, and people type `cargo-procrastinate
/// ARGS` too: the script completes both (the commands sit at the top and again under
/// `procrastinate`), and for bash it also completes `cargo procrastinate ARGS`, handing every
/// other `cargo` command to the completion cargo had.
pub fn completions(shell: clap_complete::Shell) -> String {
    let inner = Cli::command().name("procrastinate").bin_name("cargo-procrastinate procrastinate");
    let mut root = Cli::command().name("cargo-procrastinate").bin_name("cargo-procrastinate").subcommand(inner);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut root, "cargo-procrastinate", &mut out);
    let mut script = String::from_utf8_lossy(&out).into_owned();
    if shell == clap_complete::Shell::Bash {
        // clap_complete spells the `-` of the binary's name two ways (`cargo__procrastinate`
        // where it sets the command, `cargo__subcmd__procrastinate` in the arms that read it),
        // so nothing below the first word would complete: one spelling.
        script = script.replace("cargo__subcmd__procrastinate", "cargo__procrastinate");
        script.push_str(BASH_CARGO);
    }
    script
}

/// `cargo procrastinate ...` in bash: the words go to this tool's completion as cargo passes
/// them to the binary; anything else to cargo's own completion (found when this was sourced,
/// or `_cargo` when bash-completion loads it later).
const BASH_CARGO: &str = r#"
_cargo_procrastinate_cargo_previous=$(complete -p cargo 2>/dev/null | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
[ "$_cargo_procrastinate_cargo_previous" = _cargo_procrastinate_cargo ] && _cargo_procrastinate_cargo_previous=
_cargo_procrastinate_cargo() {
    if [[ ${COMP_WORDS[1]} == procrastinate ]]; then
        local COMP_WORDS=(cargo-procrastinate "${COMP_WORDS[@]:1}")
        _cargo__procrastinate cargo-procrastinate "$2" "$3"
        return
    fi
    local previous=${_cargo_procrastinate_cargo_previous:-_cargo}
    if declare -F "$previous" >/dev/null; then
        "$previous" "$@"
    fi
}
complete -F _cargo_procrastinate_cargo -o bashdefault -o default cargo
"#;

/// The man page (roff) of the tool, or of one of its commands.
pub fn man(name: Option<&str>) -> Result<Vec<u8>, String> {
    let mut cmd = command().name("cargo-procrastinate");
    // Global flags reach each command's page only once the definition is built.
    cmd.build();
    let page = match name {
        None => cmd,
        Some(n) => {
            let sub = cmd.find_subcommand(n).cloned().ok_or_else(|| format!("no command is named `{n}` (see `cargo procrastinate --help`)"))?;
            let full: &'static str = Box::leak(format!("cargo-procrastinate-{n}").into_boxed_str());
            sub.name(full)
        }
    };
    let mut bytes = Vec::new();
    // Every page's footer names the tool and its version (a command's page has none of its own).
    clap_mangen::Man::new(page).source(concat!("cargo-procrastinate ", env!("CARGO_PKG_VERSION"))).render(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Parses `std::env::args`, dropping the `procrastinate` that cargo inserts.
pub fn parse() -> Cli {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "procrastinate") {
        args.remove(1);
    }
    // Help and usage errors are printed before the flags are parsed: look for --color first.
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        a.strip_prefix("--color=").or_else(|| {
            (a == "--color")
                .then(|| args.get(i + 1).and_then(|v| v.to_str()))
                .flatten()
        })
    });
    let color = match crate::term::ColorChoice::resolve(
        flag.and_then(|f| crate::term::ColorChoice::from_str(f, true).ok()),
    ) {
        crate::term::ColorChoice::Always => clap::ColorChoice::Always,
        crate::term::ColorChoice::Never => clap::ColorChoice::Never,
        crate::term::ColorChoice::Auto => clap::ColorChoice::Auto,
    };
    let matches = command().color(color).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The whole command line, as the parser, the completions and the man page (`cargo xtask
/// man`) see it.
pub fn command() -> clap::Command {
    Cli::command().after_help(after_help())
}

/// Examples, precedence and exit codes, the last from `exit::ALL` so help cannot drift from
/// the code.
fn after_help() -> String {
    let codes: Vec<String> = crate::exit::ALL.iter().map(|(code, meaning)| format!("  {code}  {meaning}")).collect();
    format!(
        "Examples:\n  cargo procrastinate --scratch upgrade        # try it on a throwaway PostgreSQL\n  \
         cargo procrastinate upgrade                  # DATABASE_URL from the environment or .env\n  \
         cargo procrastinate check                    # in CI: at head, every file unchanged\n  \
         cargo procrastinate check --compatible       # a readiness probe: may this build run on it?\n  \
         cargo procrastinate plan                     # the zero-downtime steps\n  \
         cargo procrastinate <COMMAND> --help         # each command's examples\n\n\
         Settings: defaults < [workspace.metadata.procrastinate] < [package.metadata.procrastinate] \
         < PROCRASTINATE_* environment < flags.\n\nExit codes:\n{}",
        codes.join("\n")
    )
}
