//! The key reconcile's decision, as a pure function from what was observed (the key, its product, its
//! enforcement copies, its requester's other keys, the time) to what should be: the phase the bridge moves the key
//! to, if any (`decision`), the Secrets the key should have (`copies`: desired state, diffed against what is
//! there), the status to write and what to tell people (`record`). No I/O and no order-dependent bookkeeping:
//! each part is computed from the observation, and every case is unit-tested in `tests.rs` without an API server.
//!
//! A key's life: Pending → Approved (by an owner, or by the bridge for automatic products, in the same write that
//! records its first value) → maybe rotated (a new value; the previous one stays valid through a grace period),
//! suspended and resumed, moved to another tier → Revoked or Expired. Rejected ends a request before any key
//! exists.
//!
//! What the gateway accepts follows today's truth, not the moment of issuance: a key has enforcement copies exactly
//! while it is Approved, unexpired, within its product's limits, and its product exists and may take keys; every
//! other copy is removed. The value itself is kept (in the consumer's copy, recorded by its digest), so a key
//! that comes back (resumed, or its product fixed) works again with the same value.

pub mod conflict;
pub mod copies;
pub mod decision;
pub mod outbox;
pub mod record;
#[cfg(test)]
pub(crate) mod tests;

use std::{collections::BTreeMap, time::Duration};

use apiportal_core::{APIKey, APIKeyStatus, APIProduct, KeyPhase, selector::Labels};
use jiff::{SignedDuration, Timestamp};

pub use self::{
    copies::EnforcementCopy,
    decision::Decision,
    record::{Notice, NoticeKind},
};

/// How often a key is looked at again when nothing it depends on changes.
pub const RESYNC: Duration = Duration::from_secs(300);
/// A rotation's grace when the product does not set `maxRotationGrace`.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(7 * 86_400);

/// The bridge's settings the decision depends on.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The bridge's own user name: the reviewer of the decisions it makes.
    pub bridge_user: String,
    pub enforcement_namespace: String,
    /// How long before `expiresAt` a key is flagged `ExpiringSoon`.
    pub expiry_warning: Duration,
    /// The longest grace any product may give a rotated-out value (the platform's cap).
    pub max_rotation_grace: Duration,
    /// Whether a webhook is configured: notices then wait in the key's outbox until it has them.
    pub webhook: bool,
}

/// How long a deleted key is held for the webhook to get its last notifications before it goes anyway.
pub const OUTBOX_HOLD: Duration = Duration::from_secs(300);

/// The key's product, as far as the bridge can tell.
#[derive(Clone, Copy, Debug)]
pub enum ProductState<'a> {
    Found(&'a APIProduct),
    /// Confirmed absent by a live read, not merely missing from a cache.
    Gone,
}

impl<'a> ProductState<'a> {
    pub fn found(self) -> Option<&'a APIProduct> {
        match self {
            Self::Found(p) => Some(p),
            Self::Gone => None,
        }
    }
}

pub struct Observed<'a> {
    pub key: &'a APIKey,
    pub product: ProductState<'a>,
    /// Every enforcement copy labelled as this key's that the cache holds.
    pub copies: Vec<EnforcementCopy>,
    /// How many other keys of the same requester for the same product hold a value ahead of this one (issued
    /// earlier, or being issued right now): `maxKeysPerUser` lets the first ones through.
    pub keys_ahead: usize,
    /// Enforcement copies of this key the bridge created moments ago that its cache may not show yet.
    pub just_created: Vec<String>,
    pub now: Timestamp,
    pub settings: &'a Settings,
}

/// What a new Secret looks like (its value is drawn or restored when it is created, never planned).
#[derive(Clone, Debug, PartialEq)]
pub struct SecretShape {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
}

/// Where the value of an enforcement copy that is missing comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// A new value, from the OS CSPRNG.
    Fresh,
    /// The value the key already has: the enforcement copy of that generation if one exists for this key (a crash
    /// between creating it and recording it), else the consumer's copy if it is the key's own and its digest is
    /// `digest`; a new value only when neither holds it (the consumer is then told to read it again).
    Existing { digest: Option<String> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Holds the APIKey until its enforcement copies are gone (they live in another namespace, out of reach of
    /// garbage collection).
    AddFinalizer,
    RemoveFinalizer,
    /// Makes value `generation` exist: its enforcement copy (the source of truth, created first), and the
    /// consumer's copy holding the same value.
    Issue {
        generation: i64,
        source: ValueSource,
        enforcement: SecretShape,
        consumer: SecretShape,
    },
    /// Sets an enforcement copy's labels and annotations to what they should be; `None` removes one.
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

#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The status the key should have (`None` while it is being deleted). Written only where it differs from the
    /// observed one, in one write conditioned on the observed version.
    pub status: Option<APIKeyStatus>,
    /// The decision the bridge makes, written with the status (its decision fields are in `status`).
    pub decision: Option<Decision>,
    pub notices: Vec<Notice>,
    pub requeue_after: Option<Duration>,
    /// Notifications dropped from the outbox to keep it within its bound.
    pub outbox_dropped: usize,
}

impl Plan {
    fn requeue_at(&mut self, now: Timestamp, at: Timestamp) {
        let after = Duration::from_secs(at.duration_since(now).as_secs().max(1) as u64);
        self.requeue_after = Some(self.requeue_after.map_or(after, |r| r.min(after)));
    }
}

/// Whole seconds, as every time the bridge writes is stored: what is planned compares equal to what is read back.
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).expect("a valid time")
}

pub fn plan(o: &Observed) -> Plan {
    let key = o.key;
    let mut plan = Plan::default();
    if let Some(deleted_at) = key.metadata.deletion_timestamp.as_ref().map(|t| t.0) {
        plan.actions = copies::on_deletion(o);
        if plan.actions.contains(&Action::RemoveFinalizer) {
            let mut status = key.status.clone().unwrap_or_default();
            plan.notices = record::deleted(o, &mut status);
            plan.outbox_dropped = outbox::enqueue(o, &mut status, &plan.notices);
            // The finalizer is held while the webhook has not had the last notifications, for a while at most.
            let holding = SignedDuration::try_from(OUTBOX_HOLD).unwrap_or_default();
            if !status.outbox.is_empty() {
                if o.now.duration_since(deleted_at) < holding {
                    plan.actions.retain(|a| *a != Action::RemoveFinalizer);
                    plan.requeue_at(o.now, o.now + SignedDuration::from_secs(5));
                } else {
                    plan.outbox_dropped += status.outbox.len();
                }
            }
            plan.status = Some(status);
        }
        return plan;
    }
    let decision = decision::decide(o);
    // The key as it is once the bridge's own decision (if any) is written, in the same write as the rest.
    let mut status = key.status.clone().unwrap_or_default();
    if let Some(d) = &decision {
        d.apply(&mut status, &o.settings.bridge_user, o.now);
    }
    if key.phase() == KeyPhase::Pending {
        // The request is for the product as it exists now; one deleted and created again is reviewed anew.
        status.product_uid = o.product.found().and_then(|p| p.metadata.uid.clone());
    }
    let phase = status.phase.unwrap_or_default();
    let plan_change = record::plan_change(o, phase, &mut status);
    let gate = copies::gate(o, phase, &status);
    let desired = copies::desired(o, &gate, &status);
    plan.actions = copies::diff(o, &desired, phase);
    record::status(o, phase, &gate, &desired, &mut status, &mut plan);
    let mut told = record::history(o, phase, &gate, &desired, plan_change, &mut status);
    if decision == Some(Decision::Approve) {
        for notice in told.iter_mut().filter(|n| n.kind == NoticeKind::Requested) {
            notice.event = false;
        }
    }
    plan.notices.splice(0..0, told);
    plan.outbox_dropped = outbox::enqueue(o, &mut status, &plan.notices);
    if let Some(previous) = &status.previous_key {
        plan.requeue_at(o.now, previous.valid_until.0);
    }
    if let Some(expires) = key.spec.expires_at.as_ref().map(|t| t.0).filter(|_| !phase.is_final()) {
        let warning = SignedDuration::try_from(o.settings.expiry_warning).unwrap_or_default();
        if expires - warning > o.now {
            plan.requeue_at(o.now, expires - warning);
        }
        plan.requeue_at(o.now, expires);
    }
    if plan.requeue_after.is_none_or(|r| r > RESYNC) {
        plan.requeue_after = Some(RESYNC);
    }
    status.observed_generation = key.metadata.generation;
    plan.status = Some(status);
    plan.decision = decision;
    plan
}
