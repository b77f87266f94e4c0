//! APIKeyRequest: the bridge's read-only projection of an APIKey into its product's namespace, as upstream
//! Kuadrant's Developer Portal keeps one. Owners read requests there, with rights in their own namespace alone,
//! instead of reading APIKeys in every consumer's namespace; they decide on the APIKey itself (a decision is a
//! write to its status, admitted only from someone who may `approve` the product). Only the bridge writes
//! projections (an admission policy refuses everyone else), and a projection carries no key, only who asked for
//! what and what was decided.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::apikey::{APIKey, KeyPhase, PlanChange, Requester};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIKeyRequest",
    plural = "apikeyrequests",
    singular = "apikeyrequest",
    shortname = "apikr",
    category = "apiportal",
    namespaced,
    derive = "PartialEq",
    doc = "A read-only projection of an APIKey into its product's namespace, for the product's owners. Written by the apiportal bridge only.",
    printcolumn(name = "Key Namespace", type_ = "string", json_path = ".spec.apiKeyRef.namespace"),
    printcolumn(name = "Key", type_ = "string", json_path = ".spec.apiKeyRef.name"),
    printcolumn(name = "Product", type_ = "string", json_path = ".spec.apiProductRef.name"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.planTier"),
    printcolumn(name = "User", type_ = "string", json_path = ".spec.requestedBy.userId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".spec.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".spec.requestedAt")
)]
#[serde(rename_all = "camelCase")]
pub struct APIKeyRequestSpec {
    /// The APIKey this projects (in the consumer's namespace).
    pub api_key_ref: KeyRef,
    /// The product, in this namespace.
    pub api_product_ref: LocalRef,
    /// The tier asked for at first.
    pub plan_tier: String,
    /// The tier in force, once the key is approved (a plan change moves it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_tier_in_force: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_case: Option<String>,
    pub requested_by: Requester,
    pub requested_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    pub phase: KeyPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A plan change asked for (and its decision, once made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_change: Option<PlanChange>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct KeyRef {
    pub name: String,
    pub namespace: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct LocalRef {
    pub name: String,
}

/// The projection's name in the product's namespace: the key's namespace and name, readable, and a digest of both
/// (as upstream names it), so two keys never share one and the name stays within Kubernetes' limits.
pub fn projection_name(key_namespace: &str, key_name: &str) -> String {
    let digest = Sha256::digest(format!("{key_namespace}/{key_name}").as_bytes());
    let hash = hex::encode(&digest[..4]);
    let readable: String = format!("{key_namespace}-{key_name}").chars().take(200).collect();
    format!("{}-{hash}", readable.trim_end_matches(['-', '.']))
}

impl APIKeyRequestSpec {
    /// What the projection of `key` says now.
    pub fn of(key: &APIKey) -> Self {
        let status = key.status.clone().unwrap_or_default();
        Self {
            api_key_ref: KeyRef {
                name: key.metadata.name.clone().unwrap_or_default(),
                namespace: key.metadata.namespace.clone().unwrap_or_default(),
            },
            api_product_ref: LocalRef { name: key.spec.api_product_ref.name.clone() },
            plan_tier: key.spec.plan_tier.clone(),
            plan_tier_in_force: status.plan_tier.clone(),
            use_case: key.spec.use_case.clone(),
            requested_by: key.spec.requested_by.clone(),
            requested_at: key.metadata.creation_timestamp.clone().unwrap_or(Time(jiff::Timestamp::UNIX_EPOCH)),
            expires_at: key.spec.expires_at.clone(),
            application: key.spec.application.clone(),
            phase: key.phase(),
            reviewed_by: status.reviewed_by,
            reviewed_at: status.reviewed_at,
            reason: status.reason,
            plan_change: status.plan_change,
        }
    }

    /// A digest of what the projection says, kept in an annotation: the bridge caches projections as metadata
    /// only and compares digests to know whether one needs writing.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("a projection serialises");
        hex::encode(&Sha256::digest(&json)[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_names_are_unique_where_concatenation_is_not_and_bounded() {
        assert_ne!(projection_name("a-b", "c"), projection_name("a", "b-c"));
        assert!(projection_name(&"n".repeat(63), &"k".repeat(253)).len() <= 253);
        assert_eq!(projection_name("team", "toys"), projection_name("team", "toys"));
    }
}
