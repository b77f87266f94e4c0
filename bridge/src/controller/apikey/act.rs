//! Carrying out a key plan: the API calls, each idempotent and safe to repeat after a crash. Secrets are created
//! first and read back only when a create conflicts or a value must be restored; what to do with what is read is
//! decided by `plan::conflict`. The status is one write, conditioned on the version of the key the plan was made
//! from: a decision someone else wrote meanwhile is never overwritten, the plan is made again instead.

use std::collections::BTreeMap;

use apiportal_core::{
    APIKey, APIKeyStatus,
    keygen::ApiKeyValue,
    kube_ext::{KubeErrorExt, KubeResultExt},
    labels, secrets,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::{ByteString, api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions},
};
use serde_json::{Value, json};

use super::plan::{
    Action, Notice, NoticeKind, Plan, SecretShape, ValueSource,
    conflict::{self, ConsumerConflict, EnforcementConflict, Existing, Restore},
};
use crate::{Error, Result, controller::Context};

#[cfg(test)]
mod tests;

/// How carrying out a plan ended.
pub enum Executed {
    /// Everything done (and the status written).
    Done,
    /// Someone else wrote the key since it was observed (a decision, a request): plan again from what is there.
    Superseded,
}

pub async fn execute(ctx: &Context, key: &mut APIKey, plan: &Plan) -> Result<Executed> {
    let mut notices: Vec<Notice> = Vec::new();
    let mut status = plan.status.clone();
    for action in &plan.actions {
        match action {
            Action::AddFinalizer => set_finalizer(ctx, key, true).await?,
            Action::RemoveFinalizer => set_finalizer(ctx, key, false).await?,
            Action::Issue { generation, source, enforcement, consumer } => {
                let issued = issue(ctx, key, *generation, source, enforcement, consumer).await?;
                if issued.drew_value {
                    ctx.metrics.keys_issued.inc();
                }
                if let Some(recorded) =
                    status.as_mut().and_then(|s| s.issued.as_mut()).filter(|i| i.generation == *generation)
                {
                    recorded.value_digest = Some(issued.digest.clone());
                }
                if issued.lost_value {
                    notices.push(warning(ctx, "KeyReissued", "the key's value could not be restored (its Secrets were deleted or changed): a new value was issued; read it again with kubectl apiportal key show --reveal"));
                }
                if issued.replaced_foreign_consumer_copy {
                    notices.push(warning(ctx, "ConsumerSecretReplaced", &format!("Secret {} held a value the bridge did not issue; it was replaced by the key's own (a key is never taken from a Secret anyone else wrote)", consumer.name)));
                }
            }
            Action::Relabel { name, labels, annotations } => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.enforcement_namespace);
                let patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.ok_if_not_found()?;
            }
            Action::DeleteEnforcement { name, uid } => {
                let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.enforcement_namespace);
                // Gone already, or replaced by a Secret that is not this one (precondition): nothing to do.
                api.delete(name, &delete_exactly(uid)).await.ok_if_gone_or_changed()?;
                ctx.created_copies.deleted(name);
            }
            Action::DeleteConsumerCopy => delete_consumer_copy(ctx, key).await?,
        }
    }
    if let Some(status) = &status
        && !write_status(ctx, key, status, plan.decision.is_some()).await?
    {
        return Ok(Executed::Superseded);
    }
    if key.metadata.deletion_timestamp.is_some() {
        super::projection::unproject(ctx, key).await?;
    } else {
        super::projection::project(ctx, key).await?;
    }
    if plan.outbox_dropped > 0 {
        ctx.metrics.webhook_dropped.inc_by(plan.outbox_dropped as u64);
        tracing::warn!(dropped = plan.outbox_dropped, "webhook notifications dropped: the key's outbox is full");
    }
    if let Some(webhook) = &ctx.notifier.webhook
        && key.status.as_ref().is_some_and(|s| !s.outbox.is_empty())
    {
        webhook.offer(ctx, key);
    }
    notices.splice(0..0, plan.notices.iter().cloned());
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
        event: true,
    }
}

fn delete_exactly(uid: &str) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions { uid: Some(uid.to_owned()), resource_version: None }),
        ..Default::default()
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

/// A Secret of `shape` holding `value`: under Authorino's data key in an enforcement copy, under the consumer's
/// own in the consumer's copy (the one with an owner).
fn secret(shape: &SecretShape, value: &str, owner: Option<OwnerReference>) -> Secret {
    let data_key = if owner.is_some() { labels::CONSUMER_SECRET_KEY } else { labels::SECRET_KEY };
    Secret {
        metadata: ObjectMeta {
            name: Some(shape.name.clone()),
            namespace: Some(shape.namespace.clone()),
            labels: Some(shape.labels.clone()),
            annotations: Some(shape.annotations.clone()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        data: Some([(data_key.to_owned(), ByteString(value.as_bytes().to_vec()))].into()),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// What act read of an enforcement copy.
fn read_enforcement(existing: &Secret) -> Existing {
    Existing {
        owner_uid: existing.annotations().get(labels::APIKEY_UID).cloned(),
        value: secrets::key_value(existing),
        generation: secrets::generation_of(existing.metadata.annotations.as_ref()),
    }
}

/// What act read of a consumer's copy: its owner is this key only if an ownerReference names the key's UID.
fn read_consumer(existing: &Secret, key: &APIKey) -> Existing {
    let owned = existing.owner_references().iter().any(|o| Some(&o.uid) == key.uid().as_ref());
    Existing {
        owner_uid: owned.then(|| key.uid().unwrap_or_default()),
        value: secrets::consumer_value(existing),
        generation: secrets::generation_of(existing.metadata.annotations.as_ref()),
    }
}

struct Issued {
    digest: String,
    drew_value: bool,
    /// The key had a value that nothing held any more: a new one was drawn.
    lost_value: bool,
    replaced_foreign_consumer_copy: bool,
}

fn draw() -> Result<String> {
    Ok(ApiKeyValue::generate().map_err(Error::KeyGeneration)?.expose().to_owned())
}

/// Makes value `generation` exist: its enforcement copy first (a copy already there for this very key wins, so a
/// retried or raced issue never makes a second value), then the consumer's copy made to hold the same value.
async fn issue(
    ctx: &Context,
    key: &APIKey,
    generation: i64,
    source: &ValueSource,
    enforcement: &SecretShape,
    consumer: &SecretShape,
) -> Result<Issued> {
    let key_uid = key.uid().unwrap_or_default();
    let enforcement_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &enforcement.namespace);
    let consumer_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &consumer.namespace);
    let (mut value, mut drew_value, mut lost_value) = match source {
        ValueSource::Fresh => (draw()?, true, false),
        ValueSource::Existing { digest } => {
            // Restored, never invented: from this key's own enforcement copy if the cache missed one, else from
            // the consumer's copy when it holds exactly the recorded value.
            match enforcement_api.get_opt(&enforcement.name).await? {
                Some(found) => match conflict::enforcement_conflict(&read_enforcement(&found), &key_uid) {
                    EnforcementConflict::Adopt(value) => {
                        let consumer_copy = consumer_api.get_opt(&consumer.name).await?;
                        let outcome =
                            finish_consumer_copy(ctx, key, generation, consumer, &value, consumer_copy).await?;
                        return Ok(Issued {
                            digest: conflict::digest(&value),
                            drew_value: false,
                            lost_value: false,
                            replaced_foreign_consumer_copy: outcome,
                        });
                    }
                    EnforcementConflict::Replace => {
                        enforcement_api
                            .delete(&enforcement.name, &delete_exactly(&found.uid().unwrap_or_default()))
                            .await
                            .ok_if_gone_or_changed()?;
                        restored_or_fresh(&consumer_api, consumer, key, &key_uid, digest.as_deref()).await?
                    }
                },
                None => restored_or_fresh(&consumer_api, consumer, key, &key_uid, digest.as_deref()).await?,
            }
        }
    };
    match enforcement_api.create(&PostParams::default(), &secret(enforcement, &value, None)).await {
        Ok(_) => ctx.created_copies.created(&enforcement.name),
        Err(e) if e.is_conflict() => {
            let existing = enforcement_api.get(&enforcement.name).await?;
            match conflict::enforcement_conflict(&read_enforcement(&existing), &key_uid) {
                EnforcementConflict::Adopt(existing_value) => {
                    value = existing_value;
                    drew_value = false;
                    lost_value = false;
                }
                EnforcementConflict::Replace => {
                    enforcement_api
                        .delete(&enforcement.name, &delete_exactly(&existing.uid().unwrap_or_default()))
                        .await
                        .ok_if_gone_or_changed()?;
                    enforcement_api.create(&PostParams::default(), &secret(enforcement, &value, None)).await?;
                }
            }
        }
        Err(e) => return Err(e.into()),
    }
    let replaced = finish_consumer_copy(ctx, key, generation, consumer, &value, None).await?;
    Ok(Issued { digest: conflict::digest(&value), drew_value, lost_value, replaced_foreign_consumer_copy: replaced })
}

/// The value restored from the consumer's copy (see `conflict::restore`), else a new one: (value, drew, lost).
async fn restored_or_fresh(
    consumer_api: &Api<Secret>,
    consumer: &SecretShape,
    key: &APIKey,
    key_uid: &str,
    digest: Option<&str>,
) -> Result<(String, bool, bool)> {
    // A copy an older bridge wrote under Authorino's data key still holds the value: the digest decides.
    let copy = consumer_api
        .get_opt(&consumer.name)
        .await?
        .map(|s| Existing { value: secrets::consumer_value_or_legacy(&s), ..read_consumer(&s, key) });
    Ok(match conflict::restore(copy.as_ref(), key_uid, digest) {
        Restore::FromConsumerCopy(value) => (value, false, false),
        // A key issued by a bridge that recorded no digest has nothing to restore from: a new value, as before.
        Restore::Fresh => (draw()?, true, true),
    })
}

/// Makes the consumer's copy hold `value`; true when a Secret someone else wrote had to be replaced.
async fn finish_consumer_copy(
    ctx: &Context,
    key: &APIKey,
    generation: i64,
    consumer: &SecretShape,
    value: &str,
    known: Option<Secret>,
) -> Result<bool> {
    let owner = key.controller_owner_ref(&()).expect("an APIKey read from the API server has a name and UID");
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &consumer.namespace);
    let existing = match known {
        Some(existing) => existing,
        None => match api.create(&PostParams::default(), &secret(consumer, value, Some(owner.clone()))).await {
            Ok(_) => return Ok(false),
            Err(e) if e.is_conflict() => api.get(&consumer.name).await?,
            Err(e) => return Err(e.into()),
        },
    };
    let key_uid = key.uid().unwrap_or_default();
    match conflict::consumer_conflict(&read_consumer(&existing, key), &key_uid, value, generation) {
        ConsumerConflict::Keep => Ok(false),
        ConsumerConflict::Update => {
            let patch = json!({
                "metadata": {"annotations": {labels::KEY_GENERATION: generation.to_string()}},
                "data": {labels::CONSUMER_SECRET_KEY: STANDARD.encode(value), labels::SECRET_KEY: null},
            });
            api.patch(&consumer.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            Ok(false)
        }
        ConsumerConflict::Replace => {
            api.delete(&consumer.name, &delete_exactly(&existing.uid().unwrap_or_default()))
                .await
                .ok_if_gone_or_changed()?;
            api.create(&PostParams::default(), &secret(consumer, value, Some(owner))).await?;
            Ok(true)
        }
    }
}

/// Removes the consumer's copy if it is this key's (a Secret of that name the bridge did not write is not ours
/// to delete).
async fn delete_consumer_copy(ctx: &Context, key: &APIKey) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    let name = secrets::consumer_secret_name(&key.name_any());
    let Some(existing) = api.get_opt(&name).await? else { return Ok(()) };
    if read_consumer(&existing, key).owner_uid.is_some() {
        api.delete(&name, &delete_exactly(&existing.uid().unwrap_or_default())).await.ok_if_gone_or_changed()?;
    }
    Ok(())
}

/// The fields of `status` the bridge writes: its own, the decision when it made one, and the plan change it
/// decided (for automatic products), as JSON.
fn written_fields(status: &APIKeyStatus, with_decision: bool) -> BTreeMap<String, Value> {
    let Value::Object(all) = serde_json::to_value(status).expect("a status serialises") else { return BTreeMap::new() };
    let mut fields: Vec<&str> = APIKeyStatus::BRIDGE_FIELDS.to_vec();
    fields.push("planChange");
    if with_decision {
        fields.extend(APIKeyStatus::DECISION_FIELDS);
    }
    fields.into_iter().map(|f| (f.to_owned(), all.get(f).cloned().unwrap_or(Value::Null))).collect()
}

/// Writes the status where it differs from the key's, as one merge patch conditioned on the key's
/// resourceVersion. False when someone wrote the key first (or the admission policy refused the bridge's
/// decision because someone decided first): nothing is overwritten, and the key is planned again.
async fn write_status(ctx: &Context, key: &mut APIKey, desired: &APIKeyStatus, with_decision: bool) -> Result<bool> {
    let fields = written_fields(desired, with_decision);
    let current = written_fields(&key.status.clone().unwrap_or_default(), with_decision);
    if current == fields {
        return Ok(true);
    }
    let changed: BTreeMap<&String, &Value> = fields.iter().filter(|(k, v)| current.get(*k) != Some(v)).collect();
    let patch = json!({"metadata": {"resourceVersion": key.resource_version()}, "status": changed});
    match api_of(ctx, key).patch_status(&key.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(updated) => {
            replace(ctx, key, updated);
            Ok(true)
        }
        Err(e) if e.is_not_found() => Ok(true),
        Err(e) if e.is_conflict() || (with_decision && e.is_refused_by_admission()) => {
            tracing::info!(error = %e, "status write superseded: planning again");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
