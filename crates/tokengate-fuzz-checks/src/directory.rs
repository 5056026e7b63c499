//! `directory`: the directory file parser,
//! `tokengate_directory::Directory::from_toml` (TOML schema, password hash
//! parsing, duplicate checks, the dummy hash at the file's own cost).
//!
//! Input: the file text.
//!
//! Properties: never panics; an error never echoes a password hash (toml
//! errors are reported by line only, hash errors name the user, not the
//! hash), and neither does a loaded directory's `Debug`; a loaded
//! directory finds every domain it lists under its own id.
//!
//! Inputs whose hashes name an expensive cost are skipped (the dummy hash
//! is computed at the directory's own cost by design, so even the costs the
//! parser accepts, up to bcrypt 16 and argon2id 256 MiB, would only measure
//! the hash): see [`too_expensive`]. Costs above those bounds are refused by
//! `PasswordHash::parse` (`TooExpensive`, tested in tokengate-directory);
//! before that bound, this target found that a bcrypt cost of 31 or argon2
//! with gigabytes of memory stalled or aborted a directory load.

use tokengate_directory::Directory;

/// Checks one input (see the module docs).
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if too_expensive(text) {
        return;
    }
    let secrets = secrets(text);
    match Directory::from_toml(text) {
        Ok(directory) => {
            let ids: Vec<&str> = directory.domain_ids().collect();
            assert_eq!(ids.len(), directory.domain_count());
            for id in ids {
                assert_eq!(directory.domain(id).expect("listed domain").domain_id, id);
            }
            let debug = format!("{directory:?}");
            for secret in &secrets {
                assert!(!debug.contains(secret.as_str()), "Debug shows {secret:?}");
            }
        }
        Err(error) => {
            let message = error.to_string();
            for secret in &secrets {
                assert!(
                    !message.contains(secret.as_str()),
                    "the error {message:?} echoes the hash {secret:?}"
                );
            }
        }
    }
}

/// What could be a password hash on a `password_hash = ...` line: the
/// value, bare and unquoted. Only distinctive candidates count (12+
/// characters with a `$`, appearing once in the file) so that an id or a
/// parser message that happens to contain the same text is no false alarm.
pub fn secrets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "password_hash" {
            continue;
        }
        let value = value.trim();
        let mut candidates = vec![value.to_owned()];
        for quote in ['"', '\''] {
            let mut parts = value.split(quote);
            if let (Some(_), Some(inner)) = (parts.next(), parts.next()) {
                candidates.push(inner.to_owned());
            }
        }
        for c in candidates {
            if c.len() >= 12 && c.contains('$') && text.matches(c.as_str()).count() == 1 {
                out.push(c);
            }
        }
    }
    out
}

/// Whether the text may name a hash whose cost makes one parse slow (bcrypt
/// cost above 5; argon2 above 1 MiB, 2 passes or 2 lanes), or hides one
/// behind a unicode escape.
pub fn too_expensive(text: &str) -> bool {
    if text.contains("\\u") || text.contains("\\U") {
        return true;
    }
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        for (at, _) in text.match_indices(prefix) {
            let cost = text.get(at + 4..at + 6).and_then(|c| c.parse::<u32>().ok());
            if cost.is_some_and(|c| c > 5) {
                return true;
            }
        }
    }
    let param = |name: &str, max: u64| {
        text.match_indices(name).any(|(at, _)| {
            let digits: String = text[at + name.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            !digits.is_empty() && digits.parse::<u64>().map_or(true, |v| v > max)
        })
    };
    param("m=", 1024) || param("t=", 2) || param("p=", 2)
}
