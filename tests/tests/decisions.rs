//! Two reviewers deciding the same request at the same moment: exactly one decision wins, the other reviewer
//! is told what happened, and nothing is lost or mixed.
//!
//! The race is forced, not hoped for: an admission webhook served by the test holds each request's first decision
//! until the second one has reached the API server too, then lets both through. Both were read from the same
//! Pending request and both passed the admission policy; the API server's storage lets one win, and the loser's
//! write, tried again on the decided request, is refused.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use apiportal_core::{APIKey, KeyPhase, rbac};
use apiportal_tests::{
    Persona, cluster, eventually,
    fixtures::{apikey, wait_projected},
    shared_bridge,
    stage::Stage,
};
use axum::{Json, extract::State, routing::post};
use k8s_openapi::{
    ByteString,
    api::{admissionregistration::v1::ValidatingWebhookConfiguration, core::v1::ConfigMap},
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::{Value, json};
use tokio::sync::watch;

/// How long the first decision of a request waits for the second (well within the webhook's 30 s timeout).
const HOLD: Duration = Duration::from_secs(20);

/// The webhook's memory: decisions arrived per request, and the requests whose two decisions met.
#[derive(Default)]
struct Barrier {
    arrivals: Mutex<HashMap<String, watch::Sender<usize>>>,
    paired: Mutex<HashSet<String>>,
    probes: Mutex<usize>,
}

/// The reviewers whose decisions race; the bridge's own status writes pass at once.
const REVIEWERS: [Persona; 2] = [Persona::Owner, Persona::Owner2];

/// Answers an AdmissionReview: a ConfigMap (the probe that the webhook is in effect) and anyone's status write
/// but a reviewer's at once; the first two reviewers' status writes of an APIKey once both have arrived; any
/// later one at once.
async fn admit(State(barrier): State<Arc<Barrier>>, Json(review): Json<Value>) -> Json<Value> {
    let request = &review["request"];
    let by_reviewer = REVIEWERS.iter().any(|r| request["userInfo"]["username"] == r.username().as_str());
    if request["kind"]["kind"] == "ConfigMap" {
        *barrier.probes.lock().unwrap() += 1;
    } else if by_reviewer {
        let name = request["name"].as_str().unwrap_or_default().to_owned();
        let mut arrived = {
            let mut arrivals = barrier.arrivals.lock().unwrap();
            let sender = arrivals.entry(name.clone()).or_insert_with(|| watch::channel(0).0);
            sender.send_modify(|n| *n += 1);
            sender.subscribe()
        };
        if *arrived.borrow() <= 2 && tokio::time::timeout(HOLD, arrived.wait_for(|n| *n >= 2)).await.is_ok() {
            barrier.paired.lock().unwrap().insert(name);
        }
    }
    Json(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": request["uid"], "allowed": true}}))
}

/// Registers the barrier as a validating webhook for APIKey status writes (and, as its probe, ConfigMap
/// creations) in `namespace`, and waits until the API server calls it.
async fn install_barrier(namespace: &str) -> (Arc<Barrier>, String) {
    let c = cluster();
    let barrier = Arc::new(Barrier::default());
    let url = c.serve_tls(axum::Router::new().route("/", post(admit)).with_state(barrier.clone())).await;
    let name = format!("decision-barrier-{namespace}");
    let mut config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": {"name": name},
        "webhooks": [{
            "name": "barrier.apiportal.test", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 30, "clientConfig": {"url": url},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "rules": [
                {"apiGroups": [apiportal_core::GROUP], "apiVersions": ["*"], "operations": ["UPDATE"],
                 "resources": ["apikeys/status"], "scope": "Namespaced"},
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"],
                 "scope": "Namespaced"}
            ]
        }]
    }))
    .unwrap();
    config.webhooks.as_mut().unwrap()[0].client_config.ca_bundle =
        Some(ByteString(std::fs::read(c.ca_file()).expect("the harness CA")));
    let admin = c.client(Persona::Admin).await;
    Api::<ValidatingWebhookConfiguration>::all(admin.clone()).create(&PostParams::default(), &config).await.unwrap();
    // The API server takes a new webhook up on its own time: probe with dry-run creations until it asks.
    let configmaps: Api<ConfigMap> = Api::namespaced(admin, namespace);
    let probe: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "barrier-probe"}})).unwrap();
    let dry_run = PostParams { dry_run: true, ..Default::default() };
    eventually(30, "the API server to call the barrier webhook", || async {
        configmaps.create(&dry_run, &probe).await.expect("a dry-run creation");
        (*barrier.probes.lock().unwrap() > 0).then_some(())
    })
    .await;
    (barrier, name)
}

#[tokio::test]
async fn racing_approve_and_reject_one_wins_the_loser_is_told() {
    let c = cluster();
    let stage = Stage::new(c).await;
    // The bridge projects each request where its owners read it; deciding is a write to the APIKey alone.
    shared_bridge().await;
    stage.published_product(c, "toys", "manual").await;
    c.bind(&stage.shop, rbac::OWNER_ROLE, Persona::Owner2).await;
    let keys: Api<APIKey> = Api::namespaced(c.client(Persona::Consumer).await, &stage.team);
    let admin_keys: Api<APIKey> = Api::namespaced(c.client(Persona::Admin).await, &stage.team);
    let (barrier, webhook) = install_barrier(&stage.team).await;

    const ROUNDS: usize = 20;
    let mut approvals_won = 0;
    for round in 0..ROUNDS {
        let name = format!("race-{round}");
        let key = apikey(&name, &stage.shop, "toys", "gold", "alice");
        keys.create(&PostParams::default(), &key).await.unwrap();
        wait_projected(c, &stage.shop, &stage.team, &name).await;
        let reference = format!("{}/{name}", stage.team);
        // Two plugin processes at once; the barrier holds the first decision at the API server until the second
        // has arrived there too.
        let (approve_args, reject_args) =
            (["approve", &reference, "--reason", "fine"], ["reject", &reference, "--reason", "not fine"]);
        let (approve, reject) =
            tokio::join!(c.apiportal(Persona::Owner, &approve_args), c.apiportal(Persona::Owner2, &reject_args));
        assert!(
            barrier.paired.lock().unwrap().contains(&name),
            "round {round}: both decisions reached the API server before either was admitted: {approve:?} {reject:?}"
        );
        assert!(
            approve.success() != reject.success(),
            "round {round}: exactly one decision wins: {approve:?} {reject:?}"
        );
        let (loser, outcome) =
            if approve.success() { (&reject, "Approved by bob") } else { (&approve, "Rejected by erin") };
        assert!(
            loser.stderr.contains(&format!("apikey {reference} is already {outcome}"))
                && loser.stderr.contains("(decided while you were deciding; nothing was changed)"),
            "round {round}: the losing reviewer is told the outcome ({outcome}), decided during their own: {}",
            loser.stderr
        );
        let stored = admin_keys.get(&name).await.unwrap();
        let status = stored.status.clone().unwrap();
        if approve.success() {
            approvals_won += 1;
            assert_eq!(
                (stored.phase(), status.reviewed_by.as_deref(), status.reason.as_deref()),
                (KeyPhase::Approved, Some("bob"), Some("fine"))
            );
        } else {
            assert_eq!(
                (stored.phase(), status.reviewed_by.as_deref(), status.reason.as_deref()),
                (KeyPhase::Rejected, Some("erin"), Some("not fine"))
            );
        }
    }
    eprintln!("forced races: approve won {approvals_won} of {ROUNDS} rounds, reject {}", ROUNDS - approvals_won);
    Api::<ValidatingWebhookConfiguration>::all(c.client(Persona::Admin).await)
        .delete(&webhook, &DeleteParams::default())
        .await
        .unwrap();
}
