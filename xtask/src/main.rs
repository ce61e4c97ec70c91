//! Development tasks: `cargo xtask <task>`.
//!
//! - `test`: the README's test command: provides what the tests need, then `cargo test
//!   --workspace` (see `test.rs`).
//! - `wheel VERSION`: fetch Procrastinate's wheel (cached under target/) and print the path of
//!   its migrations directory.
//! - `man`: man pages from the clap definition, into `target/man/` (see `man.rs`).
//! - `bench [CASE]`: whole commands against baselines timed in the same run (see `bench.rs` and
//!   BENCHMARKS.md); with CASE, only the cases whose name contains it.

mod bench;
mod man;
mod replicas;
mod startup;
mod test;

use xshell::{cmd, Shell};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["wheel", version] => {
            println!("{}", procrastinate_tests::wheels::procrastinate(version).migrations.display());
            Ok(())
        }
        ["man"] => man::man(),
        ["bench", filter @ ..] if filter.len() <= 1 => {
            // `cargo xtask` builds in debug; numbers from unoptimized code mean little.
            if cfg!(debug_assertions) {
                let sh = Shell::new()?;
                sh.change_dir(env!("CARGO_MANIFEST_DIR"));
                cmd!(sh, "cargo run --quiet --release -p xtask -- bench {filter...}").run()?;
                return Ok(());
            }
            if filter.first() == Some(&"install") {
                return bench::install();
            }
            bench::bench(filter.first().copied())
        }
        ["test", rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            test::test(&rest)
        }
        _ => {
            eprintln!("usage: cargo xtask test [ARGS for cargo test] | cargo xtask wheel VERSION | cargo xtask man | cargo xtask bench [CASE | install]");
            std::process::exit(2);
        }
    }
}

