//! Act against a scripted API server: each test takes a plan the planner makes, plays the API server's answers
//! (a conflict, a copy someone else wrote, a write someone got in first) and asserts every request act makes,
//! in order, and how it ends. What the planner decides is tested in `plan::tests`; act against a real API server
//! in tests/.

use apiportal_core::{
    APIKey, labels,
    resources::apikeyrequest::{APIKeyRequest, projection_name},
    secrets,
};
use axum::http::Method;
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::{Executed, execute};
use crate::{
    controller::apikey::plan::{
        Action, Plan, SecretShape,
        conflict::digest,
        tests::{
            KEY_UID, approved_by_bob, copy, issued_key, key, now, parse_product, product, run, settings, with_finalizer,
        },
    },
    testing::{ApiServer, Request, context, served},
};

const MERGE_PATCH: &str = "application/merge-patch+json";
/// A value a consumer's copy holds.
const HELD: &str = "the-value-a-consumer-copy-holds-0123456789abcdef";

fn secrets_path(namespace: &str) -> String {
    Secret::url_path(&(), Some(namespace))
}

fn key_path(key: &APIKey) -> String {
    format!("{}/{}", APIKey::url_path(&(), key.namespace().as_deref()), key.name_any())
}

fn projection_path(key: &APIKey) -> String {
    let name = projection_name(&key.namespace().unwrap(), &key.name_any());
    format!("{}/{name}", APIKeyRequest::url_path(&(), Some(&key.product_namespace())))
}

fn events_path(key: &APIKey) -> String {
    k8s_openapi::api::events::v1::Event::url_path(&(), key.namespace().as_deref())
}

/// The Secret act reads back: `data` under `data_key`, written for `apikey_uid` (an enforcement copy's
/// annotation), owned by `owner_uid` (a consumer's copy).
fn existing_secret(
    shape: &SecretShape,
    uid: &str,
    data_key: &str,
    value: &str,
    apikey_uid: Option<&str>,
    owner_uid: Option<&str>,
) -> Value {
    let mut annotations = shape.annotations.clone();
    match apikey_uid {
        Some(apikey_uid) => annotations.insert(labels::APIKEY_UID.to_owned(), apikey_uid.to_owned()),
        None => annotations.remove(labels::APIKEY_UID),
    };
    let owners: Vec<Value> = owner_uid
        .map(|uid| {
            json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey", "name": "toys-gold",
                          "uid": uid, "controller": true})
        })
        .into_iter()
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": shape.name, "namespace": shape.namespace, "uid": uid, "labels": shape.labels,
                        "annotations": annotations, "ownerReferences": owners},
           "data": {data_key: STANDARD.encode(value)}, "type": "Opaque"})
}

/// The Secret a create asks for: its shape, a single data key `data_key` holding one value (returned), and an
/// owner exactly when it is the consumer's copy.
fn created_value(request: &Request, shape: &SecretShape, data_key: &str) -> String {
    let meta = &request.body["metadata"];
    assert_eq!(meta["name"], shape.name.as_str());
    assert_eq!(meta["labels"], json!(shape.labels), "the planned labels, no more");
    assert_eq!(meta["annotations"], json!(shape.annotations));
    let data = request.body["data"].as_object().expect("data");
    assert_eq!(data.keys().collect::<Vec<_>>(), [data_key], "{:?}", data.keys());
    if data_key == labels::CONSUMER_SECRET_KEY {
        let owners = meta["ownerReferences"].as_array().expect("the consumer's copy is owned by its key");
        assert_eq!((owners.len(), &owners[0]["uid"], &owners[0]["controller"]), (1, &json!(KEY_UID), &json!(true)));
    } else {
        assert!(meta.get("ownerReferences").is_none(), "an enforcement copy lives outside the key's namespace");
    }
    let value = String::from_utf8(STANDARD.decode(data[data_key].as_str().unwrap()).unwrap()).unwrap();
    assert!(value.len() >= 32, "a drawn or restored value, not an empty one");
    value
}

/// A Secret in `namespace` with no labels or annotations.
fn consumer_copy_in(namespace: &str) -> SecretShape {
    SecretShape {
        namespace: namespace.into(),
        name: String::new(),
        labels: Default::default(),
        annotations: Default::default(),
    }
}

fn shapes(plan: &Plan) -> (SecretShape, SecretShape) {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Action::Issue { enforcement, consumer, .. } => Some((enforcement.clone(), consumer.clone())),
            _ => None,
        })
        .expect("the plan issues a value")
}

/// The status write: a merge patch of what changed in the status, conditioned on `resource_version`, recording
/// `value`'s digest unless `key` records it already.
/// Answered with the key as written, at `resource_version` + 1.
async fn status_write(api: &mut ApiServer, key: &APIKey, plan: &Plan, resource_version: &str, value: &str) {
    let request = api.next(Method::PATCH, &format!("{}/status", key_path(key))).await;
    assert_eq!(request.content_type, MERGE_PATCH);
    assert_eq!(request.body["metadata"], json!({"resourceVersion": resource_version}), "a compare-and-swap");
    let recorded = key.status.as_ref().and_then(|s| s.issued.as_ref()).and_then(|i| i.value_digest.clone());
    if recorded == Some(digest(value)) {
        assert!(request.body["status"].get("issued").is_none(), "only what changed is written: {}", request.body);
    } else {
        assert_eq!(request.body["status"]["issued"]["valueDigest"], json!(digest(value)));
    }
    let mut written = key.clone();
    written.status = plan.status.clone();
    written.status.as_mut().unwrap().issued.as_mut().unwrap().value_digest = Some(digest(value));
    written.metadata.resource_version = Some((resource_version.parse::<u64>().unwrap() + 1).to_string());
    request.ok(&written);
}

/// The request's projection, applied server-side by the bridge's field manager.
async fn projection(api: &mut ApiServer, key: &APIKey) {
    let request = api.next(Method::PATCH, &projection_path(key)).await;
    assert_eq!(request.content_type, "application/apply-patch+yaml");
    assert!(request.uri.contains(&format!("fieldManager={}", labels::BRIDGE_FIELD_MANAGER)), "{}", request.uri);
    request.echo(200);
}

/// The Events of `reasons`, in order; none may carry `secret` (a key value).
async fn events(api: &mut ApiServer, key: &APIKey, reasons: &[&str], secret: &str) {
    for reason in reasons {
        let request = api.next(Method::POST, &events_path(key)).await;
        assert_eq!(request.body["reason"], *reason);
        assert!(!request.body.to_string().contains(secret), "a key value in an Event: {}", request.body);
        request.echo(201);
    }
}

/// Reasons of the Events a plan's notices publish.
fn event_reasons(plan: &Plan) -> Vec<&'static str> {
    plan.notices.iter().filter(|n| n.event).map(|n| n.reason).collect()
}

#[tokio::test]
async fn a_first_value_goes_to_the_gateway_first_then_to_the_consumer_and_its_digest_is_recorded() {
    let p = parse_product(product("manual"));
    let mut k = key(approved_by_bob(json!({})));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, consumer) = shapes(plan);
    assert_eq!(plan.actions[0], Action::AddFinalizer);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let request = api.next(Method::PATCH, &key_path(&original)).await;
        assert_eq!(request.content_type, MERGE_PATCH);
        assert_eq!(
            request.body,
            json!({"metadata": {"finalizers": [labels::APIKEY_FINALIZER], "resourceVersion": "7"}}),
            "added as a compare-and-swap on the version read"
        );
        let mut held = with_finalizer(original.clone());
        held.metadata.resource_version = Some("8".into());
        request.ok(&held);

        let request = api.next(Method::POST, &secrets_path(&enforcement.namespace)).await;
        let value = created_value(&request, &enforcement, labels::SECRET_KEY);
        request.echo(201);
        let request = api.next(Method::POST, &secrets_path(&consumer.namespace)).await;
        assert_eq!(created_value(&request, &consumer, labels::CONSUMER_SECRET_KEY), value, "one value, two copies");
        request.echo(201);

        status_write(&mut api, &held, plan, "8", &value).await;
        projection(&mut api, &held).await;
        events(&mut api, &held, &event_reasons(plan), &value).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
    assert_eq!(ctx.metrics.keys_issued.get(), 1);
    assert_eq!(k.metadata.resource_version.as_deref(), Some("9"), "act goes on from the version it wrote");
    assert!(k.status.unwrap().issued.unwrap().value_digest.is_some());
}

#[tokio::test]
async fn an_enforcement_copy_of_this_very_key_found_on_create_is_adopted_with_its_value() {
    let p = parse_product(product("manual"));
    let mut k = with_finalizer(key(approved_by_bob(json!({}))));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, consumer) = shapes(plan);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let earlier = "an-earlier-attempt-drew-this-value-0123456789";
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let ns = secrets_path(&enforcement.namespace);
        api.next(Method::POST, &ns).await.refuse(409, "AlreadyExists");
        let found = existing_secret(&enforcement, "s-1", labels::SECRET_KEY, earlier, Some(KEY_UID), None);
        api.next(Method::GET, &format!("{ns}/{}", enforcement.name)).await.ok(&found);
        let request = api.next(Method::POST, &secrets_path(&consumer.namespace)).await;
        assert_eq!(created_value(&request, &consumer, labels::CONSUMER_SECRET_KEY), earlier, "never a second value");
        request.echo(201);
        status_write(&mut api, &original, plan, "7", earlier).await;
        projection(&mut api, &original).await;
        events(&mut api, &original, &event_reasons(plan), earlier).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
    assert_eq!(ctx.metrics.keys_issued.get(), 0, "no value was drawn that counts");
}

#[tokio::test]
async fn an_enforcement_copy_an_earlier_key_left_is_deleted_by_its_uid_and_never_its_value_reused() {
    let p = parse_product(product("manual"));
    let mut k = with_finalizer(key(approved_by_bob(json!({}))));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, consumer) = shapes(plan);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let stale = "the-earlier-keys-value-somebody-else-holds-0123";
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let ns = secrets_path(&enforcement.namespace);
        let request = api.next(Method::POST, &ns).await;
        let value = created_value(&request, &enforcement, labels::SECRET_KEY);
        request.refuse(409, "AlreadyExists");
        let found = existing_secret(&enforcement, "stale-uid", labels::SECRET_KEY, stale, Some("an-earlier-key"), None);
        let named = format!("{ns}/{}", enforcement.name);
        api.next(Method::GET, &named).await.ok(&found);
        let request = api.next(Method::DELETE, &named).await;
        assert_eq!(request.body["preconditions"]["uid"], "stale-uid", "only that Secret, not one created since");
        request.ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        let request = api.next(Method::POST, &ns).await;
        assert_eq!(created_value(&request, &enforcement, labels::SECRET_KEY), value, "the value drawn for this key");
        request.echo(201);
        let request = api.next(Method::POST, &secrets_path(&consumer.namespace)).await;
        assert_eq!(created_value(&request, &consumer, labels::CONSUMER_SECRET_KEY), value);
        request.echo(201);
        assert_ne!(value, stale);
        status_write(&mut api, &original, plan, "7", &value).await;
        projection(&mut api, &original).await;
        events(&mut api, &original, &event_reasons(plan), &value).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
    assert_eq!(ctx.metrics.keys_issued.get(), 1);
}

#[tokio::test]
async fn a_consumer_copy_someone_else_wrote_is_replaced_never_trusted_and_the_consumer_is_warned() {
    let p = parse_product(product("manual"));
    let mut k = with_finalizer(key(approved_by_bob(json!({}))));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, consumer) = shapes(plan);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let planted = "a-value-the-tenant-chose-and-would-like-accepted";
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let request = api.next(Method::POST, &secrets_path(&enforcement.namespace)).await;
        let value = created_value(&request, &enforcement, labels::SECRET_KEY);
        request.echo(201);
        let ns = secrets_path(&consumer.namespace);
        api.next(Method::POST, &ns).await.refuse(409, "AlreadyExists");
        let named = format!("{ns}/{}", consumer.name);
        let found = existing_secret(&consumer, "planted-uid", labels::CONSUMER_SECRET_KEY, planted, None, None);
        api.next(Method::GET, &named).await.ok(&found);
        let request = api.next(Method::DELETE, &named).await;
        assert_eq!(request.body["preconditions"]["uid"], "planted-uid");
        request.ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        let request = api.next(Method::POST, &ns).await;
        assert_eq!(created_value(&request, &consumer, labels::CONSUMER_SECRET_KEY), value, "the key's own value");
        request.echo(201);
        status_write(&mut api, &original, plan, "7", &value).await;
        projection(&mut api, &original).await;
        let mut reasons = event_reasons(plan);
        reasons.push("ConsumerSecretReplaced");
        events(&mut api, &original, &reasons, &value).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
}

#[tokio::test]
async fn a_value_whose_consumer_copy_was_edited_is_not_restored_from_it_but_issued_anew_and_the_consumer_told() {
    let p = parse_product(product("manual"));
    let recorded = "the-value-the-bridge-issued-and-recorded-0123456";
    let mut k = issued_key(json!({}));
    k.status.as_mut().unwrap().issued.as_mut().unwrap().value_digest = Some(digest(recorded));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, consumer) = shapes(plan);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let edited = "a-value-the-tenant-wrote-into-the-consumer-copy";
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let (ens, cns) = (secrets_path(&enforcement.namespace), secrets_path(&consumer.namespace));
        api.next(Method::GET, &format!("{ens}/{}", enforcement.name)).await.refuse(404, "NotFound");
        let named = format!("{cns}/{}", consumer.name);
        let own = existing_secret(&consumer, "c-1", labels::CONSUMER_SECRET_KEY, edited, None, Some(KEY_UID));
        api.next(Method::GET, &named).await.ok(&own);
        let request = api.next(Method::POST, &ens).await;
        let value = created_value(&request, &enforcement, labels::SECRET_KEY);
        assert_ne!(value, edited, "a value is restored only when its digest is the recorded one");
        request.echo(201);
        api.next(Method::POST, &cns).await.refuse(409, "AlreadyExists");
        api.next(Method::GET, &named).await.ok(&own);
        let request = api.next(Method::PATCH, &named).await;
        assert_eq!(request.content_type, MERGE_PATCH);
        assert_eq!(request.body["data"][labels::CONSUMER_SECRET_KEY], STANDARD.encode(&value));
        assert_eq!(request.body["data"][labels::SECRET_KEY], Value::Null, "no second data key left behind");
        request.echo(200);
        status_write(&mut api, &original, plan, "7", &value).await;
        projection(&mut api, &original).await;
        let mut reasons = event_reasons(plan);
        reasons.push("KeyReissued");
        events(&mut api, &original, &reasons, &value).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
    assert_eq!(ctx.metrics.keys_issued.get(), 1);
}

#[tokio::test]
async fn a_value_is_restored_from_the_keys_own_consumer_copy_when_its_digest_is_the_recorded_one() {
    let p = parse_product(product("manual"));
    let recorded = "the-value-the-bridge-issued-and-recorded-0123456";
    let mut k = issued_key(json!({}));
    k.status.as_mut().unwrap().issued.as_mut().unwrap().value_digest = Some(digest(recorded));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, consumer) = shapes(plan);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let (ens, cns) = (secrets_path(&enforcement.namespace), secrets_path(&consumer.namespace));
        api.next(Method::GET, &format!("{ens}/{}", enforcement.name)).await.refuse(404, "NotFound");
        let named = format!("{cns}/{}", consumer.name);
        let own = existing_secret(&consumer, "c-1", labels::CONSUMER_SECRET_KEY, recorded, None, Some(KEY_UID));
        api.next(Method::GET, &named).await.ok(&own);
        let request = api.next(Method::POST, &ens).await;
        assert_eq!(created_value(&request, &enforcement, labels::SECRET_KEY), recorded, "the same value again");
        request.echo(201);
        api.next(Method::POST, &cns).await.refuse(409, "AlreadyExists");
        api.next(Method::GET, &named).await.ok(&own);
        // It holds that value already: left as it is.
        status_write(&mut api, &original, plan, "7", recorded).await;
        projection(&mut api, &original).await;
        events(&mut api, &original, &event_reasons(plan), recorded).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
    assert_eq!(ctx.metrics.keys_issued.get(), 0);
}

#[tokio::test]
async fn a_refused_enforcement_copy_stops_the_issue_before_the_consumer_gets_a_value_and_the_error_hides_it() {
    let p = parse_product(product("manual"));
    let mut k = with_finalizer(key(approved_by_bob(json!({}))));
    let plan = &run(&k, Some(&p), vec![]);
    let (enforcement, _) = shapes(plan);
    let (ctx, api) = context(settings());
    let drawn = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = drawn.clone();
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let request = api.next(Method::POST, &secrets_path(&enforcement.namespace)).await;
        *seen.lock().unwrap() = created_value(&request, &enforcement, labels::SECRET_KEY);
        request.refuse(403, "Forbidden");
        api
    })
    .await;
    let error = outcome.err().expect("the refusal is the reconcile's error").to_string();
    assert!(error.contains("Forbidden"), "{error}");
    assert!(!error.contains(drawn.lock().unwrap().as_str()), "a key value in an error: {error}");
    assert_eq!(ctx.metrics.keys_issued.get(), 0);
}

#[tokio::test]
async fn a_status_someone_else_wrote_first_is_not_overwritten_and_the_key_is_planned_again() {
    let p = parse_product(product("manual"));
    let mut k = key(json!({}));
    let plan = &run(&k, Some(&p), vec![]);
    assert!(plan.actions.is_empty() && plan.decision.is_none(), "a request waiting for an owner: {:?}", plan.actions);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let request = api.next(Method::PATCH, &format!("{}/status", key_path(&original))).await;
        assert_eq!(request.content_type, MERGE_PATCH);
        assert_eq!(request.body["metadata"], json!({"resourceVersion": "7"}));
        let written = request.body["status"].as_object().unwrap();
        assert!(written.contains_key("conditions") && written.contains_key("history"), "{written:?}");
        assert!(!written.contains_key("phase"), "the bridge decided nothing: no decision field is written");
        request.refuse(409, "Conflict");
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Superseded)), "nothing told, nothing projected, planned again");
    assert_eq!(k.metadata.resource_version.as_deref(), Some("7"));
}

#[tokio::test]
async fn a_deleted_key_removes_its_copies_by_uid_then_its_own_consumer_copy_then_its_finalizer() {
    let p = parse_product(product("manual"));
    let mut k = issued_key(json!({}));
    k.metadata.deletion_timestamp = Some(Time(now()));
    let plan = &run(&k, Some(&p), vec![copy(0), copy(1)]);
    let (ctx, api) = context(settings());
    let original = k.clone();
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let ens = secrets_path(&settings().enforcement_namespace);
        for (generation, answer) in [(0, 200), (1, 404)] {
            let request = api.next(Method::DELETE, &format!("{ens}/{}", copy(generation).name)).await;
            assert_eq!(request.body["preconditions"]["uid"], copy(generation).uid.as_str());
            match answer {
                200 => request.ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
                _ => request.refuse(404, "NotFound"),
            }
        }
        let consumer_name = secrets::consumer_secret_name(&original.name_any());
        let named = format!("{}/{consumer_name}", secrets_path("team"));
        let shape = SecretShape { name: consumer_name.clone(), ..consumer_copy_in("team") };
        let own = existing_secret(&shape, "c-1", labels::CONSUMER_SECRET_KEY, HELD, None, Some(KEY_UID));
        api.next(Method::GET, &named).await.ok(&own);
        let request = api.next(Method::DELETE, &named).await;
        assert_eq!(request.body["preconditions"]["uid"], "c-1");
        request.ok(&json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}));
        let request = api.next(Method::PATCH, &key_path(&original)).await;
        assert_eq!(request.body, json!({"metadata": {"finalizers": [], "resourceVersion": "7"}}));
        let mut released = original.clone();
        released.metadata.finalizers = None;
        released.metadata.resource_version = Some("8".into());
        request.ok(&released);
        // The key is gone once released: its last status write finds nothing, and that is fine.
        let request = api.next(Method::PATCH, &format!("{}/status", key_path(&original))).await;
        assert_eq!(request.body["metadata"], json!({"resourceVersion": "8"}));
        request.refuse(404, "NotFound");
        api.next(Method::DELETE, &projection_path(&original)).await.refuse(404, "NotFound");
        events(&mut api, &original, &event_reasons(plan), HELD).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
}

#[tokio::test]
async fn a_secret_of_the_consumer_copys_name_the_bridge_did_not_write_is_never_deleted() {
    let mut k = issued_key(json!({}));
    let plan = &Plan { actions: vec![Action::DeleteConsumerCopy], ..Default::default() };
    let (ctx, api) = context(settings());
    let original = k.clone();
    let outcome = served(api, execute(&ctx, &mut k, plan), |mut api| async move {
        let consumer_name = secrets::consumer_secret_name(&original.name_any());
        let shape = SecretShape { name: consumer_name.clone(), ..consumer_copy_in("team") };
        let theirs = existing_secret(&shape, "c-1", labels::CONSUMER_SECRET_KEY, HELD, None, Some("someone-else"));
        api.next(Method::GET, &format!("{}/{consumer_name}", secrets_path("team"))).await.ok(&theirs);
        // No DELETE: act goes straight on to the projection.
        projection(&mut api, &original).await;
        api
    })
    .await;
    assert!(matches!(outcome, Ok(Executed::Done)));
}
