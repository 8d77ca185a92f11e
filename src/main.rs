//! The `klachtpost` command. Everything is in the library; see `src/lib.rs` for the map.

fn main() -> std::process::ExitCode {
    klachtpost::cli::main()
}
