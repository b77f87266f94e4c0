//! The key plan, case by case: each test builds what the bridge would observe and checks the actions, the
//! status and what people are told. No API server: the I/O around the plan is tested end to end in tests/.

use std::{collections::BTreeMap, time::Duration};

use apiportal_core::{APIKey, APIProduct, KeyAction, KeyPhase, labels, secrets};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::plan::{Action, EnforcementCopy, NoticeKind, Observed, Plan, ProductState, Settings, plan};

const BRIDGE: &str = "system:serviceaccount:apiportal-system:apiportal-bridge";
const KEY_UID: &str = "key-uid-1";
const PRODUCT_UID: &str = "product-uid-1";

fn now() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn at(offset_seconds: i64) -> String {
    (now() + SignedDuration::from_secs(offset_seconds)).to_string()
}

fn settings() -> Settings {
    Settings {
        bridge_user: BRIDGE.into(),
        enforcement_namespace: apiportal_core::DEFAULT_ENFORCEMENT_NAMESPACE.into(),
        expiry_warning: Duration::from_secs(7 * 86_400),
    }
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason, "message": message, "lastTransitionTime": at(-3600)})
}

/// A published product over an enforced, product-scoped AuthPolicy, offering gold and bronze.
fn product(approval: &str) -> Value {
    json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
        "metadata": {"name": "toys", "namespace": "shop", "uid": PRODUCT_UID, "generation": 1},
        "spec": {"displayName": "Toys", "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toys"},
                 "approvalMode": approval, "publishStatus": "Published"},
        "status": {
            "hostnames": ["toys.example.com"],
            "discoveredPlans": [{"tier": "gold", "limits": {"daily": 100}}, {"tier": "bronze", "limits": {"daily": 10}}],
            "discoveredAuthScheme": {"authentication": {"api-key": {
                "apiKey": {"selector": {"matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: "shop"}}},
                "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}}}},
            "keyIssuance": {"authPolicy": "shop/toys-keys", "rule": "api-key",
                            "matchLabels": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: "shop"}},
            "conditions": [
                condition("Ready", true, "HTTPRouteAccepted", "ok"),
                condition("AuthPolicyDiscovered", true, "Found", "AuthPolicy shop/toys-keys"),
                condition("KeysIssuable", true, "ProductScopedSelector", "ok"),
            ],
        }
    })
}

fn parse_product(v: Value) -> APIProduct {
    serde_json::from_value(v).unwrap()
}

fn key(status: Value) -> APIKey {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {"name": "toys-gold", "namespace": "team", "uid": KEY_UID, "generation": 1,
                     "resourceVersion": "7", "creationTimestamp": at(-7200)},
        "spec": {"apiProductRef": {"name": "toys", "namespace": "shop"}, "planTier": "gold",
                 "requestedBy": {"userId": "alice"}},
        "status": status,
    }))
    .unwrap()
}

fn with_finalizer(mut key: APIKey) -> APIKey {
    key.metadata.finalizers = Some(vec![labels::APIKEY_FINALIZER.into()]);
    key
}

fn approved_by_bob(extra: Value) -> Value {
    let mut status = json!({"phase": "Approved", "reviewedBy": "bob", "reviewedAt": at(-60), "reason": "fine",
                            "productUID": PRODUCT_UID});
    for (k, v) in extra.as_object().unwrap() {
        status[k] = v.clone();
    }
    status
}

fn issued(generation: i64, issued_at: i64) -> Value {
    json!({"issued": {"generation": generation, "productUID": PRODUCT_UID, "authPolicy": "shop/toys-keys",
                      "selector": {labels::APIPRODUCT: "toys", labels::APIPRODUCT_NAMESPACE: "shop"}, "issuedAt": at(issued_at)},
           "history": [{"action": "Requested", "by": "alice", "at": at(-7200)},
                       {"action": "Approved", "by": "bob", "at": at(-60), "reason": "fine"}]})
}

/// The enforcement copy the bridge would have written for value `generation` of the key.
fn copy(generation: i64) -> EnforcementCopy {
    let identity = secrets::KeyIdentity {
        key_namespace: "team",
        key_name: "toys-gold",
        product_namespace: "shop",
        product_name: "toys",
    };
    let selector = BTreeMap::from([
        (labels::APIPRODUCT.to_owned(), "toys".to_owned()),
        (labels::APIPRODUCT_NAMESPACE.to_owned(), "shop".to_owned()),
    ]);
    EnforcementCopy {
        name: secrets::enforcement_secret_name("team", "toys-gold", generation),
        uid: format!("secret-{generation}"),
        generation,
        apikey_uid: Some(KEY_UID.into()),
        labels: secrets::enforcement_labels(&identity, &selector),
        annotations: BTreeMap::from([
            (labels::PLAN_ID.to_owned(), "gold".to_owned()),
            (labels::USER_ID.to_owned(), "alice".to_owned()),
            (labels::APIKEY_UID.to_owned(), KEY_UID.to_owned()),
            (labels::APIPRODUCT_UID.to_owned(), PRODUCT_UID.to_owned()),
            (labels::KEY_GENERATION.to_owned(), generation.to_string()),
        ]),
    }
}

fn run(key: &APIKey, product: Option<&APIProduct>, copies: Vec<EnforcementCopy>) -> Plan {
    run_with(key, product, copies, 0)
}

fn run_with(key: &APIKey, product: Option<&APIProduct>, copies: Vec<EnforcementCopy>, earlier: usize) -> Plan {
    let settings = settings();
    let observed = Observed {
        key,
        product: product.map(ProductState::Found).unwrap_or(ProductState::Gone),
        copies,
        earlier_keys_of_requester: earlier,
        now: now(),
        settings: &settings,
    };
    plan(&observed)
}

fn ready(plan: &Plan) -> (String, String, String) {
    let c = plan.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Ready").expect("a Ready condition");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn notices(plan: &Plan) -> Vec<NoticeKind> {
    plan.notices.iter().map(|n| n.kind).collect()
}

#[test]
fn a_new_request_for_a_manual_product_waits_for_an_owner_and_is_announced() {
    let p = parse_product(product("manual"));
    let plan = run(&key(json!({})), Some(&p), vec![]);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.product_uid.as_deref(), Some(PRODUCT_UID), "the request is bound to this product");
    assert_eq!(ready(&plan).1, "AwaitingApproval");
    assert!(ready(&plan).2.contains("kubectl apiportal approve team/toys-gold"));
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].action, KeyAction::Requested);
    assert_eq!(notices(&plan), [NoticeKind::Requested]);
    // Planned again with that status in place: nothing new to tell.
    let again = run(&key(serde_json::to_value(status).unwrap()), Some(&p), vec![]);
    assert!(again.notices.is_empty());
}

#[test]
fn an_automatic_product_approves_as_the_bridge_and_plans_again() {
    let p = parse_product(product("automatic"));
    let plan = run(&key(json!({})), Some(&p), vec![]);
    assert_eq!(
        plan.actions,
        [Action::Decide {
            phase: KeyPhase::Approved,
            reason: "approved automatically: the product's approval mode is automatic".into()
        }]
    );
    assert!(plan.status.is_none() && plan.notices.is_empty(), "nothing is written or told before the decision");
}

#[test]
fn drafts_unknown_tiers_and_missing_products_keep_a_request_pending_with_the_reason() {
    let mut draft = product("automatic");
    draft["spec"]["publishStatus"] = json!("Draft");
    let plan = run(&key(json!({})), Some(&parse_product(draft)), vec![]);
    assert!(plan.actions.is_empty());
    assert_eq!(ready(&plan).1, "APIProductNotPublished");

    let mut platinum = key(json!({}));
    platinum.spec.plan_tier = "platinum".into();
    let plan = run(&platinum, Some(&parse_product(product("automatic"))), vec![]);
    assert!(plan.actions.is_empty(), "an automatic product approves no tier it does not offer");
    assert_eq!(
        ready(&plan),
        (
            "False".into(),
            "PlanTierNotFound".into(),
            "APIProduct shop/toys offers no plan tier \"platinum\"; it offers: gold, bronze".into()
        )
    );

    let plan = run(&key(json!({})), None, vec![]);
    assert_eq!(ready(&plan).1, "APIProductNotFound");
}

#[test]
fn an_automatic_product_rejects_requests_beyond_its_limits() {
    let mut limited = product("automatic");
    limited["spec"]["maxKeysPerUser"] = json!(2);
    let plan = run_with(&key(json!({})), Some(&parse_product(limited.clone())), vec![], 2);
    match &plan.actions[..] {
        [Action::Decide { phase: KeyPhase::Rejected, reason }] => {
            assert!(reason.contains("allows 2 per user"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        run_with(&key(json!({})), Some(&parse_product(limited)), vec![], 1).actions[..],
        [Action::Decide { phase: KeyPhase::Approved, .. }]
    ));

    let mut short = product("automatic");
    short["spec"]["maxKeyLifetime"] = json!("30d");
    let plan = run(&key(json!({})), Some(&parse_product(short.clone())), vec![]);
    assert!(
        matches!(&plan.actions[..], [Action::Decide { phase: KeyPhase::Rejected, reason }] if reason.contains("at most 30d")),
        "a key without expiry is too long: {:?}",
        plan.actions
    );
    let mut within = key(json!({}));
    within.spec.expires_at =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now() + SignedDuration::from_hours(24)));
    assert!(matches!(
        run(&within, Some(&parse_product(short)), vec![]).actions[..],
        [Action::Decide { phase: KeyPhase::Approved, .. }]
    ));
}

#[test]
fn an_approved_key_is_issued_once_under_the_products_selector() {
    let p = parse_product(product("manual"));
    let plan = run(&key(approved_by_bob(json!({}))), Some(&p), vec![]);
    let [Action::AddFinalizer, Action::Issue { generation: 0, enforcement, consumer, repair: false }] =
        &plan.actions[..]
    else {
        panic!("{:?}", plan.actions)
    };
    assert_eq!(enforcement.namespace, apiportal_core::DEFAULT_ENFORCEMENT_NAMESPACE);
    assert_eq!(enforcement.name, secrets::enforcement_secret_name("team", "toys-gold", 0));
    assert_eq!(enforcement.labels, copy(0).labels, "the product's selector plus the bridge's labels");
    assert_eq!(enforcement.annotations, copy(0).annotations);
    assert_eq!((consumer.namespace.as_str(), consumer.name.as_str()), ("team", "toys-gold-apikey-secret"));
    assert!(!consumer.labels.contains_key(labels::AUTHORINO_MANAGED_BY), "Authorino never reads the consumer's copy");
    let status = plan.status.as_ref().unwrap();
    let issued = status.issued.as_ref().unwrap();
    assert_eq!(
        (issued.generation, issued.product_uid.as_str(), issued.auth_policy.as_str()),
        (0, PRODUCT_UID, "shop/toys-keys")
    );
    assert_eq!(status.secret_ref.as_ref().unwrap().name, "toys-gold-apikey-secret");
    assert_eq!(status.api_hostname.as_deref(), Some("toys.example.com"));
    assert_eq!(ready(&plan).0, "True");
    assert_eq!(status.history.last().unwrap().action, KeyAction::Approved);
    assert_eq!(status.history.last().unwrap().by, "bob");
    assert_eq!(notices(&plan), [NoticeKind::Approved], "one notice for the decision and the issued key");
    assert_eq!(plan.notices[0].note, "approved by bob: key issued for plan gold of shop/toys");
}

#[test]
fn an_issued_key_whose_copy_is_in_place_needs_nothing() {
    let p = parse_product(product("manual"));
    let k = with_finalizer(key(approved_by_bob(issued(0, -50))));
    let plan = run(&k, Some(&p), vec![copy(0)]);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(plan.notices.is_empty());
    assert_eq!(ready(&plan).1, "KeyIssued");
}

#[test]
fn a_changed_selector_relabels_the_enforcement_copy_and_the_status_says_so() {
    let mut changed = product("manual");
    changed["status"]["keyIssuance"]["matchLabels"]["tier-group"] = json!("partners");
    changed["status"]["discoveredAuthScheme"]["authentication"]["api-key"]["apiKey"]["selector"]["matchLabels"]["tier-group"] =
        json!("partners");
    let k = with_finalizer(key(approved_by_bob(issued(0, -50))));
    let plan = run(&k, Some(&parse_product(changed)), vec![copy(0)]);
    match &plan.actions[..] {
        [Action::Relabel { name, labels, annotations }] => {
            assert_eq!(name, &copy(0).name);
            assert_eq!(labels, &BTreeMap::from([("tier-group".to_owned(), Some("partners".to_owned()))]));
            assert!(annotations.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(plan.status.as_ref().unwrap().issued.as_ref().unwrap().selector["tier-group"], "partners");
    assert_eq!(ready(&plan).0, "True");
}

#[test]
fn an_issued_key_tells_the_truth_when_the_gateway_would_not_accept_it() {
    // The policy now wants a label the key's Secret does not carry, and the bridge may not issue under it.
    let mut loose = product("manual");
    loose["status"]["keyIssuance"] = Value::Null;
    loose["status"]["conditions"][2] = condition(
        "KeysIssuable",
        false,
        "SelectorNotProductScoped",
        "AuthPolicy shop/toys-keys rule \"api-key\" selects keys by {app=toys}",
    );
    loose["status"]["discoveredAuthScheme"]["authentication"]["api-key"]["apiKey"]["selector"] =
        json!({"matchLabels": {"app": "toys"}});
    let k = with_finalizer(key(approved_by_bob(issued(0, -50))));
    let plan = run(&k, Some(&parse_product(loose)), vec![copy(0)]);
    assert!(plan.actions.is_empty(), "a valid key's Secret is not taken away: {:?}", plan.actions);
    let (status, reason, message) = ready(&plan);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "KeysNotIssuable"));
    assert!(
        message.starts_with("the gateway may not accept the key:") && message.contains("selects keys by {app=toys}"),
        "{message}"
    );
}

#[test]
fn approvals_of_products_whose_keys_cannot_be_issued_wait_with_the_reason() {
    let mut refused = product("manual");
    refused["status"]["keyIssuance"] = Value::Null;
    refused["status"]["conditions"][2] = condition(
        "KeysIssuable",
        false,
        "SelectorNamesAnotherProduct",
        "the route's AuthPolicy shop/toys-keys (rule \"api-key\") selects the keys of APIProduct shop/other",
    );
    let plan = run(&key(approved_by_bob(json!({}))), Some(&parse_product(refused)), vec![]);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let (_, reason, message) = ready(&plan);
    assert_eq!(reason, "KeysNotIssuable");
    assert!(message.contains("APIProduct shop/other"), "{message}");
    assert_eq!(notices(&plan), [NoticeKind::Approved]);
    assert!(plan.notices[0].note.contains("no key is issued yet"));

    let mut platinum = key(approved_by_bob(json!({})));
    platinum.spec.plan_tier = "platinum".into();
    let plan = run(&platinum, Some(&parse_product(product("manual"))), vec![]);
    assert!(plan.actions.is_empty(), "an approval of a tier the product does not offer issues nothing");
    assert_eq!(ready(&plan).1, "PlanTierNotFound");
}

#[test]
fn a_deleted_or_recreated_product_revokes_its_keys() {
    let k = with_finalizer(key(approved_by_bob(issued(0, -50))));
    assert!(
        matches!(&run(&k, None, vec![copy(0)]).actions[..], [Action::Decide { phase: KeyPhase::Revoked, reason }] if reason.contains("was deleted"))
    );
    let mut recreated = product("manual");
    recreated["metadata"]["uid"] = json!("product-uid-2");
    let plan = run(&k, Some(&parse_product(recreated.clone())), vec![copy(0)]);
    assert!(
        matches!(&plan.actions[..], [Action::Decide { phase: KeyPhase::Revoked, reason }] if reason.contains("deleted and created again"))
    );
    // Approved for the old product but never issued: the approval does not carry over either.
    let plan = run(&key(approved_by_bob(json!({}))), Some(&parse_product(recreated)), vec![]);
    assert!(matches!(&plan.actions[..], [Action::Decide { phase: KeyPhase::Revoked, .. }]));
}

#[test]
fn a_revoked_key_loses_both_copies_and_is_told_once() {
    let status = approved_by_bob(issued(0, -50));
    let mut status = status;
    status["phase"] = json!("Revoked");
    status["reason"] = json!("leaked in a public repository");
    status["reviewedAt"] = json!(at(-5));
    let k = with_finalizer(key(status));
    let plan = run(&k, Some(&parse_product(product("manual"))), vec![copy(0)]);
    assert_eq!(
        plan.actions,
        [Action::DeleteEnforcement { name: copy(0).name, uid: "secret-0".into() }, Action::DeleteConsumerCopy]
    );
    let status = plan.status.as_ref().unwrap();
    assert!(status.issued.is_none() && status.secret_ref.is_none());
    assert_eq!(
        ready(&plan),
        ("False".into(), "Revoked".into(), "revoked by bob: leaked in a public repository".into())
    );
    assert_eq!(notices(&plan), [NoticeKind::Revoked]);
    let again = run(&key(serde_json::to_value(status).unwrap()), Some(&parse_product(product("manual"))), vec![]);
    assert!(again.actions.is_empty() && again.notices.is_empty());
}

#[test]
fn rotation_issues_a_new_value_and_keeps_the_old_one_through_its_grace() {
    let mut status = approved_by_bob(issued(0, -3600));
    status["rotationRequest"] = json!({"generation": 1, "requestedBy": "alice", "requestedAt": at(-1), "grace": "24h"});
    let k = with_finalizer(key(status));
    let plan = run(&k, Some(&parse_product(product("manual"))), vec![copy(0)]);
    let [
        Action::Issue { generation: 1, enforcement, consumer, repair: false },
        Action::Relabel { name, labels, annotations },
    ] = &plan.actions[..]
    else {
        panic!("{:?}", plan.actions)
    };
    assert_eq!(enforcement.name, secrets::enforcement_secret_name("team", "toys-gold", 1));
    assert_eq!(enforcement.annotations[labels::KEY_GENERATION], "1");
    assert_eq!(consumer.annotations[labels::KEY_GENERATION], "1");
    assert_eq!(name, &copy(0).name);
    assert!(labels.is_empty());
    assert_eq!(annotations[labels::EXPIRES_AT], Some(at(86_400)), "the old value stops at the end of its grace");
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.issued.as_ref().unwrap().generation, 1);
    assert_eq!(status.previous_key.as_ref().unwrap().valid_until.0.to_string(), at(86_400));
    let rotated = status.history.last().unwrap();
    assert_eq!((rotated.action, rotated.by.as_str()), (KeyAction::Rotated, "alice"));
    assert_eq!(notices(&plan), [NoticeKind::Rotated]);
    assert!(plan.requeue_after.unwrap() <= Duration::from_secs(86_400));

    // Later, both copies in place and the grace not over: nothing to do.
    let mut later = serde_json::to_value(status).unwrap();
    later["issued"]["issuedAt"] = json!(at(-60));
    let k2 = with_finalizer(key(later.clone()));
    let mut old = copy(0);
    old.annotations.insert(labels::EXPIRES_AT.into(), at(86_400));
    assert!(run(&k2, Some(&parse_product(product("manual"))), vec![old.clone(), copy(1)]).actions.is_empty());

    // Once the grace is over the old copy goes.
    later["previousKey"]["validUntil"] = json!(at(-1));
    let plan = run(&with_finalizer(key(later)), Some(&parse_product(product("manual"))), vec![old, copy(1)]);
    assert_eq!(plan.actions, [Action::DeleteEnforcement { name: copy(0).name, uid: "secret-0".into() }]);
    assert!(plan.status.as_ref().unwrap().previous_key.is_none());
}

#[test]
fn rotation_without_grace_cuts_the_old_value_off_after_the_new_one_exists() {
    let mut status = approved_by_bob(issued(0, -3600));
    status["rotationRequest"] = json!({"generation": 1, "requestedBy": "bob", "requestedAt": at(-1), "grace": "0s"});
    let plan = run(&with_finalizer(key(status)), Some(&parse_product(product("manual"))), vec![copy(0)]);
    assert!(
        matches!(&plan.actions[..], [Action::Issue { generation: 1, .. }, Action::DeleteEnforcement { name, .. }] if *name == copy(0).name),
        "{:?}",
        plan.actions
    );
    assert!(plan.status.as_ref().unwrap().previous_key.is_none());
}

#[test]
fn a_missing_copy_is_waited_for_just_after_issuing_and_reissued_later() {
    let p = parse_product(product("manual"));
    let just = with_finalizer(key(approved_by_bob(issued(0, -2))));
    let plan = run(&just, Some(&p), vec![]);
    assert!(plan.actions.is_empty(), "the cache may not have seen our own create yet: {:?}", plan.actions);
    assert!(plan.requeue_after.unwrap() <= Duration::from_secs(2));
    let long_ago = with_finalizer(key(approved_by_bob(issued(0, -3600))));
    assert!(matches!(
        &run(&long_ago, Some(&p), vec![]).actions[..],
        [Action::Issue { generation: 0, repair: true, .. }]
    ));
}

#[test]
fn a_copy_left_by_an_earlier_apikey_of_the_same_name_is_never_reused() {
    let mut stale = copy(0);
    stale.apikey_uid = Some("an-older-key".into());
    let plan = run(&key(approved_by_bob(json!({}))), Some(&parse_product(product("manual"))), vec![stale.clone()]);
    assert!(
        matches!(&plan.actions[..], [Action::DeleteEnforcement { name, .. }, Action::AddFinalizer, Action::Issue { generation: 0, .. }] if *name == stale.name),
        "{:?}",
        plan.actions
    );
}

#[test]
fn keys_expire_at_their_time_and_are_flagged_before() {
    let mut k = with_finalizer(key(approved_by_bob(issued(0, -3600))));
    k.spec.expires_at =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now() - SignedDuration::from_secs(1)));
    assert!(matches!(
        &run(&k, Some(&parse_product(product("manual"))), vec![copy(0)]).actions[..],
        [Action::Decide { phase: KeyPhase::Expired, .. }]
    ));

    let soon = now() + SignedDuration::from_hours(24);
    k.spec.expires_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(soon));
    let mut expiring = copy(0);
    expiring.annotations.insert(labels::EXPIRES_AT.into(), soon.to_string());
    let plan = run(&k, Some(&parse_product(product("manual"))), vec![expiring.clone()]);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let expiring_soon = plan.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "ExpiringSoon").unwrap();
    assert_eq!(expiring_soon.status, "True");
    assert!(expiring_soon.message.contains("in 1d"), "{}", expiring_soon.message);
    assert_eq!(notices(&plan), [NoticeKind::ExpiringSoon]);
    assert!(plan.requeue_after.unwrap() <= Duration::from_secs(86_400));
    let k2 = with_finalizer(key(serde_json::to_value(plan.status.unwrap()).unwrap()));
    let mut k2 = k2;
    k2.spec.expires_at = k.spec.expires_at.clone();
    assert!(run(&k2, Some(&parse_product(product("manual"))), vec![expiring]).notices.is_empty(), "told once");
}

#[test]
fn a_deleted_key_removes_every_copy_then_its_finalizer() {
    let mut k = with_finalizer(key(approved_by_bob(issued(1, -60))));
    k.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let plan = run(&k, Some(&parse_product(product("manual"))), vec![copy(0), copy(1)]);
    assert_eq!(
        plan.actions,
        [
            Action::DeleteEnforcement { name: copy(0).name, uid: "secret-0".into() },
            Action::DeleteEnforcement { name: copy(1).name, uid: "secret-1".into() },
            Action::DeleteConsumerCopy,
            Action::RemoveFinalizer,
        ]
    );
    assert!(plan.status.is_none());
    assert_eq!(notices(&plan), [NoticeKind::Deleted]);
}

#[test]
fn a_decision_is_recorded_once_even_when_its_time_was_written_with_fractions_of_a_second() {
    // Kubernetes stores times in whole seconds; a reviewedAt written by another client may carry more.
    let mut status = approved_by_bob(issued(0, -50));
    status["reviewedAt"] = json!("2026-11-26T11:59:00.123456Z");
    status["history"][1]["at"] = json!("2026-11-26T11:59:00Z");
    let plan = run(&with_finalizer(key(status)), Some(&parse_product(product("manual"))), vec![copy(0)]);
    assert_eq!(plan.status.as_ref().unwrap().history.len(), 2, "{:?}", plan.status.as_ref().unwrap().history);
    assert!(plan.notices.is_empty());
}

#[test]
fn an_issue_interrupted_between_the_two_copies_is_finished_with_the_same_value() {
    // A crash after the enforcement copy was created, before the consumer's and the status: issue again (the
    // create conflicts and the enforcement copy's value is taken), never consider the key issued.
    let plan =
        run(&with_finalizer(key(approved_by_bob(json!({})))), Some(&parse_product(product("manual"))), vec![copy(0)]);
    assert!(matches!(&plan.actions[..], [Action::Issue { generation: 0, repair: false, .. }]), "{:?}", plan.actions);
    assert!(plan.status.as_ref().unwrap().issued.is_some());
}
