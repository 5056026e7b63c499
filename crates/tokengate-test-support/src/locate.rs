//! Where things are: the repository root and the `tokengate` binary.

use std::path::{Path, PathBuf};

/// The repository root (the workspace's root folder).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/tokengate-test-support is two levels below the root")
}

/// Where the `tokengate` binary of this build is expected: next to the
/// running test executable's folder. Cargo puts a test executable in
/// `target/<profile>/deps/` (`target/<triple>/<profile>/deps/` when
/// cross-compiling) and the binaries in `target/<profile>/`, so it is
/// `<the executable's grand-parent folder>/tokengate`. Only the root
/// crate's tests can name it with `env!("CARGO_BIN_EXE_tokengate")`; this
/// works from any test of the workspace.
pub fn tokengate_binary_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} has no grand-parent folder", exe.display()));
    profile_dir.join(format!("tokengate{}", std::env::consts::EXE_SUFFIX))
}

/// The `tokengate` binary of this build ([`tokengate_binary_path`]);
/// panics with how to build it when it is missing.
pub fn tokengate_binary() -> PathBuf {
    let path = tokengate_binary_path();
    assert!(
        path.is_file(),
        "no tokengate binary at {}: tests run the one built next to their own executable. \
         `cargo test` builds it for the root crate's tests; for other crates' tests build it \
         first with `cargo build -p tokengate --bin tokengate` (same profile and target).",
        path.display()
    );
    path
}
