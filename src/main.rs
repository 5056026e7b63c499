//! The `tokengate` binary: see `tokengate --help`.

fn main() -> std::process::ExitCode {
    match tokengate::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
