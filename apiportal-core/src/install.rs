//! Everything `kubectl apiportal install` applies, in order: CRDs, persona and bridge RBAC, the admission
//! policy, the bridge's namespace, ServiceAccount, Deployment and Service.

use serde_json::{Value, json};

use crate::{BRIDGE_SERVICE_ACCOUNT, SYSTEM_NAMESPACE, admission, bridge_args::Args, crds, rbac};

/// Options the platform team may set at install time.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// The bridge's container image.
    pub image: String,
    /// Where the bridge writes the Secrets the AuthPolicy selects: a namespace consumers cannot write to.
    pub enforcement_namespace: String,
    pub replicas: i32,
    /// The Secret (`tls.crt`, `tls.key`) the bridge serves its view with, e.g. one cert-manager keeps; install
    /// creates a self-signed one of the default name when none exists.
    pub tls_secret: String,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            image: format!("ghcr.io/apiportal/apiportal-bridge:v{}", env!("CARGO_PKG_VERSION")),
            enforcement_namespace: crate::DEFAULT_ENFORCEMENT_NAMESPACE.to_owned(),
            replicas: 2,
            tls_secret: BRIDGE_TLS_SECRET.to_owned(),
        }
    }
}

pub const BRIDGE_DEPLOYMENT: &str = "apiportal-bridge";
pub const BRIDGE_SERVICE: &str = "apiportal-bridge";
pub const LEADER_ELECTION_ROLE: &str = "apiportal-bridge-leader-election";
/// The Secret install creates for the view's TLS certificate when none is named.
pub const BRIDGE_TLS_SECRET: &str = "apiportal-bridge-tls";
const TLS_MOUNT: &str = "/etc/apiportal/tls";
/// The view's port in the Pod, and the metrics port.
pub const VIEW_PORT: u16 = 8443;
pub const METRICS_PORT: u16 = 9090;

/// The bridge's flags in the Deployment: only what differs from the bridge's defaults.
pub fn bridge_args(options: &InstallOptions) -> Vec<String> {
    let mut args = Args::defaults();
    args.listen = ([0, 0, 0, 0], VIEW_PORT).into();
    args.metrics_listen = Some(([0, 0, 0, 0], METRICS_PORT).into());
    args.tls_cert_file = Some(format!("{TLS_MOUNT}/tls.crt").into());
    args.tls_key_file = Some(format!("{TLS_MOUNT}/tls.key").into());
    args.enforcement_namespace = options.enforcement_namespace.clone();
    args.log_format = crate::bridge_args::LogFormat::Json;
    args.to_args()
}

/// The DNS names the view's certificate must carry (its Service's).
pub fn bridge_dns_names() -> Vec<String> {
    let base = format!("{BRIDGE_SERVICE}.{SYSTEM_NAMESPACE}");
    vec![BRIDGE_SERVICE.to_owned(), base.clone(), format!("{base}.svc"), format!("{base}.svc.cluster.local")]
}
const PART_OF: (&str, &str) = ("app.kubernetes.io/part-of", "apiportal");
/// The label the bridge's Deployment selects its pods by, and its Service its endpoints.
const BRIDGE_APP: (&str, &str) = ("app.kubernetes.io/name", BRIDGE_DEPLOYMENT);

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
    objects.push(to_value(&admission::lifetime_binding(SYSTEM_NAMESPACE)));
    objects.push(to_value(&admission::bridge_owned_policy()));
    objects.push(to_value(&admission::bridge_owned_binding()));
    objects.push(to_value(&admission::finalizer_policy()));
    objects.push(to_value(&admission::finalizer_binding()));
    let app_labels = json!({BRIDGE_APP.0: BRIDGE_APP.1, PART_OF.0: PART_OF.1});
    objects.extend([
        labelled(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM_NAMESPACE}})),
        labelled(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.enforcement_namespace}})),
        key_lifetimes_objects(SYSTEM_NAMESPACE).pop().expect("the ConfigMap"),
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
                "selector": {"matchLabels": {BRIDGE_APP.0: BRIDGE_APP.1}},
                "template": {
                    "metadata": {"labels": app_labels},
                    "spec": {
                        "serviceAccountName": BRIDGE_SERVICE_ACCOUNT,
                        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "bridge",
                            "image": options.image,
                            "args": bridge_args(options),
                            "env": [{"name": "APIPORTAL_IDENTITY", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                            "ports": [{"name": "https", "containerPort": VIEW_PORT}, {"name": "metrics", "containerPort": METRICS_PORT}],
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 5},
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}, "periodSeconds": 10},
                            "volumeMounts": [{"name": "tls", "mountPath": TLS_MOUNT, "readOnly": true}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                                "capabilities": {"drop": ["ALL"]}}
                        }],
                        // Mounted as files, so a renewed certificate is picked up without a restart.
                        "volumes": [{"name": "tls", "secret": {"secretName": options.tls_secret}}]
                    }
                }
            }})),
        labelled(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": BRIDGE_SERVICE, "namespace": SYSTEM_NAMESPACE},
            "spec": {"selector": {BRIDGE_APP.0: BRIDGE_APP.1},
                     "ports": [{"name": "https", "port": 443, "targetPort": "https"},
                               {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}]}})),
    ]);
    objects
}

/// The namespace of the key lifetime caps and their ConfigMap, empty until the bridge mirrors a cap into it. It
/// exists from install on: the lifetime admission policy fails closed and admits no APIKey without it. Applied
/// without `data`, so applying it again never takes away a cap the bridge wrote.
pub fn key_lifetimes_objects(namespace: &str) -> Vec<Value> {
    vec![
        labelled(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})),
        labelled(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": admission::KEY_LIFETIMES, "namespace": namespace}})),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployment_runs_the_bridge_with_flags_it_parses() {
        use clap::Parser;
        let options = InstallOptions { enforcement_namespace: "gateway-keys".into(), ..Default::default() };
        let deployment = objects(&options).into_iter().find(|o| o["kind"] == "Deployment").unwrap();
        let args: Vec<String> =
            serde_json::from_value(deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone()).unwrap();
        let parsed = Args::try_parse_from(std::iter::once("apiportal-bridge".to_owned()).chain(args)).unwrap();
        assert_eq!(parsed.enforcement_namespace, "gateway-keys");
        assert_eq!(parsed.listen.port(), VIEW_PORT);
        assert!(parsed.tls_cert_file.is_some() && !parsed.insecure_http, "the view serves TLS");
    }

    #[test]
    fn every_object_has_kind_version_and_name() {
        for object in objects(&InstallOptions::default()) {
            assert!(object["apiVersion"].is_string() && object["kind"].is_string(), "{object}");
            assert!(object["metadata"]["name"].is_string(), "{object}");
        }
    }
}
