//! A key opens its own product and nothing else: attacks a tenant with ordinary rights can try, on the real API
//! server with the real bridge. Each names the attack, and asserts that no enforcement Secret the gateway would
//! accept comes out of it, and that the key's conditions say why.

use apiportal_core::{APIKey, APIProduct, KeyPhase, labels, secrets};
use apiportal_tests::{
    Persona, cluster, eventually,
    fixtures::{
        self, all_enforcement_secrets, apikey, consumer_secret, enforcement_secrets, value, wait_issued,
        wait_ready_reason,
    },
    shared_bridge,
    stage::Stage,
};
use k8s_openapi::api::{core::v1::Secret, events::v1::Event};
use kube::{
    Api,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn request(stage: &Stage, product: &str, plan: &str) {
    stage.request(cluster(), product, plan).await
}

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
async fn extra_labels_that_fit_a_loosely_written_policy_elsewhere_are_refused() {
    let c = cluster();
    shared_bridge().await;
    // Someone else's route still protected by a legacy selector (app=toys-legacy), not product-scoped.
    let victim = Stage::new(c).await;
    victim.auth_policy(c, "toys-keys", "toys", json!({"matchLabels": {"app": "toys-legacy"}}), true).await;
    // A tenant's own, product-scoped policy that also selects on that label.
    let tenant = Stage::new(c).await;
    let fitting = json!({"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: tenant.shop, "app": "toys-legacy"}});
    tenant.auth_policy(c, "toys-keys", "toys", fitting, true).await;
    tenant.published_product(c, "toys", "automatic").await;
    let (_, reason, message) = product_condition(&tenant, "toys", "KeysIssuable").await;
    assert_eq!(reason, "KeysWouldOpenOtherRoutes", "{message}");
    assert!(
        message.contains(&format!("AuthPolicy {}/toys-keys", victim.shop)) && message.contains("app=toys-legacy"),
        "{message}"
    );
    request(&tenant, "toys", "gold").await;
    refused_key(&tenant, "toys-gold").await;
    let legacy = all_enforcement_secrets(c).await;
    assert!(
        !legacy.iter().any(|s| s
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.get("app").map(String::as_str) == Some("toys-legacy"))),
        "no Secret the legacy policy accepts was written"
    );
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

    // A new product of the same name (another owner, perhaps): the old approval does not carry over.
    stage.published_product(c, "toys", "manual").await;
    let out = c.apiportal(Persona::Owner, &["approve", &format!("{}/toys-gold", stage.team)]).await;
    assert_eq!(out.code, 1, "a Revoked key cannot be approved again: {out:?}");
    assert!(out.stderr.contains("is already Revoked"), "{}", out.stderr);
    assert!(enforcement_secrets(c, &stage.team, "toys-gold").await.is_empty());
    assert_eq!(keys.get("toys-gold").await.unwrap().phase(), KeyPhase::Revoked);
}

#[tokio::test]
async fn a_changed_selector_is_reflected_on_the_secret_and_in_the_keys_conditions() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    wait_issued(c, &stage.team, "toys-gold").await;

    let narrowed = json!({"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: stage.shop, "tier-group": "partners"}});
    stage.auth_policy(c, "toys-keys", "toys", narrowed, true).await;
    let relabelled = eventually(30, "the enforcement Secret to carry the new label", || async {
        enforcement_secrets(c, &stage.team, "toys-gold").await.into_iter().find(|s| {
            s.metadata.labels.as_ref().is_some_and(|l| l.get("tier-group").map(String::as_str) == Some("partners"))
        })
    })
    .await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let key = eventually(20, "the key's status to record the new selector", || async {
        keys.get("toys-gold").await.ok().filter(|k| {
            k.status.as_ref().and_then(|s| s.issued.as_ref()).is_some_and(|i| i.selector.contains_key("tier-group"))
        })
    })
    .await;
    assert_eq!(fixtures::condition(&key, "Ready").unwrap().status, "True");
    assert_eq!(enforcement_secrets(c, &stage.team, "toys-gold").await.len(), 1, "relabelled, not duplicated");
    let issued_value = value(&relabelled);

    // A selector that no longer names the product: the valid key keeps its Secret, and says the truth.
    stage.auth_policy(c, "toys-keys", "toys", json!({"matchLabels": {"app": "toys"}}), true).await;
    let key = wait_ready_reason(c, &stage.team, "toys-gold", "KeysNotIssuable").await;
    let ready = fixtures::condition(&key, "Ready").unwrap();
    assert!(ready.message.starts_with("the gateway may not accept the key"), "{}", ready.message);
    assert_eq!(
        value(&enforcement_secrets(c, &stage.team, "toys-gold").await[0]),
        issued_value,
        "the key's value is kept"
    );
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
