//! The generated tonic service traits, implemented by translating to and
//! from the core service. Native gRPC and gRPC-Web call this directly; REST
//! calls it through the generated glue in [`super::rest`].

use std::net::IpAddr;
use std::sync::Arc;

use tokengate_core::{Credentials, IssueRequest, TokenService};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::peer::Peer;
use crate::proto::core_v1::{AuthenticationRequest, AuthenticationResponse};
use crate::proto::identity_v1::domain_server::Domain;
use crate::proto::identity_v1::token_server::Token;
use crate::proto::identity_v1::{IssueTokenRequest, TokenInfo};
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
}
