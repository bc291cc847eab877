//! The `reportd` binary; everything it does lives in `reportd::cli`.
fn main() -> std::process::ExitCode {
    reportd::cli::main()
}
