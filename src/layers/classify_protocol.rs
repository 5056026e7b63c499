//! Classifies each request's protocol (gRPC, gRPC-Web, gRPC-Web text or
//! REST) once, from its content type, and puts it in the request's
//! extensions: the layers after this one read it back with
//! [`Protocol::of`] instead of parsing the header again.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::transport::protocol::Protocol;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassifyProtocolLayer;

impl<S> Layer<S> for ClassifyProtocolLayer {
    type Service = ClassifyProtocol<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClassifyProtocol { inner }
    }
}

/// See [`ClassifyProtocolLayer`].
#[derive(Debug, Clone)]
pub struct ClassifyProtocol<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ClassifyProtocol<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let protocol = Protocol::classify(&request);
        request.extensions_mut().insert(protocol);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt as _;

    fn request(content_type: &str) -> Request<()> {
        Request::builder()
            .header(http::header::CONTENT_TYPE, content_type)
            .body(())
            .expect("request")
    }

    #[tokio::test]
    async fn the_protocol_travels_in_the_extensions() {
        let seen = tower::service_fn(|request: Request<()>| async move {
            Ok::<_, Infallible>(request.extensions().get::<Protocol>().copied())
        });
        let service = ClassifyProtocolLayer.layer(seen);
        for (content_type, protocol) in [
            ("application/grpc", Protocol::Grpc),
            ("application/grpc+proto", Protocol::Grpc),
            ("application/grpc-web+proto", Protocol::GrpcWeb),
            ("application/grpc-web-text", Protocol::GrpcWebText),
            ("application/json", Protocol::Rest),
            ("application/x-www-form-urlencoded", Protocol::Rest),
        ] {
            let got = service.clone().oneshot(request(content_type)).await;
            assert_eq!(got, Ok(Some(protocol)), "{content_type}");
        }
    }

    #[test]
    fn an_extension_wins_over_the_header() {
        let mut request = request("application/json");
        request.extensions_mut().insert(Protocol::Grpc);
        assert_eq!(Protocol::of(&request), Protocol::Grpc);
        assert_eq!(Protocol::classify(&request), Protocol::Rest);
    }
}
