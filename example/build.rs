// Reads `[package.metadata.procrastinate] migrations` from Cargo.toml and writes
// `$OUT_DIR/procrastinate_migrations.rs`; a malformed set fails the build here.
fn main() -> Result<(), procrastinate_build::Error> {
    procrastinate_build::compile()
}
