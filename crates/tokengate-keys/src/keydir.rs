//! The keys folder: `<dir>/<domain_id>/<access|refresh>/<kid>.pem`, one
//! PKCS#8 private key per file. Files are written atomically (temp file +
//! rename) with owner-only permissions.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::signing_key::{from_pem, new_kid, to_pem};
use crate::{Algorithm, KeyError, KeyRing, Purpose, SigningKey};

/// Errors reading or writing the keys folder.
#[derive(Debug, thiserror::Error)]
pub enum KeyDirError {
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file holds no usable key.
    #[error("{path}: {source}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why it was refused.
        source: KeyError,
    },
    /// A domain id that cannot name a folder safely.
    #[error(
        "domain id {0:?} cannot be used as a key folder name (letters, digits, '-', '_', '.' only)"
    )]
    BadDomainId(String),
    /// A kid that cannot name a key file safely.
    #[error("kid {0:?} cannot be used as a key file name (letters, digits, '-', '_', '.' only)")]
    BadKid(String),
}

/// What [`KeyDir::import`] did (or, in a dry run, would do) with a key file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportedKey {
    /// The file already held exactly this key.
    Unchanged,
    /// A new file.
    Created,
    /// A file of that kid held another key and was overwritten.
    Replaced,
}

/// A keys folder on disk.
#[derive(Debug, Clone)]
pub struct KeyDir {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyDirError + '_ {
    move |source| KeyDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `id` is safe as a single path component.
fn safe_domain_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl KeyDir {
    /// A keys folder rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn purpose_dir(&self, domain_id: &str, purpose: Purpose) -> Result<PathBuf, KeyDirError> {
        if !safe_domain_id(domain_id) {
            return Err(KeyDirError::BadDomainId(domain_id.to_owned()));
        }
        Ok(self.root.join(domain_id).join(purpose.as_str()))
    }

    /// Loads every key. Keys of one domain and purpose are ordered by their
    /// kid's timestamp, so the newest signs.
    pub fn load(&self) -> Result<KeyRing, KeyDirError> {
        let mut ring = KeyRing::new();
        if !self.root.exists() {
            return Ok(ring);
        }
        let mut domains: Vec<_> = fs::read_dir(&self.root)
            .map_err(io_err(&self.root))?
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| safe_domain_id(name))
            .collect();
        domains.sort();
        for domain_id in domains {
            for purpose in Purpose::ALL {
                let dir = self.purpose_dir(&domain_id, purpose)?;
                for (_, path) in sorted_key_files(&dir)? {
                    let kid = path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .unwrap_or_default()
                        .to_owned();
                    let pem = fs::read_to_string(&path).map_err(io_err(&path))?;
                    let key = from_pem(&pem)
                        .and_then(|der| SigningKey::from_pkcs8(kid, &der))
                        .map_err(|source| KeyDirError::Key {
                            path: path.clone(),
                            source,
                        })?;
                    ring.insert(&domain_id, purpose, key);
                }
            }
        }
        Ok(ring)
    }

    /// Whether `domain_id` can name a key folder (letters, digits, `-`,
    /// `_`, `.`; not starting with `.`; at most 128 characters).
    pub fn is_valid_domain_id(domain_id: &str) -> bool {
        safe_domain_id(domain_id)
    }

    /// Stores an existing PKCS#8 private key under `kid` (a key carried over
    /// from another system). The key is parsed first, so a file that would
    /// not load is never written. With `dry_run` nothing is written; the
    /// answer says what would happen.
    pub fn import(
        &self,
        domain_id: &str,
        purpose: Purpose,
        kid: &str,
        der: &[u8],
        dry_run: bool,
    ) -> Result<ImportedKey, KeyDirError> {
        let dir = self.purpose_dir(domain_id, purpose)?;
        if !safe_domain_id(kid) {
            return Err(KeyDirError::BadKid(kid.to_owned()));
        }
        let path = dir.join(format!("{kid}.pem"));
        SigningKey::from_pkcs8(kid, der).map_err(|source| KeyDirError::Key {
            path: path.clone(),
            source,
        })?;
        let pem = to_pem(der);
        let outcome = match fs::read_to_string(&path) {
            Ok(existing) if existing == pem => return Ok(ImportedKey::Unchanged),
            Ok(_) => ImportedKey::Replaced,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ImportedKey::Created,
            Err(source) => return Err(KeyDirError::Io { path, source }),
        };
        if !dry_run {
            create_private_dir(&dir)?;
            let tmp = path.with_extension("pem.tmp");
            // A temp file left by an interrupted run would block create_new.
            let _ = fs::remove_file(&tmp);
            write_private_file(&path, pem.as_bytes())?;
        }
        Ok(outcome)
    }

    /// The kid of the key that signs for a domain and purpose (the newest
    /// file), if any.
    pub fn newest_kid(
        &self,
        domain_id: &str,
        purpose: Purpose,
    ) -> Result<Option<String>, KeyDirError> {
        let dir = self.purpose_dir(domain_id, purpose)?;
        Ok(sorted_key_files(&dir)?.pop().map(|(kid, _)| kid))
    }

    /// Generates and stores a new key; returns its kid. The new key signs
    /// from the next load on; older keys keep verifying.
    pub fn generate(
        &self,
        domain_id: &str,
        purpose: Purpose,
        algorithm: Algorithm,
    ) -> Result<String, KeyDirError> {
        let dir = self.purpose_dir(domain_id, purpose)?;
        create_private_dir(&dir)?;
        let der = SigningKey::generate_pkcs8(algorithm).map_err(|source| KeyDirError::Key {
            path: dir.clone(),
            source,
        })?;
        let kid = next_kid(&dir, purpose)?;
        let path = dir.join(format!("{kid}.pem"));
        write_private_file(&path, to_pem(&der).as_bytes())?;
        Ok(kid)
    }

    /// Generates keys for every purpose of each domain that lacks them;
    /// returns what was created as `(domain, purpose, kid)`.
    pub fn generate_missing<'a>(
        &self,
        domain_ids: impl IntoIterator<Item = &'a str>,
        algorithm: Algorithm,
    ) -> Result<Vec<(String, Purpose, String)>, KeyDirError> {
        let ring = self.load()?;
        let mut created = Vec::new();
        for domain_id in domain_ids {
            for purpose in Purpose::ALL {
                let has_key = ring
                    .domain(domain_id)
                    .is_some_and(|d| d.get(purpose).signing_key().is_some());
                if !has_key {
                    let kid = self.generate(domain_id, purpose, algorithm)?;
                    created.push((domain_id.to_owned(), purpose, kid));
                }
            }
        }
        Ok(created)
    }

    /// Removes keys of a domain and purpose that are not among the newest
    /// `keep`; returns the removed kids. Tokens signed by them stop verifying.
    pub fn retire(
        &self,
        domain_id: &str,
        purpose: Purpose,
        keep: usize,
    ) -> Result<Vec<String>, KeyDirError> {
        let dir = self.purpose_dir(domain_id, purpose)?;
        let files = sorted_key_files(&dir)?;
        let excess = files.len().saturating_sub(keep.max(1));
        let mut removed = Vec::new();
        for (kid, path) in files.into_iter().take(excess) {
            fs::remove_file(&path).map_err(io_err(&path))?;
            removed.push(kid);
        }
        Ok(removed)
    }
}

/// `(kid, path)` of every `.pem` in `dir`, oldest first.
fn sorted_key_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, KeyDirError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_owned(), p)))
        .collect();
    files.sort_by_key(|(kid, _)| kid_order(kid));
    Ok(files)
}

/// Sort key for kids: timestamp first, then the whole kid for a stable order.
fn kid_order(kid: &str) -> (u64, String) {
    let secs = kid
        .split('-')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (secs, kid.to_owned())
}

/// A kid that sorts after every existing one, even within the same second.
fn next_kid(dir: &Path, purpose: Purpose) -> Result<String, KeyDirError> {
    let newest = sorted_key_files(dir)?
        .last()
        .map(|(kid, _)| kid_order(kid).0);
    loop {
        let kid = new_kid(purpose.as_str());
        match newest {
            Some(n) if kid_order(&kid).0 <= n => {
                std::thread::sleep(std::time::Duration::from_millis(200))
            }
            _ => return Ok(kid),
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), KeyDirError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
    }
    Ok(())
}

fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyDirError> {
    let tmp = path.with_extension("pem.tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_rotate_retire() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path().join("keys"));
        let created = dir
            .generate_missing(["d1"], Algorithm::EdDSA)
            .expect("generate");
        assert_eq!(created.len(), 2);
        assert!(
            dir.generate_missing(["d1"], Algorithm::EdDSA)
                .expect("again")
                .is_empty()
        );

        let ring = dir.load().expect("load");
        let first = ring
            .domain("d1")
            .expect("d1")
            .access
            .signing_key()
            .expect("key")
            .kid()
            .to_owned();
        let old_token = ring
            .domain("d1")
            .expect("d1")
            .access
            .sign(&serde_json::json!({"a": 1}))
            .expect("sign");

        let second = dir
            .generate("d1", Purpose::Access, Algorithm::ES256)
            .expect("rotate");
        let ring = dir.load().expect("reload");
        let access = &ring.domain("d1").expect("d1").access;
        assert_eq!(access.signing_key().expect("key").kid(), second);
        assert_eq!(access.keys().len(), 2);
        assert!(
            access.verify::<serde_json::Value>(&old_token).is_ok(),
            "old key still verifies"
        );
        assert_eq!(ring.jwks()["keys"].as_array().map(Vec::len), Some(2));

        assert_eq!(
            dir.retire("d1", Purpose::Access, 1).expect("retire"),
            vec![first]
        );
        let ring = dir.load().expect("reload");
        assert!(
            ring.domain("d1")
                .expect("d1")
                .access
                .verify::<serde_json::Value>(&old_token)
                .is_err()
        );
    }

    #[test]
    fn import_writes_once_and_sorts_before_generated_keys() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path().join("keys"));
        let der = SigningKey::generate_pkcs8(Algorithm::RS256).expect("key");
        let kid = "access-0000000000-imported";
        let import = |dry_run| dir.import("d1", Purpose::Access, kid, &der, dry_run);
        assert_eq!(import(true).expect("dry"), ImportedKey::Created);
        assert_eq!(dir.newest_kid("d1", Purpose::Access).expect("kid"), None);
        assert_eq!(import(false).expect("import"), ImportedKey::Created);
        assert_eq!(import(false).expect("again"), ImportedKey::Unchanged);
        assert_eq!(
            dir.newest_kid("d1", Purpose::Access)
                .expect("kid")
                .as_deref(),
            Some(kid)
        );
        let newer = dir
            .generate("d1", Purpose::Access, Algorithm::EdDSA)
            .expect("generate");
        assert_eq!(
            dir.newest_kid("d1", Purpose::Access).expect("kid"),
            Some(newer)
        );
        assert!(matches!(
            dir.import("d1", Purpose::Access, "../x", &der, false),
            Err(KeyDirError::BadKid(_))
        ));
        assert!(matches!(
            dir.import("d1", Purpose::Access, "k", b"garbage", false),
            Err(KeyDirError::Key { .. })
        ));
    }

    #[test]
    fn refuses_path_traversal() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = KeyDir::new(tmp.path());
        assert!(matches!(
            dir.generate("../etc", Purpose::Access, Algorithm::EdDSA),
            Err(KeyDirError::BadDomainId(_))
        ));
    }
}
