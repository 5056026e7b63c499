//! The LDAP directory: health, the service connection, user binds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokengate_directory::{
    Directory, DirectoryUnavailable, DomainRecord, PasswordHash, Principal, PrincipalKind,
    RemoteAnswer, RemotePrincipals,
};
use tokio_rustls::rustls;

use crate::bind_pool::BindPool;
use crate::filter::{MODIFY_TIMESTAMP, PrincipalFilter};
use crate::health::{Health, LdapFreshness};
use crate::snapshot::{Answer, Facts, Key, Snapshot, Source, normalize_dn};
use crate::{LdapDomain, LdapSettings};

/// LDAP's resultCode for a wrong password or an unknown DN.
const INVALID_CREDENTIALS: u32 = 49;

/// Why a search failed.
enum SearchFailure {
    /// The connection failed (closed, timed out): worth a new one.
    Connection(DirectoryUnavailable),
    /// The server answered with an error.
    Answer(DirectoryUnavailable),
}

impl SearchFailure {
    fn into_unavailable(self) -> DirectoryUnavailable {
        match self {
            SearchFailure::Connection(e) | SearchFailure::Answer(e) => e,
        }
    }
}

/// Errors setting the directory up.
#[derive(Debug, thiserror::Error)]
pub enum LdapDirectoryError {
    /// The settings cannot work (no domains, unreadable CA file, …).
    #[error("ldap directory settings: {0}")]
    Settings(String),
    /// The server refused or did not answer.
    #[error("ldap directory: {0}")]
    Server(String),
}

/// The LDAP directory (see the crate docs).
#[derive(Debug)]
pub struct LdapDirectory {
    pub(crate) settings: LdapSettings,
    domains: HashMap<String, LdapDomain>,
    pub(crate) users: PrincipalFilter,
    pub(crate) owners: Option<PrincipalFilter>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The shared, service-bound connection (reopened after an error).
    service: tokio::sync::Mutex<Option<Ldap>>,
    /// Connections kept for user binds.
    binds: BindPool,
    pub(crate) health: Arc<Health>,
    /// The principals as last read (see [`crate::snapshot`]).
    pub(crate) snapshot: RwLock<Snapshot>,
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> DirectoryUnavailable {
    metrics::counter!("tokengate_directory_errors_total").increment(1);
    DirectoryUnavailable(format!("ldap: {e}"))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl LdapDirectory {
    /// A directory for these settings (nothing is connected yet).
    pub fn new(settings: LdapSettings) -> Result<Self, LdapDirectoryError> {
        if settings.domains.is_empty() {
            return Err(LdapDirectoryError::Settings(
                "no [[ldap.domain]]: name each domain and its base_dn".into(),
            ));
        }
        if !settings.user_filter.contains("{user}") {
            return Err(LdapDirectoryError::Settings(
                "ldap.user_filter must contain {user}".into(),
            ));
        }
        let tls = if settings.url.starts_with("ldaps://") || settings.starttls {
            Some(Arc::new(tls_config(&settings)?))
        } else {
            None
        };
        if !settings.sync_interval.is_zero() && settings.full_sync_interval < settings.sync_interval
        {
            return Err(LdapDirectoryError::Settings(
                "the full sync interval must be at least the sync interval".into(),
            ));
        }
        let domains = settings
            .domains
            .iter()
            .map(|d| (d.domain_id.clone(), d.clone()))
            .collect();
        let users = PrincipalFilter::new(&settings.user_filter);
        let owners = settings.owner_filter.as_deref().map(PrincipalFilter::new);
        if !settings.sync_interval.is_zero() {
            for (name, filter) in [
                ("user_filter", Some(&users)),
                ("owner_filter", owners.as_ref()),
            ] {
                if filter.is_some_and(|f| f.every().is_none()) {
                    tracing::warn!(
                        filter = name,
                        "ldap.{name} compares {{user}} other than as a whole value, as in (uid={{user}}): \
                         its principals cannot be read ahead, so each of their refreshes searches"
                    );
                }
            }
        }
        Ok(Self {
            binds: BindPool::new(settings.bind_pool_size),
            settings,
            domains,
            users,
            owners,
            tls,
            service: tokio::sync::Mutex::new(None),
            health: Arc::new(Health::new()),
            snapshot: RwLock::new(Snapshot::default()),
        })
    }

    /// The domains as a snapshot (no principals: they are asked for).
    pub fn domains_snapshot(&self) -> Result<Directory, LdapDirectoryError> {
        let records = self
            .settings
            .domains
            .iter()
            .map(|d| DomainRecord {
                domain_id: d.domain_id.clone(),
                state: d.state,
                user: Vec::new(),
                owner: Vec::new(),
            })
            .collect();
        Directory::from_records(records, None)
            .map_err(|e| LdapDirectoryError::Settings(e.to_string()))
    }

    /// What the core asks before a login or a refresh.
    pub fn freshness(&self) -> LdapFreshness {
        LdapFreshness(Arc::clone(&self.health))
    }

    /// Checks the server once (a service bind and a base search of the
    /// first domain); what the health loop and `check-config` run.
    pub async fn check(&self) -> Result<(), LdapDirectoryError> {
        let result = self.probe().await;
        self.health.set(&result);
        result.map_err(LdapDirectoryError::Server)
    }

    /// Runs the health check every `health_interval` and keeps the
    /// snapshot current (see [`crate::sync`]), forever.
    pub fn spawn_background(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let _ = this.check().await;
                tokio::time::sleep(this.settings.health_interval).await;
            }
        });
        if self.snapshot_enabled() {
            tokio::spawn(Arc::clone(self).keep_snapshot());
        }
    }

    async fn probe(&self) -> Result<(), String> {
        let base = self
            .settings
            .domains
            .first()
            .map(|d| d.base_dn.clone())
            .unwrap_or_default();
        let mut ldap = self.service_connection().await.map_err(|e| e.0)?;
        let result = ldap
            .with_timeout(self.settings.timeout)
            .search(&base, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .and_then(|r| r.success());
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                self.drop_service().await;
                Err(e.to_string())
            }
        }
    }

    async fn connect(&self) -> Result<Ldap, DirectoryUnavailable> {
        let mut conn_settings = LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_starttls(self.settings.starttls);
        if let Some(tls) = &self.tls {
            conn_settings = conn_settings.set_config(Arc::clone(tls));
        }
        let (conn, ldap) = tokio::time::timeout(
            self.settings.timeout,
            LdapConnAsync::with_settings(conn_settings, &self.settings.url),
        )
        .await
        .map_err(|_| unavailable("connect timed out"))?
        .map_err(unavailable)?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// The shared service-bound connection, opened and bound if needed.
    pub(crate) async fn service_connection(&self) -> Result<Ldap, DirectoryUnavailable> {
        let mut slot = self.service.lock().await;
        if let Some(ldap) = slot.as_ref() {
            return Ok(ldap.clone());
        }
        let mut ldap = self.connect().await?;
        let password = self.settings.bind_password.as_deref().unwrap_or("");
        ldap.with_timeout(self.settings.timeout)
            .simple_bind(&self.settings.bind_dn, password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable(format!("service bind failed: {e}")))?;
        *slot = Some(ldap.clone());
        Ok(ldap)
    }

    pub(crate) async fn drop_service(&self) {
        if let Some(mut ldap) = self.service.lock().await.take() {
            let _ = ldap.unbind().await;
        }
    }

    /// One search on the service connection. A connection that fails is
    /// dropped; if it was one kept from before (the server may have closed
    /// it since: a restart, an idle timeout), the search runs once more on
    /// a new one before the server is called unreachable.
    pub(crate) async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, DirectoryUnavailable> {
        let kept = self.service.lock().await.is_some();
        match self.search_once(base, scope, filter, attrs.clone()).await {
            Err(SearchFailure::Connection(_)) if kept => self
                .search_once(base, scope, filter, attrs)
                .await
                .map_err(SearchFailure::into_unavailable),
            result => result.map_err(SearchFailure::into_unavailable),
        }
    }

    async fn search_once(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, SearchFailure> {
        let started = Instant::now();
        let mut ldap = self
            .service_connection()
            .await
            .map_err(SearchFailure::Connection)?;
        let result = ldap
            .with_timeout(self.settings.timeout)
            .search(base, scope, filter, attrs)
            .await;
        metrics::histogram!("tokengate_directory_call_seconds", "op" => "search")
            .record(started.elapsed().as_secs_f64());
        match result {
            // noSuchObject (32): the base is gone: nothing found.
            Ok(result) if result.1.rc == 32 => Ok(Vec::new()),
            Ok(result) => {
                let (entries, _) = result
                    .success()
                    .map_err(|e| SearchFailure::Answer(unavailable(e)))?;
                Ok(entries.into_iter().map(SearchEntry::construct).collect())
            }
            Err(e) => {
                self.drop_service().await;
                Err(SearchFailure::Connection(unavailable(e)))
            }
        }
    }

    /// The filter of `kind`; `None`: no owners are configured.
    pub(crate) fn filter(&self, kind: PrincipalKind) -> Option<&PrincipalFilter> {
        match kind {
            PrincipalKind::User => Some(&self.users),
            PrincipalKind::DomainOwner => self.owners.as_ref(),
        }
    }

    /// The attributes a principal's facts are made of, and its ids.
    pub(crate) fn principal_attributes(&self, filter: &PrincipalFilter) -> Vec<String> {
        let mut attrs: Vec<String> = Vec::new();
        let wanted = filter
            .id_attributes()
            .iter()
            .chain(&self.settings.password_changed_attributes)
            .chain(&self.settings.disabled_attribute)
            .map(String::as_str)
            .chain([MODIFY_TIMESTAMP]);
        for attr in wanted {
            if !attrs.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
                attrs.push(attr.to_owned());
            }
        }
        attrs
    }

    /// The one entry the domain's filter finds for `id`; `None` for none
    /// or more than one.
    async fn find(
        &self,
        domain: &LdapDomain,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Option<SearchEntry>, DirectoryUnavailable> {
        let Some(filter) = self.filter(kind) else {
            return Ok(None);
        };
        let mut entries = self
            .search(
                &domain.base_dn,
                Scope::Subtree,
                &filter.for_id(id),
                self.principal_attributes(filter),
            )
            .await?;
        Ok((entries.len() == 1).then(|| entries.remove(0)))
    }

    /// Binds as `dn` on a bind connection (kept, or new): true for the
    /// right password, false for a wrong one or an unknown DN.
    async fn user_bind(&self, dn: &str, password: &str) -> Result<bool, DirectoryUnavailable> {
        let started = Instant::now();
        let (mut ldap, kept) = match self.binds.take() {
            Some(ldap) => (ldap, true),
            None => (self.bind_connection().await?, false),
        };
        let mut result = self.bind_on(&mut ldap, dn, password).await;
        if kept && result.is_err() {
            // A kept connection the server has closed since (a restart,
            // an idle timeout): once more on a new one before calling the
            // server unreachable.
            ldap = self.bind_connection().await?;
            result = self.bind_on(&mut ldap, dn, password).await;
        }
        metrics::histogram!("tokengate_directory_call_seconds", "op" => "bind")
            .record(started.elapsed().as_secs_f64());
        let bound = result?;
        self.binds.give_back(ldap);
        Ok(bound)
    }

    /// A new connection for user binds.
    async fn bind_connection(&self) -> Result<Ldap, DirectoryUnavailable> {
        metrics::counter!("tokengate_directory_bind_connections_opened_total").increment(1);
        self.connect().await
    }

    /// One simple bind: `Ok(true)` bound, `Ok(false)` invalid
    /// credentials, `Err` anything else (the connection is then dropped).
    async fn bind_on(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        password: &str,
    ) -> Result<bool, DirectoryUnavailable> {
        match ldap
            .with_timeout(self.settings.timeout)
            .simple_bind(dn, password)
            .await
        {
            Ok(r) if r.rc == 0 => Ok(true),
            Ok(r) if r.rc == INVALID_CREDENTIALS => Ok(false),
            Ok(r) => Err(unavailable(format!("bind answered resultCode {}", r.rc))),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Whether the entry is an API user: from the snapshot's copy of the
    /// group while it is current, else by asking the server.
    async fn is_api_user(&self, dn: &str) -> Result<bool, DirectoryUnavailable> {
        let Some(group) = &self.settings.api_user_group else {
            return Ok(false);
        };
        let known = self
            .current_snapshot()
            .and_then(|snapshot| snapshot.is_api_user(&normalize_dn(dn)));
        if let Some(member) = known {
            return Ok(member);
        }
        let filter = format!("(member={})", ldap_escape(dn));
        let found = self
            .search(group, Scope::Base, &filter, vec!["1.1".to_owned()])
            .await?;
        Ok(!found.is_empty())
    }

    /// What an entry says about its principal.
    pub(crate) fn facts(&self, entry: &SearchEntry) -> Facts {
        let values = |attr: &str| {
            entry
                .attrs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(attr))
                .map(|(_, v)| v.as_slice())
                .unwrap_or_default()
        };
        let disabled = self
            .settings
            .disabled_attribute
            .as_deref()
            .is_some_and(|a| {
                let values = values(a);
                !values.is_empty()
                    && (self.settings.disabled_values.is_empty()
                        || values.iter().any(|v| {
                            self.settings
                                .disabled_values
                                .iter()
                                .any(|d| d.eq_ignore_ascii_case(v))
                        }))
            });
        let changed = self
            .settings
            .password_changed_attributes
            .iter()
            .find_map(|a| values(a).first())
            .map(String::as_str)
            .unwrap_or_default();
        let dn = normalize_dn(&entry.dn);
        Facts {
            fingerprint: PasswordHash::external(&format!("{dn}\n{changed}")),
            dn,
            disabled,
            version: values(MODIFY_TIMESTAMP)
                .first()
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// The snapshot's keys of an entry: its values of the filter's id
    /// attributes, in `domain_id`.
    pub(crate) fn keys(
        &self,
        domain_id: &str,
        kind: PrincipalKind,
        filter: &PrincipalFilter,
        entry: &SearchEntry,
    ) -> Vec<Key> {
        let mut keys: Vec<Key> = Vec::new();
        for (name, values) in &entry.attrs {
            if filter
                .id_attributes()
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
            {
                for value in values {
                    let key = Key::new(domain_id, kind, value);
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
        keys
    }

    /// The principal a live search found, recorded in the snapshot (it is
    /// at least as new as the snapshot's copy).
    async fn principal_from(
        &self,
        domain_id: &str,
        kind: PrincipalKind,
        id: &str,
        entry: &SearchEntry,
    ) -> Result<Principal, DirectoryUnavailable> {
        let facts = self.facts(entry);
        let api_user = self.is_api_user(&entry.dn).await?;
        let principal = facts.principal(kind, id, api_user);
        // Only principals the reads keep current are recorded: one whose
        // filter cannot be read ahead would stay as this search saw it.
        if self.snapshot_enabled()
            && let Some(filter) = self.filter(kind)
            && filter.every().is_some()
        {
            let mut keys = self.keys(domain_id, kind, filter, entry);
            let asked = Key::new(domain_id, kind, id);
            if !keys.contains(&asked) {
                keys.push(asked);
            }
            self.write_snapshot()
                .upsert(keys, facts, Instant::now(), Source::Search);
        }
        Ok(principal)
    }

    async fn authenticate_inner(
        &self,
        domain_id: &str,
        kind: PrincipalKind,
        id: &str,
        password: &str,
    ) -> Result<Option<Principal>, DirectoryUnavailable> {
        let Some(domain) = self.domains.get(domain_id) else {
            return Ok(None);
        };
        let entry = self.find(domain, kind, id).await?;
        // An unknown user (or an empty password, which LDAP would take
        // for an anonymous bind) binds too — to a DN that does not exist,
        // with a random password: the same connection, bind and failure.
        let (dn, password) = match (&entry, password.is_empty()) {
            (Some(e), false) => (e.dn.clone(), password.to_owned()),
            (Some(_), true) | (None, _) => (
                format!(
                    "cn=tokengate-no-such-user-{},{}",
                    random_hex(),
                    domain.base_dn
                ),
                if password.is_empty() {
                    random_hex()
                } else {
                    password.to_owned()
                },
            ),
        };
        let bound = self.user_bind(&dn, &password).await?;
        match entry {
            Some(entry) if bound => Ok(Some(
                self.principal_from(domain_id, kind, id, &entry).await?,
            )),
            _ => Ok(None),
        }
    }

    /// A call that found the server unreachable marks it down at once
    /// (the next successful health check marks it up again).
    fn note(&self, answer: &Result<Option<Principal>, DirectoryUnavailable>) {
        if let Err(e) = answer {
            self.health.set(&Err(e.0.clone()));
            self.binds.clear();
        }
    }

    /// The snapshot's answer, while it is current and holds the id.
    fn snapshot_answer(
        &self,
        domain_id: &str,
        kind: PrincipalKind,
        id: &str,
    ) -> Option<Option<Principal>> {
        let snapshot = self.current_snapshot()?;
        match snapshot.get(&Key::new(domain_id, kind, id)) {
            Answer::Found(facts) => snapshot
                .is_api_user(&facts.dn)
                .map(|api_user| Some(facts.principal(kind, id, api_user))),
            Answer::Ambiguous => Some(None),
            Answer::Unknown => None,
        }
    }

    /// A refresh's look at the principal: the snapshot while it is
    /// current; the server for a principal the snapshot does not hold
    /// (created since its last read, or gone).
    async fn lookup_inner(
        &self,
        domain_id: &str,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Option<Principal>, DirectoryUnavailable> {
        let Some(domain) = self.domains.get(domain_id) else {
            return Ok(None);
        };
        if let Some(answer) = self.snapshot_answer(domain_id, kind, id) {
            metrics::counter!("tokengate_directory_snapshot_hits_total").increment(1);
            return Ok(answer);
        }
        metrics::counter!("tokengate_directory_snapshot_misses_total").increment(1);
        match self.find(domain, kind, id).await? {
            Some(entry) => Ok(Some(
                self.principal_from(domain_id, kind, id, &entry).await?,
            )),
            None => Ok(None),
        }
    }
}

impl RemotePrincipals for LdapDirectory {
    fn authenticate<'a>(
        &'a self,
        domain_id: &'a str,
        kind: PrincipalKind,
        id: &'a str,
        password: &'a str,
    ) -> RemoteAnswer<'a> {
        Box::pin(async move {
            let answer = self.authenticate_inner(domain_id, kind, id, password).await;
            self.note(&answer);
            answer
        })
    }

    fn lookup<'a>(
        &'a self,
        domain_id: &'a str,
        kind: PrincipalKind,
        id: &'a str,
    ) -> RemoteAnswer<'a> {
        Box::pin(async move {
            let answer = self.lookup_inner(domain_id, kind, id).await;
            self.note(&answer);
            answer
        })
    }
}

fn tls_config(settings: &LdapSettings) -> Result<rustls::ClientConfig, LdapDirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = &settings.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<_, _>>())
            .map_err(|e| {
                LdapDirectoryError::Settings(format!("ldap.ca_file {}: {e}", path.display()))
            })?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                LdapDirectoryError::Settings(format!("ldap.ca_file {}: {e}", path.display()))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapDirectoryError::Settings(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
