//! Keeping the snapshot current: a whole read of every principal (at
//! start, every `full_sync_interval`, and after any read that failed) and,
//! every `sync_interval` between, a read of the entries whose
//! `modifyTimestamp` is at least the newest one seen — the way Keycloak's
//! LDAP federation syncs "changed users". A disable, a password change or
//! a new group member reaches refreshes within about `sync_interval`; an
//! entry deleted or moved out of the filters' scope is not among the
//! changes and leaves the snapshot at the next whole read (a refresh of a
//! principal the snapshot does not hold asks the server).
//!
//! The snapshot serves refreshes only while it is current: its last read
//! started within two sync intervals and a timeout. A server that stops
//! answering turns refreshes back to the server's answer (UNAVAILABLE
//! while it is down), never to old facts.

use std::collections::HashSet;
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Scope, SearchEntry, ldap_escape};
use tokengate_directory::{DirectoryUnavailable, PrincipalKind};

use crate::directory::{LdapDirectory, LdapDirectoryError, unavailable};
use crate::filter::MODIFY_TIMESTAMP;
use crate::snapshot::{Snapshot, Source, WholeRead, normalize_dn};

/// Entries per page of a whole read (within every server's default
/// paging limits; OpenLDAP and Active Directory allow 1,000).
const PAGE_SIZE: i32 = 500;

/// LDAP's resultCode when a search hit the server's size limit.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// The attribute a group lists its members in.
const MEMBER: &str = "member";

/// The API-user group as one read found it.
struct Group {
    /// Its members' normalized DNs; `None`: sent in ranges, not read.
    members: Option<HashSet<String>>,
    /// Its `modifyTimestamp`.
    version: Option<String>,
}

/// Which read the loop runs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Whole,
    Changes,
}

impl Read {
    fn label(self) -> &'static str {
        match self {
            Read::Whole => "whole",
            Read::Changes => "changes",
        }
    }
}

impl LdapDirectory {
    /// Whether refreshes are served from a snapshot (`sync_interval` > 0).
    pub(crate) fn snapshot_enabled(&self) -> bool {
        !self.settings.sync_interval.is_zero()
    }

    /// The snapshot, if it may answer now: its last read started recently
    /// enough that it holds every change older than about a sync interval
    /// (one lock taken, held by the caller while it reads).
    pub(crate) fn current_snapshot(&self) -> Option<RwLockReadGuard<'_, Snapshot>> {
        if !self.snapshot_enabled() || !self.health.is_up() {
            return None;
        }
        let bound = self.settings.sync_interval * 2 + self.settings.timeout;
        let snapshot = self.read_snapshot();
        snapshot
            .synced_at()
            .is_some_and(|at| at.elapsed() <= bound)
            .then_some(snapshot)
    }

    pub(crate) fn read_snapshot(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write_snapshot(&self) -> RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads every principal now and installs the result; what the service
    /// runs before it serves. Returns how many ids the snapshot holds.
    pub async fn sync_now(&self) -> Result<usize, LdapDirectoryError> {
        if !self.snapshot_enabled() {
            return Ok(0);
        }
        self.run(Read::Whole)
            .await
            .map_err(|e| LdapDirectoryError::Server(e.0))?;
        Ok(self.read_snapshot().len())
    }

    /// The loop: a read every `sync_interval`, whole when due.
    pub(crate) async fn keep_snapshot(self: Arc<Self>) {
        let mut last_whole = Instant::now();
        let mut failing = false;
        loop {
            tokio::time::sleep(self.settings.sync_interval).await;
            let read = if failing
                || last_whole.elapsed() >= self.settings.full_sync_interval
                || self.read_snapshot().high_water().is_none()
            {
                Read::Whole
            } else {
                Read::Changes
            };
            match self.run(read).await {
                Ok(()) => {
                    if failing {
                        tracing::info!("ldap snapshot read again");
                    }
                    failing = false;
                    if read == Read::Whole {
                        last_whole = Instant::now();
                    }
                }
                Err(e) => {
                    metrics::counter!("tokengate_directory_sync_errors_total").increment(1);
                    // Logged once per failing stretch; an unreachable
                    // server is also logged by the health check.
                    if !failing {
                        tracing::warn!(error = %e, "ldap snapshot read failed: refreshes ask the server until a whole read succeeds");
                    }
                    failing = true;
                }
            }
        }
    }

    async fn run(&self, read: Read) -> Result<(), DirectoryUnavailable> {
        let started = Instant::now();
        let result = match read {
            Read::Whole => self.read_whole(started).await,
            Read::Changes => self.read_changes(started).await,
        };
        metrics::histogram!("tokengate_directory_sync_seconds", "read" => read.label())
            .record(started.elapsed().as_secs_f64());
        if result.is_ok() {
            let held = self.read_snapshot().len();
            metrics::gauge!("tokengate_directory_principals").set(held as f64);
            if read == Read::Whole {
                tracing::debug!(
                    principals = held,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "ldap snapshot read whole"
                );
            }
        }
        result
    }

    /// Every principal of every domain, and the API-user group.
    async fn read_whole(&self, started: Instant) -> Result<(), DirectoryUnavailable> {
        let mut read = WholeRead::default();
        for (domain_id, kind) in self.domain_kinds() {
            let Some(filter) = self.filter(kind) else {
                continue;
            };
            let Some(every) = filter.every() else {
                continue;
            };
            let base = self.base_dn(&domain_id);
            let entries = self
                .search_all(&base, every, self.principal_attributes(filter))
                .await?;
            for entry in &entries {
                read.add(
                    self.keys(&domain_id, kind, filter, entry),
                    self.facts(entry),
                    started,
                );
            }
        }
        let group = self.read_group(None).await?.unwrap_or(Group {
            members: Some(HashSet::new()),
            version: None,
        });
        read.set_group(group.members, group.version);
        self.write_snapshot().install(read, started);
        Ok(())
    }

    /// The principals changed since the newest version seen, and the
    /// group if it changed.
    async fn read_changes(&self, started: Instant) -> Result<(), DirectoryUnavailable> {
        let (since, group_since) = {
            let snapshot = self.read_snapshot();
            (
                snapshot.high_water().map(str::to_owned),
                snapshot.group_version().map(str::to_owned),
            )
        };
        let Some(since) = since else {
            return self.read_whole(started).await;
        };
        for (domain_id, kind) in self.domain_kinds() {
            let Some(filter) = self.filter(kind) else {
                continue;
            };
            let Some(changed) = filter.changed_since(&since) else {
                continue;
            };
            let base = self.base_dn(&domain_id);
            let entries = self
                .search_all(&base, &changed, self.principal_attributes(filter))
                .await?;
            let mut snapshot = self.write_snapshot();
            for entry in &entries {
                snapshot.upsert(
                    self.keys(&domain_id, kind, filter, entry),
                    self.facts(entry),
                    Instant::now(),
                    Source::Changes,
                );
            }
        }
        // A group without a version is read every time.
        let group = self.read_group(group_since.as_deref()).await?;
        let mut snapshot = self.write_snapshot();
        if let Some(group) = group {
            snapshot.set_group(group.members, group.version);
        }
        snapshot.synced(started);
        Ok(())
    }

    /// The API-user group's members and version; `None` when no group is
    /// configured or it did not change since `since`. Members are `None`
    /// when the server sends them in ranges (Active Directory, beyond
    /// 1,500): then each principal's membership is asked for.
    async fn read_group(&self, since: Option<&str>) -> Result<Option<Group>, DirectoryUnavailable> {
        let Some(group) = &self.settings.api_user_group else {
            return Ok(None);
        };
        let filter = match since {
            Some(version) => format!("({MODIFY_TIMESTAMP}>={})", ldap_escape(version)),
            None => "(objectClass=*)".to_owned(),
        };
        let entries = self
            .search(
                group,
                Scope::Base,
                &filter,
                vec![MEMBER.to_owned(), MODIFY_TIMESTAMP.to_owned()],
            )
            .await?;
        let Some(entry) = entries.first() else {
            // Unchanged, or (whole read) no such group: no API users.
            return Ok(since.is_none().then(|| Group {
                members: Some(HashSet::new()),
                version: None,
            }));
        };
        let mut members = Some(HashSet::new());
        let mut version = None;
        for (name, values) in &entry.attrs {
            if name.eq_ignore_ascii_case(MEMBER) {
                if let Some(m) = members.as_mut() {
                    m.extend(values.iter().map(|v| normalize_dn(v)));
                }
            } else if name.to_ascii_lowercase().starts_with("member;range=") {
                members = None;
            } else if name.eq_ignore_ascii_case(MODIFY_TIMESTAMP) {
                version = values.first().cloned();
            }
        }
        Ok(Some(Group { members, version }))
    }

    /// Every (domain, kind) pair a read covers.
    fn domain_kinds(&self) -> Vec<(String, PrincipalKind)> {
        self.settings
            .domains
            .iter()
            .flat_map(|d| {
                [PrincipalKind::User, PrincipalKind::DomainOwner]
                    .map(|kind| (d.domain_id.clone(), kind))
            })
            .collect()
    }

    fn base_dn(&self, domain_id: &str) -> String {
        self.settings
            .domains
            .iter()
            .find(|d| d.domain_id == domain_id)
            .map(|d| d.base_dn.clone())
            .unwrap_or_default()
    }

    /// A subtree search on the service connection, page by page, skipping
    /// referrals; an error drops the connection.
    async fn search_all(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, DirectoryUnavailable> {
        let mut ldap = self.service_connection().await?;
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE_SIZE)),
        ];
        let result = async {
            let mut stream = ldap
                .with_timeout(self.settings.timeout)
                .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
                .await?;
            let mut entries = Vec::new();
            while let Some(entry) = stream.next().await? {
                entries.push(SearchEntry::construct(entry));
            }
            Ok::<_, ldap3::LdapError>((entries, stream.finish().await))
        }
        .await;
        match result {
            // noSuchObject (32): the base is gone: nothing found.
            Ok((_, done)) if done.rc == 32 => Ok(Vec::new()),
            // sizeLimitExceeded: a partial read would drop principals.
            Ok((entries, done)) if done.rc == SIZE_LIMIT_EXCEEDED => Err(unavailable(format!(
                "the server's size limit stopped a read of {base} after {} entries: let the \
                 service account page through the whole subtree (OpenLDAP: limits \
                 dn.exact=\"<bind_dn>\" size.prtotal=unlimited; README, \"Directories\")",
                entries.len()
            ))),
            Ok((entries, done)) => {
                done.success().map_err(unavailable)?;
                Ok(entries)
            }
            Err(e) => {
                self.drop_service().await;
                Err(unavailable(e))
            }
        }
    }
}
