//! `cargo xtask test`: the README's test command. On a fresh machine of this project's kind it
//! first provides what the tests need and the machine may lack (PostgreSQL's server, PgBouncer,
//! pip), from Debian's packages when run as root, or says
//! exactly what to install otherwise; then runs `cargo test --workspace` with any extra
//! arguments, and ends with the totals of every test binary.

use std::path::Path;
use std::process::Command;

use crate::Result;

/// What a test needs, how to tell it is there, and the Debian packages that provide it.
struct Need(&'static str, fn() -> bool, &'static str);

const NEEDS: &[Need] = &[
    Need("PostgreSQL's server (initdb, postgres)", has_postgres, "postgresql"),
    Need("PgBouncer", || on_path("pgbouncer") || Path::new("/usr/sbin/pgbouncer").is_file(), "pgbouncer"),
    Need("pip (Procrastinate's wheels)", || succeeds("python3", &["-m", "pip", "--version"]), "python3-pip"),
];

pub fn test(args: &[String]) -> Result<()> {
    let missing: Vec<&Need> = NEEDS.iter().filter(|n| !(n.1)()).collect();
    if !missing.is_empty() {
        let packages: Vec<&str> = missing.iter().flat_map(|n| n.2.split(' ')).collect();
        let names: Vec<&str> = missing.iter().map(|n| n.0).collect();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(format!("the tests need {}: install them (`sudo apt-get install {}`) and run again", names.join(", "), packages.join(" ")).into());
        }
        eprintln!("xtask test: installing {} ({})", packages.join(" "), names.join(", "));
        sh("apt-get", &["update", "-qq"])?;
        let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
        install.extend(&packages);
        let status = Command::new("apt-get").args(&install).env("DEBIAN_FRONTEND", "noninteractive").status()?;
        if !status.success() {
            return Err(format!("apt-get install {} failed", packages.join(" ")).into());
        }
    }
    // As root, clusters run as the postgres user (initdb refuses root); the package creates it.
    if unsafe { libc::geteuid() } == 0 && !succeeds("id", &["postgres"]) {
        sh("useradd", &["--system", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/sh", "postgres"])?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(&cargo)
        .args(["test", "--workspace"])
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    // Echo the output as it comes, and keep it to add up the totals.
    let mut text = String::new();
    {
        use std::io::{BufRead, BufReader, Write};
        let mut out = std::io::stdout();
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let line = line?;
            writeln!(out, "{line}")?;
            text.push_str(&line);
            text.push('\n');
        }
    }
    let exited = child.wait()?;
    let (passed, failed, ignored) = totals(&text);
    println!("total: {passed} passed, {failed} failed, {ignored} skipped");
    if !exited.success() || failed > 0 || passed == 0 {
        return Err("the test suite failed".into());
    }
    Ok(())
}

/// Adds up cargo's `test result:` lines (one per test binary, the last often a doc-test binary
/// with 0 tests), so that the closing line says what really ran.
fn totals(text: &str) -> (u64, u64, u64) {
    let mut t = (0, 0, 0);
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            let n: u64 = w[0].parse().unwrap_or(0);
            match w[1].trim_end_matches(';') {
                "passed" => t.0 += n,
                "failed" => t.1 += n,
                "ignored" => t.2 += n,
                _ => {}
            }
        }
    }
    t
}

fn has_postgres() -> bool {
    pg_scratch::find_bindir().is_ok()
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
}

fn sh(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program).args(args).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{program} {} failed ({status})", args.join(" ")).into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn totals_add_up_every_binary() {
        let text = "test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured\nother\ntest result: FAILED. 40 passed; 2 failed; 0 ignored;\n";
        assert_eq!(super::totals(text), (44, 2, 1));
    }
}
