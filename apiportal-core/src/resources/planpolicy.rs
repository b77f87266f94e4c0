//! Kuadrant's PlanPolicy (`extensions.kuadrant.io/v1alpha1`), read-only: the tiers and their limits.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::{authpolicy::PolicyStatus, httproute::PolicyTargetRef, plan::PlanLimits};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default)]
#[kube(group = "extensions.kuadrant.io", version = "v1alpha1", kind = "PlanPolicy", namespaced, schema = "disabled")]
#[kube(status = "PolicyStatus")]
#[serde(rename_all = "camelCase")]
pub struct PlanPolicySpec {
    pub target_ref: PolicyTargetRef,
    #[serde(default)]
    pub plans: Vec<Plan>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub tier: String,
    #[serde(default)]
    pub predicate: String,
    #[serde(default)]
    pub limits: PlanLimits,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}
