//! Carrying out a key plan: the API calls, each idempotent and safe to repeat after a crash. Secrets are created
//! first and read back only when the create conflicts (the normal path reads nothing), and the enforcement copy
//! is the source of truth for a key's value: a consumer-written Secret is never adopted.

use std::collections::BTreeMap;

use apiportal_core::{APIKey, APIKeyStatus, KeyPhase, decision, keygen::ApiKeyValue, labels, secrets};
use base64::{Engine, engine::general_purpose::STANDARD};
use jiff::Timestamp;
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions},
};
use serde_json::{Value, json};

use super::plan::{Action, Notice, NoticeKind, Plan, SecretShape};
use apiportal_core::kube_ext::{KubeErrorExt, KubeResultExt};

use crate::{Error, Result, controller::Context};

/// How carrying out a plan ended.
pub enum Executed {
    /// Everything done (and the status written).
    Done,
    /// A decision the bridge tried to write lost to someone else's: plan again from what is there now.
    Superseded,
}

pub async fn execute(ctx: &Context, key: &mut APIKey, plan: &Plan) -> Result<Executed> {
    let mut notices: Vec<Notice> = Vec::new();
    for action in &plan.actions {
        match action {
            Action::AddFinalizer => set_finalizer(ctx, key, true).await?,
            Action::RemoveFinalizer => set_finalizer(ctx, key, false).await?,
            Action::Decide { phase, reason } => {
                if !decide(ctx, key, *phase, reason).await? {
                    return Ok(Executed::Superseded);
                }
            }
            Action::Issue { generation, enforcement, consumer, repair } => {
                let outcome = issue(ctx, key, *generation, enforcement, consumer).await?;
                if outcome.drew_value {
                    ctx.metrics.keys_issued.inc();
                }
                if *repair && outcome.drew_value {
                    notices.push(warning(ctx, "KeyReissued", "the key's enforcement Secret had disappeared: a new value was issued; read it again with kubectl apiportal key show --reveal"));
                }
                if outcome.replaced_foreign_consumer_copy {
                    notices.push(warning(ctx, "ConsumerSecretReplaced", &format!("Secret {} held a value the bridge did not issue; it was replaced by the key's own (a key is never taken from a Secret anyone else wrote)", consumer.name)));
                }
            }
            Action::Relabel { name, labels, annotations } => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.enforcement_namespace);
                let patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            }
            Action::DeleteEnforcement { name, uid } => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.enforcement_namespace);
                let params = DeleteParams {
                    preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
                    ..Default::default()
                };
                // Gone already, or replaced by a Secret that is not this one (precondition): nothing to do.
                api.delete(name, &params).await.ok_if_gone_or_changed()?;
            }
            Action::DeleteConsumerCopy => delete_consumer_copy(ctx, key).await?,
        }
    }
    if let Some(status) = &plan.status {
        write_status(ctx, key, status).await?;
    }
    notices.extend(plan.notices.iter().cloned());
    for notice in &notices {
        ctx.notifier.notify(key, notice).await;
    }
    Ok(Executed::Done)
}

fn warning(ctx: &Context, reason: &'static str, note: &str) -> Notice {
    Notice {
        kind: NoticeKind::Repaired,
        warning: true,
        reason,
        note: note.to_owned(),
        by: ctx.settings.bridge_user.clone(),
    }
}

/// Continues with the version just written, noting that the one before is superseded.
fn replace(ctx: &Context, key: &mut APIKey, updated: APIKey) {
    ctx.own_writes.replaced(key, &updated);
    *key = updated;
}

fn api_of(ctx: &Context, key: &APIKey) -> Api<APIKey> {
    Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default())
}

async fn set_finalizer(ctx: &Context, key: &mut APIKey, present: bool) -> Result<()> {
    let mut finalizers: Vec<String> =
        key.finalizers().iter().filter(|f| *f != labels::APIKEY_FINALIZER).cloned().collect();
    if present {
        finalizers.push(labels::APIKEY_FINALIZER.to_owned());
    }
    // The resourceVersion makes it a compare-and-swap: someone else's finalizer is never dropped.
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": key.resource_version()}});
    match api_of(ctx, key).patch(&key.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(updated) if present => replace(ctx, key, updated),
        // Released: the object is gone (or going) for good.
        Ok(updated) => {
            ctx.own_writes.forget(&updated);
            *key = updated;
        }
        // Deleted while we looked: nothing left to hold.
        Err(e) if e.is_not_found() && !present => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Writes a decision as the bridge. The admission policy admits it only from the phase the bridge saw (Pending
/// to Approved or Rejected, Approved to Revoked, either to Expired): if an owner decided first, it is refused and
/// nothing is lost. True when written.
async fn decide(ctx: &Context, key: &mut APIKey, phase: KeyPhase, reason: &str) -> Result<bool> {
    let patch = decision::decision_patch(phase, &ctx.settings.bridge_user, Timestamp::now(), Some(reason));
    match api_of(ctx, key).patch_status(&key.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(updated) => {
            replace(ctx, key, updated);
            Ok(true)
        }
        Err(e) if e.is_refused_by_admission() || e.is_conflict() || e.is_not_found() => {
            tracing::info!(%phase, error = %e, "decision superseded");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

fn secret(shape: &SecretShape, value: &str, owner: Option<OwnerReference>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(shape.name.clone()),
            namespace: Some(shape.namespace.clone()),
            labels: Some(shape.labels.clone()),
            annotations: Some(shape.annotations.clone()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        data: Some([(labels::SECRET_KEY.to_owned(), ByteString(value.as_bytes().to_vec()))].into()),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

fn owned_by(secret: &Secret, key: &APIKey) -> bool {
    secret.owner_references().iter().any(|o| Some(&o.uid) == key.uid().as_ref())
}

struct IssueOutcome {
    drew_value: bool,
    replaced_foreign_consumer_copy: bool,
}

/// Creates value `generation`: the enforcement copy first (a copy already there for this very key wins, so a
/// retried or raced issue never makes a second value), then the consumer's copy made to hold the same value.
async fn issue(
    ctx: &Context,
    key: &APIKey,
    generation: i64,
    enforcement: &SecretShape,
    consumer: &SecretShape,
) -> Result<IssueOutcome> {
    let drawn = ApiKeyValue::generate().map_err(Error::KeyGeneration)?;
    let enforcement_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &enforcement.namespace);
    let (value, drew_value) = match enforcement_api
        .create(&PostParams::default(), &secret(enforcement, drawn.expose(), None))
        .await
    {
        Ok(_) => (drawn.expose().to_owned(), true),
        Err(e) if e.is_conflict() => {
            let existing = enforcement_api.get(&enforcement.name).await?;
            let same_key =
                existing.annotations().get(labels::APIKEY_UID).is_none_or(|uid| Some(uid) == key.uid().as_ref());
            match secrets::key_value(&existing) {
                Some(value) if same_key => (value, false),
                // Left by an earlier APIKey of the same name, or empty: never someone else's value.
                _ => {
                    let params = DeleteParams {
                        preconditions: Some(Preconditions { uid: existing.uid(), resource_version: None }),
                        ..Default::default()
                    };
                    enforcement_api.delete(&enforcement.name, &params).await.ok_if_gone_or_changed()?;
                    enforcement_api.create(&PostParams::default(), &secret(enforcement, drawn.expose(), None)).await?;
                    (drawn.expose().to_owned(), true)
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    let owner = key.controller_owner_ref(&()).expect("an APIKey read from the API server has a name and UID");
    let consumer_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &consumer.namespace);
    let mut replaced_foreign_consumer_copy = false;
    match consumer_api.create(&PostParams::default(), &secret(consumer, &value, Some(owner.clone()))).await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {
            let existing = consumer_api.get(&consumer.name).await?;
            let holds = secrets::key_value(&existing).as_deref() == Some(value.as_str())
                && secrets::generation_of(existing.metadata.annotations.as_ref()) == generation;
            if owned_by(&existing, key) {
                if !holds {
                    // A rotation (or a repair): our own copy takes the new value.
                    let patch = json!({
                        "metadata": {"annotations": {labels::KEY_GENERATION: generation.to_string()}},
                        "data": {labels::SECRET_KEY: STANDARD.encode(&value)},
                    });
                    consumer_api.patch(&consumer.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
                }
            } else {
                // Pre-created by someone else, with a value of their choosing: replaced, never trusted.
                let params = DeleteParams {
                    preconditions: Some(Preconditions { uid: existing.uid(), resource_version: None }),
                    ..Default::default()
                };
                consumer_api.delete(&consumer.name, &params).await.ok_if_gone_or_changed()?;
                consumer_api.create(&PostParams::default(), &secret(consumer, &value, Some(owner))).await?;
                replaced_foreign_consumer_copy = true;
            }
        }
        Err(e) => return Err(e.into()),
    }
    Ok(IssueOutcome { drew_value, replaced_foreign_consumer_copy })
}

/// Removes the consumer's copy if it is this key's (a Secret of that name the bridge did not write is not ours
/// to delete).
async fn delete_consumer_copy(ctx: &Context, key: &APIKey) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let name = secrets::consumer_secret_name(&key.name_any());
    let Some(existing) = api.get_opt(&name).await? else { return Ok(()) };
    if owned_by(&existing, key) {
        let params = DeleteParams {
            preconditions: Some(Preconditions { uid: existing.uid(), resource_version: None }),
            ..Default::default()
        };
        api.delete(&name, &params).await.ok_if_gone_or_changed()?;
    }
    Ok(())
}

/// The bridge's own status fields, as JSON, for comparing and applying.
fn bridge_fields(status: &APIKeyStatus) -> BTreeMap<String, Value> {
    let Value::Object(all) = serde_json::to_value(status).expect("a status serialises") else { return BTreeMap::new() };
    all.into_iter().filter(|(k, _)| APIKeyStatus::BRIDGE_FIELDS.contains(&k.as_str())).collect()
}

/// Applies the bridge's fields (never the decision, never a rotation request) with server-side apply, when they
/// changed. Omitting a field removes it: the bridge is its only writer.
async fn write_status(ctx: &Context, key: &mut APIKey, desired: &APIKeyStatus) -> Result<()> {
    let fields = bridge_fields(desired);
    if key.status.as_ref().map(bridge_fields).unwrap_or_default() == fields {
        return Ok(());
    }
    let patch = json!({"apiVersion": apiportal_core::API_VERSION, "kind": "APIKey", "status": fields});
    let params = PatchParams::apply(labels::BRIDGE_FIELD_MANAGER).force();
    match api_of(ctx, key).patch_status(&key.name_any(), &params, &Patch::Apply(&patch)).await {
        Ok(updated) => replace(ctx, key, updated),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
