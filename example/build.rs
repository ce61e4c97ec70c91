// Reads `[package.metadata.procrastinate]` from Cargo.toml and writes
// `$OUT_DIR/procrastinate_migrations.rs`; a malformed set fails the build here.
//
// PROCRASTINATE_EXAMPLE_MIGRATIONS builds this example against another directory (say a
// Procrastinate release's files, `cargo xtask wheel 3.10.0`): an example's own switch, since
// procrastinate-build itself never reads the environment for what a binary embeds.
fn main() -> Result<(), procrastinate_build::Error> {
    println!("cargo:rerun-if-env-changed=PROCRASTINATE_EXAMPLE_MIGRATIONS");
    let mut builder = procrastinate_build::Builder::new();
    if let Some(dir) = std::env::var_os("PROCRASTINATE_EXAMPLE_MIGRATIONS").filter(|d| !d.is_empty()) {
        builder = builder.migrations(dir);
    }
    builder.compile().map(drop)
}
