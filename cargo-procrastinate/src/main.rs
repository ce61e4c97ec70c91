fn main() {
    std::process::exit(cargo_procrastinate::main());
}
