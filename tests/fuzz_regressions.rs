//! Replays every committed fuzz seed and regression input
//! (`fuzz/seeds/<target>/`, `fuzz/regressions/<target>/`) through the very
//! property functions the cargo-fuzz targets run (the `tokengate-fuzz-checks`
//! crate, `crates/tokengate-fuzz-checks/src/<target>.rs`), so the harnesses
//! cannot rot and a fixed crash stays fixed. See fuzz/README.md.

use std::path::Path;

use tokengate_fuzz_checks::{
    config, directory, grpc_frame_limit, grpc_web_framing, jwt, rest_decode,
};

/// Runs `check` on every file of the target's seeds and regressions;
/// returns how many inputs ran.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = 0;
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let input = std::fs::read(&path).expect("read input");
            eprintln!("{target}: {}", path.display());
            check(&input);
            ran += 1;
        }
    }
    ran
}

#[test]
fn rest_decode_inputs() {
    assert!(replay("rest_decode", rest_decode::check) > 0);
}

#[test]
fn grpc_web_framing_inputs() {
    assert!(replay("grpc_web_framing", grpc_web_framing::check) > 0);
}

#[test]
fn grpc_frame_limit_inputs() {
    assert!(replay("grpc_frame_limit", grpc_frame_limit::check) > 0);
}

#[test]
fn jwt_inputs() {
    assert!(replay("jwt", jwt::check) > 0);
}

#[test]
fn directory_inputs() {
    assert!(replay("directory", directory::check) > 0);
    assert!(directory::too_expensive("password_hash = \"$2b$12$...\""));
    assert!(!directory::secrets("password_hash = \"$2b$04$abcdefghijkl\"").is_empty());
    // Only the value of a `password_hash` key is a secret, not a line that
    // mentions one (regressions/directory/domain-id-mentions-password-hash).
    assert!(directory::secrets("domain_id = \"d$v=19 password_hash\"").is_empty());
}

#[test]
fn config_inputs() {
    assert!(replay("config", config::check) > 0);
    assert_eq!(
        config::secrets("redis_url = \"redis://u:longpassword@h\""),
        ["longpassword"]
    );
}
