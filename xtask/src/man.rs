//! `cargo xtask man`: man pages generated from the same clap definition the parser uses
//! (`cargo_procrastinate::cli::man`, which `cargo procrastinate man` prints too), one for the
//! tool and one per command, written to `target/man/` (`man -l target/man/cargo-procrastinate.1`).

use std::path::Path;

pub fn man() -> crate::Result<()> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/man");
    std::fs::create_dir_all(&out)?;
    let mut cmd = cargo_procrastinate::cli::command();
    cmd.build();
    let mut names = vec![None];
    names.extend(cmd.get_subcommands().filter(|s| s.get_name() != "help").map(|s| Some(s.get_name().to_string())));
    for name in names {
        let page = cargo_procrastinate::cli::man(name.as_deref())?;
        let file = match &name {
            None => "cargo-procrastinate.1".to_string(),
            Some(n) => format!("cargo-procrastinate-{n}.1"),
        };
        std::fs::write(out.join(file), page)?;
    }
    println!("{}", out.canonicalize()?.join("cargo-procrastinate.1").display());
    Ok(())
}
