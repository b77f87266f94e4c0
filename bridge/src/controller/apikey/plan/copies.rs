//! The Secrets a key should have, as desired state: which values of the key the gateway should accept right now
//! (`gate`, `desired`), and the actions that take the observed enforcement copies there (`diff`).

use std::collections::BTreeMap;

use apiportal_core::{
    APIKeyStatus, APIProduct, KeyPhase, labels,
    reason::Reason,
    resources::{
        apikey::{IssuedKey, PreviousKey},
        apiproduct::KeyIssuance,
    },
    secrets::{self, KeyIdentity},
    selector::Labels,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::{
    Action, DEFAULT_ROTATION_GRACE, Observed, ProductState, SecretShape, ValueSource,
    decision::{field_duration, lifetime_refusal, limit_refusal},
    whole_seconds,
};

/// An enforcement copy of the key, from the metadata cache.
#[derive(Clone, Debug, PartialEq)]
pub struct EnforcementCopy {
    pub name: String,
    /// The Secret's own UID, a precondition of deleting it.
    pub uid: String,
    pub generation: i64,
    /// The APIKey it was issued for; `None` on copies issued before the bridge recorded it.
    pub apikey_uid: Option<String>,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
}

/// Whether the key may hold a value at the gateway now.
#[derive(Clone, Debug)]
pub enum Gate<'a> {
    Live {
        product: &'a APIProduct,
        issuance: &'a KeyIssuance,
    },
    /// Not now, for this reason: the key keeps its value (if it has one) for when it may again.
    Blocked {
        reason: Reason,
        message: String,
    },
    /// Never again (Rejected, Revoked, Expired): the value goes too.
    Final,
}

pub fn gate<'a>(o: &Observed<'a>, phase: KeyPhase, status: &APIKeyStatus) -> Gate<'a> {
    let key = o.key;
    let product_id = key.product_id();
    let blocked = |reason, message: String| Gate::Blocked { reason, message };
    if phase.is_final() {
        return Gate::Final;
    }
    let product = match o.product {
        ProductState::Gone => {
            let message = match phase {
                KeyPhase::Pending => format!("APIProduct {product_id} not found: the request waits until it exists"),
                _ => format!("APIProduct {product_id} not found"),
            };
            return blocked(Reason::ApiProductNotFound, message);
        }
        ProductState::Found(p) => p,
    };
    let issuable = product.key_issuance();
    let not_issuable = || {
        apiportal_core::resources::conditions::find(product.conditions(), "KeysIssuable")
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "the bridge has not checked the product's AuthPolicy yet".into())
    };
    match phase {
        KeyPhase::Pending => {
            let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
            if !product.is_published() {
                return blocked(
                    Reason::ApiProductNotPublished,
                    format!("APIProduct {product_id} is a Draft: it takes no requests"),
                );
            }
            if let Err(message) = product.offered_plan(&key.spec.plan_tier) {
                return blocked(Reason::PlanTierNotFound, message);
            }
            if product.spec.approval_mode == apiportal_core::ApprovalMode::Automatic && issuable.is_none() {
                return blocked(
                    Reason::KeysNotIssuable,
                    format!(
                        "approved automatically once APIProduct {product_id} can take keys; now it cannot: {}",
                        not_issuable()
                    ),
                );
            }
            blocked(
                Reason::AwaitingApproval,
                format!("waiting for an owner of {product_id}: kubectl apiportal approve {ns}/{name}"),
            )
        }
        KeyPhase::Suspended => blocked(
            Reason::Suspended,
            format!(
                "suspended by {} at {}{}: the gateway refuses the key until an approver resumes it (the value is kept)",
                status.reviewed_by.as_deref().unwrap_or("an approver"),
                status.reviewed_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
                status.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(),
            ),
        ),
        _ => {
            let Some(issuance) = issuable else {
                let kept =
                    if status.issued.is_some() { " (it works again, with the same value, once it can)" } else { "" };
                return blocked(
                    Reason::KeysNotIssuable,
                    format!("the gateway does not accept keys of {product_id}{kept}: {}", not_issuable()),
                );
            };
            let first_value = status.issued.is_none();
            if first_value && let Err(message) = product.offered_plan(super::record::tier_in_force(o, status)) {
                return blocked(Reason::PlanTierNotFound, format!("{message}: no key is issued until it does"));
            }
            if first_value && let Some(message) = lifetime_refusal(key, product, o.now) {
                return blocked(Reason::LifetimeTooLong, format!("{message}; no key is issued"));
            }
            if let Some(message) = limit_refusal(o, product) {
                return blocked(Reason::KeyLimitReached, format!("{message}; this key does not open the gateway"));
            }
            Gate::Live { product, issuance }
        }
    }
}

/// A value of the key that the gateway should accept.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredCopy {
    pub generation: i64,
    pub shape: SecretShape,
    /// Where its value comes from if its copy is missing; `None`: not recreated (a previous value whose copy is
    /// gone cannot be restored: the consumer's copy holds the current one).
    pub source: Option<ValueSource>,
}

/// A rotation carried out by this plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotation {
    pub requested_by: String,
    pub next: i64,
    pub grace: std::time::Duration,
    /// Less than asked for: the product's (or the platform's) cap.
    pub capped_from: Option<std::time::Duration>,
    pub valid_until: Timestamp,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    pub copies: Vec<DesiredCopy>,
    pub issued: Option<IssuedKey>,
    pub previous_key: Option<PreviousKey>,
    pub rotation: Option<Rotation>,
    /// The current value's copy is missing just after it was issued: the cache has not caught up yet.
    pub awaiting_cache: bool,
}

fn identity(o: &Observed) -> (String, String, String, String) {
    let key = o.key;
    (
        key.namespace().unwrap_or_default(),
        key.name_any(),
        key.product_namespace(),
        key.spec.api_product_ref.name.clone(),
    )
}

/// The labels every enforcement copy of this key carries: its identity, nothing else.
fn desired_labels(o: &Observed) -> Labels {
    let (kns, kname, pns, pname) = identity(o);
    secrets::enforcement_labels(&KeyIdentity {
        key_namespace: &kns,
        key_name: &kname,
        product_namespace: &pns,
        product_name: &pname,
    })
}

fn desired_annotations(
    o: &Observed,
    tier: &str,
    generation: i64,
    product: &APIProduct,
    valid_until: Option<Timestamp>,
) -> BTreeMap<String, String> {
    let key = o.key;
    let mut annotations = BTreeMap::from([
        (labels::PLAN_ID.to_owned(), tier.to_owned()),
        (labels::USER_ID.to_owned(), key.requester().to_owned()),
        (labels::APIKEY_UID.to_owned(), key.uid().unwrap_or_default()),
        (labels::APIPRODUCT_UID.to_owned(), product.uid().unwrap_or_default()),
        (labels::KEY_GENERATION.to_owned(), generation.to_string()),
    ]);
    let expiry = [key.spec.expires_at.as_ref().map(|t| t.0), valid_until].into_iter().flatten().min();
    if let Some(at) = expiry {
        annotations.insert(labels::EXPIRES_AT.into(), at.to_string());
    }
    annotations
}

fn shape(
    o: &Observed,
    tier: &str,
    generation: i64,
    product: &APIProduct,
    valid_until: Option<Timestamp>,
) -> SecretShape {
    let (kns, kname, ..) = identity(o);
    SecretShape {
        namespace: o.settings.enforcement_namespace.clone(),
        name: secrets::enforcement_secret_name(&kns, &kname, generation),
        labels: desired_labels(o),
        annotations: desired_annotations(o, tier, generation, product, valid_until),
    }
}

/// The consumer's copy of value `generation`.
pub fn consumer_shape(o: &Observed, generation: i64) -> SecretShape {
    let (kns, kname, pns, pname) = identity(o);
    let identity = KeyIdentity { key_namespace: &kns, key_name: &kname, product_namespace: &pns, product_name: &pname };
    SecretShape {
        namespace: kns.clone(),
        name: secrets::consumer_secret_name(&kname),
        labels: secrets::consumer_labels(&identity),
        annotations: BTreeMap::from([(labels::KEY_GENERATION.to_owned(), generation.to_string())]),
    }
}

/// This key's copy of value `generation`, if the cache holds one (never a copy an earlier APIKey of the same
/// name left behind).
fn observed<'a>(o: &'a Observed, generation: i64) -> Option<&'a EnforcementCopy> {
    let uid = o.key.uid();
    o.copies.iter().find(|c| c.generation == generation && (c.apikey_uid.is_none() || c.apikey_uid == uid))
}

/// The grace a rotation gets: what was asked for, within the product's cap (7 days unless it says otherwise)
/// and the platform's.
fn capped_grace(o: &Observed, product: &APIProduct, asked: std::time::Duration) -> (std::time::Duration, bool) {
    let product_cap = product.spec.max_rotation_grace.as_deref().map(field_duration).unwrap_or(DEFAULT_ROTATION_GRACE);
    let cap = product_cap.min(o.settings.max_rotation_grace);
    (asked.min(cap), asked > cap)
}

/// The values the gateway should accept now, and the `issued`/`previousKey` the status records for them.
pub fn desired(o: &Observed, gate: &Gate, status: &APIKeyStatus) -> Desired {
    let (product, issuance) = match gate {
        Gate::Live { product, issuance } => (*product, *issuance),
        // A blocked key keeps its value (recorded by digest, held in the consumer's copy) for when it may again.
        Gate::Blocked { .. } => return Desired { issued: status.issued.clone(), ..Default::default() },
        Gate::Final => return Desired::default(),
    };
    let tier = super::record::tier_in_force(o, status);
    let now = whole_seconds(o.now);
    let product_uid = product.uid().unwrap_or_default();
    let mut desired = Desired::default();
    let rotation = status
        .rotation_request
        .as_ref()
        .filter(|r| status.issued.as_ref().is_some_and(|i| r.generation == i.generation + 1));
    match (&status.issued, rotation) {
        (Some(current), Some(request)) => {
            let asked = request.grace.as_deref().map(field_duration).unwrap_or_default();
            let (grace, capped) = capped_grace(o, product, asked);
            let valid_until = now + SignedDuration::try_from(grace).unwrap_or_default();
            let next = current.generation + 1;
            desired.copies.push(DesiredCopy {
                generation: next,
                shape: shape(o, tier, next, product, None),
                source: Some(ValueSource::Fresh),
            });
            desired.issued = Some(IssuedKey {
                generation: next,
                product_uid,
                auth_policy: issuance.auth_policy.clone(),
                issued_at: Time(now),
                value_digest: None,
            });
            if !grace.is_zero() && observed(o, current.generation).is_some() {
                desired.copies.push(DesiredCopy {
                    generation: current.generation,
                    shape: shape(o, tier, current.generation, product, Some(valid_until)),
                    source: None,
                });
                desired.previous_key =
                    Some(PreviousKey { generation: current.generation, valid_until: Time(valid_until) });
            }
            desired.rotation = Some(Rotation {
                requested_by: request.requested_by.clone(),
                next,
                grace,
                capped_from: capped.then_some(asked),
                valid_until,
            });
        }
        (current, _) => {
            let generation = current.as_ref().map(|i| i.generation).unwrap_or(0);
            let source = match current {
                Some(issued) => ValueSource::Existing { digest: issued.value_digest.clone() },
                // A copy without a record: an issue a crash interrupted, finished with that copy's value.
                None if observed(o, 0).is_some() => ValueSource::Existing { digest: None },
                None => ValueSource::Fresh,
            };
            // The bridge itself created this copy a moment ago: the Secret's watch event has not caught up with
            // the key's yet.
            let name = shape(o, tier, generation, product, None).name;
            desired.awaiting_cache = observed(o, generation).is_none() && o.just_created.contains(&name);
            desired.copies.push(DesiredCopy {
                generation,
                shape: shape(o, tier, generation, product, None),
                source: Some(source),
            });
            desired.issued = Some(match current {
                Some(issued) => IssuedKey { product_uid, auth_policy: issuance.auth_policy.clone(), ..issued.clone() },
                None => IssuedKey {
                    generation,
                    product_uid,
                    auth_policy: issuance.auth_policy.clone(),
                    issued_at: Time(now),
                    value_digest: None,
                },
            });
            let previous = status.previous_key.as_ref().filter(|p| {
                p.valid_until.0 > o.now && p.generation < generation && observed(o, p.generation).is_some()
            });
            if let Some(p) = previous {
                desired.copies.push(DesiredCopy {
                    generation: p.generation,
                    shape: shape(o, tier, p.generation, product, Some(p.valid_until.0)),
                    source: None,
                });
                desired.previous_key = Some(p.clone());
            }
        }
    }
    desired
}

/// The relabelling that makes `copy` carry exactly `labels` and the managed annotations, if it does not.
fn relabel(copy: &EnforcementCopy, shape: &SecretShape) -> Option<Action> {
    let mut label_patch: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (k, v) in &shape.labels {
        if copy.labels.get(k) != Some(v) {
            label_patch.insert(k.clone(), Some(v.clone()));
        }
    }
    // Any other label goes: an enforcement copy carries its identity and nothing else.
    for k in copy.labels.keys().filter(|k| !shape.labels.contains_key(*k)) {
        label_patch.insert(k.clone(), None);
    }
    let mut annotation_patch: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in MANAGED_ANNOTATIONS {
        let (have, want) = (copy.annotations.get(k), shape.annotations.get(k));
        if have != want {
            annotation_patch.insert(k.to_owned(), want.cloned());
        }
    }
    (!label_patch.is_empty() || !annotation_patch.is_empty()).then(|| Action::Relabel {
        name: copy.name.clone(),
        labels: label_patch,
        annotations: annotation_patch,
    })
}

/// The annotations the bridge manages on an enforcement copy (others, set by anyone else, are left alone).
const MANAGED_ANNOTATIONS: [&str; 6] = [
    labels::PLAN_ID,
    labels::USER_ID,
    labels::EXPIRES_AT,
    labels::APIKEY_UID,
    labels::APIPRODUCT_UID,
    labels::KEY_GENERATION,
];

/// The actions that take the observed copies to `desired`: create what is missing, relabel what differs,
/// delete everything else (including copies an earlier APIKey of the same name left).
pub fn diff(o: &Observed, desired: &Desired, phase: KeyPhase) -> Vec<Action> {
    let mut actions = Vec::new();
    let has_finalizer = o.key.finalizers().iter().any(|f| f == labels::APIKEY_FINALIZER);
    if !desired.copies.is_empty() && !has_finalizer {
        actions.push(Action::AddFinalizer);
    }
    let uid = o.key.uid();
    let current = desired.issued.as_ref();
    for want in &desired.copies {
        match o.copies.iter().find(|c| c.name == want.shape.name && (c.apikey_uid.is_none() || c.apikey_uid == uid)) {
            Some(copy) => {
                actions.extend(relabel(copy, &want.shape));
                // The current value's copy is there but its digest was never recorded (an issue a crash cut short,
                // or a key an older bridge issued): adopted, so the value can be restored later.
                if current.is_some_and(|i| i.generation == want.generation && i.value_digest.is_none()) {
                    actions.push(Action::Issue {
                        generation: want.generation,
                        source: ValueSource::Existing { digest: None },
                        enforcement: want.shape.clone(),
                        consumer: consumer_shape(o, want.generation),
                    });
                }
            }
            None if desired.awaiting_cache => {}
            None => {
                if let Some(source) = &want.source {
                    actions.push(Action::Issue {
                        generation: want.generation,
                        source: source.clone(),
                        enforcement: want.shape.clone(),
                        consumer: consumer_shape(o, want.generation),
                    });
                }
            }
        }
    }
    for copy in &o.copies {
        let wanted = desired
            .copies
            .iter()
            .any(|w| w.shape.name == copy.name && (copy.apikey_uid.is_none() || copy.apikey_uid == uid));
        if !wanted {
            actions.push(Action::DeleteEnforcement { name: copy.name.clone(), uid: copy.uid.clone() });
        }
    }
    let had_value = o.key.status.as_ref().is_some_and(|s| s.issued.is_some() || s.secret_ref.is_some());
    if phase.is_final() && had_value {
        actions.push(Action::DeleteConsumerCopy);
    }
    actions
}

/// A key being deleted: every copy goes, then the finalizer that held it.
pub fn on_deletion(o: &Observed) -> Vec<Action> {
    let mut actions: Vec<Action> =
        o.copies.iter().map(|c| Action::DeleteEnforcement { name: c.name.clone(), uid: c.uid.clone() }).collect();
    if o.key.finalizers().iter().any(|f| f == labels::APIKEY_FINALIZER) {
        actions.push(Action::DeleteConsumerCopy);
        actions.push(Action::RemoveFinalizer);
    }
    actions
}
