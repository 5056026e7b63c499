//! Compiles `proto/` with protox (pure Rust: no system `protoc`) and derives
//! everything the transports need from the one descriptor set:
//!
//! - prost messages and tonic server/client stubs (tonic-prost-build),
//! - proto3-JSON serde impls (pbjson-build; proto field names on output),
//! - the REST glue: one route per `google.api.http` annotation, so a newly
//!   annotated method is served over REST with no hand-written routing,
//! - the OpenAPI 3 document served at `/openapi.json`, stating what the
//!   server enforces: required fields (`google.api.field_behavior`),
//!   bounds and credentials (`tokengate.api` rules), every error answer,
//! - the encoded descriptor set, for gRPC server reflection.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value,
};

type BuildResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The proto files that define tokengate's public API.
const API_PROTOS: &[&str] = &[
    "spaceone/api/identity/v1/token.proto",
    "spaceone/api/identity/v1/domain.proto",
    "spaceone/api/core/v1/handler.proto",
    "tokengate/session/v1/session.proto",
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

/// Packages whose messages get generated code (the well-known types come
/// from `pbjson-types`).
const GENERATED_PACKAGES: &[&str] = &[
    ".spaceone",
    ".tokengate.session",
    ".google.rpc",
    ".google.api",
];

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
        // The REST decoder skips unknown fields for every type anyway,
        // pbjson-types' included (src/transport/unknown_fields.rs); this keeps
        // our impls lenient for callers that use serde_json directly.
        .ignore_unknown_fields()
        .emit_fields()
        .build(GENERATED_PACKAGES)?;

    let pool = DescriptorPool::decode(encoded.as_slice())?;
    let options = ApiOptions::from_pool(&pool)?;
    let bindings = http_bindings(&pool, &options)?;
    fs::write(out_dir.join("rest_routes.rs"), render_rest_glue(&bindings))?;
    fs::write(
        out_dir.join("openapi.json"),
        serde_json::to_string_pretty(&openapi_document(&pool, &options, &bindings)?)?,
    )?;
    Ok(())
}

/// One `google.api.http` binding of an RPC method.
struct HttpBinding {
    http_method: &'static str,
    path: String,
    service_full_name: String,
    service_name: String,
    package: String,
    method_name: String,
    input: MessageDescriptor,
    output: MessageDescriptor,
    doc: String,
    /// Security schemes the method reads (`tokengate.api.method_rules`).
    credentials: Vec<String>,
}

/// Reads every `google.api.http` option in the pool's services.
fn http_bindings(pool: &DescriptorPool, api: &ApiOptions) -> BuildResult<Vec<HttpBinding>> {
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
                    service_full_name: service.full_name().to_owned(),
                    service_name: service.name().to_owned(),
                    package: service.package_name().to_owned(),
                    method_name: method.name().to_owned(),
                    input: method.input(),
                    output: method.output(),
                    doc: leading_comment(method_comment(&method)),
                    credentials: api.credentials(&method)?,
                });
            }
        }
    }
    Ok(bindings)
}

/// The leading comment of a method in its .proto file, if any.
fn method_comment(method: &MethodDescriptor) -> Option<String> {
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

/// The option extensions the OpenAPI document is derived from, besides
/// `google.api.http`: what the server enforces beyond the proto types.
struct ApiOptions {
    /// `google.api.field_behavior` (AIP-203).
    field_behavior: ExtensionDescriptor,
    /// The number of `google.api.FieldBehavior.REQUIRED`.
    required: i32,
    /// `tokengate.api.field_rules`.
    field_rules: ExtensionDescriptor,
    /// `tokengate.api.method_rules`.
    method_rules: ExtensionDescriptor,
}

/// The security schemes of the document: the two ways a token travels
/// (`crate::transport::grpc::refresh_token` reads both), and the client
/// secret of an introspection client. Methods name them in
/// `tokengate.api.method_rules.credentials`.
fn security_schemes() -> serde_json::Value {
    serde_json::json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "`Authorization: Bearer <jwt>`: the refresh token for Token.refresh, \
                            the access token for the Session calls (any token for Session.revoke)."
        },
        "token": {
            "type": "apiKey",
            "in": "header",
            "name": "token",
            "description": "The token in a `token` header (SpaceONE's metadata key)."
        },
        "basic": {
            "type": "http",
            "scheme": "basic",
            "description": "`Authorization: Basic base64(id:secret)` of a client listed in \
                            `introspection.clients`."
        }
    })
}

impl ApiOptions {
    fn from_pool(pool: &DescriptorPool) -> BuildResult<Self> {
        let extension = |name: &str| {
            pool.get_extension_by_name(name)
                .ok_or_else(|| format!("{name} extension missing from proto/"))
        };
        let required = pool
            .get_enum_by_name("google.api.FieldBehavior")
            .and_then(|e| e.get_value_by_name("REQUIRED"))
            .ok_or("google.api.FieldBehavior.REQUIRED missing from proto/")?
            .number();
        Ok(Self {
            field_behavior: extension("google.api.field_behavior")?,
            required,
            field_rules: extension("tokengate.api.field_rules")?,
            method_rules: extension("tokengate.api.method_rules")?,
        })
    }

    fn is_required(&self, field: &FieldDescriptor) -> bool {
        let options = field.options();
        if !options.has_extension(&self.field_behavior) {
            return false;
        }
        match options.get_extension(&self.field_behavior).as_ref() {
            Value::List(behaviors) => behaviors
                .iter()
                .any(|b| b.as_enum_number() == Some(self.required)),
            _ => false,
        }
    }

    fn field_rules(&self, field: &FieldDescriptor) -> Option<DynamicMessage> {
        let options = field.options();
        if !options.has_extension(&self.field_rules) {
            return None;
        }
        options
            .get_extension(&self.field_rules)
            .as_message()
            .cloned()
    }

    /// The security schemes a method accepts (any one will do).
    fn credentials(&self, method: &MethodDescriptor) -> BuildResult<Vec<String>> {
        let options = method.options();
        if !options.has_extension(&self.method_rules) {
            return Ok(Vec::new());
        }
        let rules = options.get_extension(&self.method_rules);
        let names: Vec<String> = match rules
            .as_message()
            .and_then(|m| m.get_field_by_name("credentials"))
            .as_deref()
        {
            Some(Value::List(names)) => names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let schemes = security_schemes();
        if let Some(unknown) = names.iter().find(|n| schemes.get(n.as_str()).is_none()) {
            return Err(format!(
                "{}: method_rules names the unknown security scheme {unknown:?}",
                method.full_name()
            )
            .into());
        }
        Ok(names)
    }
}

/// The HTTP statuses every REST operation may answer besides 200, each
/// with the google.rpc.Status body, and what produces it. Every operation
/// declares them all: the status comes from the grpc-gateway mapping of the
/// gRPC code (`src/transport/status.rs`) or from the stack around the
/// methods (413, 504), not from the method.
const ERROR_RESPONSES: &[(&str, &str)] = &[
    (
        "400",
        "INVALID_ARGUMENT. A body that is not JSON or has a field of the wrong type \
         (ERROR_INVALID_PARAMETER, naming the field); a required field missing or empty \
         (ERROR_REQUIRED_PARAMETER, checked in the order credentials, domain_id, user_id); a \
         value outside the bounds this document gives (ERROR_INVALID_PARAMETER); an unknown \
         domain (ERROR_NOT_FOUND, as SpaceONE answers).",
    ),
    (
        "401",
        "UNAUTHENTICATED. A wrong password or unknown user (ERROR_AUTHENTICATION_FAILURE), \
         credentials without a password (ERROR_INVALID_CREDENTIALS), a disabled domain or user, \
         refresh_count above the maximum (ERROR_MAX_REFRESH_COUNT); at refresh, a missing, \
         spent, revoked or invalid refresh token; for the Session calls, a missing, invalid or \
         expired access token or one whose session has ended, and for Session.introspect a \
         caller that is no configured client or service account.",
    ),
    (
        "403",
        "PERMISSION_DENIED: the caller may not do this (ERROR_PERMISSION_DENIED): \
         Session.revoke_user by a user who is not the domain's owner, Session.introspect \
         by an account not configured for it.",
    ),
    (
        "413",
        "RESOURCE_EXHAUSTED: the body is larger than limits.max_body_bytes \
         (ERROR_REQUEST_TOO_LARGE).",
    ),
    (
        "429",
        "RESOURCE_EXHAUSTED: too many failed logins (ERROR_LOGIN_LOCKED) or the password \
         checks are saturated (ERROR_TOO_MANY_REQUESTS); retry after `Retry-After` seconds.",
    ),
    (
        "500",
        "INTERNAL: a deployment problem, e.g. a domain without signing keys (ERROR_INTERNAL_API).",
    ),
    (
        "503",
        "UNAVAILABLE: the refresh-token store is unreachable (ERROR_UNAVAILABLE); keep the \
         refresh token and retry after `Retry-After` seconds.",
    ),
    (
        "504",
        "DEADLINE_EXCEEDED: the call outlived the server's deadline \
         (server.default_timeout_ms; ERROR_DEADLINE_EXCEEDED).",
    ),
];

fn error_responses() -> serde_json::Value {
    use serde_json::json;
    let status =
        json!({"application/json": {"schema": {"$ref": "#/components/schemas/google.rpc.Status"}}});
    let mut responses = serde_json::Map::new();
    for (code, description) in ERROR_RESPONSES {
        let mut response = json!({"description": description, "content": status});
        let header = match *code {
            // Every 401 carries it (src/transport/status.rs).
            "401" => Some(("WWW-Authenticate", true, "`Bearer realm=\"tokengate\"`")),
            "429" | "503" => Some((
                "Retry-After",
                false,
                "Seconds after which a retry may succeed.",
            )),
            _ => None,
        };
        if let Some((name, required, description)) = header {
            response["headers"] = json!({name: {
                "description": description,
                "required": required,
                "schema": {"type": "string"}
            }});
        }
        responses.insert((*code).to_owned(), response);
    }
    serde_json::Value::Object(responses)
}

/// Builds the OpenAPI 3 document for the REST routes from the descriptors.
///
/// Bounds that follow the configuration are written as
/// `x-tokengate-maximum-setting: "<section.key>"`; the server completes
/// them with the running value (`src/transport/openapi.rs`).
fn openapi_document(
    pool: &DescriptorPool,
    options: &ApiOptions,
    bindings: &[HttpBinding],
) -> BuildResult<serde_json::Value> {
    use serde_json::{Map, json};
    let mut paths = Map::new();
    let mut schemas = BTreeMap::new();
    for b in bindings {
        collect_schemas(&b.input, options, &mut schemas)?;
        collect_schemas(&b.output, options, &mut schemas)?;
        let mut responses = error_responses();
        responses["200"] = json!({
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": schema_ref(&b.output)}}}
        });
        // A message with a required field cannot be left out: an empty body
        // reads as `{}`, which lacks it.
        let body_required = b.input.fields().any(|f| options.is_required(&f));
        let mut operation = json!({
            "operationId": format!("{}_{}", b.service_full_name.replace('.', "_"), b.method_name),
            "summary": format!("{}.{}", b.service_name, b.method_name),
            "description": b.doc,
            "tags": [b.service_full_name],
            "requestBody": {
                "required": body_required,
                "content": {"application/json": {"schema": {"$ref": schema_ref(&b.input)}}}
            },
            "responses": responses
        });
        if !b.credentials.is_empty() {
            operation["security"] = b
                .credentials
                .iter()
                .map(|scheme| json!({scheme.as_str(): []}))
                .collect();
        }
        let entry = paths
            .entry(b.path.clone())
            .or_insert_with(|| serde_json::Value::Object(Map::new()));
        if let serde_json::Value::Object(map) = entry {
            map.insert(b.http_method.to_lowercase(), operation);
        }
    }
    if let Some(status) = pool.get_message_by_name("google.rpc.Status") {
        collect_schemas(&status, options, &mut schemas)?;
    }
    if let Some(info) = pool.get_message_by_name("google.rpc.ErrorInfo") {
        collect_schemas(&info, options, &mut schemas)?;
    }
    Ok(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "tokengate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "SpaceONE identity v1 Token API over REST/JSON (routes derived from google.api.http annotations). \
                            Bodies are proto3 JSON: each field may also be sent under its JSON name (`userId`), unknown \
                            fields are ignored, and any Content-Type is read as JSON. \
                            The refresh token travels in `Authorization: Bearer <jwt>` or a `token` header."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": security_schemes()
        }
    }))
}

fn schema_ref(message: &MessageDescriptor) -> String {
    format!("#/components/schemas/{}", message.full_name())
}

/// The leading comment of a field in its .proto file, if any.
fn field_comment(field: &FieldDescriptor) -> String {
    let file = field.parent_file();
    let comment = file
        .file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|loc| loc.path == field.path()))
        .and_then(|loc| loc.leading_comments.clone());
    leading_comment(comment)
}

/// Adds what the field's options say the server enforces to its schema:
/// `minLength`/`minItems`/`minProperties` for a REQUIRED field (proto3 sends
/// no difference between empty and absent, and the server refuses both),
/// and the bounds of `tokengate.api.field_rules`.
fn apply_field_rules(
    field: &FieldDescriptor,
    options: &ApiOptions,
    schema: &mut serde_json::Value,
) -> BuildResult<()> {
    let refuse = |what: &str| -> Box<dyn std::error::Error> {
        format!(
            "{}: {what} cannot be stated in OpenAPI for this field's type",
            field.full_name()
        )
        .into()
    };
    let is_integer = matches!(
        field.kind(),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32
    ) && !field.is_list();
    if options.is_required(field) {
        if field.is_map() {
            schema["minProperties"] = 1.into();
        } else if field.is_list() {
            schema["minItems"] = 1.into();
        } else {
            match field.kind() {
                Kind::String | Kind::Bytes => schema["minLength"] = 1.into(),
                // A message is present or absent; `required` says it all.
                Kind::Message(_) => {}
                // A required number or bool would have to exclude its zero.
                _ => return Err(refuse("REQUIRED")),
            }
        }
    }
    let Some(rules) = options.field_rules(field) else {
        return Ok(());
    };
    for (bound, key) in [("minimum", "minimum"), ("maximum", "maximum")] {
        if rules.has_field_by_name(bound) {
            if !is_integer {
                return Err(refuse(bound));
            }
            if let Some(value) = rules.get_field_by_name(bound).and_then(|v| v.as_i64()) {
                schema[key] = value.into();
            }
        }
    }
    let setting = string_field(&rules, "maximum_setting");
    if !setting.is_empty() {
        if !is_integer {
            return Err(refuse("maximum_setting"));
        }
        if rules.has_field_by_name("maximum") {
            return Err(format!(
                "{}: give maximum or maximum_setting, not both",
                field.full_name()
            )
            .into());
        }
        schema[OPENAPI_SETTING_KEY] = setting.into();
    }
    if let Some(Value::List(allowed)) = rules.get_field_by_name("allowed").as_deref()
        && !allowed.is_empty()
    {
        if field.kind() != Kind::String || field.is_list() {
            return Err(refuse("allowed"));
        }
        schema["enum"] = allowed
            .iter()
            .filter_map(|v| v.as_str().map(|s| serde_json::Value::from(s.to_owned())))
            .collect();
    }
    if let Some(Value::List(keys)) = rules.get_field_by_name("string_keys").as_deref()
        && !keys.is_empty()
    {
        let is_struct =
            matches!(field.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.Struct");
        if !is_struct || field.is_list() {
            return Err(refuse("string_keys"));
        }
        let properties: serde_json::Map<String, serde_json::Value> = keys
            .iter()
            .filter_map(|k| k.as_str())
            .map(|k| (k.to_owned(), serde_json::json!({"type": "string"})))
            .collect();
        schema["properties"] = properties.into();
    }
    Ok(())
}

/// OpenAPI 3.0 ignores the siblings of a `$ref`: a field schema that has
/// its own keywords (a description) refers to its message through `allOf`.
fn with_ref_siblings(schema: serde_json::Value) -> serde_json::Value {
    match schema {
        serde_json::Value::Object(mut map) if map.len() > 1 && map.contains_key("$ref") => {
            let reference = map.remove("$ref").unwrap_or_default();
            map.insert(
                "allOf".to_owned(),
                serde_json::json!([{ "$ref": reference }]),
            );
            serde_json::Value::Object(map)
        }
        other => other,
    }
}

/// The largest integer a double holds exactly (2^53 - 1).
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Another message of the pool `message` belongs to.
fn message_in(message: &MessageDescriptor, name: &str) -> BuildResult<MessageDescriptor> {
    Ok(message
        .parent_pool()
        .get_message_by_name(name)
        .ok_or_else(|| format!("{name} missing from proto/"))?)
}

/// The schema key under which a bound's configuration key is written; the
/// server replaces it with `maximum` (src/transport/openapi.rs reads the
/// same name).
const OPENAPI_SETTING_KEY: &str = "x-tokengate-maximum-setting";

fn collect_schemas(
    message: &MessageDescriptor,
    options: &ApiOptions,
    schemas: &mut BTreeMap<String, serde_json::Value>,
) -> BuildResult<()> {
    use serde_json::json;
    let name = message.full_name().to_owned();
    if schemas.contains_key(&name) {
        return Ok(());
    }
    let value_ref = json!({"$ref": "#/components/schemas/google.protobuf.Value"});
    let special = match name.as_str() {
        "google.protobuf.Struct" => {
            collect_schemas(
                &message_in(message, "google.protobuf.Value")?,
                options,
                schemas,
            )?;
            Some(json!({"type": "object", "additionalProperties": value_ref}))
        }
        "google.protobuf.ListValue" => {
            collect_schemas(
                &message_in(message, "google.protobuf.Value")?,
                options,
                schemas,
            )?;
            Some(json!({"type": "array", "items": value_ref}))
        }
        "google.protobuf.Empty" => Some(json!({"type": "object"})),
        // Any JSON value; pbjson-types holds numbers as doubles and refuses
        // an integer a double cannot hold exactly (beyond 2^53 - 1), so the
        // document bounds numbers there (a float beyond is refused by the
        // document though accepted: stricter is still true).
        "google.protobuf.Value" => Some(json!({
            "description": "Any JSON value; numbers within ±(2^53 - 1), which a double holds exactly.",
            "anyOf": [
                {"type": "number", "minimum": -MAX_SAFE_INTEGER, "maximum": MAX_SAFE_INTEGER},
                {"type": "string"},
                {"type": "boolean"},
                {"type": "array", "items": value_ref},
                {"type": "object", "nullable": true, "additionalProperties": value_ref}
            ]
        })),
        // As it appears in error details: an ErrorInfo with "@type".
        "google.protobuf.Any" => Some(json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true
        })),
        _ => None,
    };
    if let Some(schema) = special {
        schemas.insert(name, schema);
        return Ok(());
    }
    schemas.insert(name.clone(), json!({}));
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
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
        apply_field_rules(&field, options, &mut schema)?;
        let comment = field_comment(&field);
        if !comment.is_empty() {
            schema["description"] = comment.into();
        }
        if options.is_required(&field) {
            required.push(field.name().to_owned());
        }
        properties.insert(field.name().to_owned(), with_ref_siblings(schema));
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = required.into();
    }
    schemas.insert(name, schema);
    for m in nested {
        collect_schemas(&m, options, schemas)?;
    }
    Ok(())
}
