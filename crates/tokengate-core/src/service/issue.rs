//! `Token.issue`: SPEC §2 issue rules 1–6.

use std::net::IpAddr;

use tokengate_directory::{DomainState, PrincipalState, UserType};
use tokengate_store::{CheckOutcome, FamilyRecord, FamilyRef};
use tracing::Instrument as _;

use super::minting::Mint;
use super::{TokenPair, TokenService, now_ms, principal_kind, shown, store_error};
use crate::{TokenError, secrets};

/// What the client sent as `credentials`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `credentials` field at all.
    Missing,
    /// A `credentials` object without a usable `password` string.
    NoPassword,
    /// The password.
    Password(String),
}

/// A login request (IssueTokenRequest, transport-free).
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// `user_id` (or the owner id when `user_type` is DOMAIN_OWNER).
    pub user_id: String,
    /// The credentials.
    pub credentials: Credentials,
    /// "", USER, LOCAL or DOMAIN_OWNER.
    pub user_type: String,
    /// The domain.
    pub domain_id: String,
    /// Access-token lifetime, seconds (0 = default).
    pub timeout: i32,
    /// Refreshes allowed (0 = maximum).
    pub refresh_count: i32,
    /// The caller's address, for the per-IP failed-login limit.
    pub client_ip: Option<IpAddr>,
}

impl TokenService {
    /// `Token.issue`: SPEC §2 issue rules 1–6.
    pub async fn issue(&self, req: IssueRequest) -> Result<TokenPair, TokenError> {
        // Rule 1: required parameters, in SpaceONE's order.
        if req.credentials == Credentials::Missing {
            return Err(TokenError::RequiredParameter { key: "credentials" });
        }
        if req.domain_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "domain_id" });
        }
        if req.user_id.is_empty() {
            return Err(TokenError::RequiredParameter { key: "user_id" });
        }
        let kind = principal_kind(&req.user_type).ok_or_else(|| TokenError::InvalidParameter {
            key: "user_type",
            reason: "must be USER, LOCAL or DOMAIN_OWNER".to_owned(),
        })?;
        // Rule 5: lifetimes.
        let access_lifetime = match req.timeout {
            0 => self.settings.access_timeout,
            t if t < 0 => {
                return Err(TokenError::InvalidParameter {
                    key: "timeout",
                    reason: "must not be negative".to_owned(),
                });
            }
            t if t as u64 > self.settings.max_access_timeout => {
                return Err(TokenError::InvalidParameter {
                    key: "timeout",
                    reason: format!("must not exceed {}", self.settings.max_access_timeout),
                });
            }
            t => t as u64,
        };
        let refresh_ttl = match req.refresh_count {
            0 => self.settings.refresh_ttl,
            c if c < 0 => {
                return Err(TokenError::InvalidParameter {
                    key: "refresh_count",
                    reason: "must not be negative".to_owned(),
                });
            }
            c if c as u32 > self.settings.refresh_ttl => {
                return Err(TokenError::MaxRefreshCount {
                    max: self.settings.refresh_ttl,
                });
            }
            c => c as u32,
        };
        // For the access line and traces (fields of the transport's call span).
        tracing::Span::current()
            .record("domain_id", req.domain_id.as_str())
            .record("user_id", req.user_id.as_str());
        // Rule 2: the domain.
        let directory = self.directory.load();
        let domain = directory
            .domain(&req.domain_id)
            .ok_or_else(|| TokenError::NotFound {
                key: "domain_id",
                value: shown(&req.domain_id),
            })?;
        if domain.state == DomainState::Disabled {
            return Err(TokenError::DomainState {
                domain_id: shown(&req.domain_id),
            });
        }
        // Rule 5: no password is the same answer for every user id.
        let Credentials::Password(password) = &req.credentials else {
            return Err(TokenError::InvalidCredentials);
        };
        // Rule 3: the password first; an unknown user verifies a dummy hash
        // of the same cost, so timing does not tell users apart.
        let principal = domain.principal(kind, &req.user_id);
        let hash = principal
            .map(|p| p.password_hash.clone())
            .unwrap_or_else(|| directory.dummy_hash().clone());
        // SPEC §3: a slot of each failed-login counter first, so parallel
        // guesses cannot slip past the limit; only a wrong password counts.
        let slots = self
            .settings
            .login_limits
            .take_slots(&self.store, &req.domain_id, &req.user_id, req.client_ip)
            .await?;
        let password_ok = match self
            .passwords
            .verify(hash, password.clone())
            .instrument(tracing::info_span!("password_check"))
            .await
        {
            Ok(ok) => ok,
            Err(_busy) => {
                metrics::counter!("tokengate_password_pool_rejections_total").increment(1);
                slots.release(CheckOutcome::NotFailed).await;
                return Err(TokenError::Busy);
            }
        };
        let outcome = if password_ok {
            CheckOutcome::NotFailed
        } else {
            slots.failed()
        };
        slots.release(outcome).await;
        let principal = match principal {
            Some(p) if password_ok => p,
            _ => {
                tracing::debug!(domain_id = %req.domain_id, user_id = %req.user_id, "login failed");
                metrics::counter!("tokengate_logins_failed_total").increment(1);
                return Err(TokenError::AuthenticationFailure {
                    user_id: shown(&req.user_id),
                });
            }
        };
        // Rule 4: what a correct password may still not do.
        if principal.user_type == UserType::ApiUser {
            return Err(TokenError::ApiUserNotAllowed {
                user_id: shown(&req.user_id),
            });
        }
        if principal.state != PrincipalState::Enabled {
            return Err(TokenError::UserStatus {
                user_id: shown(&req.user_id),
            });
        }
        // Rule 6: a new family.
        let keys = self.keys.load();
        let domain_keys = keys.domain(&req.domain_id).ok_or(TokenError::Internal {
            detail: "domain has no signing keys",
        })?;
        let now = now_ms();
        let now_secs = now / 1000;
        let family_end_secs = now_secs + self.settings.absolute_timeout;
        let family_id = secrets::new_id();
        let mint = Mint {
            keys: domain_keys,
            domain_id: &req.domain_id,
            principal,
            now_secs,
            access_lifetime,
            refreshes_left: refresh_ttl,
            family_id: &family_id,
            family_end: family_end_secs,
        };
        let (pair, refresh) = self.mint(&mint)?;
        let family = FamilyRecord {
            family: FamilyRef {
                family_id,
                domain_id: req.domain_id.clone(),
                principal_id: principal.id.clone(),
            },
            issued_at_ms: now,
            expires_at_ms: family_end_secs * 1000,
            password_fingerprint: principal.password_hash.fingerprint(),
        };
        // The token is handed out only once its key is recorded.
        self.store
            .start_family(
                &family,
                &secrets::key_id(&refresh.one_time_key),
                refresh.expires_at * 1000,
            )
            .await
            .map_err(store_error)?;
        tracing::debug!(domain_id = %req.domain_id, user_id = %principal.id, "token issued");
        metrics::counter!("tokengate_tokens_issued_total").increment(1);
        Ok(pair)
    }
}
