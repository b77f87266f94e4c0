//! The manifests generated from the types: CRDs, RBAC and the admission policy. `crdgen` writes them under
//! `deploy/`; a test fails when the committed files differ from what the types generate.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde::Serialize;

use crate::{APIKey, APIProduct, admission, rbac, resources::apikeyrequest::APIKeyRequest};

pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![APIProduct::crd(), APIKey::crd(), APIKeyRequest::crd()]
}

/// Renders objects as one multi-document YAML stream.
pub fn to_yaml_stream<T: Serialize>(objects: &[T]) -> String {
    objects
        .iter()
        .map(|o| serde_saphyr::to_string(o).expect("Kubernetes objects always serialise to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Each generated file under `deploy/`, with its content.
pub fn generated_files() -> Vec<(&'static str, String)> {
    const HEADER: &str =
        "# Generated from the Rust types by `cargo run -p apiportal-core --bin crdgen`; do not edit.\n";
    let crds = crds();
    vec![
        ("crds/devportal.kuadrant.io_apiproducts.yaml", format!("{HEADER}{}", to_yaml_stream(&crds[..1]))),
        ("crds/devportal.kuadrant.io_apikeys.yaml", format!("{HEADER}{}", to_yaml_stream(&crds[1..2]))),
        ("crds/devportal.kuadrant.io_apikeyrequests.yaml", format!("{HEADER}{}", to_yaml_stream(&crds[2..]))),
        ("rbac/clusterroles.yaml", format!("{HEADER}{}", to_yaml_stream(&rbac::cluster_roles()))),
        (
            "admission/apikey-decisions.yaml",
            format!(
                "{HEADER}{}---\n{}---\n{}---\n{}---\n{}---\n{}",
                to_yaml_stream(&[admission::policy()]),
                to_yaml_stream(&[admission::binding()]),
                to_yaml_stream(&[admission::lifetime_policy()]),
                to_yaml_stream(&[admission::lifetime_binding(crate::SYSTEM_NAMESPACE)]),
                to_yaml_stream(&[admission::bridge_owned_policy()]),
                to_yaml_stream(&[admission::bridge_owned_binding()]),
            ),
        ),
        (
            "admission/apikey-finalizer.yaml",
            format!(
                "{HEADER}{}---\n{}",
                to_yaml_stream(&[admission::finalizer_policy()]),
                to_yaml_stream(&[admission::finalizer_binding()]),
            ),
        ),
        (
            "admission/key-lifetimes.yaml",
            format!("{HEADER}{}", to_yaml_stream(&crate::install::key_lifetimes_objects(crate::SYSTEM_NAMESPACE))),
        ),
    ]
}
