//! The key plan, case by case: each test builds what the bridge would observe and checks the decision, the
//! actions, the status and what people are told. No API server: the I/O around the plan is tested end to end in
//! tests/, and against the real gateway.

use std::{collections::BTreeMap, time::Duration};

use apiportal_core::{APIKey, APIProduct, KeyAction, KeyPhase, labels, reason::Reason, secrets};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::{Action, Decision, EnforcementCopy, NoticeKind, Observed, Plan, ProductState, Settings, ValueSource, plan};

const BRIDGE: &str = "system:serviceaccount:apiportal-system:apiportal-bridge";
pub(crate) const KEY_UID: &str = "key-uid-1";
const PRODUCT_UID: &str = "product-uid-1";
const VALUE_DIGEST: &str = "sha256:0123";

pub(crate) fn now() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn at(offset_seconds: i64) -> String {
    (now() + SignedDuration::from_secs(offset_seconds)).to_string()
}

pub(crate) fn settings() -> Settings {
    Settings {
        bridge_user: BRIDGE.into(),
        enforcement_namespace: apiportal_core::DEFAULT_ENFORCEMENT_NAMESPACE.into(),
        expiry_warning: Duration::from_secs(7 * 86_400),
        max_rotation_grace: Duration::from_secs(30 * 86_400),
        webhook: false,
    }
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason, "message": message, "lastTransitionTime": at(-3600)})
}

/// A published product over an enforced, product-scoped AuthPolicy, offering gold and bronze.
pub(crate) fn product(approval: &str) -> Value {
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

/// The same product, whose AuthPolicy no longer lets keys be issued.
fn not_issuable(approval: &str) -> Value {
    let mut p = product(approval);
    p["status"]["keyIssuance"] = Value::Null;
    p["status"]["conditions"][2] = condition(
        "KeysIssuable",
        false,
        "SelectorHasForeignLabels",
        "AuthPolicy shop/toys-keys rule \"api-key\" also selects on app=toys",
    );
    p
}

pub(crate) fn parse_product(v: Value) -> APIProduct {
    serde_json::from_value(v).unwrap()
}

pub(crate) fn key(status: Value) -> APIKey {
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

pub(crate) fn with_finalizer(mut key: APIKey) -> APIKey {
    key.metadata.finalizers = Some(vec![labels::APIKEY_FINALIZER.into()]);
    key
}

/// The status of a key bob approved a minute ago, plus `extra`.
pub(crate) fn approved_by_bob(extra: Value) -> Value {
    let mut status = json!({"phase": "Approved", "reviewedBy": "bob", "reviewedAt": at(-60), "reason": "fine",
                            "productUID": PRODUCT_UID, "planTier": "gold"});
    for (k, v) in extra.as_object().unwrap() {
        status[k] = v.clone();
    }
    status
}

/// An issued value `generation` (issued `issued_at` seconds from now), with its history.
fn issued(generation: i64, issued_at: i64) -> Value {
    json!({"issued": {"generation": generation, "productUID": PRODUCT_UID, "authPolicy": "shop/toys-keys",
                      "issuedAt": at(issued_at), "valueDigest": VALUE_DIGEST},
           "secretRef": {"name": "toys-gold-apikey-secret", "key": "api_key"},
           "history": [{"action": "Requested", "by": "alice", "at": at(-7200)},
                       {"action": "Approved", "by": "bob", "at": at(-60), "reason": "fine"}]})
}

pub(crate) fn issued_key(extra: Value) -> APIKey {
    let mut status = approved_by_bob(issued(0, -60));
    for (k, v) in extra.as_object().unwrap() {
        status[k] = v.clone();
    }
    with_finalizer(key(status))
}

/// The enforcement copy the bridge writes for value `generation` of the key.
pub(crate) fn copy(generation: i64) -> EnforcementCopy {
    let identity = secrets::KeyIdentity {
        key_namespace: "team",
        key_name: "toys-gold",
        product_namespace: "shop",
        product_name: "toys",
    };
    EnforcementCopy {
        name: secrets::enforcement_secret_name("team", "toys-gold", generation),
        uid: format!("secret-{generation}"),
        generation,
        apikey_uid: Some(KEY_UID.into()),
        labels: secrets::enforcement_labels(&identity),
        annotations: BTreeMap::from([
            (labels::PLAN_ID.to_owned(), "gold".to_owned()),
            (labels::USER_ID.to_owned(), "alice".to_owned()),
            (labels::APIKEY_UID.to_owned(), KEY_UID.to_owned()),
            (labels::APIPRODUCT_UID.to_owned(), PRODUCT_UID.to_owned()),
            (labels::KEY_GENERATION.to_owned(), generation.to_string()),
        ]),
    }
}

pub(crate) fn run(key: &APIKey, product: Option<&APIProduct>, copies: Vec<EnforcementCopy>) -> Plan {
    run_with(key, product, copies, 0)
}

fn run_with(key: &APIKey, product: Option<&APIProduct>, copies: Vec<EnforcementCopy>, keys_ahead: usize) -> Plan {
    let settings = settings();
    let observed = Observed {
        key,
        product: product.map(ProductState::Found).unwrap_or(ProductState::Gone),
        copies,
        keys_ahead,
        just_created: Vec::new(),
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

fn history(plan: &Plan) -> Vec<KeyAction> {
    plan.status.as_ref().unwrap().history.iter().map(|e| e.action).collect()
}

/// The key as it is once `plan` is written (its status, and the digest act records for a new value).
fn after(key: &APIKey, plan: &Plan) -> APIKey {
    let mut next = key.clone();
    let mut status = plan.status.clone().unwrap();
    if let Some(i) = status.issued.as_mut().filter(|i| i.value_digest.is_none()) {
        i.value_digest = Some(VALUE_DIGEST.into());
    }
    next.status = Some(status);
    if plan.actions.contains(&Action::AddFinalizer) {
        next = with_finalizer(next);
    }
    next
}

fn issues(plan: &Plan) -> Vec<(i64, ValueSource)> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Issue { generation, source, .. } => Some((*generation, source.clone())),
            _ => None,
        })
        .collect()
}

fn deletes(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::DeleteEnforcement { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_request_for_a_manual_product_waits_for_an_owner_and_is_announced() {
    let p = parse_product(product("manual"));
    let plan = run(&key(json!({})), Some(&p), vec![]);
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(plan.decision, None);
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.product_uid.as_deref(), Some(PRODUCT_UID), "the request is bound to this product");
    assert_eq!(ready(&plan).1, "AwaitingApproval");
    assert!(ready(&plan).2.contains("kubectl apiportal approve team/toys-gold"));
    assert_eq!(history(&plan), [KeyAction::Requested]);
    assert_eq!(notices(&plan), [NoticeKind::Requested]);
    let again = run(&after(&key(json!({})), &plan), Some(&p), vec![]);
    assert!(again.notices.is_empty(), "planned again with that status in place: nothing new to tell");
}

#[test]
fn an_automatic_product_approves_and_issues_in_one_plan() {
    let p = parse_product(product("automatic"));
    let plan = run(&key(json!({})), Some(&p), vec![]);
    assert_eq!(plan.decision, Some(Decision::Approve));
    assert_eq!(plan.actions[0], Action::AddFinalizer);
    assert_eq!(issues(&plan), [(0, ValueSource::Fresh)]);
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(KeyPhase::Approved));
    assert_eq!(status.reviewed_by.as_deref(), Some(BRIDGE));
    assert_eq!(status.issued.as_ref().map(|i| i.generation), Some(0));
    assert_eq!(status.plan_tier.as_deref(), Some("gold"));
    assert_eq!(history(&plan), [KeyAction::Requested, KeyAction::Approved]);
    assert_eq!(notices(&plan), [NoticeKind::Requested, NoticeKind::Approved]);
    assert!(plan.notices[1].note.contains("key issued for plan gold of shop/toys"), "{}", plan.notices[1].note);
    assert!(!plan.notices[0].event && plan.notices[1].event, "one Event says it: the approval's");
    assert_eq!(ready(&plan).0, "True");
}

#[test]
fn an_automatic_product_that_cannot_take_keys_leaves_the_request_pending_with_the_reason() {
    let p = parse_product(not_issuable("automatic"));
    let plan = run(&key(json!({})), Some(&p), vec![]);
    assert_eq!(plan.decision, None, "no Approved without a key");
    assert!(plan.actions.is_empty());
    let (status, reason, message) = ready(&plan);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "KeysNotIssuable"));
    assert!(message.contains("approved automatically once") && message.contains("app=toys"), "{message}");
    assert_eq!(history(&plan), [KeyAction::Requested], "the approval is recorded when it really happens");
}

#[test]
fn drafts_unknown_tiers_and_missing_products_keep_a_request_pending_with_the_reason() {
    let mut draft = product("automatic");
    draft["spec"]["publishStatus"] = json!("Draft");
    let plan = run(&key(json!({})), Some(&parse_product(draft)), vec![]);
    assert!(plan.actions.is_empty() && plan.decision.is_none());
    assert_eq!(ready(&plan).1, "APIProductNotPublished");

    let mut platinum = key(json!({}));
    platinum.spec.plan_tier = "platinum".into();
    let plan = run(&platinum, Some(&parse_product(product("automatic"))), vec![]);
    assert!(plan.decision.is_none(), "an automatic product approves no tier it does not offer");
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
    assert!(ready(&plan).2.contains("waits until it exists"));
}

#[test]
fn an_automatic_product_rejects_requests_beyond_its_limits() {
    let mut limited = product("automatic");
    limited["spec"]["maxKeysPerUser"] = json!(2);
    let plan = run_with(&key(json!({})), Some(&parse_product(limited.clone())), vec![], 2);
    assert!(
        matches!(&plan.decision, Some(Decision::Reject { reason: Reason::KeyLimitReached, message }) if message.contains("already holds 2 key(s)")),
        "{:?}",
        plan.decision
    );
    assert!(issues(&plan).is_empty());
    assert_eq!(plan.status.as_ref().unwrap().phase, Some(KeyPhase::Rejected));
    let within = run_with(&key(json!({})), Some(&parse_product(limited)), vec![], 1);
    assert_eq!(within.decision, Some(Decision::Approve));

    let mut capped = product("automatic");
    capped["spec"]["maxKeyLifetime"] = json!("30d");
    let plan = run(&key(json!({})), Some(&parse_product(capped)), vec![]);
    assert!(
        matches!(&plan.decision, Some(Decision::Reject { reason: Reason::LifetimeTooLong, .. })),
        "{:?}",
        plan.decision
    );
}

#[test]
fn an_approved_key_is_issued_once_labelled_with_its_identity_only() {
    let p = parse_product(product("manual"));
    let approved = key(approved_by_bob(json!({})));
    let plan = run(&approved, Some(&p), vec![]);
    assert_eq!(plan.actions[0], Action::AddFinalizer);
    let Action::Issue { generation: 0, source: ValueSource::Fresh, enforcement, consumer } = &plan.actions[1] else {
        panic!("{:?}", plan.actions)
    };
    let mut label_keys: Vec<&str> = enforcement.labels.keys().map(String::as_str).collect();
    label_keys.sort_unstable();
    let mut identity = secrets::ENFORCEMENT_LABEL_KEYS.to_vec();
    identity.sort_unstable();
    assert_eq!(label_keys, identity, "identity labels, nothing an AuthPolicy's author chose");
    assert_eq!(enforcement.namespace, "kuadrant-system");
    assert_eq!(enforcement.annotations[labels::PLAN_ID], "gold");
    assert_eq!(consumer.name, "toys-gold-apikey-secret");
    assert_eq!(notices(&plan), [NoticeKind::Requested, NoticeKind::Approved]);
    // Once written, the next plan changes nothing.
    let next = after(&approved, &plan);
    let again = run(&next, Some(&p), vec![copy(0)]);
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    assert_eq!(again.status.as_ref().unwrap().issued, next.status.as_ref().unwrap().issued);
    assert!(again.notices.is_empty());
}

#[test]
fn a_label_anyone_else_put_on_an_enforcement_copy_is_removed() {
    let p = parse_product(product("manual"));
    let mut labelled = copy(0);
    labelled.labels.insert("app".into(), "payments".into());
    let plan = run(&issued_key(json!({})), Some(&p), vec![labelled]);
    assert_eq!(
        plan.actions,
        [Action::Relabel {
            name: copy(0).name,
            labels: BTreeMap::from([("app".to_owned(), None)]),
            annotations: BTreeMap::new()
        }]
    );
}

#[test]
fn a_product_that_can_no_longer_take_keys_takes_the_key_off_the_gateway_and_keeps_its_value() {
    let blocked = parse_product(not_issuable("manual"));
    let k = issued_key(json!({}));
    let plan = run(&k, Some(&blocked), vec![copy(0)]);
    assert_eq!(deletes(&plan), [copy(0).name]);
    assert!(!plan.actions.contains(&Action::DeleteConsumerCopy), "the consumer keeps the value");
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.issued.as_ref().and_then(|i| i.value_digest.as_deref()), Some(VALUE_DIGEST));
    assert_eq!(ready(&plan).1, "KeysNotIssuable");
    assert!(ready(&plan).2.contains("with the same value"), "{}", ready(&plan).2);
    // Fixed: the same value comes back, restored from where it is kept.
    let fixed = run(&after(&k, &plan), Some(&parse_product(product("manual"))), vec![]);
    assert_eq!(issues(&fixed), [(0, ValueSource::Existing { digest: Some(VALUE_DIGEST.into()) })]);
    assert_eq!(ready(&fixed).0, "True");
}

#[test]
fn a_suspended_key_is_off_the_gateway_and_resumes_with_the_same_value() {
    let p = parse_product(product("manual"));
    let mut status = approved_by_bob(issued(0, -600));
    status["phase"] = json!("Suspended");
    status["reviewedAt"] = json!(at(-10));
    status["reason"] = json!("unusual traffic");
    let suspended = with_finalizer(key(status.clone()));
    let plan = run(&suspended, Some(&p), vec![copy(0)]);
    assert_eq!(deletes(&plan), [copy(0).name]);
    assert!(issues(&plan).is_empty() && !plan.actions.contains(&Action::DeleteConsumerCopy));
    let (ready_status, reason, message) = ready(&plan);
    assert_eq!((ready_status.as_str(), reason.as_str()), ("False", "Suspended"));
    assert!(message.contains("suspended by bob") && message.contains("unusual traffic"), "{message}");
    assert_eq!(history(&plan).last(), Some(&KeyAction::Suspended));
    assert_eq!(notices(&plan), [NoticeKind::Suspended]);

    let mut resumed = plan.status.clone().unwrap();
    resumed.phase = Some(KeyPhase::Approved);
    resumed.reviewed_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    resumed.reason = None;
    let k = with_finalizer(key(serde_json::to_value(resumed).unwrap()));
    let plan = run(&k, Some(&p), vec![]);
    assert_eq!(issues(&plan), [(0, ValueSource::Existing { digest: Some(VALUE_DIGEST.into()) })]);
    assert_eq!(history(&plan).last(), Some(&KeyAction::Resumed));
    assert_eq!(notices(&plan), [NoticeKind::Resumed]);
}

#[test]
fn a_deleted_or_recreated_product_revokes_its_keys_in_one_plan() {
    let k = issued_key(json!({}));
    let plan = run(&k, None, vec![copy(0)]);
    assert!(matches!(&plan.decision, Some(Decision::Revoke { message }) if message.contains("was deleted")));
    assert_eq!(deletes(&plan), [copy(0).name]);
    assert!(plan.actions.contains(&Action::DeleteConsumerCopy));
    let status = plan.status.as_ref().unwrap();
    assert_eq!(
        (status.phase, status.issued.is_none(), status.secret_ref.is_none()),
        (Some(KeyPhase::Revoked), true, true)
    );
    assert_eq!(notices(&plan), [NoticeKind::Revoked]);

    let mut recreated = product("manual");
    recreated["metadata"]["uid"] = json!("product-uid-2");
    let plan = run(&k, Some(&parse_product(recreated)), vec![copy(0)]);
    assert!(matches!(&plan.decision, Some(Decision::Revoke { message }) if message.contains("created again")));
    assert_eq!(deletes(&plan), [copy(0).name]);
}

#[test]
fn a_revoked_key_loses_both_copies_and_is_told_once() {
    let mut status = approved_by_bob(issued(0, -600));
    status["phase"] = json!("Revoked");
    status["reviewedAt"] = json!(at(-5));
    status["reason"] = json!("leaked");
    let k = with_finalizer(key(status));
    let p = parse_product(product("manual"));
    let plan = run(&k, Some(&p), vec![copy(0)]);
    assert_eq!(plan.decision, None, "the owner decided");
    assert_eq!(deletes(&plan), [copy(0).name]);
    assert!(plan.actions.contains(&Action::DeleteConsumerCopy));
    assert_eq!(notices(&plan), [NoticeKind::Revoked]);
    assert_eq!(ready(&plan), ("False".into(), "Revoked".into(), "revoked by bob: leaked".into()));
    let again = run(&after(&k, &plan), Some(&p), vec![]);
    assert!(again.actions.is_empty() && again.notices.is_empty(), "{:?}", again.actions);
}

#[test]
fn rotation_issues_a_new_value_and_keeps_the_old_one_through_its_grace() {
    let p = parse_product(product("manual"));
    let k = issued_key(
        json!({"rotationRequest": {"generation": 1, "requestedBy": "alice", "requestedAt": at(-1), "grace": "1d"}}),
    );
    let plan = run(&k, Some(&p), vec![copy(0)]);
    assert_eq!(issues(&plan), [(1, ValueSource::Fresh)]);
    let relabel = plan.actions.iter().find_map(|a| match a {
        Action::Relabel { name, annotations, .. } if *name == copy(0).name => Some(annotations.clone()),
        _ => None,
    });
    assert_eq!(relabel.unwrap()[labels::EXPIRES_AT], Some(at(86_400)), "the old value stops at the end of its grace");
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.issued.as_ref().map(|i| i.generation), Some(1));
    assert_eq!(
        status.previous_key.as_ref().map(|p| (p.generation, p.valid_until.0.to_string())),
        Some((0, at(86_400)))
    );
    assert_eq!(history(&plan).last(), Some(&KeyAction::Rotated));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(300)), "resync comes before the grace ends");
    // Once the grace is over, the old copy goes.
    let mut later = after(&k, &plan);
    later.status.as_mut().unwrap().previous_key.as_mut().unwrap().valid_until =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now() - SignedDuration::from_secs(1));
    let done = run(&later, Some(&p), vec![copy(0), copy(1)]);
    assert_eq!(deletes(&done), [copy(0).name]);
    assert!(done.status.as_ref().unwrap().previous_key.is_none());
}

#[test]
fn a_rotations_grace_is_held_to_the_products_cap() {
    let p = parse_product(product("manual"));
    let k = issued_key(
        json!({"rotationRequest": {"generation": 1, "requestedBy": "alice", "requestedAt": at(-1), "grace": "999999d"}}),
    );
    let plan = run(&k, Some(&p), vec![copy(0)]);
    let previous = plan.status.as_ref().unwrap().previous_key.clone().unwrap();
    assert_eq!(previous.valid_until.0.to_string(), at(7 * 86_400), "7 days unless the product says otherwise");
    let rotated = plan.notices.iter().find(|n| n.kind == NoticeKind::Rotated).unwrap();
    assert!(rotated.note.contains("the product allows at most 7d"), "{}", rotated.note);

    let mut generous = product("manual");
    generous["spec"]["maxRotationGrace"] = json!("90d");
    let plan = run(&k, Some(&parse_product(generous)), vec![copy(0)]);
    let previous = plan.status.as_ref().unwrap().previous_key.clone().unwrap();
    assert_eq!(previous.valid_until.0.to_string(), at(30 * 86_400), "and within the platform's maximum");
}

#[test]
fn rotation_without_grace_cuts_the_old_value_off_once_the_new_one_exists() {
    let p = parse_product(product("manual"));
    let k = issued_key(
        json!({"rotationRequest": {"generation": 1, "requestedBy": "bob", "requestedAt": at(-1), "grace": "0s"}}),
    );
    let plan = run(&k, Some(&p), vec![copy(0)]);
    let issue = plan.actions.iter().position(|a| matches!(a, Action::Issue { generation: 1, .. })).unwrap();
    let delete = plan.actions.iter().position(|a| matches!(a, Action::DeleteEnforcement { .. })).unwrap();
    assert!(issue < delete, "{:?}", plan.actions);
    assert!(plan.status.as_ref().unwrap().previous_key.is_none());
}

#[test]
fn a_missing_copy_is_waited_for_just_after_the_bridge_created_it_and_restored_otherwise() {
    let p = parse_product(product("manual"));
    let k = issued_key(json!({}));
    let settings = settings();
    let observed = Observed {
        key: &k,
        product: ProductState::Found(&p),
        copies: vec![],
        keys_ahead: 0,
        just_created: vec![copy(0).name],
        now: now(),
        settings: &settings,
    };
    let plan = plan(&observed);
    assert!(plan.actions.is_empty(), "the cache has not caught up with the bridge's own write: {:?}", plan.actions);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(2)));
    // Missing for any other reason (deleted, or taken off the gateway a moment ago): restored at once.
    let plan = run(&k, Some(&p), vec![]);
    assert_eq!(issues(&plan), [(0, ValueSource::Existing { digest: Some(VALUE_DIGEST.into()) })]);
}

#[test]
fn a_copy_left_by_an_earlier_apikey_of_the_same_name_is_never_reused() {
    let p = parse_product(product("manual"));
    let mut stale = copy(0);
    stale.apikey_uid = Some("an-earlier-key".into());
    let plan = run(&key(approved_by_bob(json!({}))), Some(&p), vec![stale.clone()]);
    assert_eq!(issues(&plan), [(0, ValueSource::Fresh)]);
    assert_eq!(deletes(&plan), [stale.name]);
}

#[test]
fn a_copy_whose_issue_a_crash_cut_short_is_adopted_with_its_value() {
    let p = parse_product(product("manual"));
    let plan = run(&with_finalizer(key(approved_by_bob(json!({})))), Some(&p), vec![copy(0)]);
    assert_eq!(issues(&plan), [(0, ValueSource::Existing { digest: None })], "never a second value");
    // A key an older bridge issued (no digest recorded) is adopted the same way, once.
    let mut legacy = issued_key(json!({}));
    legacy.status.as_mut().unwrap().issued.as_mut().unwrap().value_digest = None;
    let plan = run(&legacy, Some(&p), vec![copy(0)]);
    assert_eq!(issues(&plan), [(0, ValueSource::Existing { digest: None })]);
}

#[test]
fn keys_expire_at_their_time_in_one_plan_and_are_flagged_before() {
    let p = parse_product(product("manual"));
    let mut expiring = issued_key(json!({}));
    expiring.spec.expires_at =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now() + SignedDuration::from_hours(48)));
    let plan = run(&expiring, Some(&p), vec![copy(0)]);
    let flag = plan.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "ExpiringSoon").unwrap();
    assert_eq!(flag.status, "True");
    assert_eq!(notices(&plan), [NoticeKind::ExpiringSoon]);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(300)));
    let mut expired = issued_key(json!({}));
    expired.spec.expires_at =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now() - SignedDuration::from_secs(1)));
    let plan = run(&expired, Some(&p), vec![copy(0)]);
    assert!(matches!(plan.decision, Some(Decision::Expire { .. })));
    assert_eq!(deletes(&plan), [copy(0).name]);
    assert!(plan.actions.contains(&Action::DeleteConsumerCopy));
    assert_eq!(plan.status.as_ref().unwrap().phase, Some(KeyPhase::Expired));
}

#[test]
fn a_deleted_key_removes_every_copy_then_its_finalizer() {
    let mut k = issued_key(json!({}));
    k.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let plan = run(&k, Some(&parse_product(product("manual"))), vec![copy(0), copy(1)]);
    assert_eq!(
        plan.actions,
        [
            Action::DeleteEnforcement { name: copy(0).name, uid: copy(0).uid },
            Action::DeleteEnforcement { name: copy(1).name, uid: copy(1).uid },
            Action::DeleteConsumerCopy,
            Action::RemoveFinalizer,
        ]
    );
    assert_eq!(history(&plan).last(), Some(&KeyAction::Deleted));
    assert!(plan.status.as_ref().unwrap().outbox.is_empty(), "no webhook, no outbox");
    assert_eq!(notices(&plan), [NoticeKind::Deleted]);
}

#[test]
fn a_decision_is_recorded_once_even_when_its_time_was_written_with_fractions_of_a_second() {
    let p = parse_product(product("manual"));
    let mut status = approved_by_bob(issued(0, -60));
    status["reviewedAt"] = json!("2026-11-26T11:59:00.123456Z");
    let plan = run(&with_finalizer(key(status)), Some(&p), vec![copy(0)]);
    assert_eq!(history(&plan).iter().filter(|a| **a == KeyAction::Approved).count(), 1);
    assert!(plan.notices.is_empty());
}

#[test]
fn keys_beyond_the_per_user_limit_do_not_open_the_gateway() {
    let mut limited = product("manual");
    limited["spec"]["maxKeysPerUser"] = json!(1);
    let p = parse_product(limited);
    let plan = run_with(&issued_key(json!({})), Some(&p), vec![copy(0)], 1);
    assert_eq!(deletes(&plan), [copy(0).name], "a key ranked beyond the limit loses its place at the gateway");
    assert_eq!(ready(&plan).1, "KeyLimitReached");
    let plan = run_with(&key(approved_by_bob(json!({}))), Some(&p), vec![], 1);
    assert!(issues(&plan).is_empty(), "an approval beyond the limit issues nothing");
}

#[test]
fn an_automatic_product_moves_a_key_to_another_tier_at_once_without_a_new_value() {
    let p = parse_product(product("automatic"));
    let k = issued_key(json!({"planChange": {"tier": "bronze", "requestedBy": "alice", "requestedAt": at(-1)}}));
    let plan = run(&k, Some(&p), vec![copy(0)]);
    assert!(issues(&plan).is_empty(), "the key keeps its value");
    let Some(Action::Relabel { annotations, .. }) = plan.actions.first() else { panic!("{:?}", plan.actions) };
    assert_eq!(annotations[labels::PLAN_ID], Some("bronze".into()));
    let status = plan.status.as_ref().unwrap();
    assert_eq!(status.plan_tier.as_deref(), Some("bronze"));
    assert_eq!(status.plan_change.as_ref().and_then(|c| c.approved), Some(true));
    assert_eq!(status.limits.as_ref().and_then(|l| l.daily), Some(10));
    assert_eq!(history(&plan).last(), Some(&KeyAction::PlanChanged));
}

#[test]
fn a_manual_products_plan_change_waits_for_an_approver_and_follows_the_decision() {
    let p = parse_product(product("manual"));
    let asked = json!({"tier": "bronze", "requestedBy": "alice", "requestedAt": at(-1)});
    let plan = run(&issued_key(json!({"planChange": asked.clone()})), Some(&p), vec![copy(0)]);
    assert!(plan.actions.is_empty());
    let change = plan.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "PlanChange").unwrap();
    assert_eq!((change.status.as_str(), change.reason.as_str()), ("False", "AwaitingApproval"));
    let mut approved = asked.clone();
    approved["approved"] = json!(true);
    approved["reviewedBy"] = json!("bob");
    approved["reviewedAt"] = json!(at(0));
    let plan = run(&issued_key(json!({"planChange": approved})), Some(&p), vec![copy(0)]);
    assert_eq!(plan.status.as_ref().unwrap().plan_tier.as_deref(), Some("bronze"));
    assert_eq!(plan.notices.iter().find(|n| n.kind == NoticeKind::PlanChanged).unwrap().by, "bob");
    let mut rejected = asked;
    rejected["approved"] = json!(false);
    rejected["reviewedBy"] = json!("bob");
    rejected["reviewedAt"] = json!(at(0));
    rejected["reason"] = json!("bronze is for partners");
    let plan = run(&issued_key(json!({"planChange": rejected})), Some(&p), vec![copy(0)]);
    assert_eq!(plan.status.as_ref().unwrap().plan_tier.as_deref(), Some("gold"));
    assert_eq!(history(&plan).last(), Some(&KeyAction::PlanChangeRejected));
}

#[test]
fn a_plan_change_to_a_tier_the_product_does_not_offer_is_refused_naming_the_tiers() {
    let p = parse_product(product("automatic"));
    let k = issued_key(json!({"planChange": {"tier": "platinum", "requestedBy": "alice", "requestedAt": at(-1)}}));
    let plan = run(&k, Some(&p), vec![copy(0)]);
    let change = plan.status.as_ref().unwrap().plan_change.clone().unwrap();
    assert_eq!(change.approved, Some(false));
    assert_eq!(change.reviewed_by.as_deref(), Some(BRIDGE));
    assert!(change.reason.unwrap().contains("it offers: gold, bronze"));
    assert_eq!(plan.status.as_ref().unwrap().plan_tier.as_deref(), Some("gold"));
}

#[test]
fn with_a_webhook_every_notice_waits_in_the_outbox_until_delivered() {
    let p = parse_product(product("automatic"));
    let mut with_webhook = settings();
    with_webhook.webhook = true;
    let k = key(json!({}));
    let observed = Observed {
        key: &k,
        product: ProductState::Found(&p),
        copies: vec![],
        keys_ahead: 0,
        just_created: vec![],
        now: now(),
        settings: &with_webhook,
    };
    let plan = plan(&observed);
    let outbox = &plan.status.as_ref().unwrap().outbox;
    let types: Vec<&str> = outbox.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(types, ["io.apiportal.apikey.requested", "io.apiportal.apikey.approved"]);
    assert!(outbox.iter().all(|e| e.id.len() == 32), "stable ids, for receivers to drop repeats");
    // Planned again with them undelivered: not recorded twice.
    let again_key = after(&k, &plan);
    let observed = Observed {
        key: &again_key,
        product: ProductState::Found(&p),
        copies: vec![copy(0)],
        keys_ahead: 0,
        just_created: vec![],
        now: now(),
        settings: &with_webhook,
    };
    assert_eq!(super::plan(&observed).status.unwrap().outbox.len(), 2);
}

#[test]
fn a_deleted_key_waits_for_the_webhook_for_a_while_then_goes() {
    let mut with_webhook = settings();
    with_webhook.webhook = true;
    let mut k = issued_key(json!({}));
    k.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let p = parse_product(product("manual"));
    let run_at = |key: &APIKey| {
        let observed = Observed {
            key,
            product: ProductState::Found(&p),
            copies: vec![],
            keys_ahead: 0,
            just_created: vec![],
            now: now(),
            settings: &with_webhook,
        };
        plan(&observed)
    };
    let held = run_at(&k);
    assert!(!held.actions.contains(&Action::RemoveFinalizer), "held for the webhook: {:?}", held.actions);
    assert_eq!(held.status.as_ref().unwrap().outbox.last().unwrap().r#type, "io.apiportal.apikey.deleted");
    let mut delivered = after(&k, &held);
    delivered.status.as_mut().unwrap().outbox.clear();
    assert!(run_at(&delivered).actions.contains(&Action::RemoveFinalizer), "released once delivered");
    let mut late = after(&k, &held);
    late.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now() - SignedDuration::from_secs(600)));
    let gone = run_at(&late);
    assert!(gone.actions.contains(&Action::RemoveFinalizer), "the webhook is waited for a while only");
    assert_eq!(gone.outbox_dropped, 1);
}
