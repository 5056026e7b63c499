//! `Token.issue`: SPEC §2 issue rules 1–6, checked in the order that fixes
//! which error a request with several faults gets: the request's shape
//! (rules 1 and 5), the domain (rule 2), the password (rule 3, under the
//! failed-login limits), what the principal may do (rule 4), then a new
//! family (rule 6). The rules tests (`tests/rules.rs`) pin that order.

use std::net::IpAddr;

use std::borrow::Cow;

use tokengate_directory::{
    Directory, Domain, DomainState, HashProfile, PasswordHash, Principal, PrincipalKind,
    PrincipalState, RemotePrincipals, UserType,
};
use tokengate_store::{CheckOutcome, FamilyRecord, FamilyRef, SessionOrigin};
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
    /// The caller's address, for the per-IP failed-login limit and the
    /// list of sessions.
    pub client_ip: Option<IpAddr>,
    /// How the login came in (`grpc`, `grpc-web`, `rest`; empty when
    /// unknown), for the list of sessions.
    pub protocol: &'static str,
}

impl TokenService {
    /// `Token.issue`: SPEC §2 issue rules 1–6.
    pub async fn issue(&self, req: IssueRequest) -> Result<TokenPair, TokenError> {
        check_required(&req)?;
        let kind = principal_kind(&req.user_type).ok_or_else(|| TokenError::InvalidParameter {
            key: "user_type".into(),
            reason: "must be USER, LOCAL or DOMAIN_OWNER".to_owned(),
        })?;
        let access_lifetime = self.access_lifetime(req.timeout)?;
        let refreshes_left = self.refreshes_allowed(req.refresh_count)?;
        // For the access line and traces (fields of the transport's call span).
        tracing::Span::current()
            .record("domain_id", req.domain_id.as_str())
            .record("user_id", req.user_id.as_str());
        // A database directory whose feed is down may be stale: a user
        // disabled a moment ago must not log in (UNAVAILABLE, retried).
        self.directory_for_login()?;
        let directory = self.directory.load();
        let domain = enabled_domain(&directory, &req.domain_id)?;
        // Issue rule 5: "`credentials` without a `password` key (also `{}`)
        // is ERROR_INVALID_CREDENTIALS for every user_id, known or not".
        let Credentials::Password(password) = &req.credentials else {
            return Err(TokenError::InvalidCredentials);
        };
        let principal: Cow<'_, Principal> = match &self.remote {
            Some(remote) => Cow::Owned(
                self.check_remote_password(remote.as_ref(), kind, &req, password)
                    .await?,
            ),
            None => Cow::Borrowed(
                self.check_password(&directory, domain, kind, &req, password)
                    .await?,
            ),
        };
        check_may_log_in(&principal, &req.user_id)?;
        let origin = SessionOrigin::new(
            req.protocol,
            &req.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        );
        self.start_family(
            &req.domain_id,
            &principal,
            access_lifetime,
            refreshes_left,
            origin,
        )
        .await
    }

    /// Issue rule 5: "`timeout` (seconds) 0 → `token.access_timeout`;
    /// negative or above `token.max_access_timeout` → INVALID_ARGUMENT
    /// ERROR_INVALID_PARAMETER".
    fn access_lifetime(&self, timeout: i32) -> Result<u64, TokenError> {
        match timeout {
            0 => Ok(self.settings.access_timeout),
            t if t < 0 => Err(TokenError::InvalidParameter {
                key: "timeout".into(),
                reason: "must not be negative".to_owned(),
            }),
            t if t as u64 > self.settings.max_access_timeout => Err(TokenError::InvalidParameter {
                key: "timeout".into(),
                reason: format!("must not exceed {}", self.settings.max_access_timeout),
            }),
            t => Ok(t as u64),
        }
    }

    /// Issue rule 5: "`refresh_count` 0 → `token.refresh_ttl`; above it →
    /// UNAUTHENTICATED ERROR_MAX_REFRESH_COUNT; negative → INVALID_ARGUMENT
    /// ERROR_INVALID_PARAMETER".
    fn refreshes_allowed(&self, refresh_count: i32) -> Result<u32, TokenError> {
        match refresh_count {
            0 => Ok(self.settings.refresh_ttl),
            c if c < 0 => Err(TokenError::InvalidParameter {
                key: "refresh_count".into(),
                reason: "must not be negative".to_owned(),
            }),
            c if c as u32 > self.settings.refresh_ttl => Err(TokenError::MaxRefreshCount {
                max: self.settings.refresh_ttl,
            }),
            c => Ok(c as u32),
        }
    }

    /// Issue rule 3: "Password checked **before** anything that would
    /// reveal whether the user exists or its state; an unknown user costs
    /// the same time as a wrong password (a dummy hash of the same
    /// algorithm and cost as the directory's hashes is verified). Both →
    /// UNAUTHENTICATED ERROR_AUTHENTICATION_FAILURE."
    ///
    /// The check holds a slot of each failed-login counter (SPEC §3), so
    /// parallel guesses cannot slip past the limit; only a wrong password
    /// counts.
    async fn check_password<'d>(
        &self,
        directory: &'d Directory,
        domain: &'d Domain,
        kind: PrincipalKind,
        req: &IssueRequest,
        password: &str,
    ) -> Result<&'d Principal, TokenError> {
        let principal = domain.principal(kind, &req.user_id);
        let hash = hash_to_check(directory, principal).clone();
        let slots = self
            .settings
            .login_limits
            .take_slots(&self.store, &req.domain_id, &req.user_id, req.client_ip)
            .await?;
        let password_ok = match self
            .passwords
            .verify(hash, password.to_owned())
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
        match principal {
            Some(p) if password_ok => Ok(p),
            _ => {
                tracing::debug!(domain_id = %req.domain_id, user_id = %req.user_id, "login failed");
                metrics::counter!("tokengate_logins_failed_total").increment(1);
                Err(TokenError::AuthenticationFailure {
                    user_id: shown(&req.user_id),
                })
            }
        }
    }

    /// Issue rule 3 with a remote directory (LDAP): the directory checks
    /// the password (a bind as the user) and owes the same cost for an
    /// unknown user; the failed-login limits hold as for a local check.
    async fn check_remote_password(
        &self,
        remote: &dyn RemotePrincipals,
        kind: PrincipalKind,
        req: &IssueRequest,
        password: &str,
    ) -> Result<Principal, TokenError> {
        let slots = self
            .settings
            .login_limits
            .take_slots(&self.store, &req.domain_id, &req.user_id, req.client_ip)
            .await?;
        let answer = remote
            .authenticate(&req.domain_id, kind, &req.user_id, password)
            .instrument(tracing::info_span!("password_check"))
            .await;
        let outcome = match &answer {
            Ok(None) => slots.failed(),
            _ => CheckOutcome::NotFailed,
        };
        slots.release(outcome).await;
        match answer {
            Ok(Some(principal)) => Ok(principal),
            Ok(None) => {
                tracing::debug!(domain_id = %req.domain_id, user_id = %req.user_id, "login failed");
                metrics::counter!("tokengate_logins_failed_total").increment(1);
                Err(TokenError::AuthenticationFailure {
                    user_id: shown(&req.user_id),
                })
            }
            Err(unavailable) => Err(super::directory_error(unavailable)),
        }
    }

    /// Issue rule 6: "a new access token and a new refresh token (new
    /// family). The access token lives `timeout`; the refresh token lives
    /// `refresh_timeout`", both cut at the family's absolute end. The pair
    /// is handed out only once the store recorded the family and its first
    /// key (SPEC §3: "a refresh token is never handed out unless its key is
    /// recorded").
    async fn start_family(
        &self,
        domain_id: &str,
        principal: &Principal,
        access_lifetime: u64,
        refreshes_left: u32,
        origin: SessionOrigin,
    ) -> Result<TokenPair, TokenError> {
        let keys = self.keys.load();
        let domain_keys = keys.domain(domain_id).ok_or(TokenError::Internal {
            detail: "domain has no signing keys",
        })?;
        let now = now_ms();
        let now_secs = now / 1000;
        let family_end = now_secs + self.settings.absolute_timeout;
        let family_id = secrets::new_id();
        let (pair, refresh) = self.mint(&Mint {
            keys: domain_keys,
            domain_id,
            principal,
            now_secs,
            access_lifetime,
            refreshes_left,
            family_id: &family_id,
            family_end,
            generation: 0,
        })?;
        let family = FamilyRecord {
            family: FamilyRef {
                family_id,
                domain_id: domain_id.to_owned(),
                principal_id: principal.id.clone(),
            },
            issued_at_ms: now,
            expires_at_ms: family_end * 1000,
            password_fingerprint: principal.password_hash.fingerprint(),
            origin,
        };
        self.store
            .start_family(
                &family,
                &secrets::key_id(&refresh.one_time_key),
                refresh.expires_at * 1000,
            )
            .await
            .map_err(store_error)?;
        tracing::debug!(domain_id = %domain_id, user_id = %principal.id, "token issued");
        metrics::counter!("tokengate_tokens_issued_total").increment(1);
        Ok(pair)
    }
}

/// The hash a login checks the password against (issue rule 3): the
/// principal's own, or the directory's dummy hash — of the algorithm and
/// cost of its real hashes, never verifying — for an unknown principal and
/// for one without a password here (an EXTERNAL user, whose password
/// SpaceONE's auth plugin checked; a password-less API_USER), so each
/// costs what a wrong password does. SpaceONE 1.x answers an EXTERNAL user
/// of a domain without an auth plugin `ERROR_AUTHENTICATION_FAILURE` too.
fn hash_to_check<'d>(
    directory: &'d Directory,
    principal: Option<&'d Principal>,
) -> &'d PasswordHash {
    principal
        .map(|p| &p.password_hash)
        .filter(|h| *h.profile() != HashProfile::External)
        .unwrap_or_else(|| directory.dummy_hash())
}

/// Issue rule 1: "Missing `domain_id`/`credentials`/`user_id` →
/// INVALID_ARGUMENT ERROR_REQUIRED_PARAMETER", checked in SpaceONE's order:
/// `credentials`, `domain_id`, `user_id`.
fn check_required(req: &IssueRequest) -> Result<(), TokenError> {
    if req.credentials == Credentials::Missing {
        return Err(TokenError::RequiredParameter { key: "credentials" });
    }
    if req.domain_id.is_empty() {
        return Err(TokenError::RequiredParameter { key: "domain_id" });
    }
    if req.user_id.is_empty() {
        return Err(TokenError::RequiredParameter { key: "user_id" });
    }
    Ok(())
}

/// Issue rule 2: "Unknown domain → INVALID_ARGUMENT ERROR_NOT_FOUND …;
/// disabled domain → UNAUTHENTICATED ERROR_DOMAIN_STATE".
fn enabled_domain<'d>(directory: &'d Directory, domain_id: &str) -> Result<&'d Domain, TokenError> {
    let domain = directory
        .domain(domain_id)
        .ok_or_else(|| TokenError::NotFound {
            key: "domain_id",
            value: shown(domain_id),
        })?;
    if domain.state == DomainState::Disabled {
        return Err(TokenError::DomainState {
            domain_id: shown(domain_id),
        });
    }
    Ok(domain)
}

/// Issue rule 4, what a correct password may still not do: "`API_USER` →
/// UNAUTHENTICATED ERROR_NOT_ALLOWED_ISSUE_TOKEN_API_USER"; "state not
/// `ENABLED` → UNAUTHENTICATED ERROR_USER_STATUS_CHECK_FAILURE".
fn check_may_log_in(principal: &Principal, user_id: &str) -> Result<(), TokenError> {
    if principal.user_type == UserType::ApiUser {
        return Err(TokenError::ApiUserNotAllowed {
            user_id: shown(user_id),
        });
    }
    if principal.state != PrincipalState::Enabled {
        return Err(TokenError::UserStatus {
            user_id: shown(user_id),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokengate_directory::hash_bcrypt;

    use super::*;

    /// An EXTERNAL user and a password-less API user are checked against
    /// the dummy hash, as an unknown user is: the same algorithm and cost
    /// as the directory's hashes, so the same time as a wrong password.
    #[test]
    fn principals_without_a_password_check_the_dummy_hash() {
        let hash = hash_bcrypt("pw", 5).expect("hash");
        let directory = Directory::from_toml(&format!(
            "[[domain]]\ndomain_id = \"d\"\n\
             [[domain.user]]\nuser_id = \"alice\"\npassword_hash = \"{hash}\"\n\
             [[domain.user]]\nuser_id = \"sso\"\nbackend = \"EXTERNAL\"\n\
             [[domain.user]]\nuser_id = \"robot\"\nuser_type = \"API_USER\"\n"
        ))
        .expect("directory");
        let domain = directory.domain("d").expect("d");
        let dummy = directory.dummy_hash();
        assert_eq!(dummy.profile(), &HashProfile::Bcrypt { cost: 5 });
        for id in ["sso", "robot", "ghost"] {
            let checked = hash_to_check(&directory, domain.principal(PrincipalKind::User, id));
            assert_eq!(checked.fingerprint(), dummy.fingerprint(), "{id}");
            assert_eq!(checked.profile(), &HashProfile::Bcrypt { cost: 5 }, "{id}");
        }
        let alice = hash_to_check(&directory, domain.principal(PrincipalKind::User, "alice"));
        assert!(alice.verify("pw"));
    }
}
