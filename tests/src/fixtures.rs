//! Objects and waits the end-to-end tests share: one definition of an APIKey request, of finding a key's two
//! Secrets, and of waiting for what the bridge does, so a changed wire format is changed here once.

use apiportal_core::{
    APIKey, KeyPhase, labels,
    resources::apikeyrequest::{APIKeyRequest, APIKeyRequestSpec, projection_name},
    secrets,
};
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Condition};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;

use crate::{Cluster, Persona, eventually};

/// The enforcement namespace the harness's bridges use.
pub const ENFORCEMENT_NAMESPACE: &str = apiportal_core::DEFAULT_ENFORCEMENT_NAMESPACE;

/// An APIKey for `product_ns/product`'s `tier`, requested by `user`.
pub fn apikey(name: &str, product_ns: &str, product: &str, tier: &str, user: &str) -> APIKey {
    serde_json::from_value(json!({
        "apiVersion": apiportal_core::API_VERSION, "kind": "APIKey", "metadata": {"name": name},
        "spec": {"apiProductRef": {"name": product, "namespace": product_ns}, "planTier": tier,
                 "useCase": "tests", "requestedBy": {"userId": user}}
    }))
    .expect("a valid APIKey")
}

/// Creates `key` in `namespace` as the consumer.
pub async fn create_apikey(cluster: &Cluster, namespace: &str, key: &APIKey) -> APIKey {
    Api::<APIKey>::namespaced(cluster.client(Persona::Consumer).await, namespace)
        .create(&PostParams::default(), key)
        .await
        .expect("the consumer creates their request")
}

/// The enforcement copies of key `key_ns/key` (every generation), as the admin sees them.
pub async fn enforcement_secrets(cluster: &Cluster, key_ns: &str, key: &str) -> Vec<Secret> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client(Persona::Admin).await, ENFORCEMENT_NAMESPACE);
    let selector = format!("{}={key_ns},{}={key}", labels::APIKEY_NAMESPACE, labels::APIKEY);
    secrets.list(&ListParams::default().labels(&selector)).await.expect("list enforcement Secrets").items
}

/// Every enforcement copy there is.
pub async fn all_enforcement_secrets(cluster: &Cluster) -> Vec<Secret> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client(Persona::Admin).await, ENFORCEMENT_NAMESPACE);
    secrets.list(&ListParams::default().labels(labels::APIKEY)).await.expect("list enforcement Secrets").items
}

/// Both copies of every key of namespace `team`: (consumer copies, enforcement copies).
pub async fn team_secrets(cluster: &Cluster, team: &str) -> (Vec<Secret>, Vec<Secret>) {
    let admin = cluster.client(Persona::Admin).await;
    let by_team = ListParams::default().labels(&format!("{}={team}", labels::APIKEY_NAMESPACE));
    let consumer = Api::<Secret>::namespaced(admin.clone(), team).list(&by_team).await.expect("list consumer copies");
    let enforcement =
        Api::<Secret>::namespaced(admin, ENFORCEMENT_NAMESPACE).list(&by_team).await.expect("list enforcement copies");
    (consumer.items, enforcement.items)
}

/// The key `ns/name` a Secret is a copy of, from its labels.
pub fn key_of(secret: &Secret) -> String {
    let labels = secret.metadata.labels.as_ref().expect("a key's Secret is labelled");
    format!("{}/{}", labels[labels::APIKEY_NAMESPACE], labels[labels::APIKEY])
}

/// The consumer's copy of key `ns/key`, if any.
pub async fn consumer_secret(cluster: &Cluster, ns: &str, key: &str) -> Option<Secret> {
    Api::<Secret>::namespaced(cluster.client(Persona::Admin).await, ns)
        .get_opt(&secrets::consumer_secret_name(key))
        .await
        .expect("get the consumer's copy")
}

/// The key value a Secret holds.
pub fn value(secret: &Secret) -> String {
    secrets::key_value(secret).or_else(|| secrets::consumer_value(secret)).expect("the Secret holds a key")
}

/// The condition of `type_` on a key.
pub fn condition(key: &APIKey, type_: &str) -> Option<Condition> {
    key.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == type_).cloned())
}

/// Waits until key `ns/name` is Approved with its value issued into both Secrets.
pub async fn wait_issued(cluster: &Cluster, ns: &str, name: &str) -> APIKey {
    let keys: Api<APIKey> = Api::namespaced(cluster.client(Persona::Admin).await, ns);
    eventually(30, &format!("apikey {ns}/{name} to be issued"), || async {
        keys.get(name)
            .await
            .ok()
            .filter(|k| k.phase() == KeyPhase::Approved && k.status.as_ref().is_some_and(|s| s.issued.is_some()))
    })
    .await
}

/// Waits until key `ns/name`'s `Ready` condition has `reason`.
pub async fn wait_ready_reason(cluster: &Cluster, ns: &str, name: &str, reason: &str) -> APIKey {
    let keys: Api<APIKey> = Api::namespaced(cluster.client(Persona::Admin).await, ns);
    eventually(30, &format!("apikey {ns}/{name} to be Ready={reason}"), || async {
        keys.get(name).await.ok().filter(|k| condition(k, "Ready").is_some_and(|c| c.reason == reason))
    })
    .await
}

/// Waits until the bridge's projection of key `key_ns/key` (a request for a product in `product_ns`), which the
/// product's owners read, exists and `matches`; returns it.
pub async fn wait_projected_when(
    cluster: &Cluster,
    product_ns: &str,
    key_ns: &str,
    key: &str,
    what: &str,
    matches: impl Fn(&APIKeyRequestSpec) -> bool,
) -> APIKeyRequest {
    let requests: Api<APIKeyRequest> = Api::namespaced(cluster.client(Persona::Admin).await, product_ns);
    let name = projection_name(key_ns, key);
    eventually(30, &format!("the projection of apikey {key_ns}/{key} in {product_ns} {what}"), || async {
        requests.get_opt(&name).await.ok().flatten().filter(|r| matches(&r.spec))
    })
    .await
}

/// Waits until the bridge has projected key `key_ns/key` into its product's namespace `product_ns`, where its owners
/// find it (`kubectl apiportal requests`, `approve`).
pub async fn wait_projected(cluster: &Cluster, product_ns: &str, key_ns: &str, key: &str) -> APIKeyRequest {
    wait_projected_when(cluster, product_ns, key_ns, key, "to exist", |_| true).await
}
