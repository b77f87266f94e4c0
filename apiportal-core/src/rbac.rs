//! The persona ClusterRoles and the bridge's least-privilege role. `kubectl apiportal install` applies them;
//! the platform team binds the personas:
//! - consumers: `apiportal-consumer` with a RoleBinding in their own namespace, plus `apiportal-catalog-reader`
//!   cluster-wide to browse products in every namespace;
//! - owners: `apiportal-owner` with a RoleBinding in their product namespace, plus `apiportal-request-reviewer`
//!   cluster-wide (requests live in consumers' namespaces; the admission policy limits decisions to the
//!   products the owner may `approve`);
//! - admins: `apiportal-admin` cluster-wide.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::ObjectMeta;

use crate::GROUP;

pub const CONSUMER_ROLE: &str = "apiportal-consumer";
pub const CATALOG_READER_ROLE: &str = "apiportal-catalog-reader";
pub const OWNER_ROLE: &str = "apiportal-owner";
pub const REVIEWER_ROLE: &str = "apiportal-request-reviewer";
pub const ADMIN_ROLE: &str = "apiportal-admin";
pub const BRIDGE_ROLE: &str = "apiportal-bridge";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["get", "list", "watch", "create", "update", "patch", "delete"];

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

const GATEWAY: &str = "gateway.networking.k8s.io";
const KUADRANT: &str = "kuadrant.io";
const KUADRANT_EXT: &str = "extensions.kuadrant.io";

/// Request keys and read them, in the consumer's own namespace; browse products there.
pub fn consumer() -> ClusterRole {
    cluster_role(
        CONSUMER_ROLE,
        vec![
            rule(&[GROUP], &["apikeys"], &["get", "list", "watch", "create", "delete"]),
            rule(&[GROUP], &["apiproducts"], READ),
            rule(&[""], &["secrets"], &["get", "list", "watch"]),
            rule(&[""], &["events"], READ),
        ],
    )
}

/// Browse the catalog everywhere (bound cluster-wide for consumers and for Backstage's ServiceAccount).
pub fn catalog_reader() -> ClusterRole {
    cluster_role(CATALOG_READER_ROLE, vec![rule(&[GROUP], &["apiproducts"], READ)])
}

/// Manage the products of one namespace and approve requests for them.
pub fn owner() -> ClusterRole {
    cluster_role(
        OWNER_ROLE,
        vec![
            rule(
                &[GROUP],
                &["apiproducts"],
                &["get", "list", "watch", "create", "update", "patch", "delete", "approve"],
            ),
            rule(&[GROUP], &["apiproducts/status"], READ),
            rule(&[GATEWAY], &["httproutes"], READ),
            rule(&[KUADRANT], &["authpolicies"], READ),
            rule(&[KUADRANT_EXT], &["planpolicies"], READ),
            rule(&[""], &["events"], READ),
        ],
    )
}

/// See requests in every namespace and write decisions; the admission policy admits a decision only from
/// someone who may `approve` the product.
pub fn request_reviewer() -> ClusterRole {
    cluster_role(
        REVIEWER_ROLE,
        vec![rule(&[GROUP], &["apikeys"], READ), rule(&[GROUP], &["apikeys/status"], &["get", "update", "patch"])],
    )
}

/// The owner's powers over every product, plus the platform's routes.
pub fn admin() -> ClusterRole {
    cluster_role(
        ADMIN_ROLE,
        vec![
            rule(
                &[GROUP],
                &["apiproducts"],
                &["get", "list", "watch", "create", "update", "patch", "delete", "approve"],
            ),
            rule(&[GROUP], &["apiproducts/status"], READ),
            rule(&[GROUP], &["apikeys"], WRITE),
            rule(&[GROUP], &["apikeys/status"], &["get", "update", "patch"]),
            rule(&[GATEWAY], &["httproutes"], &["get", "list", "watch", "patch"]),
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
            rule(&[GATEWAY], &["httproutes"], READ),
            rule(&[KUADRANT], &["authpolicies"], READ),
            rule(&[KUADRANT_EXT], &["planpolicies"], READ),
            // Keys are created in consumers' namespaces and the enforcement namespace; never updated.
            rule(&[""], &["secrets"], &["get", "create", "delete"]),
            rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
            rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
            rule(&["authorization.k8s.io"], &["subjectaccessreviews"], &["create"]),
        ],
    )
}

/// Every ClusterRole apiportal ships, in apply order.
pub fn cluster_roles() -> Vec<ClusterRole> {
    vec![consumer(), catalog_reader(), owner(), request_reviewer(), admin(), bridge()]
}
