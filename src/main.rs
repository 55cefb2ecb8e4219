//! baton's entry point: parse, run, turn the result into an exit status.

fn main() {
    std::process::exit(baton::cli::main());
}
