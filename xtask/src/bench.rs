//! `cargo xtask bench`: whole commands as a user runs them (release binaries, a fresh database
//! per run prepared outside the timing), each against a baseline timed in the same run, so
//! that the ratios mean the same on any machine. Medians and ranges of wall time, peak RSS
//! from `wait4`. Printed, and written to `target/bench/latest.json`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xshell::{cmd, Shell};

use crate::Result;

/// One measured command.
struct Stats {
    median: Duration,
    min: Duration,
    max: Duration,
    rss_kib: i64,
}

impl Stats {
    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }
}

/// Makes a command to time; untimed itself (it creates the fresh database the command needs).
type Prepare<'a> = Box<dyn Fn() -> Result<Command> + 'a>;

/// One case: ours and its baselines, `runs` rounds. Interleaved (each round runs every command
/// once, starting with a different one each time) so that a noisy neighbour or a warming cache
/// weighs on all of them alike, and the ratios stay meaningful on a shared machine.
/// Skipped (`None`) unless its name contains the filter `cargo xtask bench CASE` was given.
fn case(case: &str, runs: usize, ours: Prepare<'_>, baselines: Vec<(&str, Prepare<'_>)>) -> Result<Option<Row>> {
    if !wanted(case) {
        return Ok(None);
    }
    let all: Vec<&Prepare<'_>> = std::iter::once(&ours).chain(baselines.iter().map(|(_, p)| p)).collect();
    let mut times = vec![Vec::with_capacity(runs); all.len()];
    let mut rss = vec![0; all.len()];
    for round in 0..runs {
        for k in 0..all.len() {
            let which = (round + k) % all.len();
            let mut cmd = all[which]()?;
            let (took, kib) = run(&mut cmd)?;
            times[which].push(took);
            rss[which] = rss[which].max(kib);
        }
    }
    let mut stats = times.into_iter().zip(rss).map(|(mut t, rss_kib)| {
        t.sort();
        Stats { median: t[t.len() / 2], min: t[0], max: *t.last().expect("runs > 0"), rss_kib }
    });
    let ours = stats.next().expect("ours is first");
    Ok(Some(Row { case: case.to_string(), ours, baselines: baselines.iter().map(|(name, _)| name.to_string()).zip(stats).collect() }))
}

/// Wall time and peak RSS of one child (wait4 reports that child's own rusage).
fn run(cmd: &mut Command) -> Result<(Duration, i64)> {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let pid = child.id() as i32;
    let mut status = 0;
    // SAFETY: rusage is plain data (zeroed is valid); wait4 fills it for this pid only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    if waited < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        return Err(format!("{cmd:?} failed:\n{err}").into());
    }
    Ok((took, usage.ru_maxrss))
}

struct Row {
    case: String,
    ours: Stats,
    baselines: Vec<(String, Stats)>,
}

fn wanted(case: &str) -> bool {
    FILTER.get().and_then(|f| *f).is_none_or(|f| case.contains(f))
}

/// `cargo xtask bench CASE`: only the cases whose name contains CASE.
static FILTER: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();

pub fn bench(filter: Option<&str>) -> Result<()> {
    FILTER.get_or_init(|| filter.map(|f| &*String::leak(f.to_string())));
    let sh = Shell::new()?;
    sh.change_dir(env!("CARGO_MANIFEST_DIR"));
    cmd!(sh, "cargo build --quiet --release -p cargo-procrastinate").run()?;
    cmd!(sh, "cargo build --quiet --release -p xtask --bin libpq-client").run()?;
    let root = sh.current_dir().join("..");
    let bin = root.join("target/release/cargo-procrastinate");
    let psql = pg_scratch::find_bindir()?.join("psql");
    let sqlx = which("sqlx");
    let up = procrastinate_tests::wheels::procrastinate("3.10.0");
    // pg_stat_statements, utility statements and planning counted: the floor's server time.
    let scratch = pg_scratch::Scratch::start_with(&[
        ("shared_preload_libraries", "pg_stat_statements"),
        // Off for everything timed: only psql's floor session turns it on (PGOPTIONS), so that
        // its bookkeeping taxes no run it measures.
        ("pg_stat_statements.track", "none"),
        ("pg_stat_statements.track_utility", "on"),
        ("pg_stat_statements.track_planning", "on"),
        ("pg_stat_statements.max", "20000"),
    ])?;
    scratch.config("postgres").connect(postgres::NoTls)?.batch_execute("CREATE EXTENSION pg_stat_statements")?;
    let libpq = root.join("target/release/libpq-client");
    let work = tempfile_dir("bench")?;
    let n = std::cell::Cell::new(0);
    let fresh = || -> Result<String> {
        n.set(n.get() + 1);
        let name = format!("bench_{}", n.get());
        scratch.create_database(&name)?;
        Ok(scratch.url(&name))
    };
    let ours = |url: &str, args: &[&str], dir: &Path| {
        let mut c = Command::new(&bin);
        clean_env(&mut c);
        c.current_dir(dir).env("DATABASE_URL", url).args(["-q"]).args(args);
        c
    };
    let mut rows = Vec::new();

    // 1. upgrade of 3.10.0's 38 files, empty database to head.
    let pkg = package(&work.join("pkg"), &up.migrations)?;
    let psql_script = one_transaction_each(&work.join("psql-38.sql"), &up.migrations)?;
    let sqlx_dir = sqlx_layout(&work.join("sqlx-38"), &up.migrations)?;
    let mut baselines: Vec<(&str, Prepare<'_>)> =
        vec![("psql, one transaction per file, one session", Box::new(|| Ok(psql_file(&psql, &fresh()?, &psql_script))))];
    if let Some(sqlx) = &sqlx {
        baselines.push(("sqlx migrate run", Box::new(|| Ok(sqlx_cmd(sqlx, "run", &sqlx_dir, &fresh()?)))));
    }
    rows.extend(case("upgrade: 3.10.0, 38 files, empty to head", 21, Box::new(|| Ok(ours(&fresh()?, &["upgrade"], &pkg))), baselines)?);

    // 1b. The opt-in fast path: a fresh database built from the verified schema.sql, against
    // psql applying that file in one transaction.
    let fast_set = work.join("fast-set");
    std::fs::create_dir_all(fast_set.join("reference"))?;
    for f in std::fs::read_dir(&up.migrations)? {
        let f = f?.path();
        if f.extension().is_some_and(|x| x == "sql") {
            std::fs::copy(&f, fast_set.join(f.file_name().expect("a file")))?;
        }
    }
    std::fs::copy(&up.schema_sql, fast_set.join("reference/schema.sql"))?;
    let fast_pkg = package(&work.join("pkg-fast"), &fast_set)?;
    run(&mut ours("", &["verify"], &fast_pkg))?;
    rows.extend(case(
        "upgrade --from-schema: 3.10.0, fresh database",
        21,
        Box::new(|| Ok(ours(&fresh()?, &["upgrade", "--from-schema"], &fast_pkg))),
        vec![("psql -1 -f schema.sql", Box::new(|| {
            let mut c = psql_file(&psql, &fresh()?, &up.schema_sql);
            c.arg("-1");
            Ok(c)
        }))],
    )?);

    // 0. The physical floor: the server's own execution time of the same statements (psql
    // running the files, one transaction each, as pg_stat_statements times them, planning and
    // utility statements counted) plus one minimal libpq connection.
    if wanted("floor") {
        let mut floors = Vec::new();
        let upstream = FloorCase {
            label: "3.10.0, 38 files",
            files: 38,
            rounds: 41,
            package: pkg.clone(),
            script: psql_script.clone(),
            one_trip: one_round_trip(&work.join("one-trip-38.sql"), &up.migrations)?,
        };
        let cases = [upstream, floor_case(&work, "1,000 small files", 1_000, 7)?, floor_case(&work, "10,000 small files", 10_000, 3)?];
        for c in &cases {
            floors.push(floor(c, &|| fresh(), &|url| ours(url, &["upgrade"], &c.package), &scratch, &psql, &libpq)?);
        }
        print_floors(&floors);
    }

    if wanted("start-up") {
        let url = fresh()?;
        run(&mut ours(&url, &["upgrade"], &pkg))?;
        crate::startup::startup(&url, &up.migrations)?;
    }
    if wanted("replicas") {
        crate::replicas::replicas(&scratch, &|| fresh(), &|url| ours(url, &["upgrade"], &pkg))?;
    }

    // 2. current and check on an up-to-date database.
    let url = fresh()?;
    run(&mut ours(&url, &["upgrade"], &pkg))?;
    let sqlx_url = fresh()?;
    if let Some(sqlx) = &sqlx {
        run(&mut sqlx_cmd(sqlx, "run", &sqlx_dir, &sqlx_url))?;
    }
    for command in ["current", "check"] {
        let mut baselines: Vec<(&str, Prepare<'_>)> = vec![
            ("psql -c 'select 1'", Box::new(|| {
                let mut c = Command::new(&psql);
                c.args(["-X", "-q", "-d", &url, "-c", "select 1"]);
                clean_env(&mut c);
                Ok(c)
            })),
            // The floor: a minimal libpq client reading the tracking table.
            ("libpq client reading the tracking table", Box::new(|| {
                let mut c = Command::new(&libpq);
                c.args([url.as_str(), "SELECT set_name, revision, file_name, checksum, extract(epoch FROM applied_at)::bigint FROM cargo_procrastinate_migrations"]);
                clean_env(&mut c);
                Ok(c)
            })),
        ];
        if let Some(sqlx) = &sqlx {
            baselines.push(("sqlx migrate info", Box::new(|| Ok(sqlx_cmd(sqlx, "info", &sqlx_dir, &sqlx_url)))));
        }
        rows.extend(case(&format!("{command}: up-to-date database, 38 files"), 61, Box::new(|| Ok(ours(&url, &[command], &pkg))), baselines)?);
    }

    // 3. The offline script: 38 files, then 1,000 and 10,000 synthetic ones (growth).
    let cat = |dir: &Path| -> Result<Command> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
        files.retain(|f| f.extension().is_some_and(|x| x == "sql"));
        files.sort();
        let mut c = Command::new("cat");
        c.args(files);
        Ok(c)
    };
    let offline = |dir: &Path| {
        let mut c = Command::new(&bin);
        c.current_dir(&work).args(["-q", "--migrations"]).arg(dir).args(["sql", "--offline"]);
        clean_env(&mut c);
        c
    };
    rows.extend(case("sql --offline: 38 files", 21, Box::new(|| Ok(offline(&up.migrations))), vec![("cat of the same files", Box::new(|| cat(&up.migrations)))])?);
    for count in [1_000, 10_000] {
        let dir = synthetic(&work.join(format!("synthetic-{count}")), count)?;
        rows.extend(case(&format!("sql --offline: {count} files"), 5, Box::new(|| Ok(offline(&dir))), vec![("cat of the same files", Box::new(|| cat(&dir)))])?);
    }

    // 4. upgrade of 1,000 trivial migrations.
    let trivial = synthetic(&work.join("synthetic-1000"), 1_000)?;
    let trivial_script = one_transaction_each(&work.join("psql-1000.sql"), &trivial)?;
    let trivial_pkg = package(&work.join("pkg-1000"), &trivial)?;
    rows.extend(case(
        "upgrade: 1,000 trivial migrations",
        7,
        Box::new(|| Ok(ours(&fresh()?, &["upgrade"], &trivial_pkg))),
        vec![("psql, one transaction per file, one session", Box::new(|| Ok(psql_file(&psql, &fresh()?, &trivial_script))))],
    )?);

    // 5. The embedded server: `--scratch` (start, read, stop) against a bare initdb, start and
    // stop of the same server.
    let bare = work.join("bare.sh");
    std::fs::write(
        &bare,
        format!(
            "set -e\nd=$(mktemp -d)\n{bindir}/initdb -D \"$d/data\" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null\n\
             {bindir}/pg_ctl -D \"$d/data\" -o \"-k $d -c listen_addresses= -c fsync=off\" -w -l \"$d/log\" start >/dev/null\n\
             {bindir}/pg_ctl -D \"$d/data\" -m fast -w stop >/dev/null\nrm -rf \"$d\"\n",
            bindir = pg_scratch::find_bindir()?.display()
        ),
    )?;
    let as_postgres = unsafe { libc::geteuid() } == 0;
    rows.extend(case(
        "--scratch current: start an embedded server, read, stop",
        7,
        Box::new(|| {
            let mut c = Command::new(&bin);
            clean_env(&mut c);
            c.current_dir(&work).args(["-q", "--scratch", "--migrations"]).arg(&up.migrations).arg("current");
            Ok(c)
        }),
        vec![("bare initdb, start and stop", Box::new(|| {
            let mut c = if as_postgres { Command::new("runuser") } else { Command::new("sh") };
            if as_postgres {
                c.args(["-u", "postgres", "--", "sh"]);
            }
            c.arg(&bare).current_dir("/tmp");
            Ok(c)
        }))],
    )?);

    print_and_save(&rows, &root, sqlx.is_none())?;
    if wanted("build script code generation") {
        codegen(&work)?;
    }
    if wanted("per-test database") {
        per_test(&scratch, &up.migrations)?;
    }
    // The packages and scripts it wrote (tens of MB: in memory under TMPDIR=/dev/shm).
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// `cargo xtask bench install` (only when asked: it builds both tools from scratch): CPU time
/// of `cargo install` and the installed binary's size, ours against sqlx-cli's (postgres and
/// rustls only, as its README suggests), each in a target directory of its own.
pub fn install() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile_dir("install")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let measure = |name: &str, args: &[&str]| -> Result<(f64, u64)> {
        let dir = work.join(name);
        let mut cmd = Command::new(&cargo);
        cmd.arg("install").args(args).arg("--root").arg(&dir).env("CARGO_TARGET_DIR", dir.join("target")).current_dir(&root);
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let mut status = 0;
        // SAFETY: as in `run`; the rusage of cargo and every rustc it waited for.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) } < 0 || !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            return Err(format!("cargo install {} failed", args.join(" ")).into());
        }
        let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let bin = std::fs::read_dir(dir.join("bin"))?.flatten().next().ok_or("nothing installed")?;
        Ok((cpu(usage.ru_utime) + cpu(usage.ru_stime), bin.metadata()?.len()))
    };
    let ours = measure("ours", &["--locked", "--path", "cargo-procrastinate"])?;
    let sqlx = measure("sqlx-cli", &["sqlx-cli", "--locked", "--no-default-features", "--features", "postgres,rustls"])?;
    println!("cargo install, CPU time and binary size");
    println!("  {:<46} {:>8.0} CPU-s  {:>6.1} MB", "cargo-procrastinate", ours.0, ours.1 as f64 / 1e6);
    println!("  {:<46} {:>8.0} CPU-s  {:>6.1} MB  ratios {:.2} (CPU), {:.2} (size)", "sqlx-cli (postgres, rustls)", sqlx.0, sqlx.1 as f64 / 1e6, ours.0 / sqlx.0, ours.1 as f64 / sqlx.1 as f64);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// `testing::TestDatabase` in process, 3.10.0's set: a clone of the template database (built
/// once, before the timing), against what a test does without it (an empty database, then
/// every migration applied).
fn per_test(scratch: &pg_scratch::Scratch, dir: &Path) -> Result<()> {
    use procrastinate_migrations::{compat::Window, testing::TestDatabase, SetDef};
    let set = procrastinate_migrations::MigrationSet::from_dir(dir)?;
    let migrations: &'static [procrastinate_migrations::Migration] = Vec::leak(set.migrations);
    let sets: &'static [SetDef] = Vec::leak(vec![SetDef {
        name: None,
        migrations,
        schema: None,
        version_table: procrastinate_migrations::config::DEFAULT_VERSION_TABLE,
        window: Window::of(migrations),
    }]);
    let server = scratch.url("postgres");
    drop(TestDatabase::on_server(&server, sets)?);
    let opts = procrastinate_migrations::db::Options::for_set(&sets[0], true)?;
    let (mut clone, mut built) = (Vec::new(), Vec::new());
    for i in 0..11 {
        let t = Instant::now();
        let db = TestDatabase::on_server(&server, sets)?;
        clone.push(t.elapsed());
        drop(db);
        let name = format!("per_test_{i}");
        let t = Instant::now();
        scratch.create_database(&name)?;
        let mut client = postgres::Client::connect(&scratch.url(&name), postgres::NoTls)?;
        procrastinate_migrations::db::upgrade(&mut client as &mut dyn procrastinate_migrations::db::Session, migrations, None, &opts, &mut |_| {})?;
        built.push(t.elapsed());
    }
    clone.sort();
    built.sort();
    let (c, b) = (clone[5], built[5]);
    println!("per-test database, 3.10.0's 38 files (in process, 11 rounds)");
    println!("  {:<46} median {:>9.2} ms (range {:.2}..{:.2})", "TestDatabase (template clone)", Stats::ms(c), Stats::ms(clone[0]), Stats::ms(clone[10]));
    println!(
        "  {:<46} median {:>9.2} ms (range {:.2}..{:.2})  ratio {:.2}",
        "CREATE DATABASE, then upgrade",
        Stats::ms(b),
        Stats::ms(built[0]),
        Stats::ms(built[10]),
        c.as_secs_f64() / b.as_secs_f64()
    );
    Ok(())
}

/// One upgrade against its floor, interleaved round by round.
struct Floor {
    case: String,
    files: usize,
    ours: Vec<Duration>,
    server: Vec<Duration>,
    connection: Vec<Duration>,
    one_trip: Vec<Duration>,
}

/// What `floor` runs for one case.
struct FloorCase<'a> {
    label: &'a str,
    files: usize,
    rounds: usize,
    package: PathBuf,
    /// psql's script: `BEGIN; \i FILE; COMMIT;` for each file.
    script: PathBuf,
    /// The same transactions as one query string, for the one-round-trip client.
    one_trip: PathBuf,
}

/// Times `ours` (on a fresh database each round) against:
/// - the floor: on another fresh database, the minimal libpq client times one connection
///   (`SELECT 1`; the first to that database, as ours is), then psql runs `script` there
///   (untimed) and pg_stat_statements gives the server's execution and planning time of what ran;
/// - one round trip: on a third fresh database, the libpq client sends every file, each in its
///   own transaction, as one query (the least a client can spend that runs the files as
///   migrations run, parsing and per-statement work included, bookkeeping left out).
fn floor(c: &FloorCase<'_>, fresh: &dyn Fn() -> Result<String>, ours: &dyn Fn(&str) -> Command, scratch: &pg_scratch::Scratch, psql: &Path, libpq: &Path) -> Result<Floor> {
    let mut admin = scratch.config("postgres").connect(postgres::NoTls)?;
    let mut f = Floor {
        case: format!("upgrade against the floor: {}", c.label),
        files: c.files,
        ours: Vec::new(),
        server: Vec::new(),
        connection: Vec::new(),
        one_trip: Vec::new(),
    };
    let libpq_cmd = |url: &str, sql: &str| {
        let mut cmd = Command::new(libpq);
        cmd.args([url, sql]);
        clean_env(&mut cmd);
        cmd
    };
    for round in 0..c.rounds {
        // Each round starts with a different one.
        for k in 0..3 {
            let url = fresh()?;
            match (round + k) % 3 {
                0 => f.ours.push(run(&mut ours(&url))?.0),
                1 => {
                    f.connection.push(run(&mut libpq_cmd(&url, "SELECT 1"))?.0);
                    let name = url.rsplit('/').next().unwrap_or_default().to_string();
                    let oid: u32 = admin.query_one("SELECT oid FROM pg_database WHERE datname = $1", &[&name])?.get(0);
                    admin.execute("SELECT pg_stat_statements_reset(0, $1, 0)", &[&oid])?;
                    let mut measured = psql_file(psql, &url, &c.script);
                    measured.env("PGOPTIONS", "-c pg_stat_statements.track=top");
                    run(&mut measured)?;
                    let ms: f64 = admin
                        .query_one("SELECT coalesce(sum(total_exec_time + total_plan_time), 0)::float8 FROM pg_stat_statements WHERE dbid = $1", &[&oid])?
                        .get(0);
                    f.server.push(Duration::from_secs_f64(ms / 1e3));
                }
                _ => f.one_trip.push(run(&mut libpq_cmd(&url, &format!("@{}", c.one_trip.display())))?.0),
            }
        }
    }
    Ok(f)
}

pub(crate) fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn print_floors(floors: &[Floor]) {
    for f in floors {
        let floor: Vec<Duration> = f.server.iter().zip(&f.connection).map(|(a, b)| *a + *b).collect();
        let (ours, fl, trip) = (median(&f.ours), median(&floor), median(&f.one_trip));
        let spread = |v: &[Duration]| {
            let mut v = v.to_vec();
            v.sort();
            format!("{:.1}..{:.1}", Stats::ms(v[0]), Stats::ms(v[v.len() - 1]))
        };
        println!("{}", f.case);
        println!(
            "  {:<46} median {:>9.2} ms (range {}; {:.1} us per file)",
            "cargo procrastinate upgrade",
            Stats::ms(ours),
            spread(&f.ours),
            ours.as_secs_f64() * 1e6 / f.files as f64
        );
        println!(
            "  {:<46} median {:>9.2} ms (range {}; server {:.2} ms + one libpq connection {:.2} ms)  ratio {:.2}",
            "floor",
            Stats::ms(fl),
            spread(&floor),
            Stats::ms(median(&f.server)),
            Stats::ms(median(&f.connection)),
            ours.as_secs_f64() / fl.as_secs_f64()
        );
        println!(
            "  {:<46} median {:>9.2} ms (range {})  ratio {:.2}",
            "libpq, the files in one round trip",
            Stats::ms(trip),
            spread(&f.one_trip),
            ours.as_secs_f64() / trip.as_secs_f64()
        );
    }
}

/// A package of `count` small migrations (a table each), its psql script and its one-trip
/// script (made once).
fn floor_case(work: &Path, label: &'static str, count: usize, rounds: usize) -> Result<FloorCase<'static>> {
    let dir = work.join(format!("floor-{count}"));
    let script = work.join(format!("floor-{count}.sql"));
    let one_trip = work.join(format!("floor-{count}-one-trip.sql"));
    let package_dir = work.join(format!("pkg-floor-{count}"));
    if !one_trip.is_file() {
        let files = synthetic(&dir, count)?;
        one_transaction_each(&script, &files)?;
        one_round_trip(&one_trip, &files)?;
        package(&package_dir, &files)?;
    }
    Ok(FloorCase { label, files: count, rounds, package: package_dir, script, one_trip })
}

/// The build script's code generation, in process: 38 files and 10,000.
fn codegen(work: &Path) -> Result<()> {
    let up = procrastinate_tests::wheels::procrastinate("3.10.0");
    let big = work.join("synthetic-10000");
    for (what, dir) in [("38 files", up.migrations.clone()), ("10,000 files", big)] {
        let out = work.join("codegen");
        std::fs::create_dir_all(&out)?;
        let mut times = Vec::new();
        for _ in 0..5 {
            let _ = std::fs::remove_file(out.join(procrastinate_build::DEFAULT_FILE_NAME));
            let t = Instant::now();
            procrastinate_build::Builder::new().migrations(&dir).out_dir(&out).emit_rerun_if_changed(false).compile()?;
            times.push(t.elapsed());
        }
        times.sort();
        println!("{:<46} median {:>9.2} ms (range {:.2}..{:.2})", format!("build script code generation, {what}"), Stats::ms(times[2]), Stats::ms(times[0]), Stats::ms(times[4]));
    }
    Ok(())
}

fn print_and_save(rows: &[Row], root: &Path, no_sqlx: bool) -> Result<()> {
    let mut json = Vec::new();
    for r in rows {
        println!("{}", r.case);
        let line = |who: &str, s: &Stats| {
            format!("  {who:<46} median {:>9.2} ms (range {:.2}..{:.2})  peak RSS {:>7} KiB", Stats::ms(s.median), Stats::ms(s.min), Stats::ms(s.max), s.rss_kib)
        };
        println!("{}", line("cargo procrastinate", &r.ours));
        let mut base = Vec::new();
        for (who, s) in &r.baselines {
            let ratio = r.ours.median.as_secs_f64() / s.median.as_secs_f64();
            println!("{}  ratio {ratio:.2}", line(who, s));
            base.push(format!(
                "{{\"baseline\":{who:?},\"median_ms\":{:.3},\"min_ms\":{:.3},\"max_ms\":{:.3},\"peak_rss_kib\":{},\"ratio\":{ratio:.3}}}",
                Stats::ms(s.median), Stats::ms(s.min), Stats::ms(s.max), s.rss_kib
            ));
        }
        json.push(format!(
            "{{\"case\":{:?},\"median_ms\":{:.3},\"min_ms\":{:.3},\"max_ms\":{:.3},\"peak_rss_kib\":{},\"baselines\":[{}]}}",
            r.case, Stats::ms(r.ours.median), Stats::ms(r.ours.min), Stats::ms(r.ours.max), r.ours.rss_kib, base.join(",")
        ));
    }
    if no_sqlx {
        println!("(sqlx-cli is not installed, so its baselines were skipped: `cargo install sqlx-cli --no-default-features --features postgres,rustls --locked`)");
    }
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("latest.json"), format!("[\n{}\n]\n", json.join(",\n")))?;
    println!("written to {}", dir.join("latest.json").display());
    Ok(())
}

/// A package whose manifest names `migrations`: the tool finds its settings as a user's would.
fn package(dir: &Path, migrations: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!("[package]\nname = \"bench\"\nversion = \"0.1.0\"\n\n[package.metadata.procrastinate]\nmigrations = {:?}\n", migrations.display().to_string()),
    )?;
    Ok(dir.to_path_buf())
}

/// The psql floor: `BEGIN; \i file; COMMIT;` for each file, in order, one session.
fn one_transaction_each(script: &Path, dir: &Path) -> Result<PathBuf> {
    let files = sql_files(dir)?;
    let body: String = files.iter().map(|f| format!("BEGIN;\n\\i '{}'\nCOMMIT;\n", f.display())).collect();
    std::fs::write(script, body)?;
    Ok(script.to_path_buf())
}

/// The `.sql` files of `dir`, in the order they run.
fn sql_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    files.retain(|f| f.extension().is_some_and(|x| x == "sql"));
    files.sort();
    Ok(files)
}

/// Every file, each in its own transaction, as one query string.
fn one_round_trip(out: &Path, dir: &Path) -> Result<PathBuf> {
    let mut body = String::new();
    for f in sql_files(dir)? {
        body.push_str("BEGIN;\n");
        body.push_str(&std::fs::read_to_string(f)?);
        body.push_str("\n;\nCOMMIT;\n");
    }
    std::fs::write(out, body)?;
    Ok(out.to_path_buf())
}

fn psql_file(psql: &Path, url: &str, script: &Path) -> Command {
    let mut c = Command::new(psql);
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"]).arg(script);
    clean_env(&mut c);
    c
}

/// The same files as sqlx-cli wants them: `<version>_<description>.sql`.
fn sqlx_layout(dir: &Path, from: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(from)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    files.retain(|f| f.extension().is_some_and(|x| x == "sql"));
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let stem = f.file_stem().unwrap().to_string_lossy().replace('.', "_");
        std::fs::copy(f, dir.join(format!("{}_{stem}.sql", i + 1)))?;
    }
    Ok(dir.to_path_buf())
}

fn sqlx_cmd(sqlx: &Path, what: &str, dir: &Path, url: &str) -> Command {
    let mut c = Command::new(sqlx);
    c.args(["migrate", what, "--source"]).arg(dir).args(["--database-url", url]);
    clean_env(&mut c);
    c
}

/// `count` trivial migrations: one table each.
fn synthetic(dir: &Path, count: usize) -> Result<PathBuf> {
    if dir.is_dir() {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir)?;
    for i in 0..count {
        let (major, minor, serial) = (i / 9_900, (i / 99) % 100, i % 99 + 1);
        std::fs::write(dir.join(format!("{major:02}.{minor:02}.00_{serial:02}_t{i}.sql")), format!("CREATE TABLE t{i} (id int);\n"))?;
    }
    Ok(dir.to_path_buf())
}

/// No PG*, PROCRASTINATE_* or DATABASE_URL from the caller's environment.
fn clean_env(c: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("PG") || key.starts_with("PROCRASTINATE_") || key == "DATABASE_URL" {
            c.env_remove(key);
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn tempfile_dir(label: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cargo-procrastinate-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
