//! Compiles `proto/` with protox (pure Rust: no system `protoc`) and derives
//! everything the transports need from the one descriptor set:
//!
//! - prost messages and tonic server/client stubs (tonic-prost-build),
//! - proto3-JSON serde impls (pbjson-build; proto field names on output),
//! - the REST glue: one route per `google.api.http` annotation, so a newly
//!   annotated method is served over REST with no hand-written routing,
//! - the OpenAPI 3 document served at `/openapi.json`,
//! - the encoded descriptor set, for gRPC server reflection.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The proto files that define tokengate's public API.
const API_PROTOS: &[&str] = &[
    "spaceone/api/identity/v1/token.proto",
    "spaceone/api/identity/v1/domain.proto",
    "spaceone/api/core/v1/handler.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

/// Packages whose messages get generated code (the well-known types come
/// from `pbjson-types`).
const GENERATED_PACKAGES: &[&str] = &[".spaceone", ".google.rpc", ".google.api"];

fn main() -> BuildResult<()> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=proto");

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(API_PROTOS)?;
    let encoded = compiler.encode_file_descriptor_set();
    fs::write(out_dir.join("descriptor.bin"), &encoded)?;

    let fds = prost_types::FileDescriptorSet::decode(encoded.as_slice())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Well-known types come from pbjson-types, which has their JSON mapping.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .extern_path(".google.protobuf", "::pbjson_types")
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        .emit_fields()
        .build(GENERATED_PACKAGES)?;

    let pool = DescriptorPool::decode(encoded.as_slice())?;
    let bindings = http_bindings(&pool)?;
    fs::write(out_dir.join("rest_routes.rs"), render_rest_glue(&bindings))?;
    fs::write(
        out_dir.join("openapi.json"),
        serde_json::to_string_pretty(&openapi_document(&pool, &bindings))?,
    )?;
    Ok(())
}

/// One `google.api.http` binding of an RPC method.
struct HttpBinding {
    http_method: &'static str,
    path: String,
    body: String,
    service_full_name: String,
    service_name: String,
    package: String,
    method_name: String,
    input: MessageDescriptor,
    output: MessageDescriptor,
    doc: String,
}

/// Reads every `google.api.http` option in the pool's services.
fn http_bindings(pool: &DescriptorPool) -> BuildResult<Vec<HttpBinding>> {
    let http_ext = pool
        .get_extension_by_name("google.api.http")
        .ok_or("google.api.http extension missing from proto/")?;
    let mut bindings = Vec::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if !options.has_extension(&http_ext) {
                continue;
            }
            if method.is_client_streaming() || method.is_server_streaming() {
                return Err(format!(
                    "{}: REST transcoding supports unary methods only",
                    method.full_name()
                )
                .into());
            }
            let rule = match options.get_extension(&http_ext).as_ref() {
                Value::Message(rule) => rule.clone(),
                _ => return Err("google.api.http is not a message".into()),
            };
            let mut rules = vec![rule.clone()];
            if let Some(Value::List(extra)) =
                rule.get_field_by_name("additional_bindings").as_deref()
            {
                rules.extend(extra.iter().filter_map(|v| v.as_message().cloned()));
            }
            for rule in rules {
                let (http_method, path) = rule_pattern(&rule).ok_or_else(|| {
                    format!("{}: http rule without a pattern", method.full_name())
                })?;
                let body = string_field(&rule, "body");
                if !(body.is_empty() || body == "*") {
                    return Err(format!(
                        "{}: only body \"*\" or no body is supported, not {body:?}",
                        method.full_name()
                    )
                    .into());
                }
                bindings.push(HttpBinding {
                    http_method,
                    path,
                    body,
                    service_full_name: service.full_name().to_owned(),
                    service_name: service.name().to_owned(),
                    package: service.package_name().to_owned(),
                    method_name: method.name().to_owned(),
                    input: method.input(),
                    output: method.output(),
                    doc: leading_comment(method_comment(&method)),
                });
            }
        }
    }
    Ok(bindings)
}

/// The leading comment of a method in its .proto file, if any.
fn method_comment(method: &prost_reflect::MethodDescriptor) -> Option<String> {
    let file = method.parent_file();
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    info.location
        .iter()
        .find(|loc| loc.path == method.path())
        .and_then(|loc| loc.leading_comments.clone())
}

fn leading_comment(comment: Option<String>) -> String {
    comment
        .map(|c| {
            c.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn rule_pattern(rule: &DynamicMessage) -> Option<(&'static str, String)> {
    for (field, verb) in [
        ("get", "GET"),
        ("put", "PUT"),
        ("post", "POST"),
        ("delete", "DELETE"),
        ("patch", "PATCH"),
    ] {
        if rule.has_field_by_name(field) {
            return Some((verb, string_field(rule, field)));
        }
    }
    None
}

/// The Rust path of a generated (or pbjson-types) message.
fn rust_type(message: &MessageDescriptor) -> String {
    let full = message.full_name();
    if let Some(name) = full.strip_prefix("google.protobuf.") {
        return format!("::pbjson_types::{name}");
    }
    let package = message.package_name();
    let name = &full[package.len() + 1..];
    format!(
        "crate::proto::{}::{}",
        package.replace('.', "::"),
        name.replace('.', "::")
    )
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn upper_camel(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Renders `rest_routes.rs`: the binding table and one handler per binding
/// that decodes the JSON body into the input message, calls the generated
/// tonic service trait, and encodes the output message.
fn render_rest_glue(bindings: &[HttpBinding]) -> String {
    let mut traits: BTreeMap<String, ()> = BTreeMap::new();
    for b in bindings {
        traits.insert(service_trait(b), ());
    }
    let bounds = traits.keys().cloned().collect::<Vec<_>>().join(" + ");
    let mut code = String::new();
    code.push_str("// @generated by build.rs from the google.api.http annotations in proto/.\n\n");
    code.push_str("/// Every REST route derived from a `google.api.http` annotation, with\n");
    code.push_str("/// the handler that serves it through the generated tonic service trait.\n");
    let _ = writeln!(
        code,
        "pub fn rest_routes<S>() -> ::std::vec::Vec<crate::transport::rest::RestRoute<S>>\n\
         where\n    S: {bounds} + Send + Sync + 'static,\n{{\n    ::std::vec!["
    );
    for b in bindings {
        let trait_path = service_trait(b);
        let method = snake_case(&b.method_name);
        let _ = writeln!(
            code,
            "        crate::transport::rest::RestRoute {{\n\
             \x20           binding: crate::transport::rest::RestBinding {{\n\
             \x20               http_method: {:?},\n\
             \x20               path: {:?},\n\
             \x20               body: {:?},\n\
             \x20               grpc_method: {:?},\n\
             \x20           }},\n\
             \x20           handler: |svc: ::std::sync::Arc<S>, call: crate::transport::rest::RestCall| {{\n\
             \x20               let future: crate::transport::rest::RestFuture = ::std::boxed::Box::pin(async move {{\n\
             \x20                   let request = call.decode::<{}>()?;\n\
             \x20                   let response = <S as {trait_path}>::{method}(&svc, request).await?;\n\
             \x20                   crate::transport::rest::RestCall::encode(response)\n\
             \x20               }});\n\
             \x20               future\n\
             \x20           }},\n\
             \x20       }},",
            b.http_method,
            b.path,
            b.body,
            format!("/{}/{}", b.service_full_name, b.method_name),
            rust_type(&b.input),
        );
    }
    code.push_str("    ]\n}\n");
    code
}

fn service_trait(b: &HttpBinding) -> String {
    format!(
        "crate::proto::{}::{}_server::{}",
        b.package.replace('.', "::"),
        snake_case(&b.service_name),
        upper_camel(&b.service_name)
    )
}

/// Builds the OpenAPI 3 document for the REST routes from the descriptors.
fn openapi_document(pool: &DescriptorPool, bindings: &[HttpBinding]) -> serde_json::Value {
    use serde_json::{Map, json};
    let mut paths = Map::new();
    let mut schemas = BTreeMap::new();
    for b in bindings {
        collect_schemas(&b.input, &mut schemas);
        collect_schemas(&b.output, &mut schemas);
        let operation = json!({
            "operationId": format!("{}_{}", b.service_full_name.replace('.', "_"), b.method_name),
            "summary": format!("{}.{}", b.service_name, b.method_name),
            "description": b.doc,
            "tags": [b.service_full_name],
            "requestBody": {
                "required": false,
                "content": {"application/json": {"schema": {"$ref": schema_ref(&b.input)}}}
            },
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": {"$ref": schema_ref(&b.output)}}}
                },
                "default": {
                    "description": "An error: google.rpc.Status with a google.rpc.ErrorInfo; \
                                    HTTP status per the grpc-gateway mapping.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}}
                }
            }
        });
        let entry = paths
            .entry(b.path.clone())
            .or_insert_with(|| serde_json::Value::Object(Map::new()));
        if let serde_json::Value::Object(map) = entry {
            map.insert(b.http_method.to_lowercase(), operation);
        }
    }
    if let Some(status) = pool.get_message_by_name("google.rpc.Status") {
        collect_schemas(&status, &mut schemas);
    }
    // google.protobuf.Any as it appears in error details: an ErrorInfo with "@type".
    schemas.insert(
        "google.protobuf.Any".to_owned(),
        json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true
        }),
    );
    if let Some(info) = pool.get_message_by_name("google.rpc.ErrorInfo") {
        collect_schemas(&info, &mut schemas);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "tokengate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SpaceONE identity v1 Token API over REST/JSON (routes derived from google.api.http annotations). \
                            The refresh token travels in `Authorization: Bearer <jwt>` or a `token` header."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    })
}

fn schema_ref(message: &MessageDescriptor) -> String {
    format!("#/components/schemas/{}", message.full_name())
}

fn collect_schemas(message: &MessageDescriptor, schemas: &mut BTreeMap<String, serde_json::Value>) {
    use serde_json::json;
    let name = message.full_name().to_owned();
    if schemas.contains_key(&name) {
        return;
    }
    let special = match name.as_str() {
        "google.protobuf.Struct" => Some(json!({"type": "object", "additionalProperties": true})),
        "google.protobuf.Empty" => Some(json!({"type": "object"})),
        "google.protobuf.Value" => Some(json!({})),
        "google.protobuf.Any" => Some(
            json!({"type": "object", "properties": {"@type": {"type": "string"}}, "additionalProperties": true}),
        ),
        _ => None,
    };
    if let Some(schema) = special {
        schemas.insert(name, schema);
        return;
    }
    schemas.insert(name.clone(), json!({}));
    let mut properties = serde_json::Map::new();
    let mut nested = Vec::new();
    for field in message.fields() {
        let mut schema = match field.kind() {
            Kind::Double | Kind::Float => json!({"type": "number"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "int64"})
            }
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "format": "byte"}),
            Kind::Enum(e) => {
                json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()})
            }
            Kind::Message(m) if field.is_map() => {
                let value = m.map_entry_value_field();
                let value_schema = match value.kind() {
                    Kind::Message(vm) => {
                        nested.push(vm.clone());
                        json!({"$ref": schema_ref(&vm)})
                    }
                    _ => json!({"type": "string"}),
                };
                json!({"type": "object", "additionalProperties": value_schema})
            }
            Kind::Message(m) => {
                nested.push(m.clone());
                json!({"$ref": schema_ref(&m)})
            }
        };
        if field.is_list() {
            schema = json!({"type": "array", "items": schema});
        }
        properties.insert(field.name().to_owned(), schema);
    }
    schemas.insert(name, json!({"type": "object", "properties": properties}));
    for m in nested {
        collect_schemas(&m, schemas);
    }
}
