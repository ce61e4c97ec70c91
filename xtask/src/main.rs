//! Development tasks: `cargo xtask <task>`.
//!
//! - `wheel VERSION`: fetch Procrastinate's wheel (cached under target/) and print the path of
//!   its migrations directory.
//! - `bench`: speed and memory, each as a ratio against a baseline measured in the same run, so
//!   the numbers mean the same on any machine.

use std::time::{Duration, Instant};

use procrastinate_migrations::{db, MigrationSet};
use xshell::{cmd, Shell};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["wheel", version] => {
            println!("{}", procrastinate_tests::wheels::procrastinate(version).migrations.display());
            Ok(())
        }
        ["bench"] => bench(),
        _ => {
            eprintln!("usage: cargo xtask wheel VERSION | cargo xtask bench");
            std::process::exit(2);
        }
    }
}

/// Best of `runs` timings of `f` (the minimum is the least noisy estimate of the cost).
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .expect("runs > 0")
}

fn report(what: &str, ours: Duration, baseline: Duration, baseline_name: &str) {
    println!(
        "{what:<44} {:>9.3} ms  vs {baseline_name:<34} {:>9.3} ms  ratio {:>6.2}",
        ours.as_secs_f64() * 1e3,
        baseline.as_secs_f64() * 1e3,
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn bench() -> Result<()> {
    // `cargo xtask` builds in debug; numbers from unoptimized code mean little.
    if cfg!(debug_assertions) {
        let sh = Shell::new()?;
        sh.change_dir(env!("CARGO_MANIFEST_DIR"));
        cmd!(sh, "cargo run --quiet --release -p xtask -- bench").run()?;
        return Ok(());
    }
    let up = procrastinate_tests::wheels::procrastinate("3.10.0");
    let files: Vec<_> = std::fs::read_dir(&up.migrations)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;

    // 1. Resolving the set (read, name, lex, checksum) against just reading the files.
    let resolve = best(50, || drop(MigrationSet::from_dir(&up.migrations).expect("valid set")));
    let read = best(50, || {
        for f in &files {
            drop(std::fs::read(f).expect("read"));
        }
    });
    report("resolve 3.10.0 (38 files)", resolve, read, "reading the same files");

    // 2. upgrade base -> head against the floor: each file as one batch in its own transaction.
    let set = MigrationSet::from_dir(&up.migrations)?;
    let scratch = pg_scratch::Scratch::start()?;
    let mut n = 0;
    let mut fresh = || -> Result<postgres::Client> {
        n += 1;
        let name = format!("bench_{n}");
        scratch.create_database(&name)?;
        Ok(scratch.config(&name).connect(postgres::NoTls)?)
    };
    let mut ours = Duration::MAX;
    let mut floor = Duration::MAX;
    for _ in 0..5 {
        let mut client = fresh()?;
        let t = Instant::now();
        db::upgrade(&mut client, &set.migrations, Some(set.head()), &db::Options::default(), &mut |_| {})?;
        ours = ours.min(t.elapsed());
        let mut client = fresh()?;
        let t = Instant::now();
        for m in &set.migrations {
            let mut tx = client.transaction()?;
            tx.batch_execute(&m.sql)?;
            tx.commit()?;
        }
        floor = floor.min(t.elapsed());
    }
    report("upgrade base -> 0038 (lock, tracking, lexer)", ours, floor, "raw files, one transaction each");

    // 3. Peak memory of the offline script against `cat` of the same files.
    let sh = Shell::new()?;
    sh.change_dir(env!("CARGO_MANIFEST_DIR"));
    cmd!(sh, "cargo build --quiet --release -p cargo-procrastinate").run()?;
    let bin = sh.current_dir().join("../target/release/cargo-procrastinate");
    let dir = up.migrations.display().to_string();
    let ours = max_rss_kib(std::process::Command::new(&bin).args(["--migrations", &dir, "sql", "--offline"]))?;
    let cat = max_rss_kib(std::process::Command::new("cat").args(&files))?;
    println!(
        "{:<44} {ours:>9} KiB vs {:<34} {cat:>9} KiB ratio {:>6.2}",
        "peak RSS of sql --offline",
        "cat of the same files",
        ours as f64 / cat as f64
    );
    Ok(())
}

/// Peak resident set of a child, from wait4's rusage (only that child is waited for).
fn max_rss_kib(cmd: &mut std::process::Command) -> Result<i64> {
    let child = cmd.stdout(std::process::Stdio::null()).spawn()?;
    let mut status = 0;
    // SAFETY: rusage is plain data, zeroed is a valid value; wait4 fills it for this pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    if pid < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(usage.ru_maxrss)
}
