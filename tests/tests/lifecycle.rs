//! The rest of a key's life, as its users drive it with the plugin: approvers revoke, keys rotate, products cap
//! key lifetimes, reviewers decide in bulk, and `describe key` keeps the whole history.

use apiportal_core::{APIKey, APIProduct, KeyPhase, admission, decision, rbac};
use apiportal_tests::{
    Persona, api_error_message, cluster, eventually,
    fixtures::{
        apikey, condition, consumer_secret, enforcement_secrets, value, wait_issued, wait_projected,
        wait_projected_when,
    },
    shared_bridge,
    stage::Stage,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, ResourceExt,
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
    wait_projected(c, &stage.shop, team, "toys-gold").await;
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
    assert!(
        out.stderr.contains(&format!("no request {reference} among the requests for products you may approve")),
        "an owner who cannot read the request is not told whose it is: {}",
        out.stderr
    );

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
        wait_projected(c, &stage.shop, team, name).await;
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
    for name in ["b", "c"] {
        wait_projected_when(c, &stage.shop, team, name, "approved", |r| r.phase == KeyPhase::Approved).await;
    }
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

/// A consumer's key for `product` of `stage`, requested with the plugin and approved by its owner (for a manual
/// product); returns once its value is issued, with the value.
async fn approved_key(stage: &Stage, product: &str, plan: &str) -> String {
    let c = cluster();
    let team = stage.team.as_str();
    plugin_ok(Persona::Consumer, &["-n", team, "request", &format!("{}/{product}", stage.shop), "--plan", plan]).await;
    let name = format!("{product}-{plan}");
    let projected = wait_projected(c, &stage.shop, team, &name).await;
    if projected.spec.phase == KeyPhase::Pending {
        plugin_ok(stage.owner, &["approve", &format!("{team}/{name}")]).await;
    }
    wait_issued(c, team, &name).await;
    value(&consumer_secret(c, team, &name).await.expect("the consumer's copy"))
}

/// A decision written straight to the API, as `persona` (who names themself as the reviewer).
async fn decide_directly(persona: Persona, ns: &str, name: &str, phase: KeyPhase) -> kube::Error {
    let keys: Api<APIKey> = Api::namespaced(cluster().client(persona).await, ns);
    let patch = decision::decision_patch(phase, &persona.username(), jiff::Timestamp::now(), Some("mine"));
    keys.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect_err("the API server refuses the decision")
}

/// Approvers suspend a key and resume it; its consumer can do neither, through the plugin or the API, and each
/// command refuses a key in the wrong state with the next step. While suspended the gateway's copy is gone, the
/// value is kept, and the consumer reads why and since when.
#[tokio::test]
async fn approvers_suspend_and_resume_keys_and_consumers_cannot() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    let team = stage.team.as_str();
    let held = approved_key(&stage, "toys", "gold").await;
    let reference = format!("{team}/toys-gold");

    // The consumer cannot suspend their own key: the plugin says who may, and the API server refuses the write.
    let out = c.apiportal(Persona::Consumer, &["suspend", &reference, "--reason", "testing"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("you (alice) may not suspend requests for apiproduct"), "{}", out.stderr);
    let err = decide_directly(Persona::Consumer, team, "toys-gold", KeyPhase::Suspended).await;
    assert!(api_error_message(&err).contains("may not decide requests for APIProduct"), "{err}");

    // Wrong states, each with the next step; a suspension needs a reason.
    plugin_ok(Persona::Consumer, &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "bronze"]).await;
    wait_projected(c, &stage.shop, team, "toys-bronze").await;
    let out = c.apiportal(Persona::Owner, &["suspend", &format!("{team}/toys-bronze"), "--reason", "x"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("is Pending: only an Approved key can be suspended") && out.stderr.contains("reject"),
        "{}",
        out.stderr
    );
    let out = c.apiportal(Persona::Owner, &["resume", &format!("{team}/toys-bronze")]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("is not suspended (it is Pending)"), "{}", out.stderr);
    let out = c.apiportal(Persona::Owner, &["suspend", &reference]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("--reason"), "{}", out.stderr);

    // The owner suspends it: the gateway's copy goes, the consumer's stays, and everyone reads why and since when.
    let out = c.apiportal(Persona::Owner, &["suspend", &reference, "--reason", "unpaid invoice"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold suspended\n");
    wait_projected_when(c, &stage.shop, team, "toys-gold", "suspended", |r| r.phase == KeyPhase::Suspended).await;
    let out = c.apiportal(Persona::Owner, &["suspend", &reference, "--reason", "unpaid invoice"]).await;
    assert!(out.success() && out.stdout.contains("unchanged"), "suspending twice changes nothing: {out:?}");
    eventually(30, "the enforcement copy to go", || async {
        enforcement_secrets(c, team, "toys-gold").await.is_empty().then_some(())
    })
    .await;
    assert_eq!(value(&consumer_secret(c, team, "toys-gold").await.expect("the consumer's copy stays")), held);
    let keys = plugin_ok(Persona::Consumer, &["-n", team, "keys", "-o", "wide"]).await;
    let row = keys.lines().find(|l| l.starts_with("toys-gold ")).expect("the key is listed");
    assert!(row.contains("Suspended") && row.contains("unpaid invoice") && row.contains("bob"), "{keys}");
    let described = plugin_ok(Persona::Consumer, &["-n", team, "describe", "key", "toys-gold"]).await;
    assert!(described.contains("Phase:          Suspended since "), "{described}");
    assert!(described.contains("Reason:         unpaid invoice"), "{described}");
    let requests = plugin_ok(Persona::Owner, &["requests", "--product", &format!("{}/toys", stage.shop)]).await;
    assert!(requests.lines().any(|l| l.contains("toys-gold") && l.contains("Suspended")), "{requests}");

    // The consumer cannot resume what an owner suspended.
    let out = c.apiportal(Persona::Consumer, &["resume", &reference]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("you (alice) may not resume requests for apiproduct"), "{}", out.stderr);
    let err = decide_directly(Persona::Consumer, team, "toys-gold", KeyPhase::Approved).await;
    assert!(api_error_message(&err).contains("may not decide requests for APIProduct"), "{err}");

    // The owner resumes it: the same value is issued again.
    let out = c.apiportal(Persona::Owner, &["resume", &reference]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold resumed\n");
    let restored = eventually(30, "the enforcement copy to come back", || async {
        enforcement_secrets(c, team, "toys-gold").await.first().map(value)
    })
    .await;
    assert_eq!(restored, held, "resumed with the same value");
    let history = eventually(20, "the resumption in the history", || async {
        let k = Api::<APIKey>::namespaced(c.client(Persona::Admin).await, team).get("toys-gold").await.ok()?;
        let actions: Vec<&str> = k.status.as_ref()?.history.iter().map(|e| e.action.as_str()).collect();
        actions.contains(&"Resumed").then(|| actions.join(","))
    })
    .await;
    assert_eq!(history, "Requested,Approved,Suspended,Resumed");
    // A suspended key can be revoked.
    plugin_ok(Persona::Owner, &["suspend", &reference, "--reason", "again"]).await;
    let out = c.apiportal(Persona::Owner, &["revoke", &reference, "--reason", "contract ended"]).await;
    assert!(out.success(), "{}", out.stderr);
}

/// A consumer moves an approved key to another tier; the owner reviews the move in the same queue as new requests;
/// nobody else can ask for it, and a tier the product does not offer is refused by the plugin and the bridge alike.
#[tokio::test]
async fn consumers_change_plans_and_owners_decide_them_in_their_queue() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "manual").await;
    let team = stage.team.as_str();
    let held = approved_key(&stage, "toys", "gold").await;
    let reference = format!("{team}/toys-gold");
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, team);

    // A tier the product does not offer: the plugin names the ones it does, and so does the bridge when the ask is
    // written straight to the API.
    let out =
        c.apiportal(Persona::Consumer, &["-n", team, "key", "change-plan", "toys-gold", "--plan", "platinum"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("offers no plan tier \"platinum\"; it offers: gold, bronze"), "{}", out.stderr);
    let consumer_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, team);
    let ask = |tier: &str, user: &str| Patch::Merge(decision::plan_change_patch(tier, user, jiff::Timestamp::now()));
    consumer_keys.patch_status("toys-gold", &PatchParams::default(), &ask("platinum", "alice")).await.expect("asked");
    let refused = eventually(30, "the bridge to refuse the tier", || async {
        let k = keys.get("toys-gold").await.ok()?;
        k.status?.plan_change.filter(|p| p.approved == Some(false))
    })
    .await;
    assert!(refused.reason.unwrap_or_default().contains("gold, bronze"), "the bridge names the tiers");
    assert_eq!(keys.get("toys-gold").await.unwrap().plan_tier(), "gold");

    // Nobody but the key's consumers and approvers asks: not a consumer of another namespace, not another owner.
    let other_team = c.namespace("team-dan").await;
    c.bind(&other_team, rbac::CONSUMER_ROLE, Persona::Consumer2).await;
    let out = c.apiportal(Persona::Consumer2, &["key", "change-plan", &reference, "--plan", "bronze"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    let dans: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer2).await, team);
    let err = dans.patch_status("toys-gold", &PatchParams::default(), &ask("bronze", "dan")).await.expect_err("dan");
    assert_eq!(apiportal_tests::api_error_code(&err), 403, "{err}");
    let other_shop = c.namespace("other-shop").await;
    c.bind(&other_shop, rbac::OWNER_ROLE, Persona::Owner2).await;
    let erins: Api<APIKey> = Api::namespaced(c.client(Persona::Owner2).await, team);
    let err = erins.patch_status("toys-gold", &PatchParams::default(), &ask("bronze", "erin")).await.expect_err("erin");
    assert!(api_error_message(&err).contains("may not change the plan of APIKey"), "{err}");

    // The consumer asks and waits; the owner finds the move in the queue, beside a new request, and approves it.
    plugin_ok(Persona::Consumer, &["-n", team, "request", &format!("{}/toys", stage.shop), "--plan", "bronze"]).await;
    let change_args = ["-n", team, "key", "change-plan", "toys-gold", "--plan", "bronze", "--wait=60s"];
    let change = c.apiportal(Persona::Consumer, &change_args);
    let review = async {
        wait_projected(c, &stage.shop, team, "toys-bronze").await;
        wait_projected_when(c, &stage.shop, team, "toys-gold", "with the plan change", |r| {
            r.plan_change.as_ref().is_some_and(|p| p.tier == "bronze" && p.approved.is_none())
        })
        .await;
        let queue = plugin_ok(Persona::Owner, &["requests", "--pending"]).await;
        let row = |name: &str| queue.lines().find(|l| l.contains(&format!(" {name} "))).map(str::to_owned);
        assert!(row("toys-gold").is_some_and(|r| r.contains("gold→bronze")), "{queue}");
        assert!(row("toys-bronze").is_some_and(|r| r.contains("Pending")), "{queue}");
        plugin_ok(Persona::Owner, &["approve", &reference, "--reason", "fine"]).await
    };
    let (change, approved) = tokio::join!(change, review);
    assert_eq!(approved, "apikey.devportal.kuadrant.io/toys-gold plan change to bronze approved\n");
    assert!(change.success(), "{change:?}");
    assert_eq!(change.stdout, "apikey.devportal.kuadrant.io/toys-gold plan change to bronze requested\n");
    assert!(change.stderr.contains("moved to plan bronze"), "{}", change.stderr);
    let key = keys.get("toys-gold").await.unwrap();
    assert_eq!((key.plan_tier(), key.spec.plan_tier.as_str()), ("bronze", "gold"));
    assert_eq!(condition(&key, "PlanChange").map(|c| c.reason).as_deref(), Some("PlanChangeApplied"));
    assert_eq!(value(&consumer_secret(c, team, "toys-gold").await.unwrap()), held, "the key keeps its value");
    let described = plugin_ok(Persona::Consumer, &["-n", team, "describe", "key", "toys-gold"]).await;
    assert!(described.contains("Plan:           bronze (10/day)"), "{described}");

    // A move the owner rejects: the key stays on its tier and the consumer reads why.
    plugin_ok(Persona::Consumer, &["-n", team, "key", "change-plan", "toys-gold", "--plan", "gold"]).await;
    wait_projected_when(c, &stage.shop, team, "toys-gold", "with the plan change", |r| {
        r.plan_change.as_ref().is_some_and(|p| p.tier == "gold" && p.approved.is_none())
    })
    .await;
    let out = c.apiportal(Persona::Owner, &["reject", &reference, "--reason", "gold is full"]).await;
    assert_eq!(out.stdout, "apikey.devportal.kuadrant.io/toys-gold plan change to gold rejected\n", "{}", out.stderr);
    let out = c.apiportal(Persona::Owner, &["reject", &reference, "--reason", "gold is full"]).await;
    assert!(out.success() && out.stdout.contains("unchanged"), "rejecting twice changes nothing: {out:?}");
    let described = eventually(20, "the rejection in describe", || async {
        let d = plugin_ok(Persona::Consumer, &["-n", team, "describe", "key", "toys-gold"]).await;
        d.contains("rejected by bob: gold is full").then_some(d)
    })
    .await;
    assert!(described.contains("Plan:           bronze"), "{described}");
}

/// Keys grouped by application: requested, listed, rotated and deleted together, and other keys left alone.
#[tokio::test]
async fn consumers_list_rotate_and_delete_the_keys_of_an_application() {
    let c = cluster();
    shared_bridge().await;
    let stage = Stage::new(c).await;
    stage.published_product(c, "toys", "automatic").await;
    let team = stage.team.as_str();
    let product = format!("{}/toys", stage.shop);
    for (app, plan) in [("mobile", "gold"), ("mobile", "bronze"), ("web", "gold")] {
        let args = ["-n", team, "request", &product, "--plan", plan, "--application", app, "--wait=30s"];
        plugin_ok(Persona::Consumer, &args).await;
    }
    let out = c
        .apiportal(
            Persona::Consumer,
            &["-n", team, "request", &product, "--plan", "gold", "--application", "Mobile App"],
        )
        .await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("--application"), "{}", out.stderr);

    let listed = plugin_ok(Persona::Consumer, &["-n", team, "keys", "--application", "mobile", "-o", "name"]).await;
    assert_eq!(
        listed,
        "apikey.devportal.kuadrant.io/mobile-toys-bronze\napikey.devportal.kuadrant.io/mobile-toys-gold\n"
    );
    let wide = plugin_ok(Persona::Consumer, &["-n", team, "keys", "-o", "wide"]).await;
    assert!(wide.lines().next().unwrap().contains("APPLICATION"), "{wide}");
    assert!(wide.lines().any(|l| l.starts_with("web-toys-gold ") && l.contains(" web ")), "{wide}");

    let generation = |name: &'static str| async move {
        wait_issued(cluster(), team, name).await.status.unwrap().issued.unwrap().generation
    };
    let out =
        c.apiportal(Persona::Consumer, &["-n", team, "key", "rotate", "--application", "mobile", "--grace", "0"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "apikey.devportal.kuadrant.io/mobile-toys-bronze rotation requested\napikey.devportal.kuadrant.io/mobile-toys-gold rotation requested\n"
    );
    assert_eq!((generation("mobile-toys-bronze").await, generation("mobile-toys-gold").await), (1, 1));
    assert_eq!(generation("web-toys-gold").await, 0, "another application's key is not rotated");

    let out = c.apiportal(Persona::Consumer, &["-n", team, "revoke", "--application", "mobile"]).await;
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "apikey.devportal.kuadrant.io/mobile-toys-bronze deleted\napikey.devportal.kuadrant.io/mobile-toys-gold deleted\n"
    );
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, team);
    let left = eventually(30, "the application's keys to go", || async {
        let names: Vec<String> =
            keys.list(&Default::default()).await.ok()?.items.iter().map(|k| k.name_any()).collect();
        (names.len() == 1).then_some(names)
    })
    .await;
    assert_eq!(left, ["web-toys-gold"]);
    let out = c.apiportal(Persona::Consumer, &["-n", team, "revoke", "--application", "mobile"]).await;
    assert!(out.success() && out.stderr.contains("No keys of application \"mobile\""), "a rerun is a no-op: {out:?}");
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
