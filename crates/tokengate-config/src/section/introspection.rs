//! `[introspection]`: who may ask `Session.introspect` whether a token
//! still holds.

use serde::{Deserialize, Serialize};

/// `[introspection]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntrospectionConfig {
    /// Clients that authenticate with `Authorization: Basic
    /// base64(id:secret)`, each written `"<id>:<hex SHA-256 of the
    /// secret>"` (`printf %s "$SECRET" | sha256sum`). Use long random
    /// secrets: the digest is fast to check, and so to guess against.
    pub clients: Vec<String>,
    /// Service accounts whose live access token (`Authorization: Bearer`)
    /// may introspect, each written `"<domain_id>/<user_id>"`.
    pub service_accounts: Vec<String>,
}

/// A client entry that is not `<id>:<64 hex digits>`, or a service account
/// that is not `<domain_id>/<user_id>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadIntrospectionEntry(pub String);

impl IntrospectionConfig {
    /// The clients as (id, SHA-256 of the secret).
    pub fn parsed_clients(&self) -> Result<Vec<(String, [u8; 32])>, BadIntrospectionEntry> {
        self.clients
            .iter()
            .map(|entry| {
                let bad = || {
                    BadIntrospectionEntry(format!(
                        "introspection.clients entry for {:?}: write \"<id>:<hex SHA-256 of the secret>\"",
                        entry.split(':').next().unwrap_or_default()
                    ))
                };
                let (id, hash) = entry.split_once(':').ok_or_else(bad)?;
                let bytes = hex::decode(hash).map_err(|_| bad())?;
                let digest: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
                if id.is_empty() {
                    return Err(bad());
                }
                Ok((id.to_owned(), digest))
            })
            .collect()
    }

    /// The service accounts as (domain id, user id).
    pub fn parsed_service_accounts(&self) -> Result<Vec<(String, String)>, BadIntrospectionEntry> {
        self.service_accounts
            .iter()
            .map(|entry| match entry.split_once('/') {
                Some((domain, user)) if !domain.is_empty() && !user.is_empty() => {
                    Ok((domain.to_owned(), user.to_owned()))
                }
                _ => Err(BadIntrospectionEntry(format!(
                    "introspection.service_accounts entry {entry:?}: write \"<domain_id>/<user_id>\""
                ))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_or_name_what_is_wrong() {
        let config = IntrospectionConfig {
            clients: vec![format!("gw:{}", "ab".repeat(32))],
            service_accounts: vec!["domain-a/svc@example.com".to_owned()],
        };
        assert_eq!(
            config.parsed_clients().expect("clients"),
            vec![("gw".to_owned(), [0xab; 32])]
        );
        assert_eq!(
            config.parsed_service_accounts().expect("accounts"),
            vec![("domain-a".to_owned(), "svc@example.com".to_owned())]
        );
        for bad in ["gw", "gw:zz", ":abab", "gw:abab"] {
            let config = IntrospectionConfig {
                clients: vec![bad.to_owned()],
                ..Default::default()
            };
            let error = config.parsed_clients().expect_err(bad);
            assert!(
                !error.0.contains("abab"),
                "no secret digest echoed: {error}"
            );
        }
        for bad in ["svc", "/svc", "d/"] {
            let config = IntrospectionConfig {
                service_accounts: vec![bad.to_owned()],
                ..Default::default()
            };
            assert!(config.parsed_service_accounts().is_err(), "{bad}");
        }
    }
}
