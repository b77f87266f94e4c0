//! APIKey: a consumer's request for access to one plan tier of a product. It lives in the consumer's own
//! namespace; its spec is fixed at creation, and a decision is a write to its status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{authpolicy::AuthScheme, conditions::conditions_schema, plan::PlanLimits};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "devportal.kuadrant.io",
    version = "v1alpha1",
    kind = "APIKey",
    plural = "apikeys",
    singular = "apikey",
    shortname = "apik",
    category = "apiportal",
    namespaced,
    status = "APIKeyStatus",
    derive = "PartialEq",
    doc = "A consumer's request for an API key to one plan tier of an APIProduct.",
    printcolumn(name = "Product", type_ = "string", json_path = ".spec.apiProductRef.name"),
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.planTier"),
    printcolumn(name = "User", type_ = "string", json_path = ".spec.requestedBy.userId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // The name is a label value on the key's Secrets (the AuthPolicy's selector reads them): at most 63.
    validation = kube::core::Rule::new("self.metadata.name.size() <= 63").message("an APIKey name must be at most 63 characters: it labels the key's Secrets; choose a shorter --name")
)]
#[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec is immutable: to change the plan or product, delete this APIKey and request a new one"))]
#[serde(rename_all = "camelCase")]
pub struct APIKeySpec {
    pub api_product_ref: ProductRef,
    /// The tier requested, one of the product's discovered plans.
    #[schemars(length(min = 1, max = 63))]
    pub plan_tier: String,
    /// Why the consumer needs access; shown to the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub use_case: Option<String>,
    pub requested_by: Requester,
    /// When the key stops working; the bridge removes it then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct ProductRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the product; defaults to the APIKey's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requester {
    /// The Kubernetes username of the requester; the admission policy makes it equal the creating user.
    #[schemars(length(min = 1, max = 253))]
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254), regex(pattern = r"^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}$"))]
    pub email: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum KeyPhase {
    #[default]
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl std::fmt::Display for KeyPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "Pending",
            Self::Approved => "Approved",
            Self::Rejected => "Rejected",
            Self::Expired => "Expired",
        })
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = kube::core::Rule::new("!has(self.phase) || !(self.phase in ['Approved', 'Rejected']) || (has(self.reviewedBy) && has(self.reviewedAt))").message("an Approved or Rejected key must name reviewedBy and reviewedAt"))]
#[serde(rename_all = "camelCase")]
pub struct APIKeyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<KeyPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reviewed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<Time>,
    /// Why the reviewer decided as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
    /// The consumer's copy of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// First hostname of the product's route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<PlanLimits>,
    /// How to send the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_scheme: Option<AuthScheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

impl APIKey {
    /// Namespace of the referenced product: explicit, else the APIKey's own.
    pub fn product_namespace(&self) -> String {
        self.spec
            .api_product_ref
            .namespace
            .clone()
            .or_else(|| self.metadata.namespace.clone())
            .unwrap_or_else(|| "default".to_owned())
    }

    /// The phase; a key nobody has looked at yet is Pending.
    pub fn phase(&self) -> KeyPhase {
        self.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
    }
}
