//! The `tokengate` binary: see `tokengate --help`.

/// mimalloc: per-call allocations are most of what the transport path does
/// besides I/O, and glibc's allocator spent about five times the
/// instructions on them (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match tokengate::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
