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
    printcolumn(name = "Application", type_ = "string", json_path = ".spec.application", priority = 1),
    printcolumn(name = "User", type_ = "string", json_path = ".spec.requestedBy.userId"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // The name is a label value on the key's Secrets (the AuthPolicy's selector reads them): at most 63.
    validation = kube::core::Rule::new("self.metadata.name.size() <= 63").message("an APIKey name must be at most 63 characters: it labels the key's Secrets; choose a shorter --name")
)]
#[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("spec is immutable: to move an approved key to another tier, ask with kubectl apiportal key change-plan; to change the product, delete this APIKey and request a new one"))]
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
    /// The consumer's application this key is for, to list, rotate and delete an application's keys together
    /// and to count consumers per application. Optional: Kuadrant's manifests apply without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub application: Option<String>,
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
    /// Waiting for a decision.
    #[default]
    Pending,
    /// Approved: the bridge issues the key.
    Approved,
    /// Cut off at the gateway by an approver, with a reason, until an approver resumes it: the consumer keeps the
    /// value, which works again once resumed. Expiry and revocation still apply.
    Suspended,
    /// Refused before a key was issued (final).
    Rejected,
    /// An approved key cut off by an approver, or by the bridge when its product went away (final).
    Revoked,
    /// Past its `expiresAt` (final).
    Expired,
}

impl KeyPhase {
    pub const ALL: [KeyPhase; 6] =
        [Self::Pending, Self::Approved, Self::Suspended, Self::Rejected, Self::Revoked, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Approved => "Approved",
            Self::Suspended => "Suspended",
            Self::Rejected => "Rejected",
            Self::Revoked => "Revoked",
            Self::Expired => "Expired",
        }
    }

    /// A decision that is never undone: the consumer requests again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Rejected | Self::Revoked | Self::Expired)
    }
}

impl std::fmt::Display for KeyPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyPhase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
            format!("invalid phase {s:?}: use one of {}", names.join(", "))
        })
    }
}

/// An APIKey's status. Who writes which field is enforced by the `apiportal-apikey-decisions` admission policy:
/// approvers write the decision (`DECISION_FIELDS`), the key's consumers and approvers ask for a rotation
/// (`rotationRequest`), and every other field is the bridge's alone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = kube::core::Rule::new("!has(self.phase) || !(self.phase in ['Approved', 'Suspended', 'Rejected', 'Revoked']) || (has(self.reviewedBy) && has(self.reviewedAt))").message("an Approved, Suspended, Rejected or Revoked key must name reviewedBy and reviewedAt"))]
#[serde(rename_all = "camelCase")]
pub struct APIKeyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<KeyPhase>,
    /// Who made the last decision (the bridge's own user name for decisions it makes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reviewed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<Time>,
    /// Why the reviewer decided as they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
    /// A request for a new value: written by the key's consumers or its approvers, carried out by the bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_request: Option<RotationRequest>,
    /// A request to move the key to another tier (written by its consumers or approvers) and, for a product whose
    /// approval is manual, an approver's decision on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_change: Option<PlanChange>,
    /// The tier in force at the gateway: `spec.planTier` until a plan change is approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_tier: Option<String>,
    /// The UID of the APIProduct this request was made to; a product deleted and created again is another
    /// product, whose owners decide anew.
    #[serde(rename = "productUID", default, skip_serializing_if = "Option::is_none")]
    pub product_uid: Option<String>,
    /// What the current value was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<IssuedKey>,
    /// The value a rotation replaced, still valid at the gateway until `validUntil`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_key: Option<PreviousKey>,
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
    /// The key's decisions and what happened to it, newest last; at most `HISTORY_LIMIT` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub history: Vec<HistoryEntry>,
    /// Notifications for the platform's webhook not delivered yet, oldest first (at most `OUTBOX_LIMIT`): kept
    /// here so that they survive a restart of the bridge, and removed once the webhook has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub outbox: Vec<OutboxEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl APIKeyStatus {
    /// Fields an approver writes to decide (and the bridge for the decisions it makes).
    pub const DECISION_FIELDS: [&str; 4] = ["phase", "reviewedBy", "reviewedAt", "reason"];
    /// Fields the key's consumers and approvers write to ask for something (and approvers to decide on it).
    pub const REQUEST_FIELDS: [&str; 2] = ["rotationRequest", "planChange"];
    /// Fields only the bridge writes.
    pub const BRIDGE_FIELDS: [&str; 12] = [
        "outbox",
        "planTier",
        "productUID",
        "issued",
        "previousKey",
        "secretRef",
        "apiHostname",
        "limits",
        "authScheme",
        "observedGeneration",
        "history",
        "conditions",
    ];
    /// Entries of `history` kept.
    pub const HISTORY_LIMIT: usize = 20;
    /// Undelivered notifications kept; beyond it the oldest are dropped (and counted).
    pub const OUTBOX_LIMIT: usize = 20;
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationRequest {
    /// The rotation asked for: one more than the number of the current value (`issued.generation`).
    #[schemars(range(min = 1))]
    pub generation: i64,
    #[schemars(length(min = 1, max = 253))]
    pub requested_by: String,
    pub requested_at: Time,
    /// How long the value being replaced keeps working at the gateway, e.g. `24h`; `0s` cuts it off at once. The
    /// bridge holds it to the product's `maxRotationGrace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::duration::field_schema")]
    pub grace: Option<String>,
}

/// A move to another tier: asked for by the key's consumers (or approvers), decided by an approver when the
/// product's approval is manual (the bridge applies it at once for an automatic product).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanChange {
    /// The tier asked for: one the product offers.
    #[schemars(length(min = 1, max = 63))]
    pub tier: String,
    #[schemars(length(min = 1, max = 253))]
    pub requested_by: String,
    pub requested_at: Time,
    /// The decision: written once, by an approver naming themself (or the bridge, for automatic products).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub reviewed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
}

impl PlanChange {
    /// Asked for and not decided yet.
    pub fn is_pending(&self) -> bool {
        self.approved.is_none()
    }
}

/// What a key's current value was issued for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedKey {
    /// Which value this is: 0 for the first, one more per rotation.
    pub generation: i64,
    #[serde(rename = "productUID")]
    pub product_uid: String,
    /// `namespace/name` of the AuthPolicy the key was issued under.
    pub auth_policy: String,
    pub issued_at: Time,
    /// `sha256:<hex>` of the value: lets the bridge restore the same value from the consumer's copy (after a
    /// suspension, or while the product could not take keys) without ever trusting a value someone else wrote.
    /// A digest of 256 random bits says nothing about them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_digest: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviousKey {
    pub generation: i64,
    pub valid_until: Time,
}

/// A notification waiting for the platform's webhook: what the CloudEvent says, never a key.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// The CloudEvent's `id`, the same on every delivery attempt, so receivers can drop repeats.
    #[schemars(length(max = 64))]
    pub id: String,
    /// The CloudEvent's `type`, e.g. `io.apiportal.apikey.approved`.
    #[schemars(length(max = 128))]
    pub r#type: String,
    pub at: Time,
    #[schemars(length(max = 253))]
    pub by: String,
    #[schemars(length(max = 64))]
    pub reason: String,
    #[schemars(length(max = 2048))]
    pub message: String,
}

/// One event in a key's life.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct HistoryEntry {
    pub action: KeyAction,
    /// Who did it: a user name, or the bridge's own.
    #[schemars(length(max = 253))]
    pub by: String,
    pub at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum KeyAction {
    Requested,
    Approved,
    Rejected,
    Revoked,
    Rotated,
    Expired,
    Suspended,
    Resumed,
    PlanChanged,
    PlanChangeRejected,
    /// The request was deleted (recorded while its deletion is held for the webhook's notification).
    Deleted,
}

impl KeyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "Requested",
            Self::Approved => "Approved",
            Self::Rejected => "Rejected",
            Self::Revoked => "Revoked",
            Self::Rotated => "Rotated",
            Self::Expired => "Expired",
            Self::Suspended => "Suspended",
            Self::Resumed => "Resumed",
            Self::PlanChanged => "PlanChanged",
            Self::PlanChangeRejected => "PlanChangeRejected",
            Self::Deleted => "Deleted",
        }
    }
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

impl APIKey {
    /// `namespace/name` of the referenced product.
    pub fn product_id(&self) -> String {
        format!("{}/{}", self.product_namespace(), self.spec.api_product_ref.name)
    }

    /// Who asked for this key.
    pub fn requester(&self) -> &str {
        &self.spec.requested_by.user_id
    }

    /// The tier in force: the one the bridge recorded, else the one requested.
    pub fn plan_tier(&self) -> &str {
        self.status.as_ref().and_then(|s| s.plan_tier.as_deref()).unwrap_or(&self.spec.plan_tier)
    }

    /// A plan change asked for and waiting for an approver.
    pub fn pending_plan_change(&self) -> Option<&PlanChange> {
        self.status
            .as_ref()
            .and_then(|s| s.plan_change.as_ref())
            .filter(|c| c.is_pending() && c.tier != self.plan_tier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status field is classified for the admission policy: a new field nobody classified would be
    /// writable by anyone with status rights.
    #[test]
    fn every_status_field_has_exactly_one_writer() {
        let schema = serde_json::to_value(schemars::schema_for!(APIKeyStatus)).unwrap();
        let mut fields: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        let mut classified: Vec<&str> = APIKeyStatus::DECISION_FIELDS
            .iter()
            .chain(&APIKeyStatus::REQUEST_FIELDS)
            .chain(&APIKeyStatus::BRIDGE_FIELDS)
            .copied()
            .collect();
        classified.sort();
        assert_eq!(fields, classified);
    }

    #[test]
    fn phases_parse_from_their_names_and_say_which_are_final() {
        for phase in KeyPhase::ALL {
            assert_eq!(phase.as_str().parse::<KeyPhase>(), Ok(phase));
        }
        assert!(
            "approved"
                .parse::<KeyPhase>()
                .unwrap_err()
                .contains("Pending, Approved, Suspended, Rejected, Revoked, Expired")
        );
        assert!(!KeyPhase::Approved.is_final() && KeyPhase::Revoked.is_final());
    }
}
