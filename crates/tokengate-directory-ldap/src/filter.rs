//! A principal filter (`user_filter`, `owner_filter`) and the two other
//! searches the snapshot derives from it: every principal it can match,
//! and those changed since a time.

use ldap3::ldap_escape;

/// The attribute every read of changes compares: RFC 4512's operational
/// attribute, kept by OpenLDAP, 389-ds and Active Directory alike.
pub(crate) const MODIFY_TIMESTAMP: &str = "modifyTimestamp";

/// A filter template with `{user}` where the escaped id goes.
#[derive(Debug, Clone)]
pub(crate) struct PrincipalFilter {
    template: String,
    /// The template with every `{user}` matching any value; `None` when
    /// the ids cannot be read back from the entries (see [`Self::new`]).
    every: Option<String>,
    /// The attributes `{user}` is compared with: an entry's values of them
    /// are the ids it answers to.
    id_attributes: Vec<String>,
}

impl PrincipalFilter {
    /// Reads the template. The snapshot needs each `{user}` to stand alone
    /// as an equality's value, `(uid={user})`: then `(uid=*)` finds every
    /// principal and an entry's `uid` values are its ids. Anything else
    /// (`(mail={user}@corp)`) leaves the snapshot out for this filter, and
    /// refreshes search.
    pub fn new(template: &str) -> Self {
        let mut id_attributes = Vec::new();
        let mut every = String::with_capacity(template.len());
        let mut rest = template;
        let mut readable = true;
        while let Some(at) = rest.find("{user}") {
            let (head, tail) = rest.split_at(at);
            let attribute = head
                .rfind('(')
                .map(|open| &head[open + 1..])
                .and_then(|eq| eq.strip_suffix('='))
                .filter(|a| {
                    !a.is_empty()
                        && a.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ';' | '.'))
                });
            let tail = &tail["{user}".len()..];
            match attribute {
                Some(a) if tail.starts_with(')') => {
                    if !id_attributes
                        .iter()
                        .any(|known: &String| known.eq_ignore_ascii_case(a))
                    {
                        id_attributes.push(a.to_owned());
                    }
                }
                _ => readable = false,
            }
            every.push_str(head);
            every.push('*');
            rest = tail;
        }
        every.push_str(rest);
        Self {
            template: template.to_owned(),
            every: (readable && !id_attributes.is_empty()).then_some(every),
            id_attributes,
        }
    }

    /// The filter for one id (escaped: an id cannot change the filter).
    pub fn for_id(&self, id: &str) -> String {
        self.template.replace("{user}", &ldap_escape(id))
    }

    /// Every principal the template can match; `None`: the snapshot cannot
    /// serve this filter.
    pub fn every(&self) -> Option<&str> {
        self.every.as_deref()
    }

    /// The principals changed at `version` or later.
    pub fn changed_since(&self, version: &str) -> Option<String> {
        self.every
            .as_ref()
            .map(|every| format!("(&{every}({MODIFY_TIMESTAMP}>={}))", ldap_escape(version)))
    }

    /// The attributes holding an entry's ids.
    pub fn id_attributes(&self) -> &[String] {
        &self.id_attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_lists_every_user_by_uid() {
        let f = PrincipalFilter::new("(&(objectClass=inetOrgPerson)(uid={user}))");
        assert_eq!(f.every(), Some("(&(objectClass=inetOrgPerson)(uid=*))"));
        assert_eq!(f.id_attributes(), ["uid"]);
        assert_eq!(
            f.changed_since("20261204120000Z").as_deref(),
            Some("(&(&(objectClass=inetOrgPerson)(uid=*))(modifyTimestamp>=20261204120000Z))")
        );
    }

    #[test]
    fn several_id_attributes_are_all_read() {
        let f = PrincipalFilter::new("(|(uid={user})(mail={user})(UID={user}))");
        assert_eq!(f.every(), Some("(|(uid=*)(mail=*)(UID=*))"));
        assert_eq!(f.id_attributes(), ["uid", "mail"]);
    }

    #[test]
    fn an_id_inside_a_value_leaves_the_snapshot_out() {
        for template in [
            "(mail={user}@corp.example)",
            "(cn=user-{user})",
            "(&(objectClass=person){user})",
        ] {
            assert_eq!(PrincipalFilter::new(template).every(), None, "{template}");
        }
    }

    #[test]
    fn ids_are_escaped() {
        let f = PrincipalFilter::new("(uid={user})");
        assert_eq!(f.for_id("a*)(uid=*"), "(uid=a\\2a\\29\\28uid=\\2a)");
    }
}
