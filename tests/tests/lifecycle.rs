//! The rest of a key's life, as its users drive it with the plugin: approvers revoke, keys rotate, products cap
//! key lifetimes, reviewers decide in bulk, and `describe key` keeps the whole history.

use apiportal_core::{APIKey, APIProduct, KeyPhase, admission, rbac};
use apiportal_tests::{
    Persona, cluster, eventually,
    fixtures::{apikey, consumer_secret, enforcement_secrets, value, wait_issued},
    shared_bridge,
    stage::Stage,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

async fn plugin_ok(persona: Persona, args: &[&str]) -> String {
    let out = cluster().apiportal(persona, args).await;
    assert!(out.success(), "kubectl apiportal {args:?} failed: {}", out.stderr);
    out.stdout
}

#[tokio::test]
async fn approve_rotate_revoke_and_describe_shows_the_whole_history() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    let team = stage.team.as_str();
    plugin_ok(
        Persona::Consumer,
        &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--use-case", "sync"],
    )
    .await;
    let reference = format!("{team}/toys-gold");
    plugin_ok(Persona::Owner, &["approve", &reference, "--reason", "known partner"]).await;
    wait_issued(c, team, "toys-gold").await;
    let first =
        plugin_ok(Persona::Consumer, &["-n", team, "key", "show", "toys-gold", "--reveal"]).await.trim().to_owned();

    // The consumer rotates their own key; the old value keeps working through its grace.
    let out = c.apiportal(Persona::Consumer, &["-n", team, "key", "rotate", "toys-gold", "--grace", "1h"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold rotation requested\n");
    assert!(out.stderr.contains("rotated: the previous value works until"), "{}", out.stderr);
    let second =
        plugin_ok(Persona::Consumer, &["-n", team, "key", "show", "toys-gold", "--reveal"]).await.trim().to_owned();
    assert_ne!(first, second, "a new value");
    let mut values: Vec<String> = enforcement_secrets(c, team, "toys-gold").await.iter().map(value).collect();
    values.sort();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(values, both, "both values open the gateway during the grace");

    // Someone else cannot revoke it: a consumer of another namespace, an owner of another product.
    let other_team = c.namespace("team-dan").await;
    c.bind(&other_team, rbac::CONSUMER_ROLE, Persona::Consumer2).await;
    let out = c.apiportal(Persona::Consumer2, &["revoke", &reference, "--reason", "mine now"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let other_shop = c.namespace("other-shop").await;
    c.bind(&other_shop, rbac::OWNER_ROLE, Persona::Owner2).await;
    let out = c.apiportal(Persona::Owner2, &["revoke", &reference, "--reason", "mine now"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("you (erin) may not revoke requests for apiproduct"), "{}", out.stderr);

    // Its owner revokes it after a leak: both values stop, both copies go, the consumer reads why.
    let out = c.apiportal(Persona::Owner, &["revoke", &reference, "--reason", "leaked in a public repository"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold revoked\n");
    eventually(30, "both copies of every value to go", || async {
        (enforcement_secrets(c, team, "toys-gold").await.is_empty()
            && consumer_secret(c, team, "toys-gold").await.is_none())
        .then_some(())
    })
    .await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, team);
    eventually(20, "the revocation in the history", || async {
        let k = keys.get("toys-gold").await.ok()?;
        (k.status?.history.len() == 4).then_some(())
    })
    .await;
    let described = plugin_ok(Persona::Consumer, &["-n", team, "describe", "key", "toys-gold"]).await;
    assert!(described.contains("Phase:          Revoked"), "{described}");
    assert!(described.contains("Reason:         leaked in a public repository"), "{described}");
    let history: Vec<Vec<&str>> = described
        .split("History:\n")
        .nth(1)
        .expect("a History section")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().skip(1).take(2).collect())
        .collect();
    assert_eq!(
        history,
        [["Requested", "alice"], ["Approved", "bob"], ["Rotated", "alice"], ["Revoked", "bob"]],
        "{described}"
    );
    let out = c.apiportal(Persona::Consumer, &["-n", team, "key", "show", "toys-gold", "--reveal"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty() && out.stderr.contains("is Revoked"), "{out:?}");
    // The consumer's own revoke is still the deletion of their request.
    let out = c.apiportal(Persona::Consumer, &["-n", team, "revoke", "toys-gold"]).await;
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold deleted\n", "{}", out.stderr);
}

#[tokio::test]
async fn bulk_decisions_report_each_key() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    let team = stage.team.as_str();
    for name in ["a", "b", "c"] {
        plugin_ok(
            Persona::Consumer,
            &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--name", name],
        )
        .await;
    }
    let product = format!("{}/toys", stage.shop);
    let out = c.apiportal(Persona::Owner, &["approve", "--all-pending", "--product", &product, "--dry-run"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "apikey.devportal.kuadrant.io/a approved (dry run)\napikey.devportal.kuadrant.io/b approved (dry run)\napikey.devportal.kuadrant.io/c approved (dry run)\n"
    );
    plugin_ok(Persona::Owner, &["reject", &format!("{team}/a"), "--reason", "duplicate"]).await;
    let out = c
        .apiportal(Persona::Owner, &["approve", &format!("{team}/a"), &format!("{team}/b"), &format!("{team}/c")])
        .await;
    assert_eq!(out.code, 1, "one of three failed: {out:?}");
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/b approved\napikey.devportal.kuadrant.io/c approved\n");
    assert!(out.stderr.contains("apikey") && out.stderr.contains("/a is already Rejected by bob"), "{}", out.stderr);
    assert!(out.stderr.contains("1 of 3 decisions failed"), "{}", out.stderr);
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, team);
    let phases: Vec<KeyPhase> = futures::future::join_all(["a", "b", "c"].map(|n| keys.get(n)))
        .await
        .into_iter()
        .map(|k| k.unwrap().phase())
        .collect();
    assert_eq!(phases, [KeyPhase::Rejected, KeyPhase::Approved, KeyPhase::Approved]);
    let out = c.apiportal(Persona::Owner, &["approve", "--all-pending", "--product", &product]).await;
    assert!(out.success() && out.stderr.contains("No pending requests"), "{out:?}");
}

#[tokio::test]
async fn a_request_longer_than_the_products_max_lifetime_is_refused_by_the_api_server() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    let out =
        stage.create_product(c, "toys", &["--approval", "automatic", "--publish", "--max-key-lifetime", "1h"]).await;
    assert!(out.success(), "{}", out.stderr);
    stage.wait_for_plans(c, "toys").await;
    let mirror: Api<ConfigMap> = Api::namespaced(c.client(Persona::Admin).await, apiportal_core::SYSTEM_NAMESPACE);
    let entry = admission::lifetime_entry(&stage.shop, "toys");
    eventually(30, "the bridge to mirror the cap", || async {
        mirror.get_opt(admission::KEY_LIFETIMES).await.ok()??.data?.get(&entry).filter(|v| *v == "3600").map(|_| ())
    })
    .await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &stage.team);
    let mut too_long = apikey("too-long", &stage.shop, "toys", "gold", "alice");
    too_long.spec.expires_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2),
    ));
    let err = keys.create(&PostParams::default(), &too_long).await.expect_err("the API server refuses it");
    assert_eq!(apiportal_tests::api_error_code(&err), 422, "{err}");
    assert!(
        apiportal_tests::api_error_message(&err)
            .contains(&format!("APIProduct {}/toys issues keys for at most 3600 seconds", stage.shop)),
        "{err}"
    );
    let mut forever = apikey("forever", &stage.shop, "toys", "gold", "alice");
    forever.spec.expires_at = None;
    keys.create(&PostParams::default(), &forever).await.expect_err("a key without expiry is longer than any cap");

    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", &stage.team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--expires-in", "2h"],
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("issues keys for at most 1h: ask for --expires-in 1h or less"), "{}", out.stderr);
    // Without --expires-in the plugin asks for the longest allowed.
    plugin_ok(
        Persona::Consumer,
        &["-n", &stage.team, "request", &format!("{}/toys", stage.shop), "--plan", "gold", "--wait=30s"],
    )
    .await;
    let key = wait_issued(c, &stage.team, "toys-gold").await;
    let lifetime = key.spec.expires_at.unwrap().0.duration_since(key.metadata.creation_timestamp.unwrap().0);
    assert!(lifetime.as_secs() <= 3600 && lifetime.as_secs() > 3500, "{lifetime:?}");
    let out = plugin_ok(Persona::Consumer, &["-n", &stage.team, "keys", "-o", "wide"]).await;
    assert!(out.contains("EXPIRES") && out.lines().nth(1).is_some_and(|l| !l.contains("<never>")), "{out}");
}

/// The mirror of caps the admission policy reads holds the products that have one, and only them: an entry goes
/// when its product's cap is removed, when its product is deleted, and when no product backs it at all (one
/// deleted while no bridge ran), so the ConfigMap does not grow towards the API server's limit on an object.
#[tokio::test]
async fn the_lifetime_mirror_forgets_products_gone_or_uncapped() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    let admin = c.client(Persona::Admin).await;
    let mirror: Api<ConfigMap> = Api::namespaced(admin.clone(), apiportal_core::SYSTEM_NAMESPACE);
    let entry = |name: &str| admission::lifetime_entry(&stage.shop, name);
    let ghost = entry("deleted-while-no-bridge-ran");
    mirror
        .patch(admission::KEY_LIFETIMES, &PatchParams::default(), &Patch::Merge(json!({"data": {&ghost: "60"}})))
        .await
        .expect("an entry no product backs");
    for (name, cap) in [("kept", "1h"), ("uncapped", "2h"), ("deleted", "3h")] {
        let out = stage.create_product(c, name, &["--max-key-lifetime", cap]).await;
        assert!(out.success(), "{}", out.stderr);
    }
    let mirrored = || async { mirror.get_opt(admission::KEY_LIFETIMES).await.ok()??.data };
    eventually(30, "the bridge to mirror the three caps", || async {
        let data = mirrored().await?;
        ["kept", "uncapped", "deleted"].iter().all(|name| data.contains_key(&entry(name))).then_some(())
    })
    .await;

    let products: Api<APIProduct> = Api::namespaced(admin, &stage.shop);
    let uncap = Patch::Merge(json!({"spec": {"maxKeyLifetime": null}}));
    products.patch("uncapped", &PatchParams::default(), &uncap).await.unwrap();
    products.delete("deleted", &DeleteParams::default()).await.unwrap();
    let data = eventually(30, "the bridge to prune the mirror", || async {
        let data = mirrored().await?;
        let gone = [entry("uncapped"), entry("deleted"), ghost.clone()].iter().all(|e| !data.contains_key(e));
        gone.then_some(data)
    })
    .await;
    assert_eq!(data.get(&entry("kept")).map(String::as_str), Some("3600"), "a product's cap stays");
}
