//! Server reflection as SpaceONE's Python client uses it, and the answer to
//! a method tokengate does not serve.
//!
//! spaceone-core 1.x lists services through reflection v1alpha, asks for the
//! file containing each one and derives a Python module from the file name
//! with `<package path>/(.*?).proto`: a file outside its package path (as
//! tonic-health's `health.proto` was) fails the client before any call.
//! `tools/spaceone-clients.sh` runs that client itself.

use std::collections::BTreeMap;

use prost::Message as _;
use prost_types::FileDescriptorProto;
use tokengate_test_support::prelude::*;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

/// Reflection v1 and v1alpha share their messages field for field, so one
/// set of types serves both: only the method path differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V1Alpha,
}

impl Version {
    fn path(self) -> &'static str {
        match self {
            Version::V1 => "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            Version::V1Alpha => "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        }
    }
}

/// One request on a new reflection stream, as spaceone-core sends them.
async fn ask(
    channel: &tonic::transport::Channel,
    version: Version,
    request: MessageRequest,
) -> MessageResponse {
    let mut client = tonic::client::Grpc::new(channel.clone());
    client.ready().await.expect("ready");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let codec =
        tonic_prost::ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
    let mut answers = client
        .streaming(
            tonic::Request::new(tokio_stream::iter([request])),
            version.path().parse().expect("path"),
            codec,
        )
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("a reflection message")
        .expect("one answer");
    answer.message_response.expect("a response")
}

async fn list_services(channel: &tonic::transport::Channel, version: Version) -> Vec<String> {
    match ask(
        channel,
        version,
        MessageRequest::ListServices(String::new()),
    )
    .await
    {
        MessageResponse::ListServicesResponse(list) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("{version:?} list_services: {other:?}"),
    }
}

async fn files(
    channel: &tonic::transport::Channel,
    version: Version,
    request: MessageRequest,
) -> Vec<FileDescriptorProto> {
    match ask(channel, version, request.clone()).await {
        MessageResponse::FileDescriptorResponse(found) => found
            .file_descriptor_proto
            .iter()
            .map(|raw| FileDescriptorProto::decode(raw.as_slice()).expect("a file descriptor"))
            .collect(),
        other => panic!("{version:?} {request:?}: {other:?}"),
    }
}

/// The check spaceone-core's `<package>/(.*?).proto` implies, made strict:
/// the file sits directly in its package's folder.
fn assert_under_package_path(file: &FileDescriptorProto) {
    let dir = format!("{}/", file.package().replace('.', "/"));
    let base = file.name().strip_prefix(&dir).unwrap_or_else(|| {
        panic!(
            "{} is not under {dir} (package {})",
            file.name(),
            file.package()
        )
    });
    assert!(
        base.len() > ".proto".len() && base.ends_with(".proto") && !base.contains('/'),
        "{}: no module name in {base:?}",
        file.name()
    );
}

#[tokio::test]
async fn reflection_serves_every_file_under_its_upstream_name() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    let channel = &clients.channel;
    let reflection = |v: &str| format!("grpc.reflection.{v}.ServerReflection");
    for (version, own) in [(Version::V1Alpha, "v1alpha"), (Version::V1, "v1")] {
        let services = list_services(channel, version).await;
        let mut expected: BTreeMap<String, String> = [
            (
                "spaceone.api.identity.v1.Token",
                "spaceone/api/identity/v1/token.proto",
            ),
            (
                "spaceone.api.identity.v1.Domain",
                "spaceone/api/identity/v1/domain.proto",
            ),
            (
                "tokengate.session.v1.Session",
                "tokengate/session/v1/session.proto",
            ),
            ("grpc.health.v1.Health", "grpc/health/v1/health.proto"),
        ]
        .into_iter()
        .map(|(s, f)| (s.to_owned(), f.to_owned()))
        .collect();
        expected.insert(
            reflection(own),
            format!("grpc/reflection/{own}/reflection.proto"),
        );
        // v1alpha leaves tokengate's own services out: SpaceONE's Python
        // client imports a module per listed service and has none for them.
        if version == Version::V1Alpha {
            expected.remove("tokengate.session.v1.Session");
        }
        let mut listed = services.clone();
        listed.sort();
        assert_eq!(
            listed,
            expected.keys().cloned().collect::<Vec<_>>(),
            "{version:?} lists each service once; v1alpha not v1's reflection \
             (the Python client imports a module per service, and \
             grpcio-reflection 1.48 has no v1 one)"
        );

        // What spaceone-core does: the file of each listed service.
        let mut seen = BTreeMap::new();
        let mut pending = Vec::new();
        for service in &services {
            let found = files(
                channel,
                version,
                MessageRequest::FileContainingSymbol(service.clone()),
            )
            .await;
            let file = found.first().expect("a file");
            assert_eq!(file.name(), expected[service], "{version:?} {service}");
            let (package, name) = service.rsplit_once('.').expect("a full name");
            assert_eq!(file.package(), package);
            assert_eq!(file.service[0].name(), name, "the service comes first");
            for file in found {
                pending.extend(file.dependency.clone());
                seen.insert(file.name().to_owned(), file);
            }
        }
        // And every file they import, by the names they import them under.
        while let Some(name) = pending.pop() {
            if seen.contains_key(&name) {
                continue;
            }
            for file in files(
                channel,
                version,
                MessageRequest::FileByFilename(name.clone()),
            )
            .await
            {
                pending.extend(file.dependency.clone());
                seen.insert(file.name().to_owned(), file);
            }
            assert!(seen.contains_key(&name), "{version:?}: {name} not served");
        }
        for file in seen.values() {
            assert_under_package_path(file);
        }
        assert!(
            seen.contains_key("google/api/annotations.proto"),
            "{version:?}: {:?}",
            seen.keys()
        );
    }
}

const UNIMPLEMENTED: i32 = 12;

/// What tokengate serves over gRPC, in the order of its routes.
const SERVED: &str = "spaceone.api.identity.v1.Token/issue, \
                      spaceone.api.identity.v1.Token/refresh, \
                      spaceone.api.identity.v1.Domain/get_public_key, \
                      tokengate.session.v1.Session/revoke, \
                      tokengate.session.v1.Session/list, \
                      tokengate.session.v1.Session/end, \
                      tokengate.session.v1.Session/end_others, \
                      tokengate.session.v1.Session/revoke_user, \
                      tokengate.session.v1.Session/introspect, \
                      grpc.health.v1.Health/Check, \
                      grpc.health.v1.Health/Watch, \
                      grpc.reflection.v1.ServerReflection/ServerReflectionInfo, \
                      grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

#[tokio::test]
async fn an_unserved_method_is_unimplemented_naming_what_is_served() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    let grpc_protocols = ALL_PROTOCOLS.iter().filter(|p| **p != Proto::Rest);
    for &proto in grpc_protocols {
        for path in [
            // A method of SpaceONE's Domain that tokengate leaves out.
            "/spaceone.api.identity.v1.Domain/list",
            // Method names are case-sensitive.
            "/spaceone.api.identity.v1.Token/Issue",
            "/spaceone.api.inventory.v1.Server/list",
            "/grpc.health.v1.Health/List",
        ] {
            let call = Call {
                grpc_path: path,
                rest_path: "",
                message: Vec::new(),
                json: String::new(),
                headers: Vec::new(),
            };
            let outcome = clients.call(proto, &call).await;
            assert_eq!(outcome.code, UNIMPLEMENTED, "{proto:?} {path}");
            assert_eq!(
                outcome.message,
                format!(
                    "ERROR_METHOD_NOT_FOUND: Method not found: {path}. \
                     This server provides: {SERVED}."
                ),
                "{proto:?} {path}"
            );
            assert_eq!(
                outcome.reason.as_deref(),
                Some("ERROR_METHOD_NOT_FOUND"),
                "{proto:?} {path}"
            );
        }
    }
}

#[tokio::test]
async fn every_method_named_as_served_is_served() {
    let server = TestServer::start();
    let clients = Clients::new(&server).await;
    // The unary ones, called with an empty message: whatever they answer,
    // it is not UNIMPLEMENTED. (The streaming ones are exercised above.)
    for method in SERVED.split(", ").filter(|m| !m.ends_with("Watch")) {
        if method.contains("ServerReflection") {
            continue;
        }
        let path = format!("/{method}");
        let call = Call {
            grpc_path: &path,
            rest_path: "",
            message: Vec::new(),
            json: String::new(),
            headers: Vec::new(),
        };
        let outcome = clients.call(Proto::Grpc, &call).await;
        assert_ne!(outcome.code, UNIMPLEMENTED, "{path}: {outcome:?}");
    }
}
