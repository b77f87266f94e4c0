//! APIProduct: an owner's catalog entry over one HTTPRoute in the same namespace.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{authpolicy::AuthScheme, conditions::conditions_schema, httproute::GATEWAY_API_GROUP, plan::PlanLimits};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIProduct",
    plural = "apiproducts",
    singular = "apiproduct",
    shortname = "apip",
    category = "apiportal",
    namespaced,
    status = "APIProductStatus",
    derive = "PartialEq",
    doc = "An API offered to consumers: a catalog entry over an HTTPRoute, with how access is approved.",
    printcolumn(name = "Display Name", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Route", type_ = "string", json_path = ".spec.targetRef.name"),
    printcolumn(name = "Approval", type_ = "string", json_path = ".spec.approvalMode"),
    printcolumn(name = "Publish Status", type_ = "string", json_path = ".spec.publishStatus"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // The name is a label value on every key's Secrets: at most 63.
    validation = kube::core::Rule::new("self.metadata.name.size() <= 63").message("an APIProduct name must be at most 63 characters: it labels the Secrets of the product's keys")
)]
#[serde(rename_all = "camelCase")]
pub struct APIProductSpec {
    /// Name shown to consumers.
    #[schemars(length(min = 1, max = 128))]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// The API's version, e.g. `v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(min = 1, max = 63)))]
    pub tags: Vec<String>,
    /// The HTTPRoute, in this namespace, that serves the API.
    pub target_ref: RouteTargetRef,
    /// `automatic`: every request for a tier the product offers is approved at once; `manual`: an owner decides.
    #[serde(default)]
    pub approval_mode: ApprovalMode,
    /// Only `Published` products are visible to consumers.
    #[serde(default)]
    pub publish_status: PublishStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation: Option<Documentation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// At most this many keys per consumer (APIKeys of one user that are Pending or Approved); unset means no
    /// limit. The bridge refuses automatic approvals above it, and does not issue keys approved above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_keys_per_user: Option<i32>,
    /// The longest a key may live, e.g. `720h` or `90d`: every request must carry an `expiresAt` at most this far
    /// from its creation (enforced by the API server's admission policy). Unset means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::duration::field_schema")]
    pub max_key_lifetime: Option<String>,
    /// The longest a rotated-out value keeps working, e.g. `24h`; unset means 7 days. The bridge holds it within
    /// the platform's maximum (its `--max-rotation-grace`), and cuts a longer grace asked for to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::duration::field_schema")]
    pub max_rotation_grace: Option<String>,
}

/// Reference to the product's HTTPRoute. Gateway API's LocalPolicyTargetReference, limited to HTTPRoutes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = RouteTargetRef::only_http_routes())]
#[serde(rename_all = "camelCase")]
pub struct RouteTargetRef {
    #[serde(default = "RouteTargetRef::default_group")]
    #[schemars(length(max = 253))]
    pub group: String,
    #[serde(default = "RouteTargetRef::default_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl RouteTargetRef {
    pub fn http_route(name: impl Into<String>) -> Self {
        Self { group: Self::default_group(), kind: Self::default_kind(), name: name.into() }
    }
    /// What the API server admits as a product's target.
    fn only_http_routes() -> kube::core::Rule {
        kube::core::Rule::new(format!("self.group == '{GATEWAY_API_GROUP}' && self.kind == 'HTTPRoute'")).message(
            kube::core::Message::Message(format!(
                "targetRef must name a {GATEWAY_API_GROUP} HTTPRoute in the product's namespace"
            )),
        )
    }
    fn default_group() -> String {
        GATEWAY_API_GROUP.to_owned()
    }
    fn default_kind() -> String {
        "HTTPRoute".to_owned()
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    Automatic,
    #[default]
    Manual,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum PublishStatus {
    #[default]
    Draft,
    Published,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct Documentation {
    /// URL of the OpenAPI document; the bridge fetches it into `status.openapi`.
    #[serde(rename = "openAPISpecURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub openapi_spec_url: Option<String>,
    #[serde(rename = "swaggerUI", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub swagger_ui: Option<String>,
    #[serde(rename = "docsURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub docs_url: Option<String>,
    #[serde(rename = "gitRepository", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub git_repository: Option<String>,
    #[serde(rename = "techdocsRef", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub techdocs_ref: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub slack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,
}

/// What the bridge discovered about the product. Written only by the bridge, with server-side apply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIProductStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The hostnames of the product's HTTPRoute: where consumers, who usually may not read routes, call it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// The tiers of the PlanPolicy that applies to the route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered_plans: Vec<DiscoveredPlan>,
    /// The authentication of the AuthPolicy that applies to the route, as found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovered_auth_scheme: Option<AuthScheme>,
    /// Where this product's keys are issued: set only while the AuthPolicy that applies selects Secrets by labels
    /// naming this product (condition `KeysIssuable` says why not otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_issuance: Option<KeyIssuance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_discovery: Option<OidcDiscovery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<OpenApiStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredPlan {
    pub tier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub limits: PlanLimits,
}

/// The AuthPolicy rule a product's keys are issued under, and the labels its selector requires.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyIssuance {
    /// `namespace/name` of the AuthPolicy.
    pub auth_policy: String,
    /// The name of its apiKey authentication rule.
    pub rule: String,
    /// The selector's `matchLabels`: they name this product, plus whatever else the policy selects on.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcDiscovery {
    /// `token_endpoint` from the issuer's `/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenApiStatus {
    /// The document as fetched (bounded by the bridge's size limit, default 500 KiB).
    pub raw: String,
    pub last_sync_time: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_used: Option<i64>,
}

impl APIProduct {
    pub fn is_published(&self) -> bool {
        self.spec.publish_status == PublishStatus::Published
    }

    /// The plans the bridge discovered, empty until it has.
    pub fn plans(&self) -> &[DiscoveredPlan] {
        self.status.as_ref().map(|s| s.discovered_plans.as_slice()).unwrap_or_default()
    }

    pub fn plan(&self, tier: &str) -> Option<&DiscoveredPlan> {
        self.plans().iter().find(|p| p.tier == tier)
    }

    /// The route's hostnames as the bridge last saw them, empty until it has.
    pub fn hostnames(&self) -> &[String] {
        self.status.as_ref().map(|s| s.hostnames.as_slice()).unwrap_or_default()
    }

    pub fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default()
    }

    /// Where keys are issued, while they may be.
    pub fn key_issuance(&self) -> Option<&KeyIssuance> {
        self.status.as_ref().and_then(|s| s.key_issuance.as_ref())
    }

    /// The plan of `tier`, or an error naming the tiers the product offers (one wording for the plugin and the
    /// bridge).
    pub fn offered_plan(&self, tier: &str) -> Result<&DiscoveredPlan, String> {
        self.plan(tier).ok_or_else(|| {
            let id = format!("{}/{}", self.metadata.namespace.as_deref().unwrap_or_default(), self.metadata.name.as_deref().unwrap_or_default());
            let tiers: Vec<&str> = self.plans().iter().map(|p| p.tier.as_str()).collect();
            if tiers.is_empty() {
                format!("APIProduct {id} offers no plan tier {tier:?}: it offers no plans yet (no PlanPolicy applies to its route)")
            } else {
                format!("APIProduct {id} offers no plan tier {tier:?}; it offers: {}", tiers.join(", "))
            }
        })
    }
}
