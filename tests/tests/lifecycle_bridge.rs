//! Key lifecycle behaviours that need a bridge of their own: a rotation carried across a kill -9 of the bridge,
//! the signed webhook, and per-user key limits. Each test runs its own bridge, one at a time.

use apiportal_core::{APIKey, KeyPhase};
use apiportal_tests::{
    Bridge, Persona, cluster, eventually,
    fixtures::{consumer_secret, enforcement_secrets, value, wait_issued, wait_projected},
    receive_posts,
    stage::Stage,
};
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use sha2::Sha256;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn plugin_ok(persona: Persona, args: &[&str]) -> String {
    let out = cluster().apiportal(persona, args).await;
    assert!(out.success(), "kubectl apiportal {args:?} failed: {}", out.stderr);
    out.stdout
}

async fn reveal(team: &str, key: &str) -> String {
    plugin_ok(Persona::Consumer, &["-n", team, "key", "show", key, "--reveal"]).await.trim().to_owned()
}

async fn generation(team: &str, key: &str) -> i64 {
    let keys: Api<APIKey> = Api::namespaced(cluster().client(Persona::Admin).await, team);
    keys.get(key).await.unwrap().status.and_then(|s| s.issued).map(|i| i.generation).unwrap_or(-1)
}

#[tokio::test]
async fn a_rotation_survives_a_kill_9_and_the_old_value_lasts_exactly_its_grace() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    let mut bridge = Bridge::start(c, &[]).await;
    stage.published_product(c, "toys", "automatic").await;
    let team = stage.team.as_str();
    plugin_ok(
        Persona::Consumer,
        &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--wait=30s"],
    )
    .await;
    wait_issued(c, team, "toys-gold").await;
    let first = reveal(team, "toys-gold").await;

    // Ask for a rotation and kill the bridge at once, whatever it had done of it.
    plugin_ok(Persona::Consumer, &["-n", team, "key", "rotate", "toys-gold", "--grace", "20s", "--wait=0"]).await;
    bridge.kill9();
    let _restarted = Bridge::start(c, &[]).await;
    eventually(60, "the rotation to complete after the restart", || async {
        (generation(team, "toys-gold").await == 1).then_some(())
    })
    .await;
    let second = reveal(team, "toys-gold").await;
    assert_ne!(first, second);
    let values = |secrets: Vec<Secret>| {
        let mut v: Vec<String> = secrets.iter().map(value).collect();
        v.sort();
        v
    };
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(values(enforcement_secrets(c, team, "toys-gold").await), both, "old and new both valid, no third value");
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, team);
    let until = keys
        .get("toys-gold")
        .await
        .unwrap()
        .status
        .unwrap()
        .previous_key
        .expect("the previous value is recorded")
        .valid_until
        .0;
    let old = enforcement_secrets(c, team, "toys-gold").await.into_iter().find(|s| value(s) == first).unwrap();
    assert_eq!(
        old.metadata.annotations.unwrap()["secret.kuadrant.io/expires-at"],
        until.to_string(),
        "Authorino sees when it ends"
    );

    // At the end of the grace only the new value is left, in both copies.
    eventually(60, "the old value to be removed after its grace", || async {
        (values(enforcement_secrets(c, team, "toys-gold").await) == [second.clone()]).then_some(())
    })
    .await;
    assert!(jiff::Timestamp::now() >= until, "not removed before its grace ended");
    assert_eq!(value(&consumer_secret(c, team, "toys-gold").await.unwrap()), second);
    assert!(keys.get("toys-gold").await.unwrap().status.unwrap().previous_key.is_none());
}

fn verify(signing_key: &[u8], header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header.split_once(',') else { return false };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::decode(v1).is_ok_and(|signature| mac.verify_slice(&signature).is_ok())
}

#[tokio::test]
async fn the_webhook_gets_a_signed_cloudevent_for_each_step_and_never_a_key() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    let (url, received) = receive_posts().await;
    let signing_key = b"a-signing-key-only-the-platform-and-the-receiver-know";
    let webhook: Secret = serde_json::from_value(json!({
        "metadata": {"name": "apiportal-webhook"},
        "stringData": {"url": format!("{url}/hooks/apiportal"), "signingKey": String::from_utf8_lossy(signing_key)}
    }))
    .unwrap();
    c.ensure_installed();
    Api::<Secret>::namespaced(c.client(Persona::Admin).await, apiportal_core::SYSTEM_NAMESPACE)
        .create(&PostParams::default(), &webhook)
        .await
        .unwrap();
    let bridge =
        Bridge::start(c, &["--webhook-secret", "apiportal-system/apiportal-webhook", "--expiry-warning", "7d"]).await;
    stage.published_product(c, "toys", "manual").await;
    let team = stage.team.as_str();
    plugin_ok(
        Persona::Consumer,
        &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--expires-in", "2d"],
    )
    .await;
    let reference = format!("{team}/toys-gold");
    let wait_for = |type_: &'static str| {
        let received = received.clone();
        async move {
            eventually(30, &format!("a {type_} event"), || async {
                received
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|r| serde_json::from_slice::<Value>(&r.body).is_ok_and(|e| e["type"] == type_))
                    .cloned()
            })
            .await
        }
    };
    wait_for("io.apiportal.apikey.requested").await;
    wait_projected(c, &stage.shop, team, "toys-gold").await;
    plugin_ok(Persona::Owner, &["approve", &reference]).await;
    wait_for("io.apiportal.apikey.approved").await;
    wait_for("io.apiportal.apikey.expiring-soon").await;
    wait_issued(c, team, "toys-gold").await;
    let first = reveal(team, "toys-gold").await;
    plugin_ok(Persona::Consumer, &["-n", team, "key", "rotate", "toys-gold", "--grace", "0"]).await;
    wait_for("io.apiportal.apikey.rotated").await;
    let second = reveal(team, "toys-gold").await;
    plugin_ok(Persona::Owner, &["revoke", &reference, "--reason", "leaked"]).await;
    wait_for("io.apiportal.apikey.revoked").await;

    let received = received.lock().unwrap().clone();
    // Delivered at least once: a repeat carries the CloudEvent id of the first delivery, as receivers drop
    // repeats by it; each distinct event counts once.
    let mut seen = std::collections::HashSet::new();
    let types: Vec<String> = received
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .filter(|event| seen.insert(event["id"].as_str().unwrap().to_owned()))
        .map(|event| event["type"].as_str().unwrap().to_owned())
        .collect();
    // The decisions in the order they were made; the expiry warning once, after the request (when the bridge
    // warns, before or after the approval, depends on when its reconciles run).
    let decisions: Vec<&str> = types.iter().map(String::as_str).filter(|t| !t.ends_with(".expiring-soon")).collect();
    assert_eq!(
        decisions,
        [
            "io.apiportal.apikey.requested",
            "io.apiportal.apikey.approved",
            "io.apiportal.apikey.rotated",
            "io.apiportal.apikey.revoked"
        ],
        "each step once, in order: {types:?}"
    );
    let warnings: Vec<usize> =
        types.iter().enumerate().filter(|(_, t)| t.ends_with(".expiring-soon")).map(|(i, _)| i).collect();
    assert!(warnings.len() == 1 && warnings[0] > 0, "one expiry warning, after the request: {types:?}");
    for r in &received {
        assert_eq!(r.path, "/hooks/apiportal");
        assert_eq!(r.headers["content-type"], "application/cloudevents+json");
        assert!(
            verify(signing_key, &r.headers["x-apiportal-signature"], &r.body),
            "a valid signature: {:?}",
            r.headers
        );
        assert!(!verify(b"another key", &r.headers["x-apiportal-signature"], &r.body));
        let text = String::from_utf8_lossy(&r.body);
        assert!(!text.contains(&first) && !text.contains(&second), "no key in any event: {text}");
        let event: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["subject"], reference);
        assert_eq!(event["data"]["product"], json!({"namespace": stage.shop, "name": "toys"}));
        assert_eq!(event["data"]["planTier"], "gold");
    }
    let revoked: Value = received
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|e| e["type"] == "io.apiportal.apikey.revoked")
        .unwrap();
    assert_eq!(
        (revoked["data"]["by"].as_str(), revoked["data"]["message"].as_str()),
        (Some("bob"), Some("revoked by bob: leaked; the key no longer opens anything"))
    );
    assert!(
        bridge.metric("apiportal_bridge_webhook_delivered_total").await >= Some(5.0),
        "every distinct event counted as delivered"
    );
    assert!(!bridge.logs().contains(&first) && !bridge.logs().contains(&second), "no key in the log");
    let logs = bridge.logs();
    let audit: Vec<&str> = logs.lines().filter(|l| l.contains("apiportal::audit")).collect();
    assert!(audit.len() >= 5, "one audit line per step: {audit:?}");
}

#[tokio::test]
async fn an_automatic_product_holds_each_user_to_its_key_limit() {
    let _serial = SERIAL.lock().await;
    let c = cluster();
    let stage = Stage::new(c).await;
    let _bridge = Bridge::start(c, &[]).await;
    stage.published_product(c, "toys", "automatic").await;
    let products: Api<apiportal_core::APIProduct> = Api::namespaced(c.client(Persona::Owner).await, &stage.shop);
    products
        .patch("toys", &PatchParams::default(), &Patch::Merge(json!({"spec": {"maxKeysPerUser": 2}})))
        .await
        .unwrap();
    let team = stage.team.as_str();
    // Three requests at once: the two oldest are approved, the third rejected with the reason, whatever order
    // the bridge sees them in.
    for name in ["first", "second", "third"] {
        plugin_ok(
            Persona::Consumer,
            &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--name", name],
        )
        .await;
    }
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, team);
    let third = eventually(30, "the third request to be decided", || async {
        keys.get("third").await.ok().filter(|k| k.phase() != KeyPhase::Pending)
    })
    .await;
    assert_eq!(third.phase(), KeyPhase::Rejected);
    assert!(third.status.unwrap().reason.unwrap().contains("which allows 2 per user"));
    wait_issued(c, team, "first").await;
    wait_issued(c, team, "second").await;
    assert!(enforcement_secrets(c, team, "third").await.is_empty());
}
