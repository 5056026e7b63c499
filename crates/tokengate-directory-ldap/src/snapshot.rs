//! The principals as the last reads of the LDAP server found them: what a
//! refresh needs to judge one (its DN, whether it is disabled, its password
//! fingerprint, its group), kept in memory so a refresh reads memory and
//! only a login goes to the server.
//!
//! Three writers feed it: the whole read (every `full_sync_interval`, and
//! after any failed read), the read of the entries changed since the last
//! one (every `sync_interval`), and each login, whose search saw the entry
//! as it is now. An entry's version is its `modifyTimestamp`; a write never
//! replaces a newer version of the same entry with an older one, so a slow
//! whole read cannot undo what a login saw during it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokengate_directory::{PasswordHash, Principal, PrincipalKind, PrincipalState, UserType};

/// What one entry says about its principal.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    /// The entry's DN, normalized ([`normalize_dn`]).
    pub dn: String,
    /// The disabled attribute marks it disabled.
    pub disabled: bool,
    /// A digest of the DN and the password-change attribute: a change ends
    /// the principal's families at their next refresh.
    pub fingerprint: PasswordHash,
    /// Its `modifyTimestamp` (generalized time, compared as text: one
    /// server writes one format).
    pub version: String,
}

impl Facts {
    /// The principal these facts describe, as a refresh or login sees it.
    pub fn principal(&self, kind: PrincipalKind, id: &str, api_user: bool) -> Principal {
        Principal {
            id: id.to_owned(),
            kind,
            state: if self.disabled {
                PrincipalState::Disabled
            } else {
                PrincipalState::Enabled
            },
            user_type: if api_user && kind == PrincipalKind::User {
                UserType::ApiUser
            } else {
                UserType::User
            },
            required_actions: Vec::new(),
            password_hash: self.fingerprint.clone(),
        }
    }
}

/// What one id maps to.
#[derive(Debug, Clone)]
enum Slot {
    /// One entry, and when this snapshot learnt it.
    One(Arc<Facts>, Instant),
    /// More than one entry answers to this id: like a search that finds
    /// two, nobody logs in or refreshes as it.
    Ambiguous,
}

/// A principal's place in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// Its domain.
    pub domain_id: String,
    /// User or owner.
    pub kind: PrincipalKind,
    /// Its id, lower-cased: the id attributes LDAP schemas use (`uid`,
    /// `mail`, `cn`, `sAMAccountName`) match without regard to case, as
    /// the login's search did.
    pub id: String,
}

impl Key {
    /// The key of `id` in `domain_id`.
    pub fn new(domain_id: &str, kind: PrincipalKind, id: &str) -> Self {
        Self {
            domain_id: domain_id.to_owned(),
            kind,
            id: id.to_lowercase(),
        }
    }
}

/// Who saw an entry that is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A read of the entries changed since the last read.
    Changes,
    /// A search by id that found exactly this entry (a login's, or a
    /// refresh's for a principal the snapshot did not hold).
    Search,
}

/// What the snapshot says about an id.
#[derive(Debug)]
pub(crate) enum Answer {
    /// This entry.
    Found(Arc<Facts>),
    /// More than one entry: treated as no principal.
    Ambiguous,
    /// Not in the snapshot (created since the last read, or gone): the
    /// caller asks the server.
    Unknown,
}

/// One whole read of the server: every principal the filters find, and
/// the API-user group's members.
#[derive(Debug, Default)]
pub(crate) struct WholeRead {
    principals: HashMap<Key, Slot>,
    api_users: Option<HashSet<String>>,
    group_version: Option<String>,
    high_water: Option<String>,
}

impl WholeRead {
    /// Adds an entry found under `keys` (one per value of the id
    /// attributes); an id two entries share becomes ambiguous.
    pub fn add(&mut self, keys: Vec<Key>, facts: Facts, now: Instant) {
        raise(&mut self.high_water, &facts.version);
        let facts = Arc::new(facts);
        for key in keys {
            match self.principals.get(&key) {
                Some(Slot::One(other, _)) if other.dn != facts.dn => {
                    self.principals.insert(key, Slot::Ambiguous);
                }
                Some(Slot::Ambiguous) => {}
                _ => {
                    self.principals
                        .insert(key, Slot::One(Arc::clone(&facts), now));
                }
            }
        }
    }

    /// The API-user group as read (its members' normalized DNs; `None`:
    /// its members could not be read whole).
    pub fn set_group(&mut self, members: Option<HashSet<String>>, version: Option<String>) {
        self.api_users = members;
        self.group_version = version;
    }
}

/// The snapshot.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    principals: HashMap<Key, Slot>,
    /// The API-user group's members (normalized DNs); `None`: unknown
    /// (not read yet, or too large to read whole), ask the server.
    api_users: Option<HashSet<String>>,
    /// The group entry's `modifyTimestamp` when its members were read.
    group_version: Option<String>,
    /// The newest `modifyTimestamp` read: the next read of changes asks
    /// for entries at least this new.
    high_water: Option<String>,
    /// When the last successful read started: the snapshot holds every
    /// change made before then.
    synced_at: Option<Instant>,
}

impl Snapshot {
    /// What the snapshot knows of `key`.
    pub fn get(&self, key: &Key) -> Answer {
        match self.principals.get(key) {
            Some(Slot::One(facts, _)) => Answer::Found(Arc::clone(facts)),
            Some(Slot::Ambiguous) => Answer::Ambiguous,
            None => Answer::Unknown,
        }
    }

    /// Whether the entry with this normalized DN is in the API-user
    /// group; `None`: the snapshot does not know the group.
    pub fn is_api_user(&self, dn: &str) -> Option<bool> {
        self.api_users.as_ref().map(|members| members.contains(dn))
    }

    /// When the last successful read started (`None`: never).
    pub fn synced_at(&self) -> Option<Instant> {
        self.synced_at
    }

    /// The newest version read so far.
    pub fn high_water(&self) -> Option<&str> {
        self.high_water.as_deref()
    }

    /// The group's version when its members were read.
    pub fn group_version(&self) -> Option<&str> {
        self.group_version.as_deref()
    }

    /// Installs a whole read that started at `started`. Ids the read did
    /// not find are dropped (deleted, or out of the filters' scope) unless
    /// a login or a read of changes learnt them after the read started;
    /// an entry keeps a newer version than the read's.
    pub fn install(&mut self, read: WholeRead, started: Instant) {
        let mut principals = read.principals;
        for (key, slot) in self.principals.drain() {
            let Slot::One(kept, learnt) = slot else {
                continue;
            };
            match principals.get(&key) {
                Some(Slot::One(read, _)) if read.version < kept.version => {
                    principals.insert(key, Slot::One(kept, learnt));
                }
                None if learnt >= started => {
                    principals.insert(key, Slot::One(kept, learnt));
                }
                _ => {}
            }
        }
        self.principals = principals;
        self.api_users = read.api_users;
        self.group_version = read.group_version;
        self.high_water = newer(self.high_water.take(), read.high_water);
        self.synced_at = Some(started);
    }

    /// Records an entry as `source` saw it, unless the snapshot holds a
    /// newer version of it. A read of changes sees only changed entries,
    /// so when it finds an id held by another entry it cannot tell a
    /// rename from a second entry with that id: the id becomes ambiguous
    /// (no principal — a rename ends the families anyway, since the DN is
    /// part of the fingerprint) until a search by id or a whole read
    /// settles it. A search by id found exactly one entry: it settles it.
    pub fn upsert(&mut self, keys: Vec<Key>, facts: Facts, now: Instant, source: Source) {
        raise(&mut self.high_water, &facts.version);
        let facts = Arc::new(facts);
        for key in keys {
            let slot = match (self.principals.get(&key), source) {
                (Some(Slot::One(kept, _)), _)
                    if kept.dn == facts.dn && kept.version > facts.version =>
                {
                    continue;
                }
                (Some(Slot::One(kept, _)), Source::Changes) if kept.dn != facts.dn => {
                    Slot::Ambiguous
                }
                (Some(Slot::Ambiguous), Source::Changes) => continue,
                _ => Slot::One(Arc::clone(&facts), now),
            };
            self.principals.insert(key, slot);
        }
    }

    /// Replaces the API-user group's members (read because the group
    /// changed; `None`: unknown).
    pub fn set_group(&mut self, members: Option<HashSet<String>>, version: Option<String>) {
        self.api_users = members;
        self.group_version = version;
    }

    /// Marks a read of changes that started at `started` as done.
    pub fn synced(&mut self, started: Instant) {
        self.synced_at = Some(started);
    }

    /// How many ids it holds.
    pub fn len(&self) -> usize {
        self.principals.len()
    }
}

fn raise(high_water: &mut Option<String>, version: &str) {
    if !version.is_empty() && high_water.as_deref().is_none_or(|h| h < version) {
        *high_water = Some(version.to_owned());
    }
}

fn newer(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a >= b { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A DN in the form the snapshot compares: lower-cased, without the spaces
/// LDAP allows around `,` `=` and `+` (a group's `member` values and the
/// entries' DNs may be written either way).
pub(crate) fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, ',' | '=' | '+') {
            while out.ends_with(' ') {
                out.pop();
            }
            out.push(c);
            while chars.peek() == Some(&' ') {
                chars.next();
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(dn: &str, version: &str) -> Facts {
        Facts {
            dn: normalize_dn(dn),
            disabled: false,
            fingerprint: PasswordHash::external(&format!("{dn}\n{version}")),
            version: version.to_owned(),
        }
    }

    fn key(id: &str) -> Key {
        Key::new("d", PrincipalKind::User, id)
    }

    fn version_of(snapshot: &Snapshot, id: &str) -> Option<String> {
        match snapshot.get(&key(id)) {
            Answer::Found(f) => Some(f.version.clone()),
            _ => None,
        }
    }

    #[test]
    fn ids_match_without_regard_to_case() {
        let mut snapshot = Snapshot::default();
        snapshot.upsert(
            vec![key("Alice@Example.com")],
            facts("uid=alice", "1"),
            Instant::now(),
            Source::Search,
        );
        assert!(matches!(
            snapshot.get(&key("alice@example.COM")),
            Answer::Found(_)
        ));
        assert!(matches!(snapshot.get(&key("bob")), Answer::Unknown));
    }

    #[test]
    fn an_id_two_entries_share_is_ambiguous() {
        let mut read = WholeRead::default();
        let now = Instant::now();
        read.add(vec![key("a")], facts("uid=a,ou=one", "1"), now);
        read.add(vec![key("a")], facts("uid=a,ou=two", "1"), now);
        read.add(vec![key("a")], facts("uid=a,ou=three", "1"), now);
        let mut snapshot = Snapshot::default();
        snapshot.install(read, now);
        assert!(matches!(snapshot.get(&key("a")), Answer::Ambiguous));
    }

    #[test]
    fn a_whole_read_drops_what_it_did_not_find_but_keeps_newer_logins() {
        let before = Instant::now();
        let mut snapshot = Snapshot::default();
        snapshot.upsert(
            vec![key("gone")],
            facts("uid=gone", "1"),
            before,
            Source::Search,
        );
        snapshot.upsert(
            vec![key("kept")],
            facts("uid=kept", "5"),
            before,
            Source::Search,
        );
        let started = Instant::now();
        // A login during the read saw a newer version, and a user the read
        // started too early to find.
        snapshot.upsert(
            vec![key("new")],
            facts("uid=new", "7"),
            Instant::now(),
            Source::Search,
        );
        let mut read = WholeRead::default();
        read.add(vec![key("kept")], facts("uid=kept", "4"), started);
        snapshot.install(read, started);
        assert_eq!(version_of(&snapshot, "gone"), None);
        assert_eq!(version_of(&snapshot, "kept").as_deref(), Some("5"));
        assert_eq!(version_of(&snapshot, "new").as_deref(), Some("7"));
        assert_eq!(snapshot.high_water(), Some("7"));
        assert_eq!(snapshot.synced_at(), Some(started));
    }

    #[test]
    fn an_older_version_never_replaces_a_newer_one() {
        let mut snapshot = Snapshot::default();
        let now = Instant::now();
        for source in [Source::Search, Source::Changes] {
            snapshot.upsert(
                vec![key("a")],
                facts("uid=a", "20261204120001Z"),
                now,
                source,
            );
            snapshot.upsert(
                vec![key("a")],
                facts("uid=a", "20261204120000Z"),
                now,
                source,
            );
            assert_eq!(
                version_of(&snapshot, "a").as_deref(),
                Some("20261204120001Z")
            );
        }
    }

    #[test]
    fn another_entry_seen_by_a_read_of_changes_makes_the_id_ambiguous() {
        let mut snapshot = Snapshot::default();
        let now = Instant::now();
        snapshot.upsert(
            vec![key("a")],
            facts("uid=a,ou=one", "1"),
            now,
            Source::Search,
        );
        snapshot.upsert(
            vec![key("a")],
            facts("uid=a,ou=two", "2"),
            now,
            Source::Changes,
        );
        assert!(matches!(snapshot.get(&key("a")), Answer::Ambiguous));
        // Further changes leave it so; a search that found one settles it.
        snapshot.upsert(
            vec![key("a")],
            facts("uid=a,ou=two", "3"),
            now,
            Source::Changes,
        );
        assert!(matches!(snapshot.get(&key("a")), Answer::Ambiguous));
        snapshot.upsert(
            vec![key("a")],
            facts("uid=a,ou=two", "3"),
            now,
            Source::Search,
        );
        assert_eq!(version_of(&snapshot, "a").as_deref(), Some("3"));
    }

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normalize_dn(" UID=Robot , ou=People,  DC=Example+cn = x "),
            "uid=robot,ou=people,dc=example+cn=x"
        );
    }

    #[test]
    fn facts_make_the_principal() {
        let f = Facts {
            disabled: true,
            ..facts("uid=a", "1")
        };
        let p = f.principal(PrincipalKind::User, "A", true);
        assert_eq!(p.state, PrincipalState::Disabled);
        assert_eq!(p.user_type, UserType::ApiUser);
        let owner = f.principal(PrincipalKind::DomainOwner, "A", true);
        assert_eq!(owner.user_type, UserType::User);
    }
}
