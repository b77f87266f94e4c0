//! Kuadrant's AuthPolicy (`kuadrant.io/v1`), read-only: only the authentication rules apiportal reports to
//! consumers. The same rule types are stored in `APIProduct.status.discoveredAuthScheme`, so the status shows
//! the policy as it was found.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::httproute::PolicyTargetRef;

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default)]
#[kube(group = "kuadrant.io", version = "v1", kind = "AuthPolicy", namespaced, schema = "disabled")]
#[kube(status = "PolicyStatus")]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicySpec {
    pub target_ref: PolicyTargetRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<AuthRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<AuthPolicyRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<AuthPolicyRules>,
    /// Everything apiportal does not read, kept so the object round-trips.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct AuthPolicyRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<AuthRules>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct AuthRules {
    #[serde(default)]
    pub authentication: BTreeMap<String, AuthenticationRule>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// Conditions Kuadrant's policies report (`Accepted`, `Enforced`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl AuthPolicy {
    /// The authentication rules in force: overrides, then defaults, then the implicit rules.
    pub fn authentication(&self) -> BTreeMap<String, AuthenticationRule> {
        let spec = &self.spec;
        [
            spec.overrides.as_ref().and_then(|o| o.rules.as_ref()),
            spec.defaults.as_ref().and_then(|d| d.rules.as_ref()),
            spec.rules.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find(|rules| !rules.authentication.is_empty())
        .map(|rules| rules.authentication.clone())
        .unwrap_or_default()
    }

    /// Kuadrant only enforces a policy that is both Accepted and Enforced.
    pub fn is_enforced(&self) -> bool {
        let conditions = self.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
        super::conditions::is_true(conditions, "Accepted") && super::conditions::is_true(conditions, "Enforced")
    }
}

/// How a request authenticates, as the AuthPolicy states it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthScheme {
    /// The AuthPolicy's authentication rules by name.
    #[serde(default)]
    pub authentication: BTreeMap<String, AuthenticationRule>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyAuthentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuthentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuthentication {
    /// Labels of the Secrets that hold valid keys.
    #[serde(default)]
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_namespaces: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtAuthentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
}

/// Where the client puts its credential. Absent means `Authorization: Bearer`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_header: Option<PrefixedCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_header: Option<NamedCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string: Option<NamedCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<NamedCredential>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PrefixedCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct NamedCredential {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl AuthScheme {
    /// The first API-key rule, by name order (the one the bridge labels Secrets for).
    pub fn api_key_rule(&self) -> Option<(&str, &AuthenticationRule)> {
        self.authentication.iter().find(|(_, r)| r.api_key.is_some()).map(|(n, r)| (n.as_str(), r))
    }

    /// The first JWT rule's issuer.
    pub fn jwt_issuer(&self) -> Option<&str> {
        self.authentication.values().find_map(|r| r.jwt.as_ref()?.issuer_url.as_deref())
    }
}

impl Credentials {
    /// Where a client puts its credential under `credentials` (absent: `Authorization: Bearer`).
    pub fn location(credentials: Option<&Credentials>) -> CredentialLocation<'_> {
        let Some(c) = credentials else {
            return CredentialLocation::Header { name: "Authorization", prefix: Some("Bearer") };
        };
        if let Some(h) = &c.custom_header {
            CredentialLocation::Header { name: &h.name, prefix: h.prefix.as_deref() }
        } else if let Some(q) = &c.query_string {
            CredentialLocation::Query { name: &q.name }
        } else if let Some(k) = &c.cookie {
            CredentialLocation::Cookie { name: &k.name }
        } else {
            let prefix = c.authorization_header.as_ref().and_then(|a| a.prefix.as_deref()).unwrap_or("Bearer");
            CredentialLocation::Header { name: "Authorization", prefix: Some(prefix) }
        }
    }
}

/// Where a credential goes on a request, as the AuthPolicy's author wrote it (the plugin quotes it for shells).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialLocation<'a> {
    /// `name: [prefix ]<credential>`.
    Header { name: &'a str, prefix: Option<&'a str> },
    /// `?name=<credential>`.
    Query { name: &'a str },
    /// `Cookie: name=<credential>`.
    Cookie { name: &'a str },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_default_to_bearer_and_follow_the_policy() {
        let bearer = CredentialLocation::Header { name: "Authorization", prefix: Some("Bearer") };
        assert_eq!(Credentials::location(None), bearer);
        assert_eq!(Credentials::location(Some(&Credentials::default())), bearer);
        let prefixed = Credentials {
            authorization_header: Some(PrefixedCredential { prefix: Some("APIKEY".into()) }),
            ..Default::default()
        };
        assert_eq!(
            Credentials::location(Some(&prefixed)),
            CredentialLocation::Header { name: "Authorization", prefix: Some("APIKEY") }
        );
        let custom = Credentials {
            custom_header: Some(NamedCredential { name: "X-API-KEY".into(), prefix: None }),
            ..Default::default()
        };
        assert_eq!(
            Credentials::location(Some(&custom)),
            CredentialLocation::Header { name: "X-API-KEY", prefix: None }
        );
        let query = Credentials {
            query_string: Some(NamedCredential { name: "api_key".into(), prefix: None }),
            ..Default::default()
        };
        assert_eq!(Credentials::location(Some(&query)), CredentialLocation::Query { name: "api_key" });
    }

    #[test]
    fn overrides_win_over_defaults_and_implicit_rules() {
        let policy: AuthPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy", "metadata": {"name": "p"},
            "spec": {
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"},
                "overrides": {"rules": {"authentication": {"keys": {"apiKey": {"selector": {"matchLabels": {"app": "x"}}}}}}},
                "unknownField": {"kept": true}
            }
        }))
        .unwrap();
        let auth = policy.authentication();
        assert!(auth["keys"].api_key.is_some());
        assert_eq!(policy.spec.other["unknownField"]["kept"], true);
        assert!(!policy.is_enforced());
    }
}
