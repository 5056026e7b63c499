//! `tokengate serve` with no config: the banner shows the demo credentials
//! and example calls, and the printed calls work exactly as printed.

use std::process::Command;

use tokengate_test_support::dev_server::DevServer;
use tokengate_test_support::prelude::*;

#[test]
fn dev_mode_prints_working_example_calls() {
    // `--listen 127.0.0.1:0`: the banner's calls name the port it got.
    let server = DevServer::start();
    check_banner(&server.banner, server.data_dir());
}

fn check_banner(banner: &str, data: &std::path::Path) {
    assert!(
        banner.contains("demo user:     admin@example.com"),
        "{banner}"
    );
    let password_line = banner
        .lines()
        .find(|l| l.trim_start().starts_with("password:"))
        .expect("password line");
    let password = password_line.split_whitespace().nth(1).expect("password");
    assert!(password.len() >= 16, "a strong demo password");
    assert!(
        data.join("keys/domain-dev/access").exists(),
        "keys in the data folder"
    );

    // Run the REST lines together, as a user pasting them would (RT carries over).
    let rest: Vec<&str> = banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl ") || l.starts_with("RT="))
        .collect();
    assert_eq!(rest.len(), 5, "{banner}");
    let script = rest.join("\necho\n");
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let answers: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(answers.len(), 4, "{text}");
    assert!(
        answers[0].contains("\"access_token\"") && answers[0].contains("\"refresh_token\""),
        "issue: {}",
        answers[0]
    );
    assert!(
        answers[1].contains("\"access_token\""),
        "refresh: {}",
        answers[1]
    );
    assert!(
        answers[2].contains("\"public_key\""),
        "get-public-key: {}",
        answers[2]
    );
    assert!(answers[3].contains("\"keys\""), "jwks: {}", answers[3]);

    // The buf curl lines, exactly as printed, from a folder whose
    // node_modules has @bufbuild/buf (CI runs `npm ci`).
    let buf_available = repo_root().join("node_modules/.bin/buf").exists();
    if !buf_available {
        assert!(std::env::var("CI").is_err(), "CI must install buf (npm ci)");
        eprintln!("skipping the buf curl lines: run `npm ci` to check them too");
        return;
    }
    for line in banner
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("npx "))
    {
        let output = Command::new("bash")
            .args(["-c", line])
            .current_dir(repo_root())
            .output()
            .expect("bash");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{line}\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            text.contains("accessToken") || text.contains("publicKey"),
            "{line}\n{text}"
        );
    }
}
