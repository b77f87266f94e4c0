//! Key reconcile: validate the request against its product, approve automatic products, and for an approved
//! key create its two Secrets exactly once; remove them on rejection, expiry, revocation or when the product
//! goes away. Every decision is also an Event on the APIKey: the audit trail.
//!
//! Crash safety: both Secrets have deterministic names and are only ever created, never updated. The value is
//! taken from whichever copy already exists (the consumer's first), so a crash between the two creates is
//! healed by the next run with the same value: no duplicate, no orphan, no second key.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use apiportal_core::{
    APIKey, APIProduct, KeyPhase,
    keygen::ApiKeyValue,
    labels::{self, BRIDGE_FIELD_MANAGER},
    resources::apikey::SecretRef,
};
use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::{
    ByteString,
    api::core::v1::Secret,
    apimachinery::pkg::apis::meta::v1::{OwnerReference, Time},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams},
    runtime::{
        Controller,
        controller::Action,
        events::{Event, EventType},
        finalizer::{Event as Finalizer, finalizer},
        reflector::{ObjectRef, ReflectHandle, Store},
    },
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Context, conditions::Conditions};
use crate::{Error, Result};

const RESYNC: Duration = Duration::from_secs(300);
const SYSTEM_REVIEWER: &str = "system";

pub fn controller(
    ctx: Arc<Context>,
    keys_sub: ReflectHandle<APIKey>,
    products_sub: ReflectHandle<APIProduct>,
    become_leader: impl Stream<Item = ()> + Send + 'static,
) -> impl std::future::Future<Output = ()> {
    let keys = ctx.caches.keys.clone();
    let by_product = keys.clone();
    Controller::for_shared_stream(keys_sub, keys)
        .with_config(ctx.controller_config())
        .watches_shared_stream(products_sub, move |product: Arc<APIProduct>| keys_of(&by_product, &product))
        .reconcile_all_on(become_leader)
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
}

/// The requests for a product: re-checked when it changes (published, plans, approval mode, deletion).
fn keys_of(keys: &Store<APIKey>, product: &APIProduct) -> Vec<ObjectRef<APIKey>> {
    let (ns, name) = (product.namespace().unwrap_or_default(), product.name_any());
    keys.state()
        .iter()
        .filter(|k| k.spec.api_product_ref.name == name && k.product_namespace() == ns)
        .map(|k| ObjectRef::from(k.as_ref()))
        .collect()
}

fn error_policy(key: Arc<APIKey>, error: &Error, ctx: Arc<Context>) -> Action {
    super::record_failure(&ctx, "apikey", key.as_ref(), error);
    Action::requeue(Duration::from_secs(5))
}

#[tracing::instrument(skip_all, fields(apikey = %key.name_any(), namespace = key.namespace().unwrap_or_default()))]
async fn reconcile(key: Arc<APIKey>, ctx: Arc<Context>) -> Result<Action> {
    let pending = ctx.caches.keys.state().iter().filter(|k| k.phase() == KeyPhase::Pending).count();
    ctx.metrics.keys_pending.set(pending as i64);
    if !ctx.is_leader() {
        return Ok(Action::await_change());
    }
    ctx.metrics.reconciles.get_or_create(&crate::metrics::ControllerLabels { controller: "apikey" }).inc();
    let ns = key.namespace().ok_or_else(|| Error::MissingNamespace(key.name_any()))?;
    let api: Api<APIKey> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, labels::APIKEY_FINALIZER, key, |event| async {
        match event {
            Finalizer::Apply(key) => apply(&key, &ctx).await,
            Finalizer::Cleanup(key) => cleanup(&key, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// Name of the enforcement copy: deterministic, unique per (namespace, name), within Kubernetes' limits.
pub fn enforcement_secret_name(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let readable: String = format!("{namespace}-{name}").chars().take(200).collect();
    format!("apikey-{}-{hash}", readable.trim_end_matches(['-', '.']))
}

async fn publish(ctx: &Context, key: &APIKey, type_: EventType, reason: &str, action: &str, note: String) {
    let event = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &key.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "cannot publish event");
    }
}

async fn apply(key: &APIKey, ctx: &Context) -> Result<Action> {
    let ns = key.namespace().unwrap_or_default();
    let product_ns = key.product_namespace();
    let product_name = &key.spec.api_product_ref.name;
    let product_id = format!("{product_ns}/{product_name}");
    let product = ctx.caches.product(&product_ns, product_name);
    let status = key.status.clone().unwrap_or_default();
    let mut conditions = Conditions::new(&status.conditions, key.metadata.generation);
    let now = Timestamp::now();

    if let Some(expires) = &key.spec.expires_at
        && expires.0 <= now
        && matches!(key.phase(), KeyPhase::Pending | KeyPhase::Approved)
    {
        delete_secrets(key, ctx).await?;
        if decide(key, ctx, KeyPhase::Expired, "the key reached its expiresAt").await? {
            publish(
                ctx,
                key,
                EventType::Normal,
                "Expired",
                "Expire",
                format!("key expired at {}; its Secrets were removed", expires.0),
            )
            .await;
        }
        return Ok(Action::await_change());
    }

    let mut bridge_status = json!({});
    match key.phase() {
        KeyPhase::Pending => match product.as_deref() {
            None => conditions.set("Ready", false, "APIProductNotFound", format!("APIProduct {product_id} not found")),
            Some(p) if !p.is_published() => {
                conditions.set("Ready", false, "APIProductNotPublished", format!("APIProduct {product_id} is a Draft"))
            }
            Some(p) if p.plan(&key.spec.plan_tier).is_none() => {
                let tiers: Vec<&str> = p.plans().iter().map(|t| t.tier.as_str()).collect();
                conditions.set(
                    "Ready",
                    false,
                    "PlanTierNotFound",
                    format!(
                        "APIProduct {product_id} offers no tier {:?} (it offers: {})",
                        key.spec.plan_tier,
                        tiers.join(", ")
                    ),
                )
            }
            Some(p) if p.spec.approval_mode == apiportal_core::ApprovalMode::Automatic => {
                if decide(
                    key,
                    ctx,
                    KeyPhase::Approved,
                    "approved automatically: the product's approval mode is automatic",
                )
                .await?
                {
                    publish(
                        ctx,
                        key,
                        EventType::Normal,
                        "Approved",
                        "Approve",
                        format!("approved automatically for plan {} of {product_id}", key.spec.plan_tier),
                    )
                    .await;
                }
                return Ok(Action::await_change());
            }
            Some(_) => conditions.set(
                "Ready",
                false,
                "AwaitingApproval",
                format!("waiting for an owner of {product_id}: kubectl apiportal approve {ns}/{}", key.name_any()),
            ),
        },
        KeyPhase::Approved => match product.as_deref() {
            None => {
                // The product is gone: the gateway must stop accepting the key; the consumer's copy stays so the
                // key returns unchanged if the product is restored.
                delete_enforcement_secret(key, ctx).await?;
                conditions.set(
                    "Ready",
                    false,
                    "APIProductNotFound",
                    format!("APIProduct {product_id} no longer exists; the key is suspended"),
                );
            }
            Some(p) => {
                let scheme = p.status.as_ref().and_then(|s| s.discovered_auth_scheme.clone());
                let api_key_rule = scheme.as_ref().and_then(|s| s.api_key_rule().map(|(_, r)| r.clone()));
                match api_key_rule {
                    None => conditions.set(
                        "Ready",
                        false,
                        "AuthSchemeNotFound",
                        format!("APIProduct {product_id} has no API-key AuthPolicy yet; the key is issued once it has"),
                    ),
                    Some(rule) => {
                        let selector = rule.api_key.and_then(|a| a.selector.match_labels).unwrap_or_default();
                        let created = ensure_secrets(key, p, &selector, ctx).await?;
                        if created {
                            let by = status.reviewed_by.clone().unwrap_or_else(|| SYSTEM_REVIEWER.into());
                            publish(
                                ctx,
                                key,
                                EventType::Normal,
                                "KeyIssued",
                                "IssueKey",
                                format!(
                                    "key issued for plan {} of {product_id} (approved by {by})",
                                    key.spec.plan_tier
                                ),
                            )
                            .await;
                        }
                        let route = ctx.caches.route(&product_ns, &p.spec.target_ref.name);
                        bridge_status = json!({
                            "secretRef": SecretRef { name: labels::consumer_secret_name(&key.name_any()), key: labels::SECRET_KEY.into() },
                            "apiHostname": route.and_then(|r| r.spec.hostnames.first().cloned()),
                            "limits": p.plan(&key.spec.plan_tier).map(|t| t.limits.clone()),
                            "authScheme": scheme,
                        });
                        conditions.set(
                            "Ready",
                            true,
                            "SecretCreated",
                            format!("reveal with: kubectl apiportal key show {} -n {ns} --reveal", key.name_any()),
                        );
                    }
                }
            }
        },
        KeyPhase::Rejected => {
            if delete_secrets(key, ctx).await? {
                publish(
                    ctx,
                    key,
                    EventType::Normal,
                    "KeyRevoked",
                    "RevokeKey",
                    "request rejected; its key was removed".into(),
                )
                .await;
            }
            let by = status.reviewed_by.clone().unwrap_or_default();
            if apiportal_core::resources::conditions::find(&status.conditions, "Ready")
                .is_none_or(|c| c.reason != "Rejected")
            {
                let reason = status.reason.clone().map(|r| format!(": {r}")).unwrap_or_default();
                publish(ctx, key, EventType::Normal, "Rejected", "Reject", format!("rejected by {by}{reason}")).await;
            }
            conditions.set("Ready", false, "Rejected", format!("rejected by {by}"));
        }
        KeyPhase::Expired => {
            delete_secrets(key, ctx).await?;
            conditions.set("Ready", false, "Expired", "the key has expired");
        }
    }

    bridge_status["observedGeneration"] = json!(key.metadata.generation);
    bridge_status["conditions"] = json!(conditions.built);
    write_status(key, ctx, bridge_status).await?;
    Ok(match &key.spec.expires_at {
        Some(at) => {
            let remaining = (at.0.as_second() - now.as_second()).max(1) as u64;
            Action::requeue(Duration::from_secs(remaining.min(RESYNC.as_secs())))
        }
        None => Action::requeue(RESYNC),
    })
}

/// Writes the fields the bridge owns (never the decision) with server-side apply, when they changed.
async fn write_status(key: &APIKey, ctx: &Context, fields: serde_json::Value) -> Result<()> {
    let current = serde_json::to_value(key.status.clone().unwrap_or_default()).unwrap_or_default();
    let changed = fields.as_object().is_some_and(|f| {
        f.iter().any(|(name, value)| {
            current.get(name).unwrap_or(&serde_json::Value::Null) != value
                && !(value.is_null() && current.get(name).is_none())
        })
    });
    if !changed {
        return Ok(());
    }
    let mut status = fields;
    status.as_object_mut().unwrap().retain(|_, v| !v.is_null());
    let api: Api<APIKey> = Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey", "status": status});
    api.patch_status(&key.name_any(), &PatchParams::apply(BRIDGE_FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// Records a decision with the resourceVersion the decision was based on: if anyone (an owner) decided in the
/// meantime, the write fails, nothing is lost, and the next reconcile sees their decision. True when written.
async fn decide(key: &APIKey, ctx: &Context, phase: KeyPhase, reason: &str) -> Result<bool> {
    let mut decided = key.clone();
    let status = decided.status.get_or_insert_with(Default::default);
    status.phase = Some(phase);
    status.reviewed_by = Some(SYSTEM_REVIEWER.into());
    status.reviewed_at = Some(Time(Timestamp::now()));
    status.reason = Some(reason.into());
    let api: Api<APIKey> = Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let params = PostParams { field_manager: Some(BRIDGE_FIELD_MANAGER.into()), ..Default::default() };
    match api.replace_status(&key.name_any(), &params, &decided).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn owner_reference(key: &APIKey) -> OwnerReference {
    OwnerReference {
        api_version: "devportal.kuadrant.io/v1alpha1".into(),
        kind: "APIKey".into(),
        name: key.name_any(),
        uid: key.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn secret_value(secret: &Secret) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(labels::SECRET_KEY)
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|v| !v.is_empty())
}

/// Creates whichever of the two Secrets is missing. True when it created any.
async fn ensure_secrets(
    key: &APIKey,
    product: &APIProduct,
    selector: &BTreeMap<String, String>,
    ctx: &Context,
) -> Result<bool> {
    let ns = key.namespace().unwrap_or_default();
    let name = key.name_any();
    let consumer_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let enforcement_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.enforcement_namespace);
    let consumer_name = labels::consumer_secret_name(&name);
    let enforcement_name = enforcement_secret_name(&ns, &name);
    let consumer = consumer_api.get_opt(&consumer_name).await?;
    let enforcement = enforcement_api.get_opt(&enforcement_name).await?;
    if consumer.is_some() && enforcement.is_some() {
        return Ok(false);
    }
    let existing = consumer.as_ref().and_then(secret_value).or_else(|| enforcement.as_ref().and_then(secret_value));
    let mut value = match existing {
        Some(v) => v,
        None => {
            ctx.metrics.keys_issued.inc();
            ApiKeyValue::generate().map_err(|e| Error::KeyGeneration(e.to_string()))?.expose().to_owned()
        }
    };
    let key_labels = |extra: &BTreeMap<String, String>| {
        let mut l = extra.clone();
        l.insert(labels::APIKEY.into(), name.clone());
        l.insert(labels::APIKEY_NAMESPACE.into(), ns.clone());
        l.insert(labels::APIPRODUCT.into(), product.name_any());
        l.insert(labels::APIPRODUCT_NAMESPACE.into(), product.namespace().unwrap_or_default());
        l
    };
    if consumer.is_none() {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(consumer_name.clone()),
                namespace: Some(ns.clone()),
                labels: Some(key_labels(&BTreeMap::new())),
                owner_references: Some(vec![owner_reference(key)]),
                ..Default::default()
            },
            data: Some([(labels::SECRET_KEY.to_owned(), ByteString(value.clone().into_bytes()))].into()),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        match consumer_api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            // Another leader won the race: adopt its value so both copies agree.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                if let Some(v) = consumer_api.get_opt(&consumer_name).await?.as_ref().and_then(secret_value) {
                    value = v;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if enforcement.is_none() {
        let mut enforcement_labels = key_labels(selector);
        enforcement_labels.insert(labels::AUTHORINO_MANAGED_BY.into(), labels::AUTHORINO_MANAGED_BY_VALUE.into());
        let mut annotations = BTreeMap::from([
            (labels::PLAN_ID.to_owned(), key.spec.plan_tier.clone()),
            (labels::USER_ID.to_owned(), key.spec.requested_by.user_id.clone()),
        ]);
        if let Some(at) = &key.spec.expires_at {
            annotations.insert(labels::EXPIRES_AT.into(), at.0.to_string());
        }
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(enforcement_name),
                namespace: Some(ctx.enforcement_namespace.clone()),
                labels: Some(enforcement_labels),
                annotations: Some(annotations),
                ..Default::default()
            },
            data: Some([(labels::SECRET_KEY.to_owned(), ByteString(value.into_bytes()))].into()),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        match enforcement_api.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

async fn delete_if_present(api: &Api<Secret>, name: &str) -> Result<bool> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn delete_enforcement_secret(key: &APIKey, ctx: &Context) -> Result<bool> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.enforcement_namespace);
    delete_if_present(&api, &enforcement_secret_name(&key.namespace().unwrap_or_default(), &key.name_any())).await
}

/// Removes both copies. True when it removed any.
async fn delete_secrets(key: &APIKey, ctx: &Context) -> Result<bool> {
    let enforcement = delete_enforcement_secret(key, ctx).await?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let consumer = delete_if_present(&api, &labels::consumer_secret_name(&key.name_any())).await?;
    Ok(enforcement || consumer)
}

async fn cleanup(key: &APIKey, ctx: &Context) -> Result<Action> {
    if delete_secrets(key, ctx).await? {
        publish(ctx, key, EventType::Normal, "KeyRevoked", "RevokeKey", "request deleted; its key was removed".into())
            .await;
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcement_names_are_unique_where_concatenation_is_not() {
        assert_ne!(enforcement_secret_name("a-b", "c"), enforcement_secret_name("a", "b-c"));
        let long = enforcement_secret_name(&"n".repeat(63), &"k".repeat(253));
        assert!(long.len() <= 253, "{}", long.len());
        assert_eq!(enforcement_secret_name("team", "toys"), enforcement_secret_name("team", "toys"));
    }
}
