//! Types shared by `kubectl-apiportal` and the bridge, so the CRD YAML, the plugin and the controller can never
//! disagree: the two CRDs, read-only views of the Gateway API and Kuadrant objects we discover, the persona RBAC,
//! the admission policy that guards decisions, and key generation.

pub mod admission;
pub mod attachment;
pub mod bridge_args;
pub mod crds;
pub mod decision;
pub mod duration;
pub mod install;
pub mod issuance;
pub mod keygen;
pub mod kube_ext;
pub mod labels;
pub mod rbac;
pub mod reason;
pub mod resources;
pub mod secrets;
pub mod selector;

pub use resources::{
    apikey::{APIKey, APIKeySpec, APIKeyStatus, KeyAction, KeyPhase},
    apiproduct::{APIProduct, APIProductSpec, APIProductStatus, ApprovalMode, PublishStatus},
};

/// The API group of apiportal's own resources (the same as Kuadrant's Developer Portal, so manifests apply
/// unchanged).
pub const GROUP: &str = "devportal.kuadrant.io";
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of apiportal's resources.
pub const API_VERSION: &str = "devportal.kuadrant.io/v1alpha1";

/// Namespace that `kubectl apiportal install` puts the bridge in.
pub const SYSTEM_NAMESPACE: &str = "apiportal-system";
/// Where the enforcement copies of keys go unless told otherwise: Kuadrant's own namespace, where Authorino
/// looks and consumers cannot write.
pub const DEFAULT_ENFORCEMENT_NAMESPACE: &str = "kuadrant-system";
/// The bridge's ServiceAccount: the one writer exempt from the decision admission policy.
pub const BRIDGE_SERVICE_ACCOUNT: &str = "apiportal-bridge";
/// The audience the bridge asks its callers' tokens to be issued for, unless `--token-audience` says otherwise.
pub const DEFAULT_TOKEN_AUDIENCE: &str = "apiportal-bridge";
/// The Lease the bridge's replicas elect their leader with.
pub const LEASE_NAME: &str = "apiportal-bridge-leader";

/// The full username the API server gives the bridge's ServiceAccount.
pub fn bridge_username() -> String {
    format!("system:serviceaccount:{SYSTEM_NAMESPACE}:{BRIDGE_SERVICE_ACCOUNT}")
}
