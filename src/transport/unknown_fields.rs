//! Unknown JSON fields are skipped in every message, as in binary protobuf
//! and grpc-gateway (SPEC §1).
//!
//! Our own messages' serde impls are generated with pbjson's
//! `ignore_unknown_fields`, but the well-known types come ready-made from
//! `pbjson-types`, generated without it: `google.protobuf.Empty` (refresh's
//! request) refused `{"x": 1}` with "unknown field". We cannot change those
//! impls, and a list of the affected types would miss the next one, so the
//! REST decoder wraps the JSON deserializer instead: pbjson's impls read a
//! message through `deserialize_struct`, which names every key the message
//! knows (proto and JSON names); [`IgnoreUnknownFields`] drops any other key
//! with its value before the message's visitor sees it, at every depth.
//! Maps (`google.protobuf.Struct`, map fields) are read through
//! `deserialize_map` and keep all their keys. Errors keep their shape: a
//! wrong type still fails where it is, so the path-tracking wrapper around
//! this one names the field.

use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, IntoDeserializer as _, MapAccess,
    SeqAccess, Visitor,
};

/// A deserializer that skips map keys a struct does not declare, at every
/// depth. See the module documentation.
#[derive(Debug)]
pub struct IgnoreUnknownFields<D>(pub D);

/// Deserializer methods that only pass the visitor on, wrapped.
macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap::new(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for IgnoreUnknownFields<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap::new(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap::new(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap::new(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0
            .deserialize_tuple_struct(name, len, Wrap::new(visitor))
    }

    /// The one place the known keys are named: the map this struct is read
    /// from drops the others.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Wrap {
            inner: visitor,
            fields: Some(fields),
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap::new(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A visitor that hands the inner visitor wrapped access to what it visits,
/// so nested values are read through [`IgnoreUnknownFields`] too.
struct Wrap<V> {
    inner: V,
    /// The keys of the struct being read, when it is one.
    fields: Option<&'static [&'static str]>,
}

impl<V> Wrap<V> {
    fn new(inner: V) -> Self {
        Self {
            inner,
            fields: None,
        }
    }
}

/// Visitor methods for plain values: passed on unchanged.
macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: serde::de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.inner.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(formatter)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_string(String) visit_bytes(&[u8])
        visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(IgnoreUnknownFields(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner
            .visit_newtype_struct(IgnoreUnknownFields(deserializer))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(Seq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(Map {
            inner: map,
            fields: self.fields,
        })
    }

    /// Externally tagged enums (pbjson maps no proto construct to one:
    /// oneofs are plain fields) are passed on as they are.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(data)
    }
}

/// A seed that deserializes through [`IgnoreUnknownFields`].
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(IgnoreUnknownFields(deserializer))
    }
}

struct Seq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

struct Map<A> {
    inner: A,
    fields: Option<&'static [&'static str]>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(fields) = self.fields else {
            return self.inner.next_key_seed(seed);
        };
        // Read each key as text first, to tell whether the struct knows it.
        while let Some(key) = self.inner.next_key::<String>()? {
            if fields.contains(&key.as_str()) {
                return seed.deserialize(key.into_deserializer()).map(Some);
            }
            self.inner.next_value::<IgnoredAny>()?;
        }
        Ok(None)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        // Skipped keys make the inner count an overestimate.
        self.fields.map_or_else(|| self.inner.size_hint(), |_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::identity_v1::IssueTokenRequest;

    fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        let mut de = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(IgnoreUnknownFields(&mut de))
            .map_err(|e| format!("{} at {}", e.inner(), e.path()))
    }

    #[test]
    fn well_known_types_skip_unknown_keys() {
        let empty: pbjson_types::Empty =
            decode(r#"{"x": 1, "y": {"z": [1, {"w": null}]}}"#).expect("Empty");
        assert_eq!(empty, pbjson_types::Empty {});
        let any: pbjson_types::Any = decode(r#"{"typeUrl": "t", "later": true}"#).expect("Any");
        assert_eq!(any.type_url, "t");
        // Without the wrapper, pbjson-types refuses them.
        assert!(serde_json::from_str::<pbjson_types::Empty>(r#"{"x": 1}"#).is_err());
    }

    #[test]
    fn maps_keep_every_key_and_known_fields_still_decode() {
        let request: IssueTokenRequest = decode(
            r#"{"userId": "u", "future": {"a": 1}, "credentials": {"password": "p", "otp": 7}}"#,
        )
        .expect("request");
        assert_eq!(request.user_id, "u");
        let credentials = request.credentials.expect("credentials");
        assert_eq!(credentials.fields.len(), 2, "a Struct keeps all its keys");
    }

    #[test]
    fn wrong_types_are_still_refused_at_their_path() {
        let refused = decode::<IssueTokenRequest>(r#"{"x": [1], "timeout": "soon"}"#)
            .expect_err("a wrong type");
        assert!(refused.ends_with("at timeout"), "{refused}");
        let refused = decode::<pbjson_types::Empty>("[]").expect_err("not an object");
        assert!(refused.contains("google.protobuf.Empty"), "{refused}");
        // A duplicate known field is still the message's business.
        assert!(decode::<IssueTokenRequest>(r#"{"user_id": "a", "userId": "b"}"#).is_err());
    }
}
