//! The persona ClusterRoles and the bridge's least-privilege role. `kubectl apiportal install` applies them;
//! the platform team binds the personas:
//! - consumers: `apiportal-consumer` with a RoleBinding in their own namespace, plus `apiportal-catalog-reader`
//!   cluster-wide to browse products in every namespace;
//! - owners: `apiportal-owner` with a RoleBinding in their product namespace, where they read the requests for
//!   their products (the bridge's APIKeyRequest projections), plus `apiportal-request-reviewer` cluster-wide to
//!   write decisions on APIKeys (in consumers' namespaces) without reading them: the admission policy admits a
//!   decision only for products the owner may `approve`;
//! - admins: `apiportal-admin` cluster-wide.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::ObjectMeta;

use crate::{GROUP, resources::httproute::GATEWAY_API_GROUP};

pub const CONSUMER_ROLE: &str = "apiportal-consumer";
pub const CATALOG_READER_ROLE: &str = "apiportal-catalog-reader";
pub const OWNER_ROLE: &str = "apiportal-owner";
pub const REVIEWER_ROLE: &str = "apiportal-request-reviewer";
pub const ADMIN_ROLE: &str = "apiportal-admin";
pub const KEY_READER_ROLE: &str = "apiportal-key-reader";
pub const BRIDGE_ROLE: &str = "apiportal-bridge";
/// The bridge's Role in the enforcement namespace: the only place it may list, watch and relabel Secrets.
pub const BRIDGE_ENFORCEMENT_ROLE: &str = "apiportal-bridge-enforcement";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];
/// `approve` is the custom verb the admission policy checks before it admits a decision on a product's keys.
const MANAGE_PRODUCTS: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete", "approve"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let owned = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect());
    PolicyRule {
        api_groups: owned(groups),
        resources: owned(resources),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some([("app.kubernetes.io/part-of".to_owned(), "apiportal".to_owned())].into()),
            ..Default::default()
        },
        rules: Some(rules),
        ..Default::default()
    }
}

const KUADRANT: &str = "kuadrant.io";
const KUADRANT_EXT: &str = "extensions.kuadrant.io";

/// Request keys and read them, in the consumer's own namespace; browse products there.
pub fn consumer() -> ClusterRole {
    cluster_role(
        CONSUMER_ROLE,
        vec![
            rule(&[GROUP], &["apikeys"], &["get", "list", "watch", "create", "delete"]),
            // A rotation request is a status write; the admission policy admits nothing else from consumers.
            rule(&[GROUP], &["apikeys/status"], &["get", "patch", "update"]),
            rule(&[GROUP], &["apiproducts"], READ),
            // `key show` reads one named Secret; listing or watching every Secret of the namespace (application
            // credentials among them) is more than a consumer of APIs needs.
            rule(&[""], &["secrets"], &["get"]),
            rule(&[""], &["events"], READ),
        ],
    )
}

/// Browse the catalog everywhere (bound cluster-wide for consumers and for Backstage's ServiceAccount).
pub fn catalog_reader() -> ClusterRole {
    cluster_role(CATALOG_READER_ROLE, vec![rule(&[GROUP], &["apiproducts"], READ)])
}

/// Read every request's metadata (never a key: keys live in Secrets), e.g. for Backstage to show who consumes an
/// API. Bound cluster-wide.
pub fn key_reader() -> ClusterRole {
    cluster_role(KEY_READER_ROLE, vec![rule(&[GROUP], &["apikeys"], READ)])
}

/// Manage the products of one namespace and approve requests for them.
pub fn owner() -> ClusterRole {
    cluster_role(
        OWNER_ROLE,
        vec![
            rule(&[GROUP], &["apiproducts"], MANAGE_PRODUCTS),
            rule(&[GROUP], &["apiproducts/status"], READ),
            // The requests for this namespace's products, as the bridge projects them here.
            rule(&[GROUP], &["apikeyrequests"], READ),
            rule(&[GATEWAY_API_GROUP], &["httproutes"], READ),
            rule(&[KUADRANT], &["authpolicies"], READ),
            rule(&[KUADRANT_EXT], &["planpolicies"], READ),
            rule(&[""], &["events"], READ),
        ],
    )
}

/// Write decisions on requests in any namespace without reading them: owners read the requests for their
/// products from the projections in their own namespace, and decide with one merge patch of the key's status. The
/// admission policy admits a decision only from someone who may `approve` the product, and no status write at all
/// from anyone else (the API server answers a patch with the object: a write that changes nothing would be a read).
pub fn request_reviewer() -> ClusterRole {
    cluster_role(REVIEWER_ROLE, vec![rule(&[GROUP], &["apikeys/status"], &["patch"])])
}

/// The owner's powers over every product, plus the platform's routes.
pub fn admin() -> ClusterRole {
    cluster_role(
        ADMIN_ROLE,
        vec![
            rule(&[GROUP], &["apiproducts"], MANAGE_PRODUCTS),
            rule(&[GROUP], &["apiproducts/status"], READ),
            rule(&[GROUP], &["apikeys"], WRITE),
            rule(&[GROUP], &["apikeys/status"], &["get", "update", "patch"]),
            rule(&[GROUP], &["apikeyrequests"], READ),
            rule(&[GATEWAY_API_GROUP], &["httproutes"], &["get", "list", "watch", "patch"]),
            rule(&[KUADRANT], &["authpolicies"], READ),
            rule(&[KUADRANT_EXT], &["planpolicies"], READ),
            rule(&["apiextensions.k8s.io"], &["customresourcedefinitions"], READ),
            rule(&[""], &["events"], READ),
        ],
    )
}

/// The bridge: read what it discovers, write the statuses and Secrets it owns, publish Events, review tokens
/// for its HTTP view. Leases are granted by a Role in its own namespace only.
pub fn bridge() -> ClusterRole {
    cluster_role(
        BRIDGE_ROLE,
        vec![
            rule(&[GROUP], &["apiproducts"], READ),
            rule(&[GROUP], &["apiproducts/status"], &["get", "patch", "update"]),
            // patch: the finalizer that holds an APIKey until its enforcement Secret is gone.
            rule(&[GROUP], &["apikeys"], &["get", "list", "watch", "patch", "update"]),
            rule(&[GROUP], &["apikeys/status"], &["get", "patch", "update"]),
            // The projections of requests into products' namespaces, which owners read.
            rule(&[GROUP], &["apikeyrequests"], &["get", "list", "watch", "create", "patch", "delete"]),
            rule(&[GATEWAY_API_GROUP], &["httproutes"], READ),
            rule(&[KUADRANT], &["authpolicies"], READ),
            rule(&[KUADRANT_EXT], &["planpolicies"], READ),
            // The consumer's copy is created in the consumer's namespace, read back when a create conflicts or a
            // value is restored, and patched by a rotation; never listed or watched outside the enforcement
            // namespace (see `bridge_enforcement_role`).
            rule(&[""], &["secrets"], &["get", "create", "delete", "patch"]),
            rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
            rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
            rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
        ],
    )
}

/// Rules of the bridge's Role in the enforcement namespace: it watches the enforcement copies there (metadata
/// only) instead of reading them one by one.
pub fn bridge_enforcement_rules() -> Vec<PolicyRule> {
    vec![rule(&[""], &["secrets"], &["list", "watch"])]
}

/// Every ClusterRole apiportal ships, in apply order.
pub fn cluster_roles() -> Vec<ClusterRole> {
    vec![consumer(), catalog_reader(), owner(), request_reviewer(), admin(), key_reader(), bridge()]
}
