//! The resource model on a real kube-apiserver: the generated CRDs install, the API server enforces their
//! validation, RBAC is really on, and the admission policy guards decisions and identities.

use apiportal_core::{APIKey, APIProduct, rbac};
use apiportal_tests::{Persona, api_error_code, api_error_message, cluster, eventually, fixtures};
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};

fn product(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct", "metadata": {"name": name}, "spec": spec})
}

fn valid_product_spec() -> Value {
    json!({"displayName": "Toys API", "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"}})
}

/// The fixture request as JSON, for tests that break it in ways its type cannot express.
/// A request for `product_ns/toys`'s gold plan in `user`'s name.
fn toys_gold(name: &str, product_ns: &str, user: &str) -> APIKey {
    fixtures::apikey(name, product_ns, "toys", "gold", user)
}

/// The same, as raw JSON, to be made invalid.
fn apikey(name: &str, product_ns: &str, user: &str) -> Value {
    serde_json::to_value(toys_gold(name, product_ns, user)).expect("an APIKey serialises")
}

async fn create_product(api: &Api<APIProduct>, object: Value) -> Result<APIProduct, kube::Error> {
    api.create(&PostParams::default(), &serde_json::from_value(object).expect("test objects deserialise")).await
}

async fn create_raw<K>(api: &Api<K>, object: Value) -> Result<Value, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    // Invalid objects cannot be built from the Rust types, so they go to the API server as raw JSON.
    let request = kube::core::Request::new(api.resource_url())
        .create(&PostParams::default(), serde_json::to_vec(&object).unwrap())
        .unwrap();
    let client = cluster().client(Persona::Admin).await;
    client.request::<Value>(request).await
}

#[tokio::test]
async fn generated_crds_are_established_with_printer_columns() {
    let c = cluster();
    let ns = c.namespace("columns").await;
    let admin = c.client(Persona::Admin).await;
    let products: Api<APIProduct> = Api::namespaced(admin.clone(), &ns);
    create_product(&products, product("toys", valid_product_spec())).await.expect("a valid APIProduct is accepted");
    let keys: Api<APIKey> = Api::namespaced(admin, &ns);
    keys.create(&PostParams::default(), &toys_gold("k1", &ns, "harness-admin"))
        .await
        .expect("a valid APIKey is accepted");

    let out = c.kubectl(Persona::Admin).args(["get", "apip", "-n", &ns]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kubectl get apip failed: {}", String::from_utf8_lossy(&out.stderr));
    let header: Vec<&str> =
        table.lines().next().unwrap().split("   ").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(header, ["NAME", "DISPLAY NAME", "ROUTE", "APPROVAL", "PUBLISH STATUS", "READY", "AGE"]);
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.contains("toys") && row.contains("Toys API") && row.contains("manual") && row.contains("Draft"),
        "{row}"
    );

    let out = c.kubectl(Persona::Admin).args(["get", "apik", "-n", &ns]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PRODUCT", "PLAN", "USER", "PHASE", "AGE"]);
    assert!(table.lines().nth(1).unwrap().contains("gold"));
}

#[tokio::test]
async fn defaults_are_applied_by_the_api_server() {
    let c = cluster();
    let ns = c.namespace("defaults").await;
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &ns);
    let created =
        create_product(&products, product("toys", json!({"displayName": "Toys", "targetRef": {"name": "toys"}})))
            .await
            .expect("targetRef group and kind default");
    assert_eq!(created.spec.approval_mode, apiportal_core::ApprovalMode::Manual);
    assert_eq!(created.spec.publish_status, apiportal_core::PublishStatus::Draft);
    assert_eq!(created.spec.target_ref.kind, "HTTPRoute");
}

#[tokio::test]
async fn invalid_products_are_rejected_with_the_api_servers_message() {
    let c = cluster();
    let ns = c.namespace("invalid-products").await;
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &ns);
    let long_name = "p".repeat(64);
    let cases = [
        (
            "bad-approval",
            json!({"displayName": "X", "targetRef": {"name": "r"}, "approvalMode": "sometimes"}),
            "spec.approvalMode: Unsupported value: \"sometimes\"",
        ),
        ("no-target", json!({"displayName": "X"}), "spec.targetRef: Required value"),
        (
            "bad-publish",
            json!({"displayName": "X", "targetRef": {"name": "r"}, "publishStatus": "Live"}),
            "spec.publishStatus: Unsupported value: \"Live\"",
        ),
        ("no-display-name", json!({"targetRef": {"name": "r"}}), "spec.displayName: Required value"),
        (
            "long-name",
            json!({"displayName": "x".repeat(129), "targetRef": {"name": "r"}}),
            "spec.displayName: Too long",
        ),
        (
            "too-many-tags",
            json!({"displayName": "X", "targetRef": {"name": "r"}, "tags": (0..33).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "spec.tags: Too many",
        ),
        (
            "not-a-route",
            json!({"displayName": "X", "targetRef": {"group": "", "kind": "Service", "name": "r"}}),
            "targetRef must name a gateway.networking.k8s.io HTTPRoute",
        ),
        (
            // Valid as a Kubernetes name, but too long for the label value it becomes on keys' Secrets.
            long_name.as_str(),
            json!({"displayName": "X", "targetRef": {"name": "r"}}),
            "an APIProduct name must be at most 63 characters",
        ),
    ];
    for (name, spec, expected) in cases {
        let err = create_raw(&products, product(name, spec)).await.expect_err(name);
        assert_eq!(api_error_code(&err), 422, "{name}: {err}");
        let message = api_error_message(&err);
        assert!(message.contains(expected), "{name}: expected {expected:?} in {message:?}");
    }
    assert!(products.list(&Default::default()).await.unwrap().items.is_empty(), "nothing invalid was stored");
}

#[tokio::test]
async fn invalid_apikeys_are_rejected_and_the_spec_is_immutable() {
    let c = cluster();
    let ns = c.namespace("invalid-keys").await;
    let admin = c.client(Persona::Admin).await;
    let keys: Api<APIKey> = Api::namespaced(admin, &ns);
    let mut empty_tier = apikey("empty-tier", &ns, "harness-admin");
    empty_tier["spec"]["planTier"] = json!("");
    let mut bad_email = apikey("bad-email", &ns, "harness-admin");
    bad_email["spec"]["requestedBy"]["email"] = json!("not-an-address");
    let mut long_use_case = apikey("long-use-case", &ns, "harness-admin");
    long_use_case["spec"]["useCase"] = json!("u".repeat(1025));
    let mut no_product = apikey("no-product", &ns, "harness-admin");
    no_product["spec"].as_object_mut().unwrap().remove("apiProductRef");
    let long_name = apikey(&"k".repeat(64), &ns, "harness-admin");
    for (object, expected) in [
        (empty_tier, "spec.planTier: Invalid value: \"\": spec.planTier in body should be at least 1 chars long"),
        (bad_email, "spec.requestedBy.email in body should match"),
        (long_use_case, "spec.useCase: Too long"),
        (no_product, "spec.apiProductRef: Required value"),
        (long_name, "an APIKey name must be at most 63 characters"),
    ] {
        let err = create_raw(&keys, object.clone()).await.expect_err(expected);
        assert!(api_error_message(&err).contains(expected), "expected {expected:?} in {:?}", api_error_message(&err));
    }

    keys.create(&PostParams::default(), &toys_gold("k", &ns, "harness-admin")).await.unwrap();
    let change = json!({"spec": {"planTier": "platinum"}});
    let err = keys.patch("k", &PatchParams::default(), &Patch::Merge(&change)).await.expect_err("spec change");
    assert!(api_error_message(&err).contains("spec is immutable"), "{}", api_error_message(&err));
    assert_eq!(keys.get("k").await.unwrap().spec.plan_tier, "gold", "the stored spec is unchanged");
}

#[tokio::test]
async fn rbac_is_on_consumers_cannot_create_products_owners_can() {
    let c = cluster();
    let ns = c.namespace("rbac").await;
    c.bind(&ns, rbac::OWNER_ROLE, Persona::Owner).await;
    c.bind(&ns, rbac::CONSUMER_ROLE, Persona::Consumer).await;

    let as_consumer: Api<APIProduct> = Api::namespaced(c.client(Persona::Consumer).await, &ns);
    let err = create_product(&as_consumer, product("toys", valid_product_spec())).await.expect_err("consumer create");
    assert_eq!(api_error_code(&err), 403, "{err}");
    assert!(api_error_message(&err).contains("User \"alice\" cannot create resource \"apiproducts\""));

    let as_owner: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &ns);
    create_product(&as_owner, product("toys", valid_product_spec())).await.expect("owner creates in their namespace");

    let elsewhere = c.namespace("rbac-other").await;
    let as_owner_elsewhere: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &elsewhere);
    let err =
        create_product(&as_owner_elsewhere, product("toys", valid_product_spec())).await.expect_err("owner elsewhere");
    assert_eq!(api_error_code(&err), 403);
}

/// A product namespace with `bob` as owner and a consumer namespace with `alice` as consumer.
async fn marketplace() -> (String, String) {
    let c = cluster();
    let shop = c.namespace("shop").await;
    let consumer_ns = c.namespace("team-alice").await;
    c.bind(&shop, rbac::OWNER_ROLE, Persona::Owner).await;
    c.bind(&consumer_ns, rbac::CONSUMER_ROLE, Persona::Consumer).await;
    let owner_products: Api<APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &shop);
    create_product(&owner_products, product("toys", valid_product_spec())).await.unwrap();
    (shop, consumer_ns)
}

fn decision(phase: &str, reviewer: &str) -> Value {
    json!({"status": {"phase": phase, "reviewedBy": reviewer, "reviewedAt": "2026-11-25T12:00:00Z"}})
}

#[tokio::test]
async fn requested_by_must_be_the_creating_user() {
    let c = cluster();
    let (shop, consumer_ns) = marketplace().await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &consumer_ns);
    let forged: APIKey = toys_gold("forged", &shop, "bob");
    let err = keys.create(&PostParams::default(), &forged).await.expect_err("forged requester");
    assert!(api_error_message(&err).contains("spec.requestedBy.userId must be the requesting user \"alice\""), "{err}");
    let own: APIKey = toys_gold("own", &shop, "alice");
    keys.create(&PostParams::default(), &own).await.expect("a request in one's own name is admitted");
}

#[tokio::test]
async fn consumers_cannot_approve_their_own_requests() {
    let c = cluster();
    let (shop, consumer_ns) = marketplace().await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &consumer_ns);
    keys.create(&PostParams::default(), &toys_gold("mine", &shop, "alice")).await.unwrap();
    let err = keys
        .patch_status("mine", &PatchParams::default(), &Patch::Merge(decision("Approved", "alice")))
        .await
        .expect_err("self-approval");
    assert_eq!(api_error_code(&err), 403, "{err}");

    // Even a consumer who holds the reviewer role cluster-wide cannot approve without `approve` on the product.
    let reviewer_binding: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("reviewer-alice-{consumer_ns}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": rbac::REVIEWER_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}],
    }))
    .unwrap();
    let admin = c.client(Persona::Admin).await;
    Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &reviewer_binding)
        .await
        .unwrap();
    // RBAC changes reach the authorizer within moments: until then RBAC refuses, after that the admission policy.
    let message = eventually(5, "the admission policy (not RBAC) to refuse the reviewer", || async {
        match keys.patch_status("mine", &PatchParams::default(), &Patch::Merge(decision("Approved", "alice"))).await {
            Ok(_) => panic!("a consumer approved their own request"),
            Err(e) => Some(api_error_message(&e)).filter(|m| m.contains("may not decide requests for APIProduct")),
        }
    })
    .await;
    assert!(
        message.contains(&format!("user \"alice\" may not decide requests for APIProduct {shop}/toys")),
        "{message}"
    );
    let stored = Api::<APIKey>::namespaced(admin, &consumer_ns).get("mine").await.unwrap();
    assert_eq!(stored.phase(), apiportal_core::KeyPhase::Pending);
}

#[tokio::test]
async fn owners_decide_only_for_their_own_products_and_only_as_themselves() {
    let c = cluster();
    let (shop, consumer_ns) = marketplace().await;
    let other_shop = c.namespace("other-shop").await;
    let admin = c.client(Persona::Admin).await;
    create_product(&Api::namespaced(admin.clone(), &other_shop), product("toys", valid_product_spec())).await.unwrap();
    for (name, product_ns) in [("for-bob", &shop), ("for-other", &other_shop)] {
        fixtures::create_apikey(c, &consumer_ns, &toys_gold(name, product_ns, "alice")).await;
    }
    let owner_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Owner).await, &consumer_ns);

    let err = owner_keys
        .patch_status("for-other", &PatchParams::default(), &Patch::Merge(decision("Approved", "bob")))
        .await
        .expect_err("other product");
    assert!(
        api_error_message(&err).contains(&format!("may not decide requests for APIProduct {other_shop}/toys")),
        "{err}"
    );

    let err = owner_keys
        .patch_status("for-bob", &PatchParams::default(), &Patch::Merge(decision("Approved", "erin")))
        .await
        .expect_err("forged reviewer");
    assert!(api_error_message(&err).contains("status.reviewedBy must be the deciding user \"bob\""), "{err}");

    let approved = owner_keys
        .patch_status("for-bob", &PatchParams::default(), &Patch::Merge(decision("Approved", "bob")))
        .await
        .expect("the owner's approval of a Pending key for their own product is admitted");
    assert_eq!(approved.phase(), apiportal_core::KeyPhase::Approved);
    assert_eq!(approved.status.unwrap().reviewed_by.as_deref(), Some("bob"));

    let err = owner_keys
        .patch_status("for-bob", &PatchParams::default(), &Patch::Merge(decision("Rejected", "bob")))
        .await
        .expect_err("second decision");
    assert!(
        api_error_message(&err).contains("is Approved: a decision moves a Pending key to Approved or Rejected"),
        "{err}"
    );
    // Owners write decisions without reading APIKeys (they read the bridge's projections): the admin checks.
    let stored = Api::<APIKey>::namespaced(admin, &consumer_ns).get("for-bob").await.unwrap();
    assert_eq!(stored.phase(), apiportal_core::KeyPhase::Approved);
}

#[tokio::test]
async fn an_approved_status_must_name_its_reviewer() {
    let c = cluster();
    let (shop, consumer_ns) = marketplace().await;
    fixtures::create_apikey(c, &consumer_ns, &toys_gold("k", &shop, "alice")).await;
    // The bridge is exempt from the rules about who decides, not from the schema nor the phase transitions.
    let bridge_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Bridge).await, &consumer_ns);
    let err = bridge_keys
        .patch_status("k", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "Approved"}})))
        .await
        .expect_err("approval without a reviewer");
    assert!(api_error_message(&err).contains("must name reviewedBy and reviewedAt"), "{err}");
    let bridge = Persona::Bridge.username();
    bridge_keys
        .patch_status("k", &PatchParams::default(), &Patch::Merge(decision("Rejected", &bridge)))
        .await
        .expect("the bridge decides as itself");
    let err = bridge_keys
        .patch_status("k", &PatchParams::default(), &Patch::Merge(decision("Approved", &bridge)))
        .await
        .expect_err("a final decision stays final, even for the bridge");
    assert!(api_error_message(&err).contains("is Rejected: a decision moves a Pending key"), "{err}");
}

async fn approved_key(name: &str) -> (String, String, Api<APIKey>) {
    let c = cluster();
    let (shop, consumer_ns) = marketplace().await;
    fixtures::create_apikey(c, &consumer_ns, &toys_gold(name, &shop, "alice")).await;
    let owner_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Owner).await, &consumer_ns);
    owner_keys.patch_status(name, &PatchParams::default(), &Patch::Merge(decision("Approved", "bob"))).await.unwrap();
    (shop, consumer_ns, owner_keys)
}

fn refused_with(result: Result<APIKey, kube::Error>, message: &str) {
    let err = result.expect_err(message);
    assert_eq!(api_error_code(&err), 403, "{err}");
    assert!(api_error_message(&err).contains(message), "{err}");
}

#[tokio::test]
async fn a_decision_cannot_write_the_fields_the_bridge_owns() {
    let c = cluster();
    let (shop, consumer_ns) = marketplace().await;
    fixtures::create_apikey(c, &consumer_ns, &toys_gold("k", &shop, "alice")).await;
    let owner_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Owner).await, &consumer_ns);
    // An owner's approval that also points the consumer at another Secret of their namespace (which `key show
    // --reveal` would print, and the consumer would send to the owner's API).
    let mut forged = decision("Approved", "bob");
    forged["status"]["secretRef"] = json!({"name": "database-password", "key": "password"});
    refused_with(
        owner_keys.patch_status("k", &PatchParams::default(), &Patch::Merge(forged)).await,
        "status.secretRef is written only by the apiportal bridge",
    );
    let mut forged = decision("Approved", "bob");
    forged["status"]["authScheme"] = json!({"authentication": {"x": {"credentials": {"queryString": {"name": "k"}}}}});
    refused_with(
        owner_keys.patch_status("k", &PatchParams::default(), &Patch::Merge(forged)).await,
        "status.authScheme is written only by the apiportal bridge",
    );
    // Nobody may record the bridge as the reviewer of their own decision.
    refused_with(
        owner_keys
            .patch_status(
                "k",
                &PatchParams::default(),
                &Patch::Merge(decision("Approved", &Persona::Bridge.username())),
            )
            .await,
        "status.reviewedBy must be the deciding user \"bob\"",
    );
    owner_keys
        .patch_status("k", &PatchParams::default(), &Patch::Merge(decision("Approved", "bob")))
        .await
        .expect("a plain approval");
    refused_with(
        owner_keys
            .patch_status(
                "k",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"apiHostname": "evil.example.com"}})),
            )
            .await,
        "status.apiHostname is written only by the apiportal bridge",
    );
    refused_with(
        owner_keys
            .patch_status("k", &PatchParams::default(), &Patch::Merge(json!({"status": {"reason": "rewritten"}})))
            .await,
        "change only with a decision",
    );
}

#[tokio::test]
async fn approvers_revoke_approved_keys_with_a_reason_and_nobody_else_does() {
    let c = cluster();
    let (_, consumer_ns, owner_keys) = approved_key("k").await;
    let revoke = |reviewer: &str, reason: Option<&str>| {
        let mut d = decision("Revoked", reviewer);
        if let Some(r) = reason {
            d["status"]["reason"] = json!(r);
        }
        Patch::Merge(d)
    };
    let consumer_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &consumer_ns);
    let err = consumer_keys
        .patch_status("k", &PatchParams::default(), &revoke("alice", Some("mine")))
        .await
        .expect_err("consumer");
    assert_eq!(api_error_code(&err), 403, "a consumer has no right to write a decision: {err}");
    // Another product's owner, with the cluster-wide reviewer role every owner holds.
    let other_shop = c.namespace("other-shop").await;
    c.bind(&other_shop, rbac::OWNER_ROLE, Persona::Owner2).await;
    let erin_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Owner2).await, &consumer_ns);
    refused_with(
        erin_keys.patch_status("k", &PatchParams::default(), &revoke("erin", Some("mine now"))).await,
        "may not decide requests for APIProduct",
    );
    refused_with(owner_keys.patch_status("k", &PatchParams::default(), &revoke("bob", None)).await, "needs a reason");
    let revoked = owner_keys
        .patch_status("k", &PatchParams::default(), &revoke("bob", Some("leaked")))
        .await
        .expect("the owner revokes");
    assert_eq!(revoked.phase(), apiportal_core::KeyPhase::Revoked);
    refused_with(
        owner_keys.patch_status("k", &PatchParams::default(), &Patch::Merge(decision("Approved", "bob"))).await,
        "is Revoked",
    );

    // Only an Approved key is revoked: a Pending one is rejected instead.
    let shop = revoked.product_namespace();
    fixtures::create_apikey(c, &consumer_ns, &toys_gold("pending", &shop, "alice")).await;
    refused_with(
        owner_keys.patch_status("pending", &PatchParams::default(), &revoke("bob", Some("no"))).await,
        "is Pending",
    );
}

#[tokio::test]
async fn rotation_is_asked_for_the_next_value_by_the_keys_consumers_or_approvers() {
    let c = cluster();
    let (_, consumer_ns, owner_keys) = approved_key("k").await;
    let ask = |generation: i64, by: &str| {
        Patch::Merge(apiportal_core::decision::rotation_patch(generation, by, jiff::Timestamp::now(), "1h"))
    };
    let consumer_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &consumer_ns);
    refused_with(
        consumer_keys.patch_status("k", &PatchParams::default(), &ask(1, "alice")).await,
        "whose value was issued",
    );
    // What the bridge records once it has issued the first value.
    let bridge_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Bridge).await, &consumer_ns);
    let issued = json!({"status": {"issued": {"generation": 0, "productUID": "u", "authPolicy": "p/p", "selector": {}, "issuedAt": "2026-11-25T12:00:00Z"}}});
    bridge_keys
        .patch_status("k", &PatchParams::default(), &Patch::Merge(issued))
        .await
        .expect("the bridge writes its own fields");
    refused_with(
        consumer_keys.patch_status("k", &PatchParams::default(), &ask(3, "alice")).await,
        "asks for the next value",
    );
    refused_with(
        consumer_keys.patch_status("k", &PatchParams::default(), &ask(1, "bob")).await,
        "requestedBy must be the requesting user \"alice\"",
    );
    consumer_keys
        .patch_status("k", &PatchParams::default(), &ask(1, "alice"))
        .await
        .expect("the key's consumer asks for a rotation");
    // The product's owner may ask too (after a leak), for the same next value.
    let mut again = apiportal_core::decision::rotation_patch(1, "bob", jiff::Timestamp::now(), "0s");
    again["status"]["rotationRequest"]["requestedBy"] = json!("bob");
    owner_keys
        .patch_status("k", &PatchParams::default(), &Patch::Merge(again))
        .await
        .expect("an approver asks for a rotation");
}

/// A duration field the API server admits is one the bridge reads, and one it refuses is one the bridge would not
/// read either: the CRD's pattern and `duration::parse_field` agree on a sample of valid and invalid texts.
#[tokio::test]
async fn the_api_server_admits_exactly_the_durations_the_bridge_reads() {
    use rand::{RngExt, SeedableRng, rngs::StdRng, seq::IndexedRandom};
    let c = cluster();
    let ns = c.namespace("durations").await;
    let client = c.client(Persona::Admin).await;
    let products: Api<APIProduct> = Api::namespaced(client.clone(), &ns);
    let mut texts: Vec<String> = [
        "0s", "90d", "1h30m", "1d2h3m4s", "999999d", "1234567s", "30m1h", "1d1d", "1h 30m", "1.5h", "7", "1w", "-1d",
        "1D", "", "d", "s0",
    ]
    .map(str::to_owned)
    .to_vec();
    let alphabet = ['0', '1', '5', '9', 'd', 'h', 'm', 's', 'w', ' ', '.'];
    let mut rng = StdRng::seed_from_u64(20261204);
    texts.extend((0..60).map(|_| (0..rng.random_range(1..9)).map(|_| *alphabet.choose(&mut rng).unwrap()).collect()));
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    let (mut admitted, mut refused) = (0, 0);
    for (i, text) in texts.iter().enumerate() {
        let spec = json!({"displayName": "Toys", "targetRef": {"name": "toys"}, "maxKeyLifetime": text});
        let object = product(&format!("d-{i}"), spec);
        let request = kube::core::Request::new(products.resource_url())
            .create(&dry_run, serde_json::to_vec(&object).unwrap())
            .unwrap();
        let accepted = match client.request::<Value>(request).await {
            Ok(_) => true,
            Err(kube::Error::Api(status)) if status.code == 422 => false,
            Err(e) => panic!("{text:?}: {e}"),
        };
        let reads = apiportal_core::duration::parse_field(text).is_ok();
        assert_eq!(accepted, reads, "{text:?}: admitted by the API server {accepted}, read by the bridge {reads}");
        if accepted {
            admitted += 1;
        } else {
            refused += 1;
        }
    }
    eprintln!("{admitted} durations admitted, {refused} refused, each as the bridge reads it");
    assert!(admitted >= 5 && refused >= 5, "the sample holds both kinds: {admitted} admitted, {refused} refused");
}
