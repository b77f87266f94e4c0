//! The view's JSON: what `bridge/API.md` documents. Built from the cache, never carrying a key value.

use std::collections::BTreeMap;

use apiportal_core::{
    APIKey, APIProduct,
    resources::{
        apiproduct::{Contact, DiscoveredPlan, Documentation},
        authpolicy::AuthScheme,
        httproute::HTTPRoute,
    },
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub generation: Option<i64>,
    pub created_at: Option<Time>,
    pub display_name: String,
    pub description: Option<String>,
    pub version: Option<String>,
    pub tags: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub approval_mode: apiportal_core::ApprovalMode,
    pub publish_status: apiportal_core::PublishStatus,
    pub route: RouteView,
    pub documentation: DocumentationView,
    pub contact: ContactView,
    pub plans: Vec<DiscoveredPlan>,
    pub auth_scheme: Option<AuthScheme>,
    pub oidc: Option<OidcView>,
    pub openapi: OpenApiView,
    pub ready: bool,
    pub conditions: Vec<Condition>,
}

#[derive(Serialize)]
pub struct RouteView {
    pub name: String,
    pub hostnames: Vec<String>,
}

/// Every documentation field, `null` when unset (the contract never omits a field).
#[derive(Serialize)]
pub struct DocumentationView {
    #[serde(rename = "openAPISpecURL")]
    pub openapi_spec_url: Option<String>,
    #[serde(rename = "swaggerUI")]
    pub swagger_ui: Option<String>,
    #[serde(rename = "docsURL")]
    pub docs_url: Option<String>,
    #[serde(rename = "gitRepository")]
    pub git_repository: Option<String>,
    #[serde(rename = "techdocsRef")]
    pub techdocs_ref: Option<String>,
}

#[derive(Serialize)]
pub struct ContactView {
    pub team: Option<String>,
    pub email: Option<String>,
    pub slack: Option<String>,
    pub url: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcView {
    pub issuer_url: String,
    pub token_endpoint: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenApiView {
    pub available: bool,
    pub last_sync_time: Option<Time>,
}

impl ProductView {
    pub fn new(p: &APIProduct, route: Option<&HTTPRoute>) -> Self {
        let status = p.status.clone().unwrap_or_default();
        let docs: Documentation = p.spec.documentation.clone().unwrap_or_default();
        let contact: Contact = p.spec.contact.clone().unwrap_or_default();
        let issuer = status.discovered_auth_scheme.as_ref().and_then(|s| s.jwt_issuer().map(str::to_owned));
        Self {
            namespace: p.namespace().unwrap_or_default(),
            name: p.name_any(),
            uid: p.uid(),
            generation: p.metadata.generation,
            created_at: p.metadata.creation_timestamp.clone(),
            display_name: p.spec.display_name.clone(),
            description: p.spec.description.clone(),
            version: p.spec.version.clone(),
            tags: p.spec.tags.clone(),
            labels: p.labels().clone(),
            // kubectl's last-applied copy of the whole object is noise to a catalog.
            annotations: p
                .annotations()
                .iter()
                .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            approval_mode: p.spec.approval_mode,
            publish_status: p.spec.publish_status,
            route: RouteView {
                name: p.spec.target_ref.name.clone(),
                hostnames: route.map(|r| r.spec.hostnames.clone()).unwrap_or_default(),
            },
            documentation: DocumentationView {
                openapi_spec_url: docs.openapi_spec_url,
                swagger_ui: docs.swagger_ui,
                docs_url: docs.docs_url,
                git_repository: docs.git_repository,
                techdocs_ref: docs.techdocs_ref,
            },
            contact: ContactView { team: contact.team, email: contact.email, slack: contact.slack, url: contact.url },
            plans: status.discovered_plans.clone(),
            oidc: issuer.map(|issuer_url| OidcView {
                issuer_url,
                token_endpoint: status.oidc_discovery.as_ref().and_then(|o| o.token_endpoint.clone()),
            }),
            auth_scheme: status.discovered_auth_scheme.clone(),
            openapi: OpenApiView {
                available: status.openapi.is_some(),
                last_sync_time: status.openapi.as_ref().map(|o| o.last_sync_time.clone()),
            },
            ready: apiportal_core::resources::conditions::is_true(&status.conditions, "Ready"),
            conditions: status.conditions,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub namespace: String,
    pub name: String,
    pub product: ProductRefView,
    pub plan_tier: String,
    pub requested_by: RequesterView,
    pub use_case: Option<String>,
    pub phase: apiportal_core::KeyPhase,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Time>,
    pub reason: Option<String>,
    pub created_at: Option<Time>,
    pub expires_at: Option<Time>,
}

#[derive(Serialize)]
pub struct ProductRefView {
    pub namespace: String,
    pub name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequesterView {
    pub user_id: String,
    pub email: Option<String>,
}

impl KeyView {
    /// Metadata only: the view never reads Secrets, so it cannot leak a key.
    pub fn new(k: &APIKey) -> Self {
        let status = k.status.clone().unwrap_or_default();
        Self {
            namespace: k.namespace().unwrap_or_default(),
            name: k.name_any(),
            product: ProductRefView { namespace: k.product_namespace(), name: k.spec.api_product_ref.name.clone() },
            plan_tier: k.spec.plan_tier.clone(),
            requested_by: RequesterView {
                user_id: k.spec.requested_by.user_id.clone(),
                email: k.spec.requested_by.email.clone(),
            },
            use_case: k.spec.use_case.clone(),
            phase: k.phase(),
            reviewed_by: status.reviewed_by,
            reviewed_at: status.reviewed_at,
            reason: status.reason,
            created_at: k.metadata.creation_timestamp.clone(),
            expires_at: k.spec.expires_at.clone(),
        }
    }
}

#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// A strong ETag over the exact bytes served.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
