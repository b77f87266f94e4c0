//! Gateway API's HTTPRoute (`gateway.networking.k8s.io/v1`), read-only: the hostnames, parents and the parents'
//! acceptance are all apiportal needs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// Gateway API's group, for every use but the derive below, whose attribute takes only a literal (a test holds
/// the two equal).
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default)]
#[kube(group = "gateway.networking.k8s.io", version = "v1", kind = "HTTPRoute", namespaced, schema = "disabled")]
#[kube(status = "HTTPRouteStatus")]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    pub parent_ref: ParentReference,
    #[serde(default)]
    pub controller_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A policy's `targetRef` (Gateway API's LocalPolicyTargetReferenceWithSectionName).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetRef {
    #[serde(default)]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

impl HTTPRoute {
    /// Accepted by at least one parent gateway.
    pub fn is_accepted(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.parents.iter().any(|p| super::conditions::is_true(&p.conditions, "Accepted")))
    }

    /// The Gateways this route attaches to, as (namespace, name).
    pub fn parent_gateways(&self, route_namespace: &str) -> Vec<(String, String)> {
        self.spec
            .parent_refs
            .iter()
            .filter(|p| p.kind.as_deref().unwrap_or("Gateway") == "Gateway")
            .map(|p| (p.namespace.clone().unwrap_or_else(|| route_namespace.to_owned()), p.name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kube::Resource;

    use super::*;

    #[test]
    fn the_group_constant_is_the_one_the_resource_is_served_under() {
        assert_eq!(HTTPRoute::group(&()), GATEWAY_API_GROUP);
    }
}
