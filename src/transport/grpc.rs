//! The generated tonic service traits, implemented by translating to and
//! from the core service. Native gRPC and gRPC-Web call this directly; REST
//! calls it through the generated glue in [`super::rest`].

use std::net::IpAddr;
use std::sync::Arc;

use tokengate_core::{
    CallerCredentials, Credentials, Introspection, IssueRequest, Session as CoreSession,
    TokenService,
};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::peer::Peer;
use crate::proto::core_v1::{AuthenticationRequest, AuthenticationResponse};
use crate::proto::identity_v1::domain_server::Domain;
use crate::proto::identity_v1::token_server::Token;
use crate::proto::identity_v1::{IssueTokenRequest, TokenInfo};
use crate::proto::session_v1::session_server::Session;
use crate::proto::session_v1::{
    EndSessionRequest, EndSessionsResponse, IntrospectRequest, IntrospectResponse,
    ListSessionsResponse, RevokeUserRequest, SessionInfo,
};
use crate::transport::protocol::Protocol;
use crate::transport::status::to_status;

/// The gRPC face of [`TokenService`].
#[derive(Debug, Clone)]
pub struct GrpcAdapter {
    core: Arc<TokenService>,
    client_ip_header: Option<Arc<str>>,
}

impl GrpcAdapter {
    /// Wraps the core service. `client_ip_header` names the header a trusted
    /// proxy sets with the client address (`limits.client_ip_header`).
    pub fn new(core: Arc<TokenService>, client_ip_header: Option<&str>) -> Self {
        Self {
            core,
            client_ip_header: client_ip_header.map(|h| Arc::from(h.to_ascii_lowercase())),
        }
    }

    /// The client address for the per-IP login limit: the last address of
    /// the configured proxy header, else the TCP peer.
    fn client_ip<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        if let Some(header) = &self.client_ip_header {
            let forwarded = request
                .metadata()
                .get(header.as_ref())
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|last| last.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        request.extensions().get::<Peer>().map(|p| p.addr().ip())
    }
}

/// The refresh token from `token` (SpaceONE's key) or
/// `authorization: Bearer <jwt>`. REST headers arrive here as metadata too.
pub fn refresh_token(metadata: &MetadataMap) -> Option<String> {
    if let Some(token) = metadata.get("token").and_then(|v| v.to_str().ok()) {
        return Some(token.trim().to_owned());
    }
    let auth = metadata.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

/// The introspection caller's credentials from `authorization`: `Basic
/// <base64>` or `Bearer <jwt>` (schemes case-insensitive).
pub fn caller_credentials(metadata: &MetadataMap) -> CallerCredentials {
    let Some(auth) = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return CallerCredentials::Missing;
    };
    let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    let rest = rest.trim().to_owned();
    if scheme.eq_ignore_ascii_case("basic") {
        CallerCredentials::Basic(rest)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        CallerCredentials::Bearer(rest)
    } else {
        CallerCredentials::Missing
    }
}

/// A session as the wire shows it; times in unix seconds.
fn session_info(session: CoreSession) -> SessionInfo {
    let secs = |ms: u64| u32::try_from(ms / 1000).unwrap_or(u32::MAX);
    let info = session.info;
    SessionInfo {
        session_id: info.family_id,
        started_at: secs(info.issued_at_ms),
        refreshed_at: secs(info.refreshed_at_ms),
        idle_expires_at: secs(info.token_expires_at_ms),
        expires_at: secs(info.expires_at_ms),
        protocol: info.origin.protocol,
        client_address: info.origin.client_address,
        current: session.current,
        refreshes: u32::try_from(info.generation).unwrap_or(u32::MAX),
    }
}

/// An introspection answer as the wire shows it.
fn introspect_response(i: Introspection) -> IntrospectResponse {
    let secs = |s: u64| u32::try_from(s).unwrap_or(u32::MAX);
    IntrospectResponse {
        active: i.active,
        token_type: i.token_type.to_owned(),
        sub: i.user_id,
        domain_id: i.domain_id,
        user_type: i.user_type,
        iss: i.issuer,
        jti: i.token_id,
        sid: i.session_id,
        iat: secs(i.issued_at),
        exp: secs(i.expires_at),
        permissions: i.permissions,
    }
}

/// `credentials.password`, told apart from no credentials at all.
fn credentials(value: Option<pbjson_types::Struct>) -> Credentials {
    let Some(credentials) = value else {
        return Credentials::Missing;
    };
    match credentials
        .fields
        .get("password")
        .and_then(|v| v.kind.as_ref())
    {
        Some(pbjson_types::value::Kind::StringValue(password)) => {
            Credentials::Password(password.clone())
        }
        _ => Credentials::NoPassword,
    }
}

#[tonic::async_trait]
impl Token for GrpcAdapter {
    async fn issue(
        &self,
        request: Request<IssueTokenRequest>,
    ) -> Result<Response<TokenInfo>, Status> {
        let client_ip = self.client_ip(&request);
        let protocol = request
            .extensions()
            .get::<Protocol>()
            .map_or("", |p| p.label());
        let r = request.into_inner();
        let pair = self
            .core
            .issue(IssueRequest {
                user_id: r.user_id,
                credentials: credentials(r.credentials),
                user_type: r.user_type,
                domain_id: r.domain_id,
                timeout: r.timeout,
                refresh_count: r.refresh_count,
                client_ip,
                protocol,
            })
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(TokenInfo {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
        }))
    }

    async fn refresh(
        &self,
        request: Request<pbjson_types::Empty>,
    ) -> Result<Response<TokenInfo>, Status> {
        let token = refresh_token(request.metadata());
        let pair = self
            .core
            .refresh(token.as_deref())
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(TokenInfo {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
        }))
    }
}

#[tonic::async_trait]
impl Domain for GrpcAdapter {
    async fn get_public_key(
        &self,
        request: Request<AuthenticationRequest>,
    ) -> Result<Response<AuthenticationResponse>, Status> {
        let key = self
            .core
            .public_key(&request.into_inner().domain_id)
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(AuthenticationResponse {
            domain_id: key.domain_id,
            public_key: key.public_key,
        }))
    }
}

#[tonic::async_trait]
impl Session for GrpcAdapter {
    async fn revoke(
        &self,
        request: Request<pbjson_types::Empty>,
    ) -> Result<Response<pbjson_types::Empty>, Status> {
        let token = refresh_token(request.metadata());
        self.core
            .revoke_session(token.as_deref())
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(pbjson_types::Empty {}))
    }

    async fn list(
        &self,
        request: Request<pbjson_types::Empty>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let token = refresh_token(request.metadata());
        let sessions = self
            .core
            .list_sessions(token.as_deref())
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(ListSessionsResponse {
            sessions: sessions.into_iter().map(session_info).collect(),
        }))
    }

    async fn end(
        &self,
        request: Request<EndSessionRequest>,
    ) -> Result<Response<EndSessionsResponse>, Status> {
        let token = refresh_token(request.metadata());
        let ended = self
            .core
            .end_session(token.as_deref(), &request.get_ref().session_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(EndSessionsResponse { ended }))
    }

    async fn end_others(
        &self,
        request: Request<pbjson_types::Empty>,
    ) -> Result<Response<EndSessionsResponse>, Status> {
        let token = refresh_token(request.metadata());
        let ended = self
            .core
            .end_other_sessions(token.as_deref())
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(EndSessionsResponse { ended }))
    }

    async fn revoke_user(
        &self,
        request: Request<RevokeUserRequest>,
    ) -> Result<Response<EndSessionsResponse>, Status> {
        let token = refresh_token(request.metadata());
        let ended = self
            .core
            .revoke_user_sessions(token.as_deref(), &request.get_ref().user_id)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(EndSessionsResponse { ended }))
    }

    async fn introspect(
        &self,
        request: Request<IntrospectRequest>,
    ) -> Result<Response<IntrospectResponse>, Status> {
        let credentials = caller_credentials(request.metadata());
        let answer = self
            .core
            .introspect(&credentials, &request.get_ref().token)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(introspect_response(answer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_token_sources() {
        let mut md = MetadataMap::new();
        assert_eq!(refresh_token(&md), None);
        md.insert("authorization", "Bearer abc".parse().expect("value"));
        assert_eq!(refresh_token(&md).as_deref(), Some("abc"));
        md.insert("authorization", "Basic abc".parse().expect("value"));
        assert_eq!(refresh_token(&md), None);
        md.insert("token", "xyz".parse().expect("value"));
        assert_eq!(refresh_token(&md).as_deref(), Some("xyz"));
    }

    #[test]
    fn caller_credential_schemes() {
        let mut md = MetadataMap::new();
        assert_eq!(caller_credentials(&md), CallerCredentials::Missing);
        md.insert("authorization", "basic Z3c6cw==".parse().expect("value"));
        assert_eq!(
            caller_credentials(&md),
            CallerCredentials::Basic("Z3c6cw==".to_owned())
        );
        md.insert("authorization", "Bearer a.b.c".parse().expect("value"));
        assert_eq!(
            caller_credentials(&md),
            CallerCredentials::Bearer("a.b.c".to_owned())
        );
        md.insert("authorization", "Digest x".parse().expect("value"));
        assert_eq!(caller_credentials(&md), CallerCredentials::Missing);
    }
}
