//! The view's JSON, the contract `bridge/API.md` documents and `bridge/api/view.schema.json` states (generated
//! from these types: `cargo run -p apiportal-bridge --bin apiportal-view-schema`; a test fails when it is stale).
//! Built from the cache, never carrying a key value. Fields whose value is unknown are `null`, never missing.

use std::collections::BTreeMap;

use apiportal_core::{
    APIKey, APIProduct, ApprovalMode, KeyPhase, PublishStatus,
    resources::{
        apikey::HistoryEntry,
        apiproduct::{Contact, DiscoveredPlan, Documentation},
        authpolicy::AuthScheme,
    },
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use schemars::JsonSchema;
use serde::Serialize;

/// One API product.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Product")]
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
    pub approval_mode: ApprovalMode,
    pub publish_status: PublishStatus,
    pub route: RouteView,
    pub documentation: DocumentationView,
    pub contact: ContactView,
    pub plans: Vec<DiscoveredPlan>,
    pub auth_scheme: Option<AuthScheme>,
    pub oidc: Option<OidcView>,
    pub openapi: OpenApiView,
    /// The longest a key of this product may live (e.g. `90d`), if capped.
    pub max_key_lifetime: Option<String>,
    /// At most this many keys per consumer at the gateway, if limited.
    pub max_keys_per_user: Option<i32>,
    pub ready: bool,
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, JsonSchema)]
pub struct RouteView {
    pub name: String,
    pub hostnames: Vec<String>,
}

/// Every documentation field, `null` when unset (the contract never omits a field).
#[derive(Serialize, JsonSchema)]
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

#[derive(Serialize, JsonSchema)]
pub struct ContactView {
    pub team: Option<String>,
    pub email: Option<String>,
    pub slack: Option<String>,
    pub url: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcView {
    pub issuer_url: String,
    pub token_endpoint: Option<String>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenApiView {
    /// Whether `GET /api/v1/products/{namespace}/{name}/openapi` has a document.
    pub available: bool,
    pub last_sync_time: Option<Time>,
}

impl ProductView {
    pub fn new(p: &APIProduct) -> Self {
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
            route: RouteView { name: p.spec.target_ref.name.clone(), hostnames: status.hostnames.clone() },
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
            max_key_lifetime: p.spec.max_key_lifetime.clone(),
            max_keys_per_user: p.spec.max_keys_per_user,
            ready: apiportal_core::resources::conditions::is_true(&status.conditions, "Ready"),
            conditions: status.conditions,
        }
    }
}

/// One key request: metadata only, never a key value (the view never reads Secrets).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Key")]
pub struct KeyView {
    pub namespace: String,
    pub name: String,
    pub product: ProductRefView,
    /// The tier in force (a plan change an approver granted moves it).
    pub plan_tier: String,
    /// A tier asked for by a plan change that waits for an approver.
    pub pending_plan_tier: Option<String>,
    /// The consumer's application the key is for, if named.
    pub application: Option<String>,
    pub requested_by: RequesterView,
    pub use_case: Option<String>,
    pub phase: KeyPhase,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Time>,
    pub reason: Option<String>,
    pub created_at: Option<Time>,
    pub expires_at: Option<Time>,
    /// When the current value was issued (a rotation issues a new one).
    pub key_issued_at: Option<Time>,
    /// Until when the value a rotation replaced still works.
    pub previous_key_valid_until: Option<Time>,
    /// The key's decisions and what happened to it, newest last.
    pub history: Vec<HistoryEntry>,
}

#[derive(Serialize, JsonSchema)]
pub struct ProductRefView {
    pub namespace: String,
    pub name: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequesterView {
    pub user_id: String,
    pub email: Option<String>,
}

impl KeyView {
    pub fn new(k: &APIKey) -> Self {
        let status = k.status.clone().unwrap_or_default();
        Self {
            namespace: k.namespace().unwrap_or_default(),
            name: k.name_any(),
            product: ProductRefView { namespace: k.product_namespace(), name: k.spec.api_product_ref.name.clone() },
            plan_tier: k.plan_tier().to_owned(),
            pending_plan_tier: k.pending_plan_change().map(|c| c.tier.clone()),
            application: k.spec.application.clone(),
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
            key_issued_at: status.issued.map(|i| i.issued_at),
            previous_key_valid_until: status.previous_key.map(|p| p.valid_until),
            history: status.history,
        }
    }
}

/// Which namespaces a list covers: every one, or those the caller may list.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub all_namespaces: bool,
    /// The namespaces included when not all of them (empty otherwise).
    pub namespaces: Vec<String>,
}

/// `GET /api/v1/products`. (The view writes lists by concatenating items it serialised once; this type states
/// the shape for the schema and tests.)
#[derive(Serialize, JsonSchema)]
pub struct ProductList {
    /// `ProductList`: tells the whole list from the changes in it, which share its other fields.
    pub kind: ProductListKind,
    pub items: Vec<ProductView>,
    pub scope: Scope,
    /// The list's version: ask `GET /api/v1/products?since=VERSION` (same other parameters) for what changed after
    /// it. Opaque; the same products under the same scope have the same version on every replica.
    pub version: String,
}

/// `GET /api/v1/products?since=VERSION`: what changed in the list since `VERSION`. Applying `items` (add or
/// replace each, by namespace and name) and `removed` (drop each) to the list at `since` gives the list at
/// `version`, exactly.
#[derive(Serialize, JsonSchema)]
pub struct ProductChanges {
    /// `ProductChanges`: an answer of changes is never taken for the whole list, nor the list for changes.
    pub kind: ProductChangesKind,
    /// The version asked for: an answer whose `since` is not the version the client holds is not for its list.
    pub since: String,
    /// The version the list is at after these changes: ask for changes since it next.
    pub version: String,
    /// Products added to the list, or changed, since `since`: each whole, to add or to replace.
    pub items: Vec<ProductView>,
    /// Products that left the list since `since` (deleted or unpublished): only ones the list at `since` held.
    pub removed: Vec<RemovedProduct>,
    pub scope: Scope,
}

#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductListKind {
    ProductList,
}

#[derive(Serialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductChangesKind {
    ProductChanges,
}

/// A product that left a list.
#[derive(Serialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
pub struct RemovedProduct {
    pub namespace: String,
    pub name: String,
    /// The uid it had in the list.
    pub uid: Option<String>,
}

/// `GET /api/v1/keys`.
#[derive(Serialize, JsonSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
    pub scope: Scope,
}

/// Every error answer.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// `BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `MethodNotAllowed`, `Expired` (410: changes asked
    /// for since a version this bridge cannot answer from; read the whole list), `TooManyRequests`,
    /// `Unavailable`.
    pub code: String,
    pub message: String,
}

/// The JSON Schema (2020-12) of every response, each under `$defs`: `ProductList`, `ProductChanges`, `Product`,
/// `KeyList`, `Key`, `Error` and what they use.
pub fn schema() -> serde_json::Value {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    generator.subschema_for::<ProductList>();
    generator.subschema_for::<ProductChanges>();
    generator.subschema_for::<KeyList>();
    generator.subschema_for::<ErrorBody>();
    let defs: serde_json::Map<String, serde_json::Value> = generator.take_definitions(true).into_iter().collect();
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://apiportal.dev/schemas/bridge-view.json",
        "title": "apiportal bridge view",
        "description": "Responses of the apiportal bridge's read-only HTTP view (bridge/API.md). Generated from the bridge's Rust types; do not edit.",
        "$defs": defs,
    })
}

/// The schema as committed: pretty JSON with a final newline.
pub fn schema_text() -> String {
    serde_json::to_string_pretty(&schema()).expect("a schema serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema is what the types generate, so the contract the Backstage module validates against
    /// cannot drift from what the bridge serves.
    #[test]
    fn the_committed_schema_is_what_the_types_generate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("api/view.schema.json");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema_text(),
            "{} differs from what the view types generate: run `cargo run -p apiportal-bridge --bin apiportal-view-schema` and commit",
            path.display()
        );
    }

    #[test]
    fn every_response_type_is_named_in_the_schema() {
        let schema = schema();
        for name in ["ProductList", "ProductChanges", "RemovedProduct", "Product", "KeyList", "Key", "Error", "Scope"] {
            assert!(schema["$defs"][name].is_object(), "$defs/{name} missing: {}", schema["$defs"]);
        }
        assert!(schema["$defs"]["Product"]["properties"]["displayName"].is_object());
    }
}
