//! gRPC server reflection (v1 and v1alpha) with every file under its
//! upstream name.
//!
//! tonic-health and tonic-reflection ship their descriptors under short file
//! names of their own (`health.proto`, `reflection_v1alpha.proto`,
//! `reflection_v1.proto`). SpaceONE's Python client (`spaceone-core` 1.x,
//! behind spacectl and every stock SpaceONE service) lists services through
//! reflection v1alpha and derives each one's Python module from the name of
//! the file that holds it, with the pattern `<package path>/(.*?).proto`: a
//! file that is not under its package path fails it ("list index out of
//! range") before any call. So the descriptors are served under the names
//! upstream gives them (`grpc/health/v1/health.proto`, …), renamed once per
//! process, and every `dependency` entry that names a renamed file follows.
//!
//! The renaming works on the wire bytes: everything but the file's name and
//! its dependency list is copied through untouched, so custom options (which
//! a decode and re-encode with `prost_types` would drop) survive.
//!
//! The v1alpha service lists the v1alpha reflection service and the v1
//! service the v1 one, as tonic-reflection does by default: the Python
//! client imports a module for every service v1alpha lists, and
//! grpcio-reflection 1.48 (SpaceONE 1.10's pin) has no v1 module.

use std::sync::OnceLock;

use bytes::Buf as _;
use prost::Message as _;
use prost::encoding::{
    DecodeContext, WireType, decode_key, decode_varint, encode_key, encode_varint, skip_field,
};
use tonic_reflection::server::{Builder, Error, v1, v1alpha};

/// The descriptor files served under another name than their upstream one:
/// (name in the bundled descriptor set, upstream name).
pub const UPSTREAM_FILE_NAMES: &[(&str, &str)] = &[
    ("health.proto", "grpc/health/v1/health.proto"),
    (
        "reflection_v1alpha.proto",
        "grpc/reflection/v1alpha/reflection.proto",
    ),
    ("reflection_v1.proto", "grpc/reflection/v1/reflection.proto"),
];

/// Packages whose services reflection v1alpha does not list. SpaceONE's
/// Python client (spaceone-core 1.x) lists services through v1alpha and
/// imports a Python module for every one it sees before any call; it has
/// modules for SpaceONE's packages, health and reflection only, so listing
/// `tokengate.session.v1.Session` there made every SpaceONE client fail to
/// connect ("No module named 'tokengate'"). Reflection v1 (what `buf curl`
/// and grpcurl ask first) lists them.
pub const NOT_LISTED_BY_V1ALPHA: &[&str] = &["tokengate."];

/// The full names of the services in an encoded descriptor set.
fn service_names(set: &[u8]) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for file in prost_types::FileDescriptorSet::decode(set)?.file {
        let package = file.package().to_owned();
        for service in file.service {
            names.push(if package.is_empty() {
                service.name().to_owned()
            } else {
                format!("{package}.{}", service.name())
            });
        }
    }
    Ok(names)
}

// `FileDescriptorSet.file` and, inside a file, `name` and `dependency`.
const SET_FILE: u32 = 1;
const FILE_NAME: u32 = 1;
const FILE_DEPENDENCY: u32 = 3;

/// The descriptor sets reflection serves, each file under its upstream name.
#[derive(Debug)]
pub struct Descriptors {
    /// tokengate's own protos (already under their upstream names).
    api: Vec<u8>,
    health: Vec<u8>,
    reflection_v1: Vec<u8>,
    reflection_v1alpha: Vec<u8>,
}

/// The renamed descriptor sets, computed on first use. Their inputs are
/// constants compiled into the binary, so the outcome (an error included)
/// is the same every time and is kept.
pub fn descriptors() -> Result<&'static Descriptors, Error> {
    static DESCRIPTORS: OnceLock<Result<Descriptors, String>> = OnceLock::new();
    DESCRIPTORS
        .get_or_init(|| {
            let renamed =
                |set: &[u8]| rename_files(set, UPSTREAM_FILE_NAMES).map_err(|e| e.to_string());
            Ok(Descriptors {
                api: renamed(crate::proto::FILE_DESCRIPTOR_SET)?,
                health: renamed(tonic_health::pb::FILE_DESCRIPTOR_SET)?,
                reflection_v1: renamed(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)?,
                reflection_v1alpha: renamed(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)?,
            })
        })
        .as_ref()
        .map_err(|e| Error::InvalidFileDescriptorSet(e.clone()))
}

impl Descriptors {
    /// Reflection v1 over the API, health and v1 reflection descriptors.
    pub fn build_v1(
        &'static self,
    ) -> Result<v1::ServerReflectionServer<impl v1::ServerReflection>, Error> {
        self.builder(&self.reflection_v1).build_v1()
    }

    /// Reflection v1alpha over the API, health and v1alpha reflection
    /// descriptors, listing every service but tokengate's own (see
    /// [`NOT_LISTED_BY_V1ALPHA`]); their files are still served by name and
    /// symbol.
    pub fn build_v1alpha(
        &'static self,
    ) -> Result<v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection>, Error> {
        let mut builder = self.builder(&self.reflection_v1alpha);
        for set in [&self.api, &self.health, &self.reflection_v1alpha] {
            for name in service_names(set)? {
                if !NOT_LISTED_BY_V1ALPHA.iter().any(|p| name.starts_with(p)) {
                    builder = builder.with_service_name(name);
                }
            }
        }
        builder.build_v1alpha()
    }

    fn builder(&'static self, reflection: &'static [u8]) -> Builder<'static> {
        // tonic-reflection's own inclusion would add its descriptor under
        // the bundled name: the renamed one is registered instead.
        Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(&self.api)
            .register_encoded_file_descriptor_set(&self.health)
            .register_encoded_file_descriptor_set(reflection)
    }

    /// Every method of `services` (full service names) as a gRPC path,
    /// `/package.Service/method`, in the order given. A service no
    /// descriptor describes is an error: reflection would not show it.
    pub fn methods_of(&self, services: &[&str]) -> Result<Vec<String>, Error> {
        let mut described = Vec::new();
        for set in [
            &self.api,
            &self.health,
            &self.reflection_v1,
            &self.reflection_v1alpha,
        ] {
            for file in prost_types::FileDescriptorSet::decode(set.as_slice())?.file {
                let package = file.package().to_owned();
                for service in file.service {
                    let full = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    described.push((full, service.method));
                }
            }
        }
        let mut paths = Vec::new();
        for &name in services {
            let (full, methods) =
                described
                    .iter()
                    .find(|(full, _)| full == name)
                    .ok_or_else(|| {
                        Error::InvalidFileDescriptorSet(format!("no descriptor describes {name}"))
                    })?;
            paths.extend(methods.iter().map(|m| format!("/{full}/{}", m.name())));
        }
        Ok(paths)
    }
}

/// Why a descriptor set could not be renamed.
#[derive(Debug, thiserror::Error)]
enum RenameError {
    #[error("decoding a descriptor set: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("a length prefix runs past the end of its message")]
    Truncated,
    #[error("a file name or dependency is not UTF-8")]
    NotUtf8,
}

/// `set` (an encoded FileDescriptorSet) with every file name and
/// dependency found in `renames` replaced by its new name; all other bytes
/// as they were.
fn rename_files(set: &[u8], renames: &[(&str, &str)]) -> Result<Vec<u8>, RenameError> {
    let mut out = Vec::with_capacity(set.len() + 64);
    let mut rest = set;
    while rest.has_remaining() {
        let field_start = rest;
        let (tag, wire_type) = decode_key(&mut rest)?;
        if tag == SET_FILE && wire_type == WireType::LengthDelimited {
            let file = take_delimited(&mut rest)?;
            let renamed = rename_file(file, renames)?;
            encode_key(SET_FILE, WireType::LengthDelimited, &mut out);
            encode_varint(renamed.len() as u64, &mut out);
            out.extend_from_slice(&renamed);
        } else {
            skip_field(wire_type, tag, &mut rest, DecodeContext::default())?;
            out.extend_from_slice(&field_start[..field_start.len() - rest.len()]);
        }
    }
    Ok(out)
}

/// One encoded FileDescriptorProto, renamed as [`rename_files`] says.
fn rename_file(file: &[u8], renames: &[(&str, &str)]) -> Result<Vec<u8>, RenameError> {
    let mut out = Vec::with_capacity(file.len() + 64);
    let mut rest = file;
    while rest.has_remaining() {
        let field_start = rest;
        let (tag, wire_type) = decode_key(&mut rest)?;
        if (tag == FILE_NAME || tag == FILE_DEPENDENCY) && wire_type == WireType::LengthDelimited {
            let raw = take_delimited(&mut rest)?;
            let name = std::str::from_utf8(raw).map_err(|_| RenameError::NotUtf8)?;
            let name = renames
                .iter()
                .find(|(from, _)| *from == name)
                .map_or(name, |(_, to)| to);
            encode_key(tag, WireType::LengthDelimited, &mut out);
            encode_varint(name.len() as u64, &mut out);
            out.extend_from_slice(name.as_bytes());
        } else {
            skip_field(wire_type, tag, &mut rest, DecodeContext::default())?;
            out.extend_from_slice(&field_start[..field_start.len() - rest.len()]);
        }
    }
    Ok(out)
}

/// The payload of a length-delimited field whose key was just read.
fn take_delimited<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], RenameError> {
    let len = usize::try_from(decode_varint(rest)?).map_err(|_| RenameError::Truncated)?;
    if len > rest.len() {
        return Err(RenameError::Truncated);
    }
    let (payload, after) = rest.split_at(len);
    *rest = after;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use prost_types::{
        FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto, ServiceDescriptorProto,
    };

    use super::*;

    fn files(set: &[u8]) -> Vec<FileDescriptorProto> {
        FileDescriptorSet::decode(set)
            .expect("a descriptor set")
            .file
    }

    fn all_sets(d: &Descriptors) -> [&[u8]; 4] {
        [&d.api, &d.health, &d.reflection_v1, &d.reflection_v1alpha]
    }

    #[test]
    fn every_file_is_under_its_package_path() {
        let d = descriptors().expect("renamed");
        for set in all_sets(d) {
            for file in files(set) {
                let dir = format!("{}/", file.package().replace('.', "/"));
                assert!(
                    file.name().starts_with(&dir) && file.name().ends_with(".proto"),
                    "{} is not under {dir}",
                    file.name()
                );
            }
        }
    }

    #[test]
    fn the_bundled_names_are_the_ones_renamed() {
        // A tonic upgrade that renames its descriptors shows here first.
        let bundled = |set: &[u8]| {
            files(set)
                .into_iter()
                .map(|f| f.name().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            bundled(tonic_health::pb::FILE_DESCRIPTOR_SET),
            ["health.proto"]
        );
        assert_eq!(
            bundled(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET),
            ["reflection_v1alpha.proto"]
        );
        assert_eq!(
            bundled(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET),
            ["reflection_v1.proto"]
        );
        let d = descriptors().expect("renamed");
        assert_eq!(files(&d.health)[0].name(), "grpc/health/v1/health.proto");
        assert_eq!(
            files(&d.reflection_v1alpha)[0].name(),
            "grpc/reflection/v1alpha/reflection.proto"
        );
        assert_eq!(
            files(&d.reflection_v1)[0].name(),
            "grpc/reflection/v1/reflection.proto"
        );
    }

    #[test]
    fn renaming_keeps_every_other_byte() {
        // The API set needs no renaming: it comes back byte for byte, custom
        // options (google.api.http) and source info included.
        let d = descriptors().expect("renamed");
        assert_eq!(d.api, crate::proto::FILE_DESCRIPTOR_SET);
        // The renamed sets differ from the bundled ones in the name only.
        let mut renamed = files(&d.health);
        let bundled = files(tonic_health::pb::FILE_DESCRIPTOR_SET);
        renamed[0].name = bundled[0].name.clone();
        assert_eq!(renamed, bundled);
    }

    #[test]
    fn dependencies_follow_the_renamed_files() {
        let dependent = FileDescriptorProto {
            name: Some("app/v1/app.proto".into()),
            package: Some("app.v1".into()),
            dependency: vec!["health.proto".into(), "google/protobuf/empty.proto".into()],
            service: vec![ServiceDescriptorProto {
                name: Some("App".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("run".into()),
                    ..Default::default()
                }],
                options: None,
            }],
            ..Default::default()
        };
        let health = FileDescriptorProto {
            name: Some("health.proto".into()),
            package: Some("grpc.health.v1".into()),
            ..Default::default()
        };
        let set = FileDescriptorSet {
            file: vec![dependent.clone(), health],
        }
        .encode_to_vec();
        let renamed = files(&rename_files(&set, UPSTREAM_FILE_NAMES).expect("renamed"));
        assert_eq!(renamed[0].name(), "app/v1/app.proto");
        assert_eq!(
            renamed[0].dependency,
            ["grpc/health/v1/health.proto", "google/protobuf/empty.proto"]
        );
        assert_eq!(renamed[0].service, dependent.service);
        assert_eq!(renamed[1].name(), "grpc/health/v1/health.proto");
    }

    #[test]
    fn a_broken_set_is_an_error_not_a_panic() {
        let set = FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("health.proto".into()),
                ..Default::default()
            }],
        }
        .encode_to_vec();
        for cut in 1..set.len() {
            assert!(
                rename_files(&set[..cut], UPSTREAM_FILE_NAMES).is_err(),
                "cut at {cut}"
            );
        }
        // The file's name claims more bytes than the file holds.
        let mut lying = set.clone();
        lying[3] = 0x7f;
        assert!(rename_files(&lying, UPSTREAM_FILE_NAMES).is_err());
    }

    #[test]
    fn methods_of_lists_paths_in_the_order_asked() {
        let d = descriptors().expect("renamed");
        let paths = d
            .methods_of(&["spaceone.api.identity.v1.Domain", "grpc.health.v1.Health"])
            .expect("described");
        assert_eq!(
            paths,
            [
                "/spaceone.api.identity.v1.Domain/get_public_key",
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
            ]
        );
        assert!(d.methods_of(&["nope.Svc"]).is_err());
    }
}
