//! Everything `kubectl apiportal install` applies, in order: CRDs, persona and bridge RBAC, the admission
//! policy, the bridge's namespace, ServiceAccount, Deployment and Service.

use serde_json::{Value, json};

use crate::{BRIDGE_SERVICE_ACCOUNT, SYSTEM_NAMESPACE, admission, crds, rbac};

/// Options the platform team may set at install time.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// The bridge's container image.
    pub image: String,
    /// Where the bridge writes the Secrets the AuthPolicy selects: a namespace consumers cannot write to.
    pub enforcement_namespace: String,
    pub replicas: i32,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            image: format!("ghcr.io/apiportal/apiportal-bridge:v{}", env!("CARGO_PKG_VERSION")),
            enforcement_namespace: "kuadrant-system".to_owned(),
            replicas: 2,
        }
    }
}

pub const BRIDGE_DEPLOYMENT: &str = "apiportal-bridge";
pub const BRIDGE_SERVICE: &str = "apiportal-bridge";
pub const LEADER_ELECTION_ROLE: &str = "apiportal-bridge-leader-election";
const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "apiportal");

fn to_value<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).expect("Kubernetes objects serialise to JSON")
}

fn labelled(mut object: Value) -> Value {
    object["metadata"]["labels"][PART_OF.0] = json!(PART_OF.1);
    object
}

/// The objects to apply, as JSON with apiVersion and kind.
pub fn objects(options: &InstallOptions) -> Vec<Value> {
    let mut objects: Vec<Value> = crds::crds().iter().map(to_value).collect();
    objects.extend(rbac::cluster_roles().iter().map(to_value));
    objects.push(to_value(&admission::policy()));
    objects.push(to_value(&admission::binding()));
    objects.push(to_value(&admission::lifetime_policy()));
    objects.push(to_value(&admission::lifetime_binding()));
    let app_labels = json!({"app.kubernetes.io/name": "apiportal-bridge", PART_OF.0: PART_OF.1});
    objects.extend([
        labelled(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})),
        labelled(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.enforcement_namespace}})),
        labelled(json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": BRIDGE_SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}})),
        labelled(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": rbac::BRIDGE_ROLE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": rbac::BRIDGE_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": BRIDGE_SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}]})),
        // The enforcement copies of keys: the bridge watches them here, and only here.
        labelled(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": rbac::BRIDGE_ENFORCEMENT_ROLE, "namespace": options.enforcement_namespace},
            "rules": rbac::bridge_enforcement_rules()})),
        labelled(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": rbac::BRIDGE_ENFORCEMENT_ROLE, "namespace": options.enforcement_namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": rbac::BRIDGE_ENFORCEMENT_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": BRIDGE_SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}]})),
        // Leader election: only the Lease holder reconciles.
        labelled(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": LEADER_ELECTION_ROLE, "namespace": SYSTEM_NAMESPACE},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "patch"]},
                      // The mirror of every product's key lifetime cap, the lifetime admission policy's parameter.
                      {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]}]})),
        labelled(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": LEADER_ELECTION_ROLE, "namespace": SYSTEM_NAMESPACE},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEADER_ELECTION_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": BRIDGE_SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}]})),
        labelled(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": BRIDGE_DEPLOYMENT, "namespace": SYSTEM_NAMESPACE},
            "spec": {
                "replicas": options.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": "apiportal-bridge"}},
                "template": {
                    "metadata": {"labels": app_labels},
                    "spec": {
                        "serviceAccountName": BRIDGE_SERVICE_ACCOUNT,
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "bridge",
                            "image": options.image,
                            "args": ["--listen=0.0.0.0:8080", "--metrics-listen=0.0.0.0:9090",
                                     format!("--enforcement-namespace={}", options.enforcement_namespace),
                                     "--log-format=json"],
                            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "ports": [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                                "capabilities": {"drop": ["ALL"]}}
                        }]
                    }
                }
            }})),
        labelled(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": BRIDGE_SERVICE, "namespace": SYSTEM_NAMESPACE},
            "spec": {"selector": {"app.kubernetes.io/name": "apiportal-bridge"},
                     "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                               {"name": "metrics", "port": 9090, "targetPort": "metrics"}]}})),
    ]);
    objects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_has_kind_version_and_name() {
        for object in objects(&InstallOptions::default()) {
            assert!(object["apiVersion"].is_string() && object["kind"].is_string(), "{object}");
            assert!(object["metadata"]["name"].is_string(), "{object}");
        }
    }
}
