//! The two Secrets of an approved key, defined once for the bridge (which writes them), the plugin (which reads
//! the consumer's copy and finds both on uninstall) and the tests: names, labels, annotations and the value.
//!
//! - The consumer's copy, `<apikey>-apikey-secret` in the APIKey's namespace, owned by the APIKey: what `key show
//!   --reveal` prints. It always holds the current value.
//! - The enforcement copy in the enforcement namespace (where consumers cannot write), labelled with the key's and
//!   the product's identity only, which the product's AuthPolicy selects on. Each value of a key (a rotation
//!   makes a new one) has its own enforcement Secret, so the previous value can stay valid through a grace
//!   period. The enforcement copy is the source of truth for the value.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use crate::{labels, selector::Labels};

/// Name of the consumer's copy of an APIKey's Secret.
pub fn consumer_secret_name(apikey: &str) -> String {
    format!("{apikey}-apikey-secret")
}

/// Name of the enforcement copy of value number `generation` of key `namespace/name` (0 is the first value; each
/// rotation adds one): deterministic, unique per key and generation, within Kubernetes' limits.
pub fn enforcement_secret_name(namespace: &str, name: &str, generation: i64) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hash = hex::encode(&digest[..5]);
    let readable: String = format!("{namespace}-{name}").chars().take(200).collect();
    let base = format!("apikey-{}-{hash}", readable.trim_end_matches(['-', '.']));
    if generation == 0 { base } else { format!("{base}-g{generation}") }
}

/// Who a key belongs to and what it opens: the identity labels both copies carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIdentity<'a> {
    pub key_namespace: &'a str,
    pub key_name: &'a str,
    pub product_namespace: &'a str,
    pub product_name: &'a str,
}

impl KeyIdentity<'_> {
    fn labels(&self) -> Labels {
        BTreeMap::from([
            (labels::APIKEY.to_owned(), self.key_name.to_owned()),
            (labels::APIKEY_NAMESPACE.to_owned(), self.key_namespace.to_owned()),
            (labels::APIPRODUCT.to_owned(), self.product_name.to_owned()),
            (labels::APIPRODUCT_NAMESPACE.to_owned(), self.product_namespace.to_owned()),
        ])
    }
}

/// Labels of the consumer's copy: who it belongs to, never anything an AuthPolicy selects on.
pub fn consumer_labels(identity: &KeyIdentity) -> Labels {
    identity.labels()
}

/// Labels of an enforcement copy: exactly the key's and its product's identity, and the markers Authorino and the
/// bridge find the copies by. Never a label an AuthPolicy's author chose: a label the bridge never writes cannot
/// make any policy, written now or later, accept the key.
pub fn enforcement_labels(identity: &KeyIdentity) -> Labels {
    let mut all = identity.labels();
    all.insert(labels::AUTHORINO_MANAGED_BY.into(), labels::AUTHORINO_MANAGED_BY_VALUE.into());
    all.insert(labels::ENFORCEMENT.into(), "true".into());
    all
}

/// Every label key an enforcement copy carries (`enforcement_labels`), and so the only ones an AuthPolicy may
/// select keys on.
pub const ENFORCEMENT_LABEL_KEYS: [&str; 6] = [
    labels::APIKEY,
    labels::APIKEY_NAMESPACE,
    labels::APIPRODUCT,
    labels::APIPRODUCT_NAMESPACE,
    labels::AUTHORINO_MANAGED_BY,
    labels::ENFORCEMENT,
];

/// The key's value in the consumer's copy, when it holds a non-empty one under its own data key (a copy an older
/// bridge wrote under Authorino's `api_key` counts as holding nothing: the bridge rewrites it).
pub fn consumer_value(secret: &Secret) -> Option<String> {
    let data = secret.data.as_ref()?;
    if data.contains_key(labels::SECRET_KEY) {
        return None;
    }
    data.get(labels::CONSUMER_SECRET_KEY).and_then(|v| String::from_utf8(v.0.clone()).ok()).filter(|v| !v.is_empty())
}

/// The key's value in a consumer's copy as a reader takes it: its own data key, else the one older bridges wrote.
pub fn consumer_value_or_legacy(secret: &Secret) -> Option<String> {
    let data = secret.data.as_ref()?;
    [labels::CONSUMER_SECRET_KEY, labels::SECRET_KEY]
        .iter()
        .find_map(|k| data.get(*k))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|v| !v.is_empty())
}

/// The key's value in an enforcement copy, when it holds a non-empty one.
pub fn key_value(secret: &Secret) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(labels::SECRET_KEY)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|v| !v.is_empty())
}

/// The key generation a Secret holds (annotation), 0 when unset.
pub fn generation_of(annotations: Option<&BTreeMap<String, String>>) -> i64 {
    annotations.and_then(|a| a.get(labels::KEY_GENERATION)).and_then(|g| g.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcement_names_are_unique_where_concatenation_is_not_and_per_generation() {
        assert_ne!(enforcement_secret_name("a-b", "c", 0), enforcement_secret_name("a", "b-c", 0));
        let long = enforcement_secret_name(&"n".repeat(63), &"k".repeat(253), 12345);
        assert!(long.len() <= 253, "{}", long.len());
        assert_eq!(enforcement_secret_name("team", "toys", 0), enforcement_secret_name("team", "toys", 0));
        assert_ne!(enforcement_secret_name("team", "toys", 0), enforcement_secret_name("team", "toys", 1));
        // The first value keeps the name every earlier release used, so upgrading leaves issued keys in place.
        assert_eq!(enforcement_secret_name("team", "toys", 0), "apikey-team-toys-ec220122d1");
    }

    #[test]
    fn an_enforcement_copy_carries_its_identity_and_nothing_else() {
        let identity =
            KeyIdentity { key_namespace: "team", key_name: "k", product_namespace: "shop", product_name: "toys" };
        let all = enforcement_labels(&identity);
        assert_eq!(all[labels::APIPRODUCT], "toys");
        assert_eq!(all[labels::APIKEY_NAMESPACE], "team");
        assert_eq!(all[labels::AUTHORINO_MANAGED_BY], "authorino");
        let mut keys: Vec<&str> = all.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut allowed = ENFORCEMENT_LABEL_KEYS.to_vec();
        allowed.sort_unstable();
        assert_eq!(keys, allowed);
        assert!(
            !consumer_labels(&identity).contains_key(labels::AUTHORINO_MANAGED_BY),
            "Authorino must never read the consumer's copy"
        );
    }
}
