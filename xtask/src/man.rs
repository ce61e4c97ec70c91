//! `cargo xtask man`: man pages generated from the same clap definition the parser uses
//! (`cargo_procrastinate::cli::command`), one for the tool and one per command, written to
//! `target/man/` (`man -l target/man/cargo-procrastinate.1`).

use std::path::Path;

pub fn man() -> crate::Result<()> {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/man");
    std::fs::create_dir_all(&out)?;
    let mut cmd = cargo_procrastinate::cli::command().name("cargo-procrastinate");
    // Global flags reach each command's page only once the definition is built.
    cmd.build();
    let mut pages = vec![("cargo-procrastinate".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("cargo-procrastinate-{}", sub.get_name());
        // clap wants a static name; this process ends in a moment.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(static_name)));
    }
    for (name, page) in pages {
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page).render(&mut bytes)?;
        std::fs::write(out.join(format!("{name}.1")), bytes)?;
    }
    println!(
        "{}",
        out.canonicalize()?.join("cargo-procrastinate.1").display()
    );
    Ok(())
}
