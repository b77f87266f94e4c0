//! A key opens its own product and nothing else, for as long as it is valid and not a second longer: attacks a
//! tenant with ordinary rights can try, on the real API server with the real bridge, judged by the real gateway
//! (Kuadrant's Authorino, with the AuthConfigs Kuadrant would derive from the routes and AuthPolicies). Each names
//! the attack, and asserts what the gateway answers, that no enforcement Secret it would accept comes out of it,
//! and that the key's conditions say why.

use apiportal_core::{APIKey, APIProduct, KeyPhase, labels, secrets};
use apiportal_tests::{
    Persona, cluster, eventually,
    fixtures::{
        self, all_enforcement_secrets, apikey, consumer_secret, enforcement_secrets, value, wait_issued,
        wait_ready_reason,
    },
    gateway::{Gateway, GatewayRoutes},
    shared_bridge,
    stage::Stage,
};
use k8s_openapi::api::{core::v1::Secret, events::v1::Event};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn request(stage: &Stage, product: &str, plan: &str) {
    stage.request(cluster(), product, plan).await
}

/// The real gateway, with the AuthConfigs of the cluster's routes and policies as they are now.
async fn gateway() -> (Gateway, GatewayRoutes) {
    let gateway = Gateway::of(cluster()).await;
    let routes = gateway.sync().await;
    (gateway, routes)
}

/// The key the consumer holds for request `name` of `stage`'s team.
async fn held_key(stage: &Stage, name: &str) -> String {
    value(&consumer_secret(cluster(), &stage.team, name).await.expect("the consumer's copy"))
}

/// How long the gateway may take to follow a change the bridge made (Authorino reads Secrets through a watch).
const GATEWAY_SECONDS: u64 = 30;

async fn product_condition(stage: &Stage, product: &str, type_: &str) -> (String, String, String) {
    product_condition_with_reason(stage, product, type_, None).await
}

/// Waits for product `product`'s `type_` condition, with `reason` when one is given: (status, reason, message).
async fn product_condition_with_reason(
    stage: &Stage,
    product: &str,
    type_: &str,
    reason: Option<&str>,
) -> (String, String, String) {
    let products: Api<APIProduct> = Api::namespaced(cluster().client(Persona::Admin).await, &stage.shop);
    let what = format!("product {product}'s {type_} condition{}", reason.map(|r| format!(" {r}")).unwrap_or_default());
    eventually(30, &what, || async {
        let p = products.get(product).await.ok()?;
        let c = p.conditions().iter().find(|c| c.type_ == type_)?.clone();
        reason.is_none_or(|r| r == c.reason).then_some((c.status, c.reason, c.message))
    })
    .await
}

/// Waits until key `name` of `stage`'s team says its product issues no keys, and checks that no enforcement Secret
/// (the copy the gateway accepts) was written for it.
async fn refused_key(stage: &Stage, name: &str) -> APIKey {
    let c = cluster();
    let key = wait_ready_reason(c, &stage.team, name, "KeysNotIssuable").await;
    assert!(
        enforcement_secrets(c, &stage.team, name).await.is_empty(),
        "the bridge wrote no enforcement Secret for {}/{name}",
        stage.team
    );
    key
}

#[tokio::test]
async fn two_products_on_one_route_do_not_share_keys() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    // As Kuadrant's own examples do: an automatic and a manual product over one route, whose AuthPolicy names
    // the automatic one.
    stage.published_product(c, "toys", "automatic").await;
    stage.published_product(c, "toys-partner", "manual").await;

    let (status, reason, message) = product_condition(&stage, "toys-partner", "KeysIssuable").await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SelectorNamesAnotherProduct"), "{message}");
    assert!(
        message.contains(&format!("APIProduct {}/toys", stage.shop)),
        "names the product the policy selects: {message}"
    );

    request(&stage, "toys-partner", "gold").await;
    fixtures::wait_projected(c, &stage.shop, &stage.team, "toys-partner-gold").await;
    let out = c.apiportal(Persona::Owner, &["approve", &format!("{}/toys-partner-gold", stage.team)]).await;
    assert!(out.success(), "{}", out.stderr);
    let key = refused_key(&stage, "toys-partner-gold").await;
    assert_eq!(key.phase(), KeyPhase::Approved);
    let ready = fixtures::condition(&key, "Ready").unwrap();
    assert!(ready.message.contains(&format!("APIProduct {}/toys", stage.shop)), "{}", ready.message);
    assert!(consumer_secret(c, &stage.team, "toys-partner-gold").await.is_none());

    // The product the policy names still gets its keys, labelled as its own.
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let issued = enforcement_secrets(c, &stage.team, "toys-gold").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].metadata.labels.as_ref().unwrap()[labels::APIPRODUCT], "toys");

    let out = c.apiportal(Persona::Owner, &["-n", &stage.shop, "doctor"]).await;
    assert!(
        out.stdout.contains("toys-partner: KeysIssuable is False (SelectorNamesAnotherProduct"),
        "doctor reports it: {}",
        out.stdout
    );
}

#[tokio::test]
async fn a_tenant_copying_another_products_selector_gets_no_secret() {
    let c = cluster();
    shared_bridge().await;
    let victim = Stage::new(c).await;
    victim.published_product(c, "toys", "manual").await;
    // The tenant's own namespace, route and AuthPolicy, whose selector is copied from the victim's product
    // status (it is visible to every catalog reader), and an automatic product of the same name.
    let tenant = Stage::new(c).await;
    let copied = json!({"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: victim.shop}});
    tenant.auth_policy(c, "toys-keys", "toys", copied, true).await;
    tenant.published_product(c, "toys", "automatic").await;
    request(&tenant, "toys", "gold").await;
    let key = refused_key(&tenant, "toys-gold").await;
    assert!(fixtures::condition(&key, "Ready").unwrap().message.contains(&format!("APIProduct {}/toys", victim.shop)));
    let victims_keys = format!("{}={},{}=toys", labels::APIPRODUCT_NAMESPACE, victim.shop, labels::APIPRODUCT);
    let secrets: Api<Secret> = Api::namespaced(c.client(Persona::Admin).await, fixtures::ENFORCEMENT_NAMESPACE);
    assert!(
        secrets.list(&ListParams::default().labels(&victims_keys)).await.unwrap().items.is_empty(),
        "nothing the victim's AuthPolicy selects exists"
    );
}

#[tokio::test]
async fn labels_a_tenant_chose_never_open_another_teams_route() {
    let c = cluster();
    shared_bridge().await;
    // A tenant's product-scoped policy that also selects on app=payments, the label another team's legacy policy
    // selects its own keys by. Keys carry their identity only, so the bridge refuses the selector and says which
    // label to drop; nothing is issued under it.
    let tenant = Stage::new(c).await;
    let sticky = json!({"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: tenant.shop, "app": "payments"}});
    tenant.auth_policy(c, "toys-keys", "toys", sticky, true).await;
    tenant.published_product(c, "toys", "automatic").await;
    let (status, reason, message) = product_condition(&tenant, "toys", "KeysIssuable").await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "SelectorHasForeignLabels"), "{message}");
    assert!(message.contains("app=payments") && message.contains("drop it"), "{message}");
    request(&tenant, "toys", "gold").await;
    let waiting = refused_key(&tenant, "toys-gold").await;
    assert_eq!(waiting.phase(), KeyPhase::Pending, "an automatic product approves nothing it cannot issue");

    // Dropping the label lets the key through, labelled with its identity and nothing else.
    tenant.api_key_policy(c, "toys", "toys").await;
    wait_issued(c, &tenant.team, "toys-gold").await;
    let copy = enforcement_secrets(c, &tenant.team, "toys-gold").await.pop().expect("an enforcement copy");
    let mut carried: Vec<&str> = copy.metadata.labels.as_ref().unwrap().keys().map(String::as_str).collect();
    carried.sort_unstable();
    let mut identity = secrets::ENFORCEMENT_LABEL_KEYS.to_vec();
    identity.sort_unstable();
    assert_eq!(carried, identity);

    // Later, another team's legacy policy on its own route selects app=payments.
    let other = Stage::new(c).await;
    other.auth_policy(c, "toys-keys", "toys", json!({"matchLabels": {"app": "payments"}}), true).await;
    let (gateway, routes) = gateway().await;
    let key = held_key(&tenant, "toys-gold").await;
    gateway.await_status(&routes, &tenant.host("toys"), &key, 200, GATEWAY_SECONDS).await;
    assert_eq!(gateway.check(&routes, &other.host("toys"), &key).await, 401, "the other team's route refuses the key");

    // A label an older bridge (or anyone) put on the copy is taken off at once, and the gateway follows.
    let secrets_api: Api<Secret> = Api::namespaced(c.client(Persona::Admin).await, fixtures::ENFORCEMENT_NAMESPACE);
    let stick = json!({"metadata": {"labels": {"app": "payments"}}});
    secrets_api
        .patch(&copy.metadata.name.clone().unwrap(), &PatchParams::default(), &Patch::Merge(&stick))
        .await
        .unwrap();
    eventually(30, "the bridge to take the label off", || async {
        let now = secrets_api.get(copy.metadata.name.as_deref().unwrap()).await.ok()?;
        (!now.metadata.labels.unwrap_or_default().contains_key("app")).then_some(())
    })
    .await;
    gateway.await_status(&routes, &other.host("toys"), &key, 401, GATEWAY_SECONDS).await;
    gateway.await_status(&routes, &tenant.host("toys"), &key, 200, GATEWAY_SECONDS).await;
}

#[tokio::test]
async fn policies_that_are_not_enforced_or_not_in_the_gateway_api_group_issue_nothing() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    let scoped = json!({"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: stage.shop}});
    stage.auth_policy(c, "toys-keys", "toys", scoped.clone(), false).await;
    stage.published_product(c, "toys", "automatic").await;
    let (_, reason, _) = product_condition(&stage, "toys", "KeysIssuable").await;
    assert_eq!(reason, "AuthPolicyNotEnforced");
    request(&stage, "toys", "gold").await;
    refused_key(&stage, "toys-gold").await;

    // The same selector, enforced, on a Gateway the route names but that did not accept it: it does not apply.
    // (Kuadrant's CRD itself refuses targetRefs outside the Gateway API group; the bridge's own check of that is
    // a unit test of `attachment`.)
    let policies: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::authpolicy_resource(),
    );
    policies.delete("toys-keys", &DeleteParams::default()).await.unwrap();
    let gateway = format!("internal-{}", stage.shop);
    let routes: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::httproute_resource(),
    );
    let parents = json!([{"name": "external", "namespace": "gateway-system"}, {"name": gateway}]);
    routes
        .patch("toys", &PatchParams::default(), &Patch::Merge(json!({"spec": {"parentRefs": parents}})))
        .await
        .unwrap();
    stage.gateway_auth_policy(c, "gateway-keys", &gateway, scoped).await;
    product_condition_with_reason(&stage, "toys", "KeysIssuable", Some("AuthPolicyNotFound")).await;
    assert!(enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty());
    // Once that Gateway accepts the route, its policy applies and the waiting key is issued: the refusal above
    // was about attachment, nothing else.
    stage.accept_route(c, "toys", &[("gateway-system", "external"), (&stage.shop, &gateway)]).await;
    product_condition_with_reason(&stage, "toys", "KeysIssuable", Some("ProductScopedSelector")).await;
    wait_issued(c, &stage.team, "toys-gold").await;
}

#[tokio::test]
async fn a_consumer_written_secret_is_never_adopted() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    // A consumer who may write Secrets in their namespace (as teams deploying their own apps often may) picks
    // the key they want, e.g. one leaked elsewhere, before requesting.
    let chosen = "a-key-the-consumer-chose-aaaaaaaaaaaaaaaaaaaa";
    let planted: Secret = serde_json::from_value(json!({
        "metadata": {"name": secrets::consumer_secret_name("toys-gold")},
        "stringData": {"api_key": chosen}
    }))
    .unwrap();
    Api::<Secret>::namespaced(c.client(Persona::Admin).await, &stage.team)
        .create(&PostParams::default(), &planted)
        .await
        .unwrap();
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let enforcement = enforcement_secrets(c, &stage.team, "toys-gold").await;
    assert_eq!(enforcement.len(), 1);
    let issued = value(&enforcement[0]);
    assert_ne!(issued, chosen, "the gateway accepts a key the bridge generated");
    assert_eq!(issued.len(), apiportal_core::keygen::KEY_LEN);
    let consumer_copy = eventually(20, "the consumer's copy to hold the issued key", || async {
        consumer_secret(c, &stage.team, "toys-gold").await.filter(|s| value(s) == issued)
    })
    .await;
    assert!(consumer_copy.metadata.owner_references.as_ref().is_some_and(|o| o[0].name == "toys-gold"));
    let every_copy = all_enforcement_secrets(c).await;
    assert!(every_copy.iter().any(|s| value(s) == issued), "the issued key is among the copies looked at");
    assert!(every_copy.iter().all(|s| value(s) != chosen), "the chosen key opens nothing");
    let events: Api<Event> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let replaced = eventually(20, "a warning about the replaced Secret", || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ConsumerSecretReplaced"))
    })
    .await;
    assert_eq!(replaced.type_.as_deref(), Some("Warning"));
}

#[tokio::test]
async fn a_product_deleted_and_created_again_does_not_inherit_old_keys() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    let (gateway, routes) = gateway().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 200, GATEWAY_SECONDS).await;
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &stage.shop);
    products.delete("toys", &DeleteParams::default()).await.unwrap();
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let revoked = eventually(30, "the key to be revoked with its product", || async {
        keys.get("toys-gold").await.ok().filter(|k| k.phase() == KeyPhase::Revoked)
    })
    .await;
    let status = revoked.status.unwrap();
    assert_eq!(status.reviewed_by.as_deref(), Some(Persona::Bridge.username().as_str()));
    assert!(status.reason.unwrap().contains("was deleted"));
    eventually(20, "both Secrets to go", || async {
        (enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty()
            && consumer_secret(c, &stage.team, "toys-gold").await.is_none())
        .then_some(())
    })
    .await;

    gateway.await_status(&routes, &stage.host("toys"), &key, 401, GATEWAY_SECONDS).await;

    // A new product of the same name (another owner, perhaps): the old approval does not carry over.
    stage.published_product(c, "toys", "manual").await;
    let out = c.apiportal(Persona::Owner, &["approve", &format!("{}/toys-gold", stage.team)]).await;
    assert_eq!(out.code, 1, "a Revoked key cannot be approved again: {out:?}");
    assert!(out.stderr.contains("is already Revoked"), "{}", out.stderr);
    assert!(enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty());
    assert_eq!(keys.get("toys-gold").await.unwrap().phase(), KeyPhase::Revoked);
}

#[tokio::test]
async fn a_policy_that_stops_letting_a_product_take_keys_takes_them_off_the_gateway_until_fixed() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    let (gateway, routes) = gateway().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 200, GATEWAY_SECONDS).await;

    // The policy no longer names the product (a legacy selector, as a platform change might leave it).
    stage.auth_policy(c, "toys-keys", "toys", json!({"matchLabels": {"app": "toys"}}), true).await;
    let key_now = wait_ready_reason(c, &stage.team, "toys-gold", "KeysNotIssuable").await;
    assert_eq!(key_now.phase(), KeyPhase::Approved, "the approval stands");
    let ready = fixtures::condition(&key_now, "Ready").unwrap();
    assert!(ready.message.contains("with the same value"), "{}", ready.message);
    eventually(30, "the enforcement copy to go", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty().then_some(())
    })
    .await;
    let routes = gateway.sync().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 401, GATEWAY_SECONDS).await;
    assert_eq!(held_key(&stage, "toys-gold").await, key, "the consumer keeps the value");

    // Fixed: the same value works again, restored from the consumer's copy by its recorded digest.
    stage.api_key_policy(c, "toys", "toys").await;
    wait_ready_reason(c, &stage.team, "toys-gold", "KeyIssued").await;
    let routes = gateway.sync().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 200, GATEWAY_SECONDS).await;
    assert_eq!(value(&enforcement_secrets(c, &stage.team, "toys-gold").await[0]), key);
}

/// Found by the adversary (seed 16244056774129971614, step 115): a route whose AuthPolicy selects every Secret in
/// every namespace (`allNamespaces: true`, an empty selector) read the consumer's copy of a key that was off the
/// gateway (its product could not take keys), and accepted it. The consumer's copy now keeps the value under a data
/// key Authorino never reads.
#[tokio::test]
async fn a_route_that_reads_every_namespace_never_accepts_a_consumers_copy() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    // The route's owner rewrites its policy to read every Secret of every namespace: the product can no longer take
    // keys, so the key leaves the gateway; its value stays with the consumer.
    let policies: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::authpolicy_resource(),
    );
    let everything = json!({"spec": {"rules": {"authentication": {"api-key": {"apiKey": {"selector": {}, "allNamespaces": true}}}}}});
    policies.patch("toys-keys", &PatchParams::default(), &Patch::Merge(&everything)).await.unwrap();
    wait_ready_reason(c, &stage.team, "toys-gold", "KeysNotIssuable").await;
    eventually(30, "the enforcement copy to go", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty().then_some(())
    })
    .await;
    let (gateway, routes) = gateway().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 401, GATEWAY_SECONDS).await;
    assert_eq!(held_key(&stage, "toys-gold").await, key, "the consumer still holds the value");
}

/// Found by the adversary (seed 13827689562004940397, step 188): an AuthPolicy moved from the product's route to
/// another route left the product's keys at the gateway, because only the products of the policy's new target
/// were looked at again.
#[tokio::test]
async fn a_policy_moved_to_another_route_takes_the_keys_of_the_first_off_the_gateway() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    stage.route(c, "games", &[&stage.host("games")]).await;
    let policies: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::authpolicy_resource(),
    );
    let moved =
        json!({"spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "games"}}});
    policies.patch("toys-keys", &PatchParams::default(), &Patch::Merge(&moved)).await.unwrap();
    product_condition_with_reason(&stage, "toys", "KeysIssuable", Some("AuthPolicyNotFound")).await;
    eventually(30, "the enforcement copy to go", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty().then_some(())
    })
    .await;
    let (gateway, routes) = gateway().await;
    gateway.await_status(&routes, &stage.host("games"), &key, 401, GATEWAY_SECONDS).await;
}

#[tokio::test]
async fn deleting_a_route_or_its_policy_is_seen_at_once() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    let (gateway, routes) = gateway().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 200, GATEWAY_SECONDS).await;

    // The AuthPolicy goes: no status may name it for more than a moment, and the key leaves the gateway.
    let policies: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::authpolicy_resource(),
    );
    policies.delete("toys-keys", &DeleteParams::default()).await.unwrap();
    product_condition_with_reason(&stage, "toys", "KeysIssuable", Some("AuthPolicyNotFound")).await;
    product_condition_with_reason(&stage, "toys", "AuthPolicyDiscovered", Some("NotFound")).await;
    wait_ready_reason(c, &stage.team, "toys-gold", "KeysNotIssuable").await;
    eventually(30, "the enforcement copy to go", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty().then_some(())
    })
    .await;

    // Back, then the route goes.
    stage.api_key_policy(c, "toys", "toys").await;
    wait_ready_reason(c, &stage.team, "toys-gold", "KeyIssued").await;
    let routes_api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        c.client(Persona::Admin).await,
        &stage.shop,
        &apiportal_tests::stage::httproute_resource(),
    );
    routes_api.delete("toys", &DeleteParams::default()).await.unwrap();
    let (status, _, _) = product_condition_with_reason(&stage, "toys", "Ready", Some("HTTPRouteNotFound")).await;
    assert_eq!(status, "False");
    product_condition_with_reason(&stage, "toys", "KeysIssuable", Some("HTTPRouteNotFound")).await;
    eventually(30, "the enforcement copy to go with the route", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty().then_some(())
    })
    .await;
    // Kuadrant drops the route's AuthConfig with the route; the key is accepted on no route that remains.
    let routes = gateway.sync().await;
    for route in &routes.0 {
        for host in &route.hosts {
            assert_ne!(gateway.check(&routes, host, &key).await, 200, "{host} accepts a key whose route is gone");
        }
    }
}

#[tokio::test]
async fn a_key_deleted_behind_the_bridges_back_leaves_nothing_at_the_gateway() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    let (gateway, routes) = gateway().await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 200, GATEWAY_SECONDS).await;
    // A namespace admin strips the bridge's finalizer and deletes the request: the bridge never sees a deleting
    // key, only its absence.
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    keys.patch("toys-gold", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    keys.delete("toys-gold", &DeleteParams::default()).await.unwrap();
    eventually(60, "the sweeper to remove the copy no key wants", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty().then_some(())
    })
    .await;
    gateway.await_status(&routes, &stage.host("toys"), &key, 401, GATEWAY_SECONDS).await;
}

#[tokio::test]
async fn nobody_but_the_bridge_writes_a_products_status() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    // A namespace admin with wildcard rights in the product's namespace, as many teams are.
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(json!({
        "metadata": {"name": "namespace-admin"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(c.client(Persona::Admin).await, &stage.shop)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "namespace-admin-erin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "namespace-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": Persona::Owner2.username()}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(c.client(Persona::Admin).await, &stage.shop)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner2).await, &stage.shop);
    for forged in [
        json!({"status": {"keyIssuance": {"authPolicy": "x/y", "rule": "r", "matchLabels": {}}}}),
        json!({"status": {"discoveredPlans": [{"tier": "platinum", "limits": {}}]}}),
    ] {
        let err = products.patch_status("toys", &PatchParams::default(), &Patch::Merge(&forged)).await.unwrap_err();
        assert_eq!(apiportal_tests::api_error_code(&err), 403, "{err}");
        assert!(apiportal_tests::api_error_message(&err).contains("written only by the apiportal bridge"), "{err}");
    }
}

#[tokio::test]
async fn per_user_limits_hold_under_concurrent_requests() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    let out =
        stage.create_product(c, "toys", &["--approval", "automatic", "--publish", "--max-keys-per-user", "2"]).await;
    assert!(out.success(), "{}", out.stderr);
    stage.wait_for_plans(c, "toys").await;
    // Six requests in the same instant, as a script would send them.
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &stage.team);
    futures::future::join_all((0..6).map(|i| {
        let (keys, shop) = (keys.clone(), stage.shop.clone());
        async move {
            let key = apikey(&format!("burst-{i}"), &shop, "toys", "gold", "alice");
            keys.create(&PostParams::default(), &key).await.expect("create request");
        }
    }))
    .await;
    let decided = eventually(60, "every request to be decided", || async {
        let all = keys.list(&ListParams::default()).await.ok()?.items;
        all.iter().all(|k| matches!(k.phase(), KeyPhase::Approved | KeyPhase::Rejected)).then_some(all)
    })
    .await;
    let approved: Vec<&APIKey> = decided.iter().filter(|k| k.phase() == KeyPhase::Approved).collect();
    assert_eq!(approved.len(), 2, "exactly maxKeysPerUser requests are approved");
    for rejected in decided.iter().filter(|k| k.phase() == KeyPhase::Rejected) {
        assert!(rejected.status.as_ref().unwrap().reason.as_deref().unwrap().contains("allows 2 per user"));
    }
    let (gateway, routes) = gateway().await;
    let mut open = 0;
    for k in &decided {
        if let Some(copy) = consumer_secret(c, &stage.team, &k.metadata.name.clone().unwrap()).await {
            gateway.await_status(&routes, &stage.host("toys"), &value(&copy), 200, GATEWAY_SECONDS).await;
            open += 1;
        }
    }
    assert_eq!(open, 2, "two keys open the gateway, no more");
}

#[tokio::test]
async fn manual_approval_of_a_tier_the_product_does_not_offer_is_refused() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    // The plugin would refuse to request it; the API lets a consumer ask anyway.
    fixtures::create_apikey(c, &stage.team, &apikey("platinum", &stage.shop, "toys", "platinum", "alice")).await;
    let reference = format!("{}/platinum", stage.team);
    fixtures::wait_projected(c, &stage.shop, &stage.team, "platinum").await;
    let out = c.apiportal(Persona::Owner, &["approve", &reference]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("offers no plan tier \"platinum\"; it offers: gold, bronze"), "{}", out.stderr);
    // Written to the API directly, the approval is admitted (the API server cannot read products), but the
    // bridge issues nothing and says why.
    let owner_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Owner).await, &stage.team);
    let patch = apiportal_core::decision::decision_patch(KeyPhase::Approved, "bob", jiff::Timestamp::now(), None);
    owner_keys.patch_status("platinum", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let key = eventually(30, "the approved key to say why it has no key", || async {
        keys.get("platinum").await.ok().filter(|k| {
            k.phase() == KeyPhase::Approved
                && fixtures::condition(k, "Ready")
                    .is_some_and(|c| c.reason == "PlanTierNotFound" && c.message.contains("no key is issued"))
        })
    })
    .await;
    assert_eq!(key.status.unwrap().history.last().map(|e| e.action), Some(apiportal_core::KeyAction::Approved));
    assert!(enforcement_secrets(c, &stage.team, "platinum").await.is_empty());
}

/// Suspension cuts a key off at the gateway at once, and resumption brings back the very same value.
#[tokio::test]
async fn a_suspended_key_is_refused_at_the_gateway_and_resumed_with_the_same_value() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    let (gateway, routes) = gateway().await;
    let host = stage.host("toys");
    gateway.await_status(&routes, &host, &key, 200, GATEWAY_SECONDS).await;

    fixtures::wait_projected(c, &stage.shop, &stage.team, "toys-gold").await;
    let reference = format!("{}/toys-gold", stage.team);
    let out = c.apiportal(Persona::Owner, &["suspend", &reference, "--reason", "abuse report"]).await;
    assert!(out.success(), "{}", out.stderr);
    gateway.await_status(&routes, &host, &key, 401, GATEWAY_SECONDS).await;
    assert_eq!(held_key(&stage, "toys-gold").await, key, "the consumer keeps the value");
    let suspended = wait_ready_reason(c, &stage.team, "toys-gold", "Suspended").await;
    assert!(fixtures::condition(&suspended, "Ready").unwrap().message.contains("abuse report"));

    let out = c.apiportal(Persona::Owner, &["resume", &reference, "--reason", "resolved"]).await;
    assert!(out.success(), "{}", out.stderr);
    gateway.await_status(&routes, &host, &key, 200, GATEWAY_SECONDS).await;
    assert_eq!(held_key(&stage, "toys-gold").await, key, "the same value opens the gateway again");
}

/// A plan change moves the key to the new tier at the gateway (the enforcement copy's plan annotation, which the
/// PlanPolicy's predicates read) and keeps its value: nothing is reissued.
#[tokio::test]
async fn a_plan_change_keeps_the_value_and_moves_the_plan_at_the_gateway() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;
    let key = held_key(&stage, "toys-gold").await;
    let plan_of = |copies: Vec<Secret>| {
        copies.iter().map(|s| s.annotations().get(labels::PLAN_ID).cloned().unwrap_or_default()).collect::<Vec<_>>()
    };
    assert_eq!(plan_of(enforcement_secrets(c, &stage.team, "toys-gold").await), ["gold"]);
    let (gateway, routes) = gateway().await;
    let host = stage.host("toys");
    gateway.await_status(&routes, &host, &key, 200, GATEWAY_SECONDS).await;

    let args = ["-n", &stage.team, "key", "change-plan", "toys-gold", "--plan", "bronze", "--wait=30s"];
    let out = c.apiportal(Persona::Consumer, &args).await;
    assert!(out.success() && out.stderr.contains("moved to plan bronze"), "{out:?}");
    let plans = eventually(30, "the enforcement copy to carry the new plan", || async {
        let plans = plan_of(enforcement_secrets(c, &stage.team, "toys-gold").await);
        (plans == ["bronze"]).then_some(plans)
    })
    .await;
    assert_eq!(plans, ["bronze"]);
    assert_eq!(value(&enforcement_secrets(c, &stage.team, "toys-gold").await[0]), key, "nothing was reissued");
    gateway.await_status(&routes, &host, &key, 200, GATEWAY_SECONDS).await;
}
