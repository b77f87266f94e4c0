//! The key reconcile's decision, as a pure function: from what was observed (the key, its product, its
//! enforcement copies, the time) to what should be done (actions, in order), the status the bridge should
//! write, and what to tell people (Events, audit lines, webhooks). No I/O here: every case is unit-tested
//! below without an API server.
//!
//! A key's life: Pending → Approved (by an owner, or by the bridge for automatic products) → its value is issued
//! into two Secrets → maybe rotated (a new value; the previous one stays valid through a grace period) → Revoked
//! or Expired. Rejected ends a request before any key exists. Final phases remove every Secret.

use std::{collections::BTreeMap, time::Duration};

use apiportal_core::{
    APIKey, APIKeyStatus, APIProduct, ApprovalMode, KeyAction, KeyPhase, labels,
    resources::apikey::{HistoryEntry, IssuedKey, PreviousKey, SecretRef},
    secrets::{self, KeyIdentity},
    selector::{self, Labels},
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::controller::conditions::Conditions;

/// How often a key is looked at again when nothing it depends on changes.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How long after issuing a value its enforcement copy may be missing from the cache before the bridge
/// believes it gone (the key's own watch event can arrive before the Secret's).
const CACHE_GRACE: SignedDuration = SignedDuration::from_secs(15);

/// The bridge's settings the decision depends on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The bridge's own user name: the reviewer of the decisions it makes.
    pub bridge_user: String,
    pub enforcement_namespace: String,
    /// How long before `expiresAt` a key is flagged `ExpiringSoon`.
    pub expiry_warning: Duration,
}

/// The key's product, as far as the bridge can tell.
#[derive(Clone, Copy, Debug)]
pub enum ProductState<'a> {
    Found(&'a APIProduct),
    /// Confirmed absent by a live read, not merely missing from a cache.
    Gone,
}

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

pub struct Observed<'a> {
    pub key: &'a APIKey,
    pub product: ProductState<'a>,
    /// Every enforcement copy of this key the cache holds.
    pub copies: Vec<EnforcementCopy>,
    /// The requester's Pending or Approved keys for the same product created before this one.
    pub earlier_keys_of_requester: usize,
    pub now: Timestamp,
    pub settings: &'a Settings,
}

/// What a new Secret looks like (its value is drawn when it is created, never planned).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretShape {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Holds the APIKey until its enforcement copies are gone (they live in another namespace, out of reach of
    /// garbage collection).
    AddFinalizer,
    RemoveFinalizer,
    /// A decision the bridge makes, as the bridge's user. The admission policy refuses it if someone decided
    /// first, so it never overwrites a decision.
    Decide {
        phase: KeyPhase,
        reason: String,
    },
    /// A new value: its enforcement copy (created first: the source of truth), then the consumer's copy (created,
    /// or made to hold it). `repair`: the key had been issued and its enforcement copy is gone (someone deleted
    /// it); if a new value has to be drawn, its consumers are warned.
    Issue {
        generation: i64,
        enforcement: SecretShape,
        consumer: SecretShape,
        repair: bool,
    },
    /// Sets an enforcement copy's labels and annotations (the selector changed, a rotation set its expiry);
    /// `None` removes one.
    Relabel {
        name: String,
        labels: BTreeMap<String, Option<String>>,
        annotations: BTreeMap<String, Option<String>>,
    },
    DeleteEnforcement {
        name: String,
        uid: String,
    },
    DeleteConsumerCopy,
}

/// Something people are told about: an Event on the APIKey, an audit line, a webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub warning: bool,
    /// The Event's reason, CamelCase.
    pub reason: &'static str,
    pub note: String,
    /// Who caused it (a user name or the bridge's).
    pub by: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    Requested,
    Approved,
    Rejected,
    Revoked,
    Rotated,
    Expired,
    ExpiringSoon,
    Deleted,
    /// Something the bridge had to repair (a missing enforcement copy, a consumer copy it did not write).
    Repaired,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The status to write when the actions succeed; `None` when the plan ends in a decision (the key is planned
    /// again with the decision in place) or the key is being deleted.
    pub status: Option<APIKeyStatus>,
    pub notices: Vec<Notice>,
    pub requeue_after: Option<Duration>,
}

impl Plan {
    /// Whether the plan ends in a decision: the key is planned again once it is written.
    pub fn decides(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Decide { .. }))
    }
}

struct Planner<'a> {
    o: &'a Observed<'a>,
    status: APIKeyStatus,
    conditions: Conditions<'a>,
    plan: Plan,
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

/// The relabelling that makes `copy` carry exactly `labels` and the managed `annotations`, if it does not.
fn relabel(copy: &EnforcementCopy, labels: &Labels, annotations: &BTreeMap<String, String>) -> Option<Action> {
    let mut label_patch: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (k, v) in labels {
        if copy.labels.get(k) != Some(v) {
            label_patch.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in copy.labels.keys().filter(|k| !labels.contains_key(*k)) {
        label_patch.insert(k.clone(), None);
    }
    let mut annotation_patch: BTreeMap<String, Option<String>> = BTreeMap::new();
    for k in MANAGED_ANNOTATIONS {
        let (have, want) = (copy.annotations.get(k), annotations.get(k));
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

fn ago(now: Timestamp, at: Timestamp) -> SignedDuration {
    now.duration_since(at)
}

fn human(d: SignedDuration) -> String {
    apiportal_core::duration::format(Duration::from_secs(d.as_secs().max(0) as u64))
}

pub fn plan(o: &Observed) -> Plan {
    let key = o.key;
    let current = key.status.clone().unwrap_or_default();
    let mut p = Planner {
        o,
        conditions: Conditions::new(
            key.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default(),
            key.metadata.generation,
            o.now,
        ),
        status: current,
        plan: Plan::default(),
    };
    if key.metadata.deletion_timestamp.is_some() {
        p.deleting();
        return p.plan;
    }
    let phase = key.phase();
    if let Some(expires) = &key.spec.expires_at
        && expires.0 <= o.now
        && matches!(phase, KeyPhase::Pending | KeyPhase::Approved)
    {
        return p.decide(KeyPhase::Expired, format!("the key reached its expiresAt ({})", expires.0));
    }
    let recorded =
        p.record(KeyAction::Requested, key.requester().to_owned(), key.metadata.creation_timestamp.clone(), None);
    // Announced while it waits for a review; a request someone decided before the bridge saw it is not news.
    if recorded && phase == KeyPhase::Pending {
        let note = format!("requested plan {} of {}", key.spec.plan_tier, key.product_id());
        p.notice(NoticeKind::Requested, "Requested", key.requester().to_owned(), note);
    }
    match phase {
        KeyPhase::Pending => p.pending(),
        KeyPhase::Approved => p.approved(),
        KeyPhase::Rejected | KeyPhase::Revoked | KeyPhase::Expired => p.finished(phase),
    }
    if p.plan.decides() {
        // Nothing is written or told before the decision is: the next plan, with it in place, does both.
        p.plan.notices.clear();
        return p.plan;
    }
    p.finish()
}

impl Planner<'_> {
    fn key_name(&self) -> String {
        self.o.key.name_any()
    }

    fn key_namespace(&self) -> String {
        self.o.key.namespace().unwrap_or_default()
    }

    fn identity(&self) -> (String, String, String, String) {
        let key = self.o.key;
        (self.key_namespace(), self.key_name(), key.product_namespace(), key.spec.api_product_ref.name.clone())
    }

    fn ready(&mut self, ok: bool, reason: &str, message: impl Into<String>) {
        self.conditions.set("Ready", ok, reason, message);
    }

    fn decide(mut self, phase: KeyPhase, reason: String) -> Plan {
        self.plan.actions = vec![Action::Decide { phase, reason }];
        self.plan.notices.clear();
        self.plan
    }

    fn notice(&mut self, kind: NoticeKind, reason: &'static str, by: String, note: String) {
        self.plan.notices.push(Notice { kind, warning: false, reason, note, by });
    }

    /// Appends a history entry unless the history already has it; true when appended.
    fn record(&mut self, action: KeyAction, by: String, at: Option<Time>, reason: Option<String>) -> bool {
        let at = at.unwrap_or(Time(self.o.now));
        // Kubernetes times are whole seconds once written.
        let known = self.status.history.iter().any(|e| e.action == action && e.at.0.as_second() == at.0.as_second())
            || (action == KeyAction::Requested && self.status.history.iter().any(|e| e.action == action));
        if known {
            return false;
        }
        self.status.history.push(HistoryEntry { action, by, at, reason });
        let excess = self.status.history.len().saturating_sub(APIKeyStatus::HISTORY_LIMIT);
        self.status.history.drain(..excess);
        true
    }

    /// Records the current decision in the history; true the first time (the moment to tell people).
    fn record_decision(&mut self, action: KeyAction) -> bool {
        let (by, at, reason) = (
            self.status.reviewed_by.clone().unwrap_or_default(),
            self.status.reviewed_at.clone(),
            self.status.reason.clone(),
        );
        self.record(action, by, at, reason)
    }

    fn product_id(&self) -> String {
        self.o.key.product_id()
    }

    fn deleting(&mut self) {
        for copy in &self.o.copies {
            self.plan.actions.push(Action::DeleteEnforcement { name: copy.name.clone(), uid: copy.uid.clone() });
        }
        if self.o.key.finalizers().iter().any(|f| f == labels::APIKEY_FINALIZER) {
            self.plan.actions.push(Action::DeleteConsumerCopy);
            self.plan.actions.push(Action::RemoveFinalizer);
            let note = "request deleted; its key (if any) was removed from the gateway".to_owned();
            self.notice(NoticeKind::Deleted, "Deleted", self.o.key.requester().to_owned(), note);
        }
    }

    fn pending(&mut self) {
        let product_id = self.product_id();
        let (ns, name, ..) = self.identity();
        let product = match self.o.product {
            ProductState::Gone => {
                self.ready(
                    false,
                    "APIProductNotFound",
                    format!("APIProduct {product_id} not found: the request waits until it exists"),
                );
                return;
            }
            ProductState::Found(p) => p,
        };
        // The request is for the product as it exists now; one deleted and created again is reviewed anew.
        self.status.product_uid = product.uid();
        if !product.is_published() {
            self.ready(
                false,
                "APIProductNotPublished",
                format!("APIProduct {product_id} is a Draft: it takes no requests"),
            );
            return;
        }
        if let Err(message) = product.offered_plan(&self.o.key.spec.plan_tier) {
            self.ready(false, "PlanTierNotFound", message);
            return;
        }
        let automatic = product.spec.approval_mode == ApprovalMode::Automatic;
        if let Some(refusal) = self.policy_refusal(product) {
            if automatic {
                self.plan.actions.push(Action::Decide { phase: KeyPhase::Rejected, reason: refusal.1 });
            } else {
                self.ready(false, refusal.0, refusal.1);
            }
            return;
        }
        if automatic {
            self.plan.actions.push(Action::Decide {
                phase: KeyPhase::Approved,
                reason: "approved automatically: the product's approval mode is automatic".into(),
            });
            return;
        }
        self.ready(
            false,
            "AwaitingApproval",
            format!("waiting for an owner of {product_id}: kubectl apiportal approve {ns}/{name}"),
        );
    }

    /// The product's limits this request breaks, if any: (reason, message).
    fn policy_refusal(&self, product: &APIProduct) -> Option<(&'static str, String)> {
        let product_id = self.product_id();
        if let Some(max) = product.spec.max_keys_per_user
            && self.o.earlier_keys_of_requester >= max as usize
        {
            return Some((
                "KeyLimitReached",
                format!(
                    "{} already has {} pending or approved key(s) for {product_id}, which allows {max} per user: revoke one first",
                    self.o.key.requester(),
                    self.o.earlier_keys_of_requester
                ),
            ));
        }
        if let Some(max) = product.spec.max_key_lifetime.as_deref() {
            let Ok(max_duration) = apiportal_core::duration::parse(max) else { return None };
            let created = self.o.key.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(self.o.now);
            let lifetime = self.o.key.spec.expires_at.as_ref().map(|e| e.0.duration_since(created));
            let too_long =
                lifetime.is_none_or(|l| l > SignedDuration::try_from(max_duration).unwrap_or(SignedDuration::MAX));
            if too_long {
                return Some((
                    "LifetimeTooLong",
                    format!("{product_id} issues keys for at most {max}: request one with --expires-in {max} or less"),
                ));
            }
        }
        None
    }

    fn approved(&mut self) {
        let product_id = self.product_id();
        let first_seen = self.record_decision(KeyAction::Approved);
        let product = match self.o.product {
            ProductState::Gone => {
                self.plan.actions.push(Action::Decide {
                    phase: KeyPhase::Revoked,
                    reason: format!("APIProduct {product_id} was deleted; its keys no longer open anything"),
                });
                return;
            }
            ProductState::Found(p) => p,
        };
        let stamped = self.status.issued.as_ref().map(|i| i.product_uid.clone()).or(self.status.product_uid.clone());
        if stamped.is_some_and(|uid| Some(uid) != product.uid()) {
            self.plan.actions.push(Action::Decide {
                phase: KeyPhase::Revoked,
                reason: format!(
                    "APIProduct {product_id} was deleted and created again since this key was requested: request a key from it again"
                ),
            });
            return;
        }
        self.status.product_uid = product.uid();
        self.status.api_hostname = product.hostnames().first().cloned();
        self.status.limits = product.plan(&self.o.key.spec.plan_tier).map(|p| p.limits.clone());
        self.status.auth_scheme = product.status.as_ref().and_then(|s| s.discovered_auth_scheme.clone());

        let generation = self.status.issued.as_ref().map(|i| i.generation).unwrap_or(0);
        // `issued` is written once both copies exist: an enforcement copy without it is an issue that a crash
        // interrupted, finished by issuing again (which takes that copy's value).
        let issued_before = self.status.issued.is_some();
        let issuance = product.key_issuance().cloned();
        let mut issued_now = false;
        if !issued_before {
            let blocker =
                match (&issuance, product.offered_plan(&self.o.key.spec.plan_tier), self.policy_refusal(product)) {
                    (None, _, _) => Some(self.not_issuable(product)),
                    (_, Err(message), _) => {
                        Some(("PlanTierNotFound", format!("{message}: no key is issued until it does")))
                    }
                    (_, _, Some((reason, message))) => Some((reason, format!("{message}; no key is issued"))),
                    _ => None,
                };
            if let Some((reason, message)) = blocker {
                self.ready(false, reason, message.clone());
                if first_seen {
                    let note = format!(
                        "approved by {}; no key is issued yet: {message}",
                        self.status.reviewed_by.clone().unwrap_or_default()
                    );
                    self.notice(
                        NoticeKind::Approved,
                        "Approved",
                        self.status.reviewed_by.clone().unwrap_or_default(),
                        note,
                    );
                }
                return;
            }
        }
        let issuance = issuance.as_ref();
        if let Some(issuance) = issuance {
            self.ensure_current_copy(generation, issuance, product, &mut issued_now);
        }
        if !issued_before && issued_now {
            let by = self.status.reviewed_by.clone().unwrap_or_default();
            let note = format!("approved by {by}: key issued for plan {} of {product_id}", self.o.key.spec.plan_tier);
            self.notice(NoticeKind::Approved, "Approved", by, note);
        } else if first_seen {
            let by = self.status.reviewed_by.clone().unwrap_or_default();
            self.notice(NoticeKind::Approved, "Approved", by.clone(), format!("approved by {by}"));
        }
        if let Some(issuance) = issuance {
            self.rotate_if_asked(generation, issuance, product);
        }
        self.retire_previous_values(issuance.map(|i| (i, product)));
        self.status.secret_ref =
            Some(SecretRef { name: secrets::consumer_secret_name(&self.key_name()), key: labels::SECRET_KEY.into() });
        self.gateway_truth(product);
        self.expiring_soon();
    }

    /// Why the product's keys cannot be issued, from its `KeysIssuable` condition.
    fn not_issuable(&self, product: &APIProduct) -> (&'static str, String) {
        let product_id = self.product_id();
        let message = apiportal_core::resources::conditions::find(product.conditions(), "KeysIssuable")
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "the bridge has not checked the product's AuthPolicy yet".into());
        ("KeysNotIssuable", format!("no key is issued for {product_id}: {message}"))
    }

    /// The enforcement copy holding value `generation` of this key (not a stale copy of an older APIKey of the
    /// same name).
    fn current_copy(&self, generation: i64) -> Option<&EnforcementCopy> {
        let uid = self.o.key.uid();
        self.o.copies.iter().find(|c| c.generation == generation && (c.apikey_uid.is_none() || c.apikey_uid == uid))
    }

    fn desired_labels(&self, issuance_labels: &Labels) -> Labels {
        let (kns, kname, pns, pname) = self.identity();
        let identity =
            KeyIdentity { key_namespace: &kns, key_name: &kname, product_namespace: &pns, product_name: &pname };
        secrets::enforcement_labels(&identity, issuance_labels)
    }

    fn desired_annotations(
        &self,
        generation: i64,
        product: &APIProduct,
        valid_until: Option<Timestamp>,
    ) -> BTreeMap<String, String> {
        let key = self.o.key;
        let mut annotations = BTreeMap::from([
            (labels::PLAN_ID.to_owned(), key.spec.plan_tier.clone()),
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

    fn shapes(&self, generation: i64, issuance_labels: &Labels, product: &APIProduct) -> (SecretShape, SecretShape) {
        let (kns, kname, pns, pname) = self.identity();
        let identity =
            KeyIdentity { key_namespace: &kns, key_name: &kname, product_namespace: &pns, product_name: &pname };
        let enforcement = SecretShape {
            namespace: self.o.settings.enforcement_namespace.clone(),
            name: secrets::enforcement_secret_name(&kns, &kname, generation),
            labels: self.desired_labels(issuance_labels),
            annotations: self.desired_annotations(generation, product, None),
        };
        let consumer = SecretShape {
            namespace: kns.clone(),
            name: secrets::consumer_secret_name(&kname),
            labels: secrets::consumer_labels(&identity),
            annotations: BTreeMap::from([(labels::KEY_GENERATION.to_owned(), generation.to_string())]),
        };
        (enforcement, consumer)
    }

    /// The enforcement copy of the current value exists and carries what the product's AuthPolicy selects.
    fn ensure_current_copy(
        &mut self,
        generation: i64,
        issuance: &apiportal_core::resources::apiproduct::KeyIssuance,
        product: &APIProduct,
        issued_now: &mut bool,
    ) {
        let uid = self.o.key.uid();
        for stale in self.o.copies.iter().filter(|c| c.apikey_uid.is_some() && c.apikey_uid != uid) {
            // Left by an earlier APIKey of the same name: never another request's key.
            self.plan.actions.push(Action::DeleteEnforcement { name: stale.name.clone(), uid: stale.uid.clone() });
        }
        let labels = self.desired_labels(&issuance.match_labels);
        match self.current_copy(generation).cloned() {
            None if self.status.issued.as_ref().is_some_and(|i| ago(self.o.now, i.issued_at.0) < CACHE_GRACE) => {
                // Just issued: the cache of enforcement copies has not caught up with our own write yet.
                self.requeue_at(self.o.now + SignedDuration::from_secs(2));
            }
            None => {
                if !self.o.key.finalizers().iter().any(|f| f == labels::APIKEY_FINALIZER) {
                    self.plan.actions.push(Action::AddFinalizer);
                }
                let (enforcement, consumer) = self.shapes(generation, &issuance.match_labels, product);
                let repair = self.status.issued.is_some();
                self.plan.actions.push(Action::Issue { generation, enforcement, consumer, repair });
                self.status.issued = Some(IssuedKey {
                    generation,
                    product_uid: product.uid().unwrap_or_default(),
                    auth_policy: issuance.auth_policy.clone(),
                    selector: issuance.match_labels.clone(),
                    issued_at: Time(self.o.now),
                });
                *issued_now = true;
            }
            Some(_) if self.status.issued.is_none() => {
                let (enforcement, consumer) = self.shapes(generation, &issuance.match_labels, product);
                self.plan.actions.push(Action::Issue { generation, enforcement, consumer, repair: false });
                self.status.issued = Some(IssuedKey {
                    generation,
                    product_uid: product.uid().unwrap_or_default(),
                    auth_policy: issuance.auth_policy.clone(),
                    selector: issuance.match_labels.clone(),
                    issued_at: Time(self.o.now),
                });
                *issued_now = true;
            }
            Some(copy) => {
                let annotations = self.desired_annotations(generation, product, None);
                if let Some(relabel) = relabel(&copy, &labels, &annotations) {
                    self.plan.actions.push(relabel);
                }
                let issued_at = self.status.issued.as_ref().map(|i| i.issued_at.clone()).unwrap_or(Time(self.o.now));
                self.status.issued = Some(IssuedKey {
                    generation,
                    product_uid: product.uid().unwrap_or_default(),
                    auth_policy: issuance.auth_policy.clone(),
                    selector: issuance.match_labels.clone(),
                    issued_at,
                });
            }
        }
    }

    fn rotate_if_asked(
        &mut self,
        generation: i64,
        issuance: &apiportal_core::resources::apiproduct::KeyIssuance,
        product: &APIProduct,
    ) {
        let Some(request) = self.status.rotation_request.clone() else { return };
        if request.generation != generation + 1 {
            return;
        }
        let grace = request
            .grace
            .as_deref()
            .map(apiportal_core::duration::parse)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default();
        let valid_until = self.o.now + SignedDuration::try_from(grace).unwrap_or_default();
        let next = generation + 1;
        let (enforcement, consumer) = self.shapes(next, &issuance.match_labels, product);
        // The new value first; the old one keeps working until its grace ends (or stops now, with no grace).
        self.plan.actions.push(Action::Issue { generation: next, enforcement, consumer, repair: false });
        if let Some(old) = self.current_copy(generation).cloned() {
            if grace.is_zero() {
                self.plan.actions.push(Action::DeleteEnforcement { name: old.name, uid: old.uid });
            } else {
                let labels = self.desired_labels(&issuance.match_labels);
                let annotations = self.desired_annotations(generation, product, Some(valid_until));
                self.plan.actions.extend(relabel(&old, &labels, &annotations));
            }
        }
        self.status.previous_key =
            (!grace.is_zero()).then_some(PreviousKey { generation, valid_until: Time(valid_until) });
        self.status.issued = Some(IssuedKey {
            generation: next,
            product_uid: product.uid().unwrap_or_default(),
            auth_policy: issuance.auth_policy.clone(),
            selector: issuance.match_labels.clone(),
            issued_at: Time(self.o.now),
        });
        let grace_text = apiportal_core::duration::format(grace);
        let reason = Some(format!("previous value valid for {grace_text}"));
        self.record(KeyAction::Rotated, request.requested_by.clone(), Some(Time(self.o.now)), reason);
        let until =
            if grace.is_zero() { "stopped working at once".to_owned() } else { format!("works until {valid_until}") };
        self.notice(
            NoticeKind::Rotated,
            "Rotated",
            request.requested_by,
            format!("key rotated to value {next}; the previous value {until}"),
        );
    }

    /// Values older than the current one: kept (and labelled like the current one) through their grace period,
    /// then removed.
    fn retire_previous_values(
        &mut self,
        relabel_with: Option<(&apiportal_core::resources::apiproduct::KeyIssuance, &APIProduct)>,
    ) {
        let current = self.status.issued.as_ref().map(|i| i.generation).unwrap_or(0);
        let previous = self.status.previous_key.clone();
        let mut keep_previous = false;
        for copy in self.o.copies.iter().filter(|c| c.generation < current) {
            let grace_end = previous
                .as_ref()
                .filter(|p| p.generation == copy.generation && p.valid_until.0 > self.o.now)
                .map(|p| p.valid_until.0);
            let already_deleted = self
                .plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::DeleteEnforcement { name, .. } if *name == copy.name));
            let already_relabelled =
                self.plan.actions.iter().any(|a| matches!(a, Action::Relabel { name, .. } if *name == copy.name));
            match grace_end {
                Some(until) => {
                    keep_previous = true;
                    if let Some((issuance, product)) = relabel_with
                        && !already_relabelled
                    {
                        let labels = self.desired_labels(&issuance.match_labels);
                        let annotations = self.desired_annotations(copy.generation, product, Some(until));
                        self.plan.actions.extend(relabel(copy, &labels, &annotations));
                    }
                }
                None if !already_deleted => {
                    self.plan.actions.push(Action::DeleteEnforcement { name: copy.name.clone(), uid: copy.uid.clone() })
                }
                None => {}
            }
        }
        if !keep_previous {
            self.status.previous_key = None;
        }
        if let Some(p) = &self.status.previous_key {
            self.requeue_at(p.valid_until.0);
        }
    }

    /// `Ready` says whether the gateway accepts the key: issued, and selected by the enforced AuthPolicy.
    fn gateway_truth(&mut self, product: &APIProduct) {
        let product_id = self.product_id();
        let (ns, name, ..) = self.identity();
        let Some(issued) = self.status.issued.clone() else { return };
        let labels = self.desired_labels(&issued.selector);
        let status = product.status.as_ref();
        let enforced = apiportal_core::resources::conditions::is_true(product.conditions(), "AuthPolicyDiscovered");
        let accepted = status.and_then(|s| s.discovered_auth_scheme.as_ref()).is_some_and(|scheme| {
            scheme
                .authentication
                .values()
                .filter_map(|r| r.api_key.as_ref())
                .any(|k| selector::matches(&k.selector, &labels))
        });
        if product.key_issuance().is_none() {
            let (_, message) = self.not_issuable(product);
            let effect = if accepted && enforced {
                "the gateway still accepts the key, but"
            } else {
                "the gateway may not accept the key:"
            };
            self.ready(false, "KeysNotIssuable", format!("{effect} {message}"));
        } else if !enforced || !accepted {
            self.ready(
                false,
                "NotAcceptedByGateway",
                format!("the AuthPolicy of {product_id} does not select this key's Secret"),
            );
        } else if let Err(message) = product.offered_plan(&self.o.key.spec.plan_tier) {
            self.ready(false, "PlanTierNotFound", format!("{message}: the gateway may apply no rate limit to this key; its owner should restore the tier or revoke the key"));
        } else {
            self.ready(true, "KeyIssued", format!("reveal with: kubectl apiportal key show {name} -n {ns} --reveal"));
        }
    }

    fn expiring_soon(&mut self) {
        let Some(expires) = self.o.key.spec.expires_at.as_ref().map(|t| t.0) else { return };
        let warning = SignedDuration::try_from(self.o.settings.expiry_warning).unwrap_or_default();
        let left = expires.duration_since(self.o.now);
        if left <= warning {
            let message = format!(
                "the key expires at {expires} (in {}): rotate does not extend it; request a new key",
                human(left)
            );
            if !self.conditions.was_true("ExpiringSoon") {
                let by = self.o.settings.bridge_user.clone();
                self.notice(NoticeKind::ExpiringSoon, "ExpiringSoon", by, message.clone());
            }
            self.conditions.set("ExpiringSoon", true, "ExpiresSoon", message);
        } else {
            self.requeue_at(expires - warning);
        }
        self.requeue_at(expires);
    }

    fn requeue_at(&mut self, at: Timestamp) {
        let after = Duration::from_secs(ago(at, self.o.now).as_secs().max(1) as u64);
        self.plan.requeue_after = Some(self.plan.requeue_after.map_or(after, |r| r.min(after)));
    }

    fn finished(&mut self, phase: KeyPhase) {
        let action = match phase {
            KeyPhase::Rejected => KeyAction::Rejected,
            KeyPhase::Revoked => KeyAction::Revoked,
            _ => KeyAction::Expired,
        };
        let by = self.status.reviewed_by.clone().unwrap_or_default();
        let reason = self.status.reason.clone().map(|r| format!(": {r}")).unwrap_or_default();
        if self.record_decision(action) {
            let (kind, event_reason, note) = match phase {
                KeyPhase::Rejected => (NoticeKind::Rejected, "Rejected", format!("rejected by {by}{reason}")),
                KeyPhase::Revoked => (
                    NoticeKind::Revoked,
                    "Revoked",
                    format!("revoked by {by}{reason}; the key no longer opens anything"),
                ),
                _ => (NoticeKind::Expired, "Expired", format!("the key expired{reason}; its Secrets were removed")),
            };
            self.notice(kind, event_reason, by.clone(), note);
        }
        for copy in &self.o.copies {
            self.plan.actions.push(Action::DeleteEnforcement { name: copy.name.clone(), uid: copy.uid.clone() });
        }
        if self.status.secret_ref.is_some() || self.status.issued.is_some() {
            self.plan.actions.push(Action::DeleteConsumerCopy);
        }
        self.status.issued = None;
        self.status.previous_key = None;
        self.status.secret_ref = None;
        let (reason_code, message) = match phase {
            KeyPhase::Rejected => ("Rejected", format!("rejected by {by}{reason}")),
            KeyPhase::Revoked => ("Revoked", format!("revoked by {by}{reason}")),
            _ => ("Expired", "the key has expired: request a new one".to_owned()),
        };
        self.ready(false, reason_code, message);
    }

    fn finish(mut self) -> Plan {
        self.status.observed_generation = self.o.key.metadata.generation;
        self.status.conditions = std::mem::take(&mut self.conditions.built);
        if self.plan.requeue_after.is_none() || self.plan.requeue_after > Some(RESYNC) {
            self.plan.requeue_after = Some(RESYNC);
        }
        self.plan.status = Some(self.status);
        self.plan
    }
}
