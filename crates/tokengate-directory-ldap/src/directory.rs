//! The LDAP directory: health, the service connection, user binds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use tokengate_directory::{
    Directory, DirectoryUnavailable, DomainRecord, Freshness, PasswordHash, Principal,
    PrincipalKind, PrincipalState, RemoteAnswer, RemotePrincipals, UserType,
};
use tokio_rustls::rustls;

use crate::{LdapDomain, LdapSettings};

/// LDAP's resultCode for a wrong password or an unknown DN.
const INVALID_CREDENTIALS: u32 = 49;

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
    settings: LdapSettings,
    domains: HashMap<String, LdapDomain>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The shared, service-bound connection (reopened after an error).
    service: tokio::sync::Mutex<Option<Ldap>>,
    health: Arc<Health>,
    /// Recent refresh lookups (see [`LdapSettings::refresh_cache`]).
    cache: Mutex<HashMap<CacheKey, (Instant, Option<Principal>)>>,
}

/// Domain, kind, id.
type CacheKey = (String, PrincipalKind, String);

/// Entries kept at most; beyond, the cache starts over (it only saves
/// searches for principals refreshing again within `refresh_cache`).
const CACHE_MAX: usize = 100_000;

#[derive(Debug)]
struct Health {
    up: AtomicBool,
    reason: Mutex<String>,
}

impl Health {
    fn set(&self, result: &Result<(), String>) {
        match result {
            Ok(()) => {
                if !self.up.swap(true, Ordering::SeqCst) {
                    tracing::info!("ldap directory reachable");
                }
                metrics::gauge!("tokengate_directory_up").set(1.0);
            }
            Err(reason) => {
                if self.up.swap(false, Ordering::SeqCst) {
                    tracing::warn!(%reason, "ldap directory unreachable: logins and refreshes answer UNAVAILABLE");
                    metrics::counter!("tokengate_directory_connection_losses_total").increment(1);
                }
                metrics::gauge!("tokengate_directory_up").set(0.0);
                *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason.clone();
            }
        }
    }

    fn check(&self) -> Result<(), DirectoryUnavailable> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(DirectoryUnavailable(format!(
                "ldap: {}",
                self.reason.lock().unwrap_or_else(|p| p.into_inner())
            )))
        }
    }
}

/// Whether the LDAP server answers (its health check): what the core asks
/// before a login or a refresh. Both need the server, so both fail while it
/// is down (a refresh's token stays unspent).
#[derive(Debug, Clone)]
pub struct LdapFreshness(Arc<Health>);

impl Freshness for LdapFreshness {
    fn check_login(&self) -> Result<(), DirectoryUnavailable> {
        self.0.check()
    }

    fn check_refresh(&self) -> Result<(), DirectoryUnavailable> {
        self.0.check()
    }
}

fn unavailable(e: impl std::fmt::Display) -> DirectoryUnavailable {
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
        let domains = settings
            .domains
            .iter()
            .map(|d| (d.domain_id.clone(), d.clone()))
            .collect();
        Ok(Self {
            settings,
            domains,
            tls,
            service: tokio::sync::Mutex::new(None),
            health: Arc::new(Health {
                up: AtomicBool::new(false),
                reason: Mutex::new("not yet checked".to_owned()),
            }),
            cache: Mutex::new(HashMap::new()),
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

    /// Runs the health check every `health_interval`, forever.
    pub fn spawn_health(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let _ = this.check().await;
                tokio::time::sleep(this.settings.health_interval).await;
            }
        });
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
    async fn service_connection(&self) -> Result<Ldap, DirectoryUnavailable> {
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

    async fn drop_service(&self) {
        if let Some(mut ldap) = self.service.lock().await.take() {
            let _ = ldap.unbind().await;
        }
    }

    /// One search on the service connection; an error drops it.
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, DirectoryUnavailable> {
        let started = Instant::now();
        let mut ldap = self.service_connection().await?;
        let result = ldap
            .with_timeout(self.settings.timeout)
            .search(base, scope, filter, attrs)
            .await;
        metrics::histogram!("tokengate_directory_call_seconds", "op" => "search")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(result) => {
                // noSuchObject (32): the base is gone: nothing found.
                if result.1.rc == 32 {
                    return Ok(Vec::new());
                }
                let (entries, _) = result.success().map_err(unavailable)?;
                Ok(entries.into_iter().map(SearchEntry::construct).collect())
            }
            Err(e) => {
                self.drop_service().await;
                Err(unavailable(e))
            }
        }
    }

    /// The one entry the domain's filter finds for `id`; `None` for none
    /// or more than one.
    async fn find(
        &self,
        domain: &LdapDomain,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Option<SearchEntry>, DirectoryUnavailable> {
        let template = match kind {
            PrincipalKind::User => &self.settings.user_filter,
            PrincipalKind::DomainOwner => match &self.settings.owner_filter {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        let filter = template.replace("{user}", &ldap_escape(id));
        let mut attrs: Vec<String> = self.settings.password_changed_attributes.clone();
        attrs.extend(self.settings.disabled_attribute.iter().cloned());
        let mut entries = self
            .search(&domain.base_dn, Scope::Subtree, &filter, attrs)
            .await?;
        Ok((entries.len() == 1).then(|| entries.remove(0)))
    }

    /// Binds as `dn` on a connection of its own: true for the right
    /// password, false for a wrong one or an unknown DN.
    async fn user_bind(&self, dn: &str, password: &str) -> Result<bool, DirectoryUnavailable> {
        let started = Instant::now();
        let mut ldap = self.connect().await?;
        let result = ldap
            .with_timeout(self.settings.timeout)
            .simple_bind(dn, password)
            .await;
        let _ = ldap.unbind().await;
        metrics::histogram!("tokengate_directory_call_seconds", "op" => "bind")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(r) if r.rc == 0 => Ok(true),
            Ok(r) if r.rc == INVALID_CREDENTIALS => Ok(false),
            Ok(r) => Err(unavailable(format!("bind answered resultCode {}", r.rc))),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn is_api_user(&self, dn: &str) -> Result<bool, DirectoryUnavailable> {
        let Some(group) = &self.settings.api_user_group else {
            return Ok(false);
        };
        let filter = format!("(member={})", ldap_escape(dn));
        let found = self
            .search(group, Scope::Base, &filter, vec!["1.1".to_owned()])
            .await?;
        Ok(!found.is_empty())
    }

    async fn principal(
        &self,
        entry: &SearchEntry,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Principal, DirectoryUnavailable> {
        let disabled = self.settings.disabled_attribute.as_ref().is_some_and(|a| {
            entry.attrs.iter().any(|(name, values)| {
                name.eq_ignore_ascii_case(a)
                    && (self.settings.disabled_values.is_empty()
                        || values.iter().any(|v| {
                            self.settings
                                .disabled_values
                                .iter()
                                .any(|d| d.eq_ignore_ascii_case(v))
                        }))
            })
        });
        let changed = self
            .settings
            .password_changed_attributes
            .iter()
            .find_map(|a| {
                entry
                    .attrs
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(a))
                    .and_then(|(_, v)| v.first().cloned())
            })
            .unwrap_or_default();
        let user_type = match kind {
            PrincipalKind::User if self.is_api_user(&entry.dn).await? => UserType::ApiUser,
            _ => UserType::User,
        };
        Ok(Principal {
            id: id.to_owned(),
            kind,
            state: if disabled {
                PrincipalState::Disabled
            } else {
                PrincipalState::Enabled
            },
            user_type,
            required_actions: Vec::new(),
            password_hash: PasswordHash::external(&format!("{}\n{changed}", entry.dn)),
        })
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
            Some(entry) if bound => Ok(Some(self.principal(&entry, kind, id).await?)),
            _ => Ok(None),
        }
    }

    /// A call that found the server unreachable marks it down at once
    /// (the next successful health check marks it up again).
    fn note(&self, answer: &Result<Option<Principal>, DirectoryUnavailable>) {
        if let Err(e) = answer {
            self.health.set(&Err(e.0.clone()));
        }
    }

    async fn lookup_inner(
        &self,
        domain_id: &str,
        kind: PrincipalKind,
        id: &str,
    ) -> Result<Option<Principal>, DirectoryUnavailable> {
        let Some(domain) = self.domains.get(domain_id) else {
            return Ok(None);
        };
        let ttl = self.settings.refresh_cache;
        let key = (domain_id.to_owned(), kind, id.to_owned());
        if !ttl.is_zero() {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, principal)) = cache.get(&key)
                && at.elapsed() < ttl
            {
                metrics::counter!("tokengate_directory_cache_hits_total").increment(1);
                return Ok(principal.clone());
            }
        }
        let found = match self.find(domain, kind, id).await? {
            Some(entry) => Some(self.principal(&entry, kind, id).await?),
            None => None,
        };
        if !ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), found.clone()));
        }
        Ok(found)
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
