//! A private CA and a server certificate for 127.0.0.1 and `localhost`,
//! made with the `openssl` command, for the TLS tests of the directory
//! servers (`ca.crt`, `server.crt`, `server.key` in a folder).

use std::path::Path;
use std::process::{Command, Stdio};

/// `ca.crt`, `ca.key`, and `server.crt` / `server.key` signed by it (for
/// 127.0.0.1 and localhost) in `dir`; the key readable by `user` (uid,
/// gid) only, or by us.
pub fn make_certificates(dir: &Path, user: Option<(u32, u32)>) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=tokengate test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ]);
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod key");
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&key, Some(uid), Some(gid)).expect("chown key");
    }
}
