//! A [`RefreshStore`] decorator that records the latency and the errors of
//! every store call as metrics (`tokengate_store_call_duration_seconds`,
//! `tokengate_store_errors_total`), whatever the backend.

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;

use crate::{
    AttemptCounter, CheckLease, CheckOutcome, FamilyRecord, FamilyRef, KeyId, LoginAttempt,
    RefreshStore, RotateRequest, Rotation, SessionInfo, SessionSelector, StoreError,
};

/// Wraps a store with metrics.
pub struct InstrumentedStore {
    /// The store that does the work.
    inner: Arc<dyn RefreshStore>,
}

impl InstrumentedStore {
    /// Instruments `inner`.
    pub fn new(inner: Arc<dyn RefreshStore>) -> Self {
        Self { inner }
    }
}

/// Runs one store call `op` inside a tracing span, recording its latency
/// and, if it failed, its kind of failure.
async fn measure<T>(
    op: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.instrument(tracing::info_span!("store", op)).await;
    metrics::histogram!("tokengate_store_call_duration_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    if let Err(error) = &result {
        let kind = match error {
            StoreError::Timeout => "timeout",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::NotReplicated { .. } => "not_replicated",
        };
        metrics::counter!("tokengate_store_errors_total", "op" => op, "kind" => kind).increment(1);
    }
    result
}

#[async_trait::async_trait]
impl RefreshStore for InstrumentedStore {
    async fn start_family(
        &self,
        family: &FamilyRecord,
        first_key: &KeyId,
        key_expires_at_ms: u64,
    ) -> Result<(), StoreError> {
        measure(
            "start_family",
            self.inner
                .start_family(family, first_key, key_expires_at_ms),
        )
        .await
    }

    async fn rotate(&self, request: &RotateRequest) -> Result<Rotation, StoreError> {
        measure("rotate", self.inner.rotate(request)).await
    }

    async fn adopt(
        &self,
        family: &FamilyRecord,
        request: &RotateRequest,
    ) -> Result<Rotation, StoreError> {
        measure("adopt", self.inner.adopt(family, request)).await
    }

    async fn revoke_family(&self, family: &FamilyRef) -> Result<(), StoreError> {
        measure("revoke_family", self.inner.revoke_family(family)).await
    }

    async fn revoke_principal(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        measure(
            "revoke_principal",
            self.inner
                .revoke_principal(domain_id, principal_id, now_ms, ttl_ms),
        )
        .await
    }

    async fn list_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        now_ms: u64,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        measure(
            "list_sessions",
            self.inner.list_sessions(domain_id, principal_id, now_ms),
        )
        .await
    }

    async fn session(
        &self,
        family: &FamilyRef,
        now_ms: u64,
    ) -> Result<Option<SessionInfo>, StoreError> {
        measure("session", self.inner.session(family, now_ms)).await
    }

    async fn end_sessions(
        &self,
        domain_id: &str,
        principal_id: &str,
        which: &SessionSelector,
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError> {
        measure(
            "end_sessions",
            self.inner
                .end_sessions(domain_id, principal_id, which, now_ms),
        )
        .await
    }

    async fn acquire_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        now_ms: u64,
    ) -> Result<LoginAttempt, StoreError> {
        measure(
            "acquire_attempt",
            self.inner.acquire_attempt(counter, lease, now_ms),
        )
        .await
    }

    async fn release_attempt(
        &self,
        counter: &AttemptCounter,
        lease: &CheckLease,
        outcome: CheckOutcome,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        measure(
            "release_attempt",
            self.inner.release_attempt(counter, lease, outcome, now_ms),
        )
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        measure("ping", self.inner.ping()).await
    }

    fn keeps_answers(&self) -> bool {
        self.inner.keeps_answers()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}
