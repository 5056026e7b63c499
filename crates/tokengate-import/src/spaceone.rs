//! `tokengate import spaceone`: SpaceONE identity 1.x's `domain`, `user`,
//! `domain_owner` and `domain_secret` collections, as `mongoexport` writes
//! them (`<collection>.json` in one folder), into a directory file and the
//! key folders.
//!
//! The output depends only on the export: domains, users and owners are
//! written sorted by id, and each imported key's kid is derived from its
//! modulus. A second run over the same export therefore finds everything
//! in place and changes nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokengate_directory::{
    Backend, Directory, DomainRecord, OwnerRecord, PasswordHash, UserRecord,
};
use tokengate_keys::{ImportedKey, KeyDir, KeyDirError, Purpose};

use crate::der;
use crate::extjson::{self, Record};

/// The first line of every directory file the import writes: a file
/// without it is someone's own, and is replaced only with `force`.
pub const HEADER: &str = "# Imported from SpaceONE by `tokengate import spaceone`.";

/// What to import from where.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The folder holding `domain.json`, `user.json`, `domain_owner.json`
    /// and `domain_secret.json`.
    pub from: PathBuf,
    /// The directory file to write.
    pub to: PathBuf,
    /// The keys folder to write.
    pub keys: PathBuf,
    /// Report what would be done; write nothing.
    pub dry_run: bool,
    /// Replace a directory file that an import did not write.
    pub force: bool,
}

/// Why an import stopped before writing anything (a record that cannot be
/// imported is skipped and reported instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An export file is not JSON lines nor a JSON array.
    #[error("{path}: {message}")]
    Export {
        /// The export file.
        path: PathBuf,
        /// What is wrong (never the file's text).
        message: String,
    },
    /// The target exists and was not written by an import.
    #[error(
        "{0} exists and was not written by `tokengate import`: refusing to replace it (pass --force)"
    )]
    NotImported(PathBuf),
    /// The key folder refused a key.
    #[error(transparent)]
    Keys(#[from] KeyDirError),
    /// The PostgreSQL directory refused a statement, or is not migrated
    /// (never a hash: they travel as parameters).
    #[error("{0}")]
    Database(String),
    /// The directory the import produced does not load (a bug).
    #[error("the imported directory does not load: {0}")]
    Invalid(String),
}

/// A record left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// The collection: `domain`, `user`, `domain_owner`, `domain_secret`.
    pub collection: &'static str,
    /// Which record: its ids, or its position in the export.
    pub record: String,
    /// Why.
    pub reason: String,
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Already as imported.
    Unchanged,
    /// Did not exist.
    Created,
    /// Existed with other contents.
    Replaced,
}

/// One key file of an imported domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// Its domain.
    pub domain_id: String,
    /// access or refresh.
    pub purpose: Purpose,
    /// The kid it was given.
    pub kid: String,
    /// What was (or would be) done.
    pub change: ImportedKey,
}

/// Counts imported and skipped, with reasons. Holds ids only.
#[derive(Debug, Clone)]
pub struct Report {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Domains imported.
    pub domains: usize,
    /// Users imported.
    pub users: usize,
    /// Owners imported.
    pub owners: usize,
    /// Domains whose keys were imported.
    pub domain_keys: usize,
    /// Records left out.
    pub skipped: Vec<Skip>,
    /// Things the operator should know (nothing was left out for them).
    pub warnings: Vec<String>,
    /// The directory file.
    pub directory: Change,
    /// The key files.
    pub key_files: Vec<KeyFile>,
    /// The rows, when the target is a PostgreSQL directory (the
    /// `directory` file is then not written).
    pub database: Option<crate::postgres::RowChanges>,
}

impl Report {
    /// Whether anything was (or, in a dry run, would be) written.
    pub fn changed(&self) -> bool {
        self.directory != Change::Unchanged
            || self.database.as_ref().is_some_and(|d| d.changed())
            || self
                .key_files
                .iter()
                .any(|k| k.change != ImportedKey::Unchanged)
    }

    fn skipped_in(&self, collection: &str) -> usize {
        self.skipped
            .iter()
            .filter(|s| s.collection == collection)
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            writeln!(f, "dry run: nothing written")?;
        }
        let rows = [
            ("domains", self.domains, "domain"),
            ("users", self.users, "user"),
            ("owners", self.owners, "domain_owner"),
            ("domain keys", self.domain_keys, "domain_secret"),
        ];
        for (label, count, collection) in rows {
            writeln!(
                f,
                "{label}: {count} imported, {} skipped",
                self.skipped_in(collection)
            )?;
        }
        let verb = |c: Change| match c {
            Change::Unchanged => "unchanged",
            Change::Created => "created",
            Change::Replaced => "replaced",
        };
        let would = if self.dry_run { "would be " } else { "" };
        match &self.database {
            Some(rows) => write!(f, "{rows}")?,
            None => writeln!(f, "directory file: {would}{}", verb(self.directory))?,
        }
        for k in &self.key_files {
            let change = match k.change {
                ImportedKey::Unchanged => "unchanged",
                ImportedKey::Created => "created",
                ImportedKey::Replaced => "replaced",
            };
            let would = if k.change == ImportedKey::Unchanged {
                ""
            } else {
                would
            };
            writeln!(
                f,
                "key {} {} {}: {would}{change}",
                k.domain_id,
                k.purpose.as_str(),
                k.kid
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped {} {}: {}", s.collection, s.record, s.reason)?;
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        if !self.changed() {
            writeln!(f, "nothing changed")?;
        }
        Ok(())
    }
}

pub(crate) struct User {
    pub(crate) user_id: String,
    /// None: an EXTERNAL user, or an API_USER without a password.
    pub(crate) hash: Option<String>,
    pub(crate) external: bool,
    pub(crate) state: &'static str,
    pub(crate) user_type: &'static str,
    pub(crate) required_actions: Vec<String>,
}

pub(crate) struct Owner {
    pub(crate) owner_id: String,
    pub(crate) hash: String,
    pub(crate) state: &'static str,
}

struct Secret {
    access: (String, Vec<u8>),
    refresh: (String, Vec<u8>),
}

/// One domain of the export as it is imported.
#[derive(Default)]
pub(crate) struct DomainOut {
    pub(crate) state: &'static str,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) owners: BTreeMap<String, Owner>,
    secret: Option<Secret>,
}

/// The domains an export holds, by id, as imported.
pub(crate) type Domains = BTreeMap<String, DomainOut>;

/// Reads the export in `from`: the domains to import, and a report of what
/// was left out (nothing written yet).
pub(crate) fn read(from: &Path, dry_run: bool) -> Result<(Domains, Report), ImportError> {
    let mut report = Report {
        dry_run,
        domains: 0,
        users: 0,
        owners: 0,
        domain_keys: 0,
        skipped: Vec::new(),
        warnings: Vec::new(),
        directory: Change::Unchanged,
        key_files: Vec::new(),
        database: None,
    };
    let domains = read_all(from, &mut report)?;
    Ok((domains, report))
}

/// The domains as directory records: what a PostgreSQL target validates
/// before writing them (a file target validates its own text).
pub(crate) fn records(domains: &Domains) -> Result<Vec<DomainRecord>, ImportError> {
    let invalid = |e: tokengate_directory::DirectoryError| ImportError::Invalid(e.to_string());
    domains
        .iter()
        .map(|(domain_id, domain)| {
            let mut users = Vec::new();
            for u in domain.users.values() {
                users.push(UserRecord {
                    user_id: u.user_id.clone(),
                    password_hash: u.hash.clone(),
                    backend: if u.external {
                        Backend::External
                    } else {
                        Backend::Local
                    },
                    state: u.state.parse().map_err(invalid)?,
                    user_type: u.user_type.parse().map_err(invalid)?,
                    required_actions: u.required_actions.clone(),
                });
            }
            let mut owners = Vec::new();
            for o in domain.owners.values() {
                owners.push(OwnerRecord {
                    owner_id: o.owner_id.clone(),
                    password_hash: o.hash.clone(),
                    state: o.state.parse().map_err(invalid)?,
                });
            }
            Ok(DomainRecord {
                domain_id: domain_id.clone(),
                state: domain.state.parse().map_err(invalid)?,
                user: users,
                owner: owners,
            })
        })
        .collect()
}

/// Reads the export, then (unless a dry run) writes the directory file and
/// the keys. Records that cannot be imported are skipped and reported.
pub fn import(options: &ImportOptions) -> Result<Report, ImportError> {
    let (domains, mut report) = read(&options.from, options.dry_run)?;
    let text = render(&domains);
    Directory::from_toml(&text).map_err(|e| ImportError::Invalid(e.to_string()))?;

    report.directory = match fs::read_to_string(&options.to) {
        Ok(existing) if existing == text => Change::Unchanged,
        Ok(existing) if existing.starts_with(HEADER) || options.force => Change::Replaced,
        Ok(_) => return Err(ImportError::NotImported(options.to.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Change::Created,
        Err(source) => {
            return Err(ImportError::Io {
                path: options.to.clone(),
                source,
            });
        }
    };

    import_keys(&options.keys, &domains, options.dry_run, &mut report)?;
    if !options.dry_run && report.directory != Change::Unchanged {
        write_private(&options.to, text.as_bytes())?;
    }
    Ok(report)
}

/// Counts the domains, users and owners imported, and writes (unless a dry
/// run) each domain's keys into `keys`, whatever the directory's target.
pub(crate) fn import_keys(
    keys: &Path,
    domains: &Domains,
    dry_run: bool,
    report: &mut Report,
) -> Result<(), ImportError> {
    let key_dir = KeyDir::new(keys);
    for (domain_id, domain) in domains {
        report.domains += 1;
        report.users += domain.users.len();
        report.owners += domain.owners.len();
        let Some(secret) = &domain.secret else {
            report.warnings.push(format!(
                "domain {domain_id} has no keys in the export: tokengate generates new ones \
                 (keys.generate_missing), and tokens SpaceONE issued for it stop verifying"
            ));
            continue;
        };
        report.domain_keys += 1;
        for (purpose, (kid, der)) in [
            (Purpose::Access, &secret.access),
            (Purpose::Refresh, &secret.refresh),
        ] {
            let change = key_dir.import(domain_id, purpose, kid, der, dry_run)?;
            if let Some(newest) = key_dir.newest_kid(domain_id, purpose)?
                && newest != *kid
            {
                report.warnings.push(format!(
                    "domain {domain_id} {}: key {newest} is newer than the imported {kid} and \
                     signs instead (SpaceONE's tokens still verify); retire it to sign with \
                     SpaceONE's key",
                    purpose.as_str()
                ));
            }
            report.key_files.push(KeyFile {
                domain_id: domain_id.clone(),
                purpose,
                kid: kid.clone(),
                change,
            });
        }
    }
    Ok(())
}

fn read_export(dir: &Path, collection: &str) -> Result<Option<Vec<Record>>, ImportError> {
    let path = dir.join(format!("{collection}.json"));
    match fs::read_to_string(&path) {
        Ok(text) => extjson::records(&text)
            .map(Some)
            .map_err(|message| ImportError::Export { path, message }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ImportError::Io { path, source }),
    }
}

/// The documents of a collection; a malformed one is skipped.
fn documents(
    from: &Path,
    collection: &'static str,
    report: &mut Report,
) -> Result<Vec<(String, Value)>, ImportError> {
    let Some(records) = read_export(from, collection)? else {
        report.warnings.push(format!(
            "no {collection}.json in {}: nothing imported from {collection}",
            from.display()
        ));
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for record in records {
        match record.document {
            Ok(document) => out.push((record.position, document)),
            Err(reason) => report.skipped.push(Skip {
                collection,
                record: record.position,
                reason: format!("malformed: {reason}"),
            }),
        }
    }
    Ok(out)
}

fn read_all(from: &Path, report: &mut Report) -> Result<Domains, ImportError> {
    let mut domains: BTreeMap<String, DomainOut> = BTreeMap::new();
    let mut left_out: BTreeMap<String, String> = BTreeMap::new();

    for (position, doc) in documents(from, "domain", report)? {
        let mut skip = |record: String, reason: String| {
            report.skipped.push(Skip {
                collection: "domain",
                record,
                reason,
            })
        };
        let Some(domain_id) = extjson::string(&doc, "domain_id") else {
            skip(position, "malformed: no domain_id".into());
            continue;
        };
        let state = match extjson::string(&doc, "state").unwrap_or("ENABLED") {
            "ENABLED" => "ENABLED",
            "DISABLED" => "DISABLED",
            "DELETED" => {
                left_out.insert(domain_id.to_owned(), "is DELETED".into());
                skip(domain_id.to_owned(), "state DELETED".into());
                continue;
            }
            other => {
                left_out.insert(domain_id.to_owned(), "was skipped".into());
                skip(domain_id.to_owned(), format!("unknown state {other:?}"));
                continue;
            }
        };
        if !KeyDir::is_valid_domain_id(domain_id) {
            left_out.insert(domain_id.to_owned(), "was skipped".into());
            skip(
                domain_id.to_owned(),
                "domain_id cannot name a key folder (letters, digits, '-', '_', '.')".into(),
            );
            continue;
        }
        if domains.contains_key(domain_id) {
            skip(domain_id.to_owned(), "appears twice (first kept)".into());
            continue;
        }
        if doc.get("plugin_info").is_some_and(|p| match p {
            Value::Null => false,
            Value::Object(m) => !m.is_empty(),
            _ => true,
        }) {
            report.warnings.push(format!(
                "domain {domain_id} has an auth plugin (plugin_info): tokengate does not call \
                 it; its EXTERNAL users cannot log in"
            ));
        }
        domains.insert(
            domain_id.to_owned(),
            DomainOut {
                state,
                ..DomainOut::default()
            },
        );
    }

    // The domain a user/owner/secret belongs to, or why it is not imported.
    let target = |doc: &Value| -> Result<String, String> {
        let Some(domain_id) = extjson::string(doc, "domain_id") else {
            return Err("malformed: no domain_id".into());
        };
        if domains.contains_key(domain_id) {
            return Ok(domain_id.to_owned());
        }
        Err(match left_out.get(domain_id) {
            Some(why) => format!("its domain {domain_id} {why}"),
            None => format!("its domain {domain_id} is not in domain.json"),
        })
    };

    let mut users = Vec::new();
    for (position, doc) in documents(from, "user", report)? {
        let id = extjson::string(&doc, "user_id").map(str::to_owned);
        let label = |domain: &str| match &id {
            Some(id) => format!("{domain}/{id}"),
            None => position.clone(),
        };
        let outcome = target(&doc).and_then(|domain_id| {
            let user = user(&doc)?;
            Ok((domain_id, user))
        });
        match outcome {
            Ok(found) => users.push(found),
            Err(reason) => report.skipped.push(Skip {
                collection: "user",
                record: label(extjson::string(&doc, "domain_id").unwrap_or("?")),
                reason,
            }),
        }
    }
    let mut owners = Vec::new();
    for (position, doc) in documents(from, "domain_owner", report)? {
        let record = match extjson::string(&doc, "owner_id") {
            Some(id) => format!("{}/{id}", extjson::string(&doc, "domain_id").unwrap_or("?")),
            None => position,
        };
        match target(&doc).and_then(|domain_id| Ok((domain_id, owner(&doc)?))) {
            Ok(found) => owners.push(found),
            Err(reason) => report.skipped.push(Skip {
                collection: "domain_owner",
                record,
                reason,
            }),
        }
    }
    let mut secrets = Vec::new();
    for (position, doc) in documents(from, "domain_secret", report)? {
        let record = extjson::string(&doc, "domain_id")
            .map(str::to_owned)
            .unwrap_or(position);
        match target(&doc).and_then(|domain_id| Ok((domain_id, secret(&doc)?))) {
            Ok(found) => secrets.push(found),
            Err(reason) => report.skipped.push(Skip {
                collection: "domain_secret",
                record,
                reason,
            }),
        }
    }
    for (domain_id, user) in users {
        let domain = domains.entry(domain_id.clone()).or_default();
        if domain.users.contains_key(&user.user_id) {
            report.skipped.push(Skip {
                collection: "user",
                record: format!("{domain_id}/{}", user.user_id),
                reason: "appears twice in its domain (first kept)".into(),
            });
        } else {
            domain.users.insert(user.user_id.clone(), user);
        }
    }

    for (domain_id, owner) in owners {
        let domain = domains.entry(domain_id.clone()).or_default();
        if domain.owners.contains_key(&owner.owner_id) {
            report.skipped.push(Skip {
                collection: "domain_owner",
                record: format!("{domain_id}/{}", owner.owner_id),
                reason: "appears twice in its domain (first kept)".into(),
            });
        } else {
            domain.owners.insert(owner.owner_id.clone(), owner);
        }
    }

    for (domain_id, secret) in secrets {
        let domain = domains.entry(domain_id.clone()).or_default();
        if domain.secret.is_some() {
            report.skipped.push(Skip {
                collection: "domain_secret",
                record: domain_id,
                reason: "a second secret for the domain (first kept)".into(),
            });
        } else {
            domain.secret = Some(secret);
        }
    }
    Ok(domains)
}

/// The password hash of a user or owner document, checked to be one the
/// directory accepts. Errors never quote it.
fn password_hash(doc: &Value) -> Result<Option<String>, String> {
    let Some(value) = doc.get("password").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bytes = match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => extjson::binary(other).ok_or("malformed: password is not BinData")?,
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8(bytes).map_err(|_| "malformed: password is not text")?;
    PasswordHash::parse(&text).map_err(|e| format!("password hash refused: {e}"))?;
    Ok(Some(text))
}

fn principal_state(doc: &Value) -> Result<&'static str, String> {
    match extjson::string(doc, "state").unwrap_or("ENABLED") {
        "ENABLED" => Ok("ENABLED"),
        "DISABLED" => Ok("DISABLED"),
        "PENDING" => Ok("PENDING"),
        other => Err(format!("unknown state {other:?}")),
    }
}

fn user(doc: &Value) -> Result<User, String> {
    let user_id = extjson::string(doc, "user_id").ok_or("malformed: no user_id")?;
    let user_type = match extjson::string(doc, "user_type").unwrap_or("USER") {
        "USER" => "USER",
        "API_USER" => "API_USER",
        other => return Err(format!("unknown user_type {other:?}")),
    };
    let state = principal_state(doc)?;
    // An EXTERNAL user's password is its domain's auth plugin's: it is kept
    // without one (a password login answers ERROR_AUTHENTICATION_FAILURE,
    // as SpaceONE does without a plugin; its sessions still refresh). An
    // API_USER never logs in with a password, so it may have none.
    let external = match extjson::string(doc, "backend").unwrap_or("LOCAL") {
        "LOCAL" => false,
        "EXTERNAL" => true,
        other => return Err(format!("unknown backend {other:?}")),
    };
    let hash = if external { None } else { password_hash(doc)? };
    if hash.is_none() && !external && user_type != "API_USER" {
        return Err("no password".into());
    }
    let required_actions = match doc.get("required_actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("malformed: required_actions holds a non-string")?,
        Some(_) => return Err("malformed: required_actions is not a list".into()),
    };
    Ok(User {
        user_id: user_id.to_owned(),
        hash,
        external,
        state,
        user_type,
        required_actions,
    })
}

fn owner(doc: &Value) -> Result<Owner, String> {
    let owner_id = extjson::string(doc, "owner_id").ok_or("malformed: no owner_id")?;
    let state = principal_state(doc)?;
    let hash = password_hash(doc)?.ok_or("no password")?;
    Ok(Owner {
        owner_id: owner_id.to_owned(),
        hash,
        state,
    })
}

/// A JWK member of a secret: an object, or a JSON string of one.
fn jwk(doc: &Value, field: &str) -> Result<Value, String> {
    match doc.get(field) {
        Some(Value::Object(_)) => Ok(doc[field].clone()),
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("malformed: {field} is not a JWK")),
        _ => Err(format!("malformed: no {field}")),
    }
}

fn key_pair(
    doc: &Value,
    private: &str,
    public: &str,
    purpose: Purpose,
) -> Result<(String, Vec<u8>), String> {
    let prv = jwk(doc, private)?;
    let pkcs8 = der::rsa_pkcs8(&prv).map_err(|e| format!("{private}: {e}"))?;
    let (n, e) = der::rsa_public(&prv).map_err(|e| format!("{private}: {e}"))?;
    let public_parts = der::rsa_public(&jwk(doc, public)?).map_err(|e| format!("{public}: {e}"))?;
    if public_parts != (n.clone(), e) {
        return Err(format!("{public} is not the public half of {private}"));
    }
    tokengate_keys::SigningKey::from_pkcs8("check", &pkcs8)
        .map_err(|e| format!("{private} refused: {e}"))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
    // Second field 0: the imported key sorts before every key tokengate
    // generates (their second field is the creation time).
    let kid = format!(
        "{}{}{}",
        purpose.as_str(),
        tokengate_keys::SPACEONE_KID_MARKER,
        &hex::encode(digest.as_ref())[..16]
    );
    Ok((kid, pkcs8))
}

fn secret(doc: &Value) -> Result<Secret, String> {
    Ok(Secret {
        access: key_pair(doc, "prv_jwk", "pub_jwk", Purpose::Access)?,
        refresh: key_pair(doc, "refresh_prv_jwk", "refresh_pub_jwk", Purpose::Refresh)?,
    })
}

/// A TOML basic string (JSON's escapes are TOML's).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn render(domains: &Domains) -> String {
    let mut out = format!(
        "{HEADER}\n# Re-running the import over the same export rewrites this file \
         identically;\n# edits made here are lost on the next import.\n"
    );
    for (domain_id, domain) in domains {
        out.push_str(&format!(
            "\n[[domain]]\ndomain_id = {}\nstate = \"{}\"\n",
            quoted(domain_id),
            domain.state
        ));
        for user in domain.users.values() {
            let actions: Vec<String> = user.required_actions.iter().map(|a| quoted(a)).collect();
            out.push_str(&format!(
                "\n[[domain.user]]\nuser_id = {}\n",
                quoted(&user.user_id)
            ));
            if let Some(hash) = &user.hash {
                out.push_str(&format!("password_hash = {}\n", quoted(hash)));
            }
            if user.external {
                out.push_str("backend = \"EXTERNAL\"\n");
            }
            out.push_str(&format!(
                "state = \"{}\"\nuser_type = \"{}\"\nrequired_actions = [{}]\n",
                user.state,
                user.user_type,
                actions.join(", ")
            ));
        }
        for owner in domain.owners.values() {
            out.push_str(&format!(
                "\n[[domain.owner]]\nowner_id = {}\npassword_hash = {}\nstate = \"{}\"\n",
                quoted(&owner.owner_id),
                quoted(&owner.hash),
                owner.state
            ));
        }
    }
    out
}

/// Writes a file atomically with owner-only permissions (it holds hashes).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".import-tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(contents).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(dir: &Path, hash: &str) {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash);
        let pw = format!(r#"{{"$binary": {{"base64": "{b64}", "subType": "00"}}}}"#);
        fs::write(
            dir.join("domain.json"),
            "{\"domain_id\": \"d1\", \"state\": \"ENABLED\"}\n{\"domain_id\": \"d2\", \"state\": \"DELETED\"}\n",
        )
        .expect("write");
        fs::write(
            dir.join("user.json"),
            format!(
                "[{{\"user_id\": \"u1\", \"domain_id\": \"d1\", \"password\": {pw}, \"required_actions\": [\"UPDATE_PASSWORD\"]}},\n\
                 {{\"user_id\": \"u2\", \"domain_id\": \"d1\", \"backend\": \"EXTERNAL\"}},\n\
                 {{\"user_id\": \"u3\", \"domain_id\": \"d1\", \"password\": \"$2b$12$notahashnotahash\"}},\n\
                 {{\"user_id\": \"u1\", \"domain_id\": \"d1\", \"password\": {pw}}}]"
            ),
        )
        .expect("write");
        fs::write(
            dir.join("domain_owner.json"),
            format!("{{\"owner_id\": \"root\", \"domain_id\": \"d1\", \"password\": {pw}}}\n"),
        )
        .expect("write");
    }

    #[test]
    fn imports_skips_with_reasons_and_is_idempotent() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hash = tokengate_directory::hash_bcrypt("pw", 4).expect("hash");
        export(tmp.path(), &hash);
        let options = ImportOptions {
            from: tmp.path().to_path_buf(),
            to: tmp.path().join("out/users.toml"),
            keys: tmp.path().join("out/keys"),
            dry_run: false,
            force: false,
        };
        let report = import(&options).expect("import");
        let text = report.to_string();
        assert_eq!(
            (report.domains, report.users, report.owners),
            (1, 2, 1),
            "{text}"
        );
        assert_eq!(report.directory, Change::Created);
        assert!(text.contains("skipped domain d2: state DELETED"), "{text}");
        assert!(!text.contains("d1/u2"), "the EXTERNAL user is kept: {text}");
        assert!(
            text.contains("skipped user d1/u3: password hash refused"),
            "{text}"
        );
        assert!(text.contains("skipped user d1/u1: appears twice"), "{text}");
        assert!(
            text.contains("domain d1 has no keys in the export"),
            "{text}"
        );
        assert!(!text.contains("$2b$"), "no hash in the report: {text}");

        let directory = Directory::load(&options.to).expect("loads");
        let u1 = directory
            .domain("d1")
            .and_then(|d| d.principal(tokengate_directory::PrincipalKind::User, "u1"))
            .expect("u1");
        assert_eq!(u1.required_actions, vec!["UPDATE_PASSWORD"]);
        assert!(u1.password_hash.verify("pw"));
        let u2 = directory
            .domain("d1")
            .and_then(|d| d.principal(tokengate_directory::PrincipalKind::User, "u2"))
            .expect("the EXTERNAL user u2");
        assert_eq!(
            u2.password_hash.profile(),
            &tokengate_directory::HashProfile::External
        );

        let again = import(&options).expect("again");
        assert!(!again.changed());
        assert!(again.to_string().contains("nothing changed"));
    }

    #[test]
    fn dry_run_writes_nothing_and_foreign_files_are_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let hash = tokengate_directory::hash_bcrypt("pw", 4).expect("hash");
        export(tmp.path(), &hash);
        let mut options = ImportOptions {
            from: tmp.path().to_path_buf(),
            to: tmp.path().join("users.toml"),
            keys: tmp.path().join("keys"),
            dry_run: true,
            force: false,
        };
        let report = import(&options).expect("dry run");
        assert!(report.changed());
        assert!(
            report
                .to_string()
                .contains("directory file: would be created")
        );
        assert!(!options.to.exists());

        fs::write(&options.to, "[[domain]]\ndomain_id = \"mine\"\n").expect("write");
        options.dry_run = false;
        assert!(matches!(import(&options), Err(ImportError::NotImported(_))));
        options.force = true;
        assert_eq!(
            import(&options).expect("forced").directory,
            Change::Replaced
        );
    }
}
