//! The bridge end to end: the real binary against the real API server, driven by the real plugin.

use std::collections::BTreeMap;

use apiportal_core::{APIKey, APIProduct, KeyAction, KeyPhase};
use apiportal_tests::{
    Persona, cluster, eventually,
    fixtures::{self, value},
    run, shared_bridge,
    stage::{Stage, authpolicy_resource, true_conditions},
};
use k8s_openapi::api::{core::v1::Secret, events::v1::Event};
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, ListParams, PostParams},
};
use serde_json::json;

async fn product(stage: &Stage, name: &str, approval: &str) -> Api<APIProduct> {
    stage.published_product(cluster(), name, approval).await
}

async fn request(stage: &Stage, product: &str, plan: &str) {
    stage.request(cluster(), product, plan).await
}

async fn enforcement_secrets(key_ns: &str, key: &str) -> Vec<Secret> {
    fixtures::enforcement_secrets(cluster(), key_ns, key).await
}

#[tokio::test]
async fn an_automatic_request_gets_one_key_in_two_matching_secrets_with_the_policy_labels() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    product(&stage, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let key = eventually(20, "approval with a Secret", || async {
        keys.get("toys-gold").await.ok().filter(|k| k.status.as_ref().is_some_and(|s| s.secret_ref.is_some()))
    })
    .await;
    let status = key.status.clone().unwrap();
    assert_eq!(key.phase(), KeyPhase::Approved);
    assert_eq!(
        status.reviewed_by.as_deref(),
        Some(Persona::Bridge.username().as_str()),
        "the bridge approves as itself"
    );
    assert_eq!(status.api_hostname, Some(stage.host("toys")));
    assert_eq!(status.limits.unwrap().daily, Some(100));

    let consumer_copy = Api::<Secret>::namespaced(c.client(Persona::Consumer).await, &stage.team)
        .get("toys-gold-apikey-secret")
        .await
        .expect("the consumer reads their copy with their own rights");
    assert_eq!(consumer_copy.metadata.owner_references.as_ref().unwrap()[0].name, "toys-gold");
    let enforcement = enforcement_secrets(&stage.team, "toys-gold").await;
    assert_eq!(enforcement.len(), 1, "exactly one enforcement Secret");
    let e = &enforcement[0];
    let labels = e.metadata.labels.clone().unwrap();
    let expected = BTreeMap::from([
        ("authorino.kuadrant.io/managed-by", "authorino"),
        ("devportal.kuadrant.io/apiproduct", "toys"),
        ("devportal.kuadrant.io/apiproduct-namespace", stage.shop.as_str()),
        ("devportal.kuadrant.io/apikey", "toys-gold"),
        ("devportal.kuadrant.io/apikey-namespace", stage.team.as_str()),
    ]);
    for (k, v) in expected {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    let annotations = e.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["secret.kuadrant.io/plan-id"], "gold");
    assert_eq!(annotations["secret.kuadrant.io/user-id"], "alice");
    let key_value = value(e);
    assert_eq!(key_value, value(&consumer_copy), "both copies hold the same key");
    assert_eq!(key_value.len(), 43);
    assert!(
        key_value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url without padding"
    );

    // Revocation: deleting the APIKey removes both copies (the finalizer holds it until they are gone).
    keys.delete("toys-gold", &DeleteParams::default()).await.unwrap();
    eventually(20, "the APIKey and its Secrets to be gone", || async {
        let gone = keys.get_opt("toys-gold").await.unwrap().is_none()
            && enforcement_secrets(&stage.team, "toys-gold").await.is_empty();
        gone.then_some(())
    })
    .await;
    let consumer_secrets: Api<Secret> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    assert!(consumer_secrets.get_opt("toys-gold-apikey-secret").await.unwrap().is_none());
}

#[tokio::test]
async fn product_status_follows_its_policies_and_reads_oidc_from_the_issuer() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    let products = product(&stage, "toys", "manual").await;
    let p = products.get("toys").await.unwrap();
    let tiers: Vec<&str> = p.plans().iter().map(|t| t.tier.as_str()).collect();
    assert_eq!(tiers, ["gold", "bronze"]);
    let scheme = p.status.as_ref().unwrap().discovered_auth_scheme.clone().unwrap();
    let rule = scheme.api_key_rule().unwrap().1;
    assert_eq!(
        rule.credentials.as_ref().unwrap().authorization_header.as_ref().unwrap().prefix.as_deref(),
        Some("APIKEY")
    );

    stage.plans(c, "toys", json!([{"tier": "gold", "limits": {"daily": 100}}, {"tier": "platinum", "limits": {"daily": 1000, "custom": [{"limit": 5, "window": "10s"}]}}])).await;
    let p = eventually(20, "the new tier", || async {
        products.get("toys").await.ok().filter(|p| p.plan("platinum").is_some())
    })
    .await;
    assert!(p.plan("bronze").is_none(), "a removed tier disappears");
    assert_eq!(p.plan("platinum").unwrap().limits.custom[0].window, "10s");

    // An OIDC issuer served by the test: the bridge reads its discovery document.
    let token_endpoint = "https://sso.example.com/realms/shop/protocol/openid-connect/token";
    let document =
        json!({"issuer": "https://sso.example.com/realms/shop", "token_endpoint": token_endpoint}).to_string();
    let base =
        apiportal_tests::serve_documents(vec![("/realms/shop/.well-known/openid-configuration".into(), document)])
            .await;
    let issuer_url = format!("{base}/realms/shop");
    let ar = authpolicy_resource();
    let policies: Api<DynamicObject> = Api::namespaced_with(c.client(Persona::Admin).await, &stage.shop, &ar);
    policies.delete("toys-keys", &DeleteParams::default()).await.unwrap();
    let jwt: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kuadrant.io/v1", "kind": "AuthPolicy", "metadata": {"name": "toys-jwt"},
        "spec": {"targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"},
                 "rules": {"authentication": {"sso": {"jwt": {"issuerUrl": issuer_url}}}}}
    }))
    .unwrap();
    policies.create(&PostParams::default(), &jwt).await.unwrap();
    stage.set_status(c, &ar, "toys-jwt", json!({"conditions": true_conditions(&["Accepted", "Enforced"])})).await;
    let p = eventually(20, "the token endpoint", || async {
        products.get("toys").await.ok().filter(|p| p.status.as_ref().is_some_and(|s| s.oidc_discovery.is_some()))
    })
    .await;
    let status = p.status.unwrap();
    assert_eq!(status.oidc_discovery.unwrap().token_endpoint.unwrap(), token_endpoint);
    assert!(apiportal_core::resources::conditions::is_true(&status.conditions, "OIDCDiscovered"));
    let out = c.apiportal(Persona::Consumer, &["describe", "product", &format!("{}/toys", stage.shop)]).await;
    assert!(
        out.stdout.contains("OpenID Connect") && out.stdout.contains("protocol/openid-connect/token"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn the_view_authenticates_authorises_caches_and_never_shows_a_key() {
    let c = cluster();
    let bridge = shared_bridge().await;
    let stage = Stage::new(c).await;
    product(&stage, "toys", "automatic").await;
    request(&stage, "toys", "gold").await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    eventually(20, "the key", || async {
        keys.get("toys-gold").await.ok().filter(|k| k.status.as_ref().is_some_and(|s| s.secret_ref.is_some()))
    })
    .await;
    let key_value = value(&enforcement_secrets(&stage.team, "toys-gold").await[0]);
    let backstage = c.backstage_token().await;
    let admin = c.oidc_token("carol", &["apiportal:admins"], "apiportal-bridge");
    let nobody = c.oidc_token("mallory", &[], "apiportal-bridge");

    let answer = bridge.get("/api/v1/products", &[]).await;
    assert_eq!(answer.status, 401, "{}", answer.text());
    assert_eq!(answer.json()["error"]["code"], "Unauthorized");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer realm=\"apiportal\""));
    let answer = bridge.get_as("/api/v1/products", &nobody).await;
    assert_eq!(answer.status, 403, "a user who may list products nowhere: {}", answer.text());
    assert_eq!(bridge.get_as("/api/v1/products", "not-a-token").await.status, 401);
    assert_eq!(bridge.get("/metrics", &[]).await.status, 401, "metrics need a token too");
    assert_eq!(bridge.get_as("/metrics", &backstage).await.status, 403, "and one allowed to get /metrics");
    assert_eq!(bridge.get_as("/metrics", &c.prometheus_token().await).await.status, 200);
    assert_eq!(bridge.get("/healthz", &[]).await.status, 200, "health probes need none");

    let answer = bridge.get_as("/api/v1/products", &backstage).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let etag = answer.header("etag").expect("an ETag").to_owned();
    let list = answer.json();
    assert_eq!(list["scope"], json!({"allNamespaces": true, "namespaces": []}));
    let mine: Vec<&serde_json::Value> =
        list["items"].as_array().unwrap().iter().filter(|p| p["namespace"] == stage.shop.as_str()).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["plans"][0]["tier"], "gold");
    let auth = format!("Bearer {backstage}");
    let answer = bridge.get("/api/v1/products", &[("authorization", &auth), ("if-none-match", &etag)]).await;
    assert_eq!(answer.status, 304, "an unchanged catalog costs a 304");
    assert!(answer.body.is_empty());
    let answer = bridge.get("/api/v1/products", &[("authorization", &auth), ("accept-encoding", "gzip")]).await;
    assert_eq!((answer.status, answer.header("content-encoding")), (200, Some("gzip")), "gzip when asked");
    let gzip_etag = answer.header("etag").unwrap().to_owned();
    assert_ne!(gzip_etag, etag, "each encoding has its own strong ETag");
    let answer = bridge
        .get(
            "/api/v1/products",
            &[("authorization", &auth), ("accept-encoding", "gzip"), ("if-none-match", &format!("W/{gzip_etag}"))],
        )
        .await;
    assert_eq!(answer.status, 304, "a weak If-None-Match matches too");

    let keys_path = format!("/api/v1/keys?product={}/toys", stage.shop);
    // The view serves snapshots rebuilt within moments of a change: wait for the one with the issued key.
    let answer = eventually(10, "the view to show the approved key", || async {
        let answer = bridge.get_as(&keys_path, &admin).await;
        (answer.status == 200 && answer.json()["items"][0]["phase"] == "Approved").then_some(answer)
    })
    .await;
    assert_eq!(answer.json()["items"].as_array().unwrap().len(), 1, "{}", answer.text());
    let answer = bridge.get_as("/api/v1/keys?phase=Bogus", &admin).await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let answer = bridge.get_as("/api/v1/products?namespaces=x", &backstage).await;
    assert_eq!(answer.status, 400, "unknown parameters are refused: {}", answer.text());
    assert!(
        answer.json()["error"]["message"].as_str().unwrap().contains("unknown field `namespaces`"),
        "{}",
        answer.text()
    );

    // The key value appears nowhere: not in responses, the bridge's log, nor the Events.
    let product_path = format!("/api/v1/products/{}/toys", stage.shop);
    for (path, token) in [
        ("/api/v1/products", &backstage),
        (keys_path.as_str(), &admin),
        (product_path.as_str(), &backstage),
        ("/metrics", &c.prometheus_token().await),
    ] {
        let answer = bridge.get_as(path, token).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
        assert!(!answer.text().contains(&key_value), "{path} leaks the key");
    }
    assert!(!bridge.logs().contains(&key_value), "the bridge's log leaks the key");
    let events: Api<Event> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let events = events.list(&ListParams::default()).await.unwrap().items;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("Approved")
                && e.note.as_deref().is_some_and(|n| n.contains("key issued"))),
        "the decision is audited"
    );
    for e in &events {
        assert!(!e.note.clone().unwrap_or_default().contains(&key_value), "an Event leaks the key");
    }
    let describe = run({
        let mut cmd = c.kubectl(Persona::Admin);
        cmd.args(["describe", "apikey", "toys-gold", "-n", &stage.team]);
        cmd
    });
    assert!(!describe.stdout.contains(&key_value), "kubectl describe leaks the key");
}

#[tokio::test]
async fn the_openapi_document_is_fetched_bounded_in_size_and_served_by_the_view() {
    let c = cluster();
    let bridge = shared_bridge().await;
    let stage = Stage::new(c).await;
    let spec = json!({"openapi": "3.0.3", "info": {"title": "Toys", "version": "v1"}, "paths": {"/toys": {"get": {"responses": {"200": {"description": "ok"}}}}}}).to_string();
    let huge = "x".repeat(600 * 1024);
    let not_a_document = json!({"instance-id": "i-0123456789", "ami-id": "ami-secret"}).to_string();
    let docs = apiportal_tests::serve_documents(vec![
        ("/openapi.json".into(), spec.clone()),
        ("/huge.json".into(), huge),
        ("/latest/meta-data".into(), not_a_document),
    ])
    .await;
    for (name, path) in [
        ("toys", "/openapi.json"),
        ("huge", "/huge.json"),
        ("missing", "/nope.json"),
        ("metadata", "/latest/meta-data"),
    ] {
        let out = stage.create_product(c, name, &["--publish", "--openapi-url", &format!("{docs}{path}")]).await;
        assert!(out.success(), "{}", out.stderr);
    }
    let products: Api<APIProduct> = Api::namespaced(c.client(Persona::Admin).await, &stage.shop);
    let condition = |p: &APIProduct| {
        apiportal_core::resources::conditions::find(p.conditions(), "OpenAPISpecReady")
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    let toys = eventually(20, "the document", || async {
        products.get("toys").await.ok().filter(|p| p.status.as_ref().is_some_and(|s| s.openapi.is_some()))
    })
    .await;
    assert_eq!(toys.status.as_ref().unwrap().openapi.as_ref().unwrap().raw, spec);
    assert_eq!(condition(&toys), Some(("True".into(), "SpecFetched".into())));
    let huge = eventually(20, "the size limit", || async {
        products.get("huge").await.ok().filter(|p| condition(p).is_some())
    })
    .await;
    assert_eq!(
        condition(&huge),
        Some(("False".into(), "SpecSizeTooLarge".into())),
        "a document over the 500 KiB default is refused"
    );
    assert!(huge.status.unwrap().openapi.is_none());
    let missing = eventually(20, "the failed fetch", || async {
        products.get("missing").await.ok().filter(|p| condition(p).is_some())
    })
    .await;
    assert_eq!(condition(&missing), Some(("False".into(), "FetchFailed".into())));
    // Whatever answers that is not an OpenAPI document is not kept, and nothing of it is repeated.
    let metadata = eventually(20, "the refused answer", || async {
        products.get("metadata").await.ok().filter(|p| condition(p).is_some())
    })
    .await;
    assert_eq!(condition(&metadata), Some(("False".into(), "NotAnOpenAPIDocument".into())));
    let status = serde_json::to_string(&metadata.status).unwrap();
    assert!(!status.contains("i-0123456789") && !status.contains("ami-secret"), "{status}");

    let backstage = c.backstage_token().await;
    let path = format!("/api/v1/products/{}/toys/openapi", stage.shop);
    let answer = eventually(10, "the view's snapshot to have the document", || async {
        Some(bridge.get_as(&path, &backstage).await).filter(|a| a.status == 200)
    })
    .await;
    assert_eq!(answer.text(), spec, "the view serves the fetched document");
    let answer = bridge.get_as(&format!("/api/v1/products/{}/huge/openapi", stage.shop), &backstage).await;
    assert_eq!(answer.status, 404, "no document, no answer");
}

#[tokio::test]
async fn a_key_expires_at_its_time_and_its_secrets_go() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    product(&stage, "toys", "automatic").await;
    let out = c
        .apiportal(
            Persona::Consumer,
            &[
                "-n",
                &stage.team,
                "request",
                &format!("{}/toys", stage.shop),
                "--plan",
                "gold",
                "--expires-in",
                "15s",
                "--wait=30s",
            ],
        )
        .await;
    assert!(out.success(), "{}", out.stderr);
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let key = keys.get("toys-gold").await.unwrap();
    assert_eq!(key.phase(), KeyPhase::Approved);
    let enforcement = enforcement_secrets(&stage.team, "toys-gold").await;
    assert!(
        enforcement[0].metadata.annotations.as_ref().unwrap().contains_key("secret.kuadrant.io/expires-at"),
        "Authorino sees the expiry"
    );
    let expired = eventually(40, "the key to expire", || async {
        keys.get("toys-gold").await.ok().filter(|k| {
            k.phase() == KeyPhase::Expired
                && k.status.as_ref().is_some_and(|s| s.history.last().is_some_and(|e| e.action == KeyAction::Expired))
        })
    })
    .await;
    assert_eq!(expired.status.as_ref().unwrap().reviewed_by.as_deref(), Some(Persona::Bridge.username().as_str()));
    let history: Vec<_> = expired.status.as_ref().unwrap().history.iter().map(|e| e.action).collect();
    assert_eq!(history, [KeyAction::Requested, KeyAction::Approved, KeyAction::Expired], "issued, then expired");
    let consumer_copies: Api<Secret> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    eventually(20, "both Secrets to be removed", || async {
        let gone = enforcement_secrets(&stage.team, "toys-gold").await.is_empty()
            && consumer_copies.get_opt("toys-gold-apikey-secret").await.unwrap().is_none();
        gone.then_some(())
    })
    .await;
    let out = c.apiportal(Persona::Consumer, &["-n", &stage.team, "key", "show", "toys-gold", "--reveal"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is Expired"), "{}", out.stderr);
}

#[tokio::test]
async fn logs_are_json_lines_with_the_flag() {
    let c = cluster();
    // A second replica: it only follows the shared bridge's Lease, which is all this test needs.
    let bridge = apiportal_tests::Bridge::start(c, &["--log-format=json", "--lease-name=json-logs"]).await;
    let logs = bridge.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the bridge logged its start");
    for line in lines {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(entry["level"].is_string() && entry["timestamp"].is_string(), "{line}");
    }
}

/// The harness's bridge logs to a file, as a Deployment's container runtime does: a file gets no colour codes
/// (escape sequences that would also act on whoever reads the file on a terminal later).
#[tokio::test]
async fn a_log_written_to_a_file_holds_no_terminal_escapes() {
    let bridge = shared_bridge().await;
    let log = std::fs::read(&bridge.log).expect("the bridge's log");
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("INFO") && text.contains("bridge starting"), "the bridge logged its start:\n{text}");
    let escapes = log.iter().filter(|b| **b == 0x1b).count();
    assert_eq!(escapes, 0, "{escapes} ESC bytes in the log file:\n{}", text.escape_debug());
}
