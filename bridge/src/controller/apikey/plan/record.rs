//! What the key's status records and what people are told: the bridge's status fields, its conditions, the
//! history of decisions (each entry once), plan changes, and one notice (Event, audit line, webhook) per new
//! history entry.

use apiportal_core::{
    APIKeyStatus, ApprovalMode, KeyAction, KeyPhase, labels,
    reason::{ConditionType, Reason},
    resources::apikey::{HistoryEntry, PlanChange, SecretRef},
    secrets,
};
use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::{
    Observed, Plan,
    copies::{Desired, Gate},
    whole_seconds,
};
use crate::controller::conditions::Conditions;

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
    /// Whether it is also a Kubernetes Event (a request approved in the same breath needs no Event of its own:
    /// the approval's says it, and the history and the audit log keep both).
    pub event: bool,
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
    Suspended,
    Resumed,
    PlanChanged,
    PlanChangeRejected,
    /// Something the bridge had to repair (a missing enforcement copy, a consumer copy it did not write).
    Repaired,
}

impl NoticeKind {
    fn of(action: KeyAction) -> Self {
        match action {
            KeyAction::Requested => Self::Requested,
            KeyAction::Approved => Self::Approved,
            KeyAction::Rejected => Self::Rejected,
            KeyAction::Revoked => Self::Revoked,
            KeyAction::Rotated => Self::Rotated,
            KeyAction::Expired => Self::Expired,
            KeyAction::Suspended => Self::Suspended,
            KeyAction::Resumed => Self::Resumed,
            KeyAction::PlanChanged => Self::PlanChanged,
            KeyAction::PlanChangeRejected => Self::PlanChangeRejected,
            KeyAction::Deleted => Self::Deleted,
        }
    }
}

/// What happened to a plan change in this plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanChangeOutcome {
    Applied { from: String, to: String, by: String, at: Time },
}

/// The tier in force, as `status` (maybe just changed by this plan) says.
pub fn tier_in_force<'a>(o: &'a Observed, status: &'a APIKeyStatus) -> &'a str {
    status.plan_tier.as_deref().unwrap_or(&o.key.spec.plan_tier)
}

/// Carries out a plan change asked for: for an automatic product at once (if the product offers the tier), for a
/// manual one once an approver approved it. A tier the product does not offer is refused by the bridge, naming
/// the tiers it offers.
pub fn plan_change(o: &Observed, phase: KeyPhase, status: &mut APIKeyStatus) -> Option<PlanChangeOutcome> {
    if phase != KeyPhase::Approved {
        return None;
    }
    let product = o.product.found()?;
    let in_force = tier_in_force(o, status).to_owned();
    status.plan_tier = Some(in_force.clone());
    let mut change: PlanChange = status.plan_change.clone().filter(|c| c.tier != in_force)?;
    let now = Time(whole_seconds(o.now));
    let bridge = o.settings.bridge_user.clone();
    match change.approved {
        None if product.offered_plan(&change.tier).is_err() => {
            change.approved = Some(false);
            change.reviewed_by = Some(bridge);
            change.reviewed_at = Some(now);
            change.reason = product.offered_plan(&change.tier).err();
            status.plan_change = Some(change);
            None
        }
        None if product.spec.approval_mode == ApprovalMode::Automatic => {
            change.approved = Some(true);
            change.reviewed_by = Some(bridge.clone());
            change.reviewed_at = Some(now.clone());
            change.reason = Some("applied automatically: the product's approval mode is automatic".into());
            status.plan_tier = Some(change.tier.clone());
            status.plan_change = Some(change.clone());
            Some(PlanChangeOutcome::Applied { from: in_force, to: change.tier, by: change.requested_by, at: now })
        }
        Some(true) if product.offered_plan(&change.tier).is_ok() => {
            status.plan_tier = Some(change.tier.clone());
            let by = change.reviewed_by.clone().unwrap_or_default();
            let at = change.reviewed_at.clone().unwrap_or(now);
            Some(PlanChangeOutcome::Applied { from: in_force, to: change.tier, by, at })
        }
        _ => None,
    }
}

/// The bridge's status fields and conditions.
pub fn status(
    o: &Observed,
    phase: KeyPhase,
    gate: &Gate,
    desired: &Desired,
    status: &mut APIKeyStatus,
    plan: &mut Plan,
) {
    let key = o.key;
    let (ns, name) = (key.namespace().unwrap_or_default(), key.name_any());
    let mut conditions = Conditions::new(
        key.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default(),
        key.metadata.generation,
        o.now,
    );
    status.issued = desired.issued.clone();
    status.previous_key = desired.previous_key.clone();
    status.secret_ref = status
        .issued
        .as_ref()
        .map(|_| SecretRef { name: secrets::consumer_secret_name(&name), key: labels::CONSUMER_SECRET_KEY.into() });
    if desired.awaiting_cache {
        plan.requeue_at(o.now, o.now + SignedDuration::from_secs(2));
    }
    if let Some(product) = o.product.found().filter(|_| !phase.is_final()) {
        status.api_hostname = product.hostnames().first().cloned();
        status.limits = product.plan(tier_in_force(o, status)).map(|p| p.limits.clone());
        status.auth_scheme = product.status.as_ref().and_then(|s| s.discovered_auth_scheme.clone());
    }
    let ready = ConditionType::Ready.as_str();
    match gate {
        Gate::Live { product, .. } => match product.offered_plan(tier_in_force(o, status)) {
            Err(message) => conditions.set(
                ready,
                false,
                Reason::PlanTierNotFound.as_str(),
                format!("{message}: the gateway may apply no rate limit to this key; its owner should restore the tier or revoke the key"),
            ),
            Ok(_) => conditions.set(
                ready,
                true,
                Reason::KeyIssued.as_str(),
                format!("reveal with: kubectl apiportal key show {name} -n {ns} --reveal"),
            ),
        },
        Gate::Blocked { reason, message } => conditions.set(ready, false, reason.as_str(), message.clone()),
        Gate::Final => {
            let by = status.reviewed_by.clone().unwrap_or_default();
            let why = status.reason.clone().map(|r| format!(": {r}")).unwrap_or_default();
            let (reason, message) = match phase {
                KeyPhase::Rejected => (Reason::Rejected, format!("rejected by {by}{why}")),
                KeyPhase::Revoked => (Reason::Revoked, format!("revoked by {by}{why}")),
                _ => (Reason::Expired, "the key has expired: request a new one".to_owned()),
            };
            conditions.set(ready, false, reason.as_str(), message);
        }
    }
    if let Some(change) = status.plan_change.as_ref().filter(|_| !phase.is_final()) {
        let in_force = tier_in_force(o, status);
        let condition = ConditionType::PlanChange.as_str();
        let by = change.reviewed_by.clone().unwrap_or_default();
        match change.approved {
            _ if change.tier == in_force && change.approved != Some(false) => conditions.set(
                condition,
                true,
                Reason::PlanChangeApplied.as_str(),
                format!("the key is on plan {in_force}"),
            ),
            Some(false) => conditions.set(
                condition,
                false,
                Reason::PlanChangeRejected.as_str(),
                format!(
                    "the move to plan {} was rejected by {by}{}",
                    change.tier,
                    change.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
                ),
            ),
            Some(true) => conditions.set(
                condition,
                false,
                Reason::PlanTierNotFound.as_str(),
                format!(
                    "the move to plan {} was approved, but {}",
                    change.tier,
                    o.product.found().and_then(|p| p.offered_plan(&change.tier).err()).unwrap_or_default()
                ),
            ),
            None => conditions.set(
                condition,
                false,
                Reason::AwaitingApproval.as_str(),
                format!("the move to plan {} waits for an owner: kubectl apiportal approve {ns}/{name}", change.tier),
            ),
        }
    }
    expiring_soon(o, phase, &mut conditions, plan);
    status.conditions = std::mem::take(&mut conditions.built);
}

fn expiring_soon(o: &Observed, phase: KeyPhase, conditions: &mut Conditions, plan: &mut Plan) {
    let Some(expires) = o.key.spec.expires_at.as_ref().map(|t| t.0).filter(|_| !phase.is_final()) else { return };
    let warning = SignedDuration::try_from(o.settings.expiry_warning).unwrap_or_default();
    let left = expires.duration_since(o.now);
    if left > warning {
        return;
    }
    let message =
        format!("the key expires at {expires} (in {}): rotate does not extend it; request a new key", human(left));
    let condition = ConditionType::ExpiringSoon.as_str();
    if !conditions.was_true(condition) {
        plan.notices.push(Notice {
            kind: NoticeKind::ExpiringSoon,
            warning: false,
            reason: "ExpiringSoon",
            note: message.clone(),
            by: o.settings.bridge_user.clone(),
            event: true,
        });
    }
    conditions.set(condition, true, Reason::ExpiresSoon.as_str(), message);
}

fn human(d: SignedDuration) -> String {
    apiportal_core::duration::format(std::time::Duration::from_secs(d.as_secs().max(0) as u64))
}

/// Appends an entry unless the history has it already (same action at the same second); true when appended.
fn record(status: &mut APIKeyStatus, action: KeyAction, by: String, at: Time, reason: Option<String>) -> bool {
    let known = status.history.iter().any(|e| e.action == action && e.at.0.as_second() == at.0.as_second())
        || (action == KeyAction::Requested && status.history.iter().any(|e| e.action == action));
    if known {
        return false;
    }
    status.history.push(HistoryEntry { action, by, at, reason });
    let excess = status.history.len().saturating_sub(APIKeyStatus::HISTORY_LIMIT);
    status.history.drain(..excess);
    true
}

/// The decision the key's phase records, as a history action: an approval after a suspension is a resumption.
fn decision_action(status: &APIKeyStatus, phase: KeyPhase) -> Option<KeyAction> {
    Some(match phase {
        KeyPhase::Pending => return None,
        KeyPhase::Approved => {
            let at = status.reviewed_at.as_ref().map(|t| t.0.as_second());
            let this_one = |e: &HistoryEntry| {
                matches!(e.action, KeyAction::Approved | KeyAction::Resumed) && Some(e.at.0.as_second()) == at
            };
            match status.history.iter().find(|e| this_one(e)) {
                Some(e) => e.action,
                None if status.history.iter().any(|e| e.action == KeyAction::Approved) => KeyAction::Resumed,
                None => KeyAction::Approved,
            }
        }
        KeyPhase::Suspended => KeyAction::Suspended,
        KeyPhase::Rejected => KeyAction::Rejected,
        KeyPhase::Revoked => KeyAction::Revoked,
        KeyPhase::Expired => KeyAction::Expired,
    })
}

/// Records what happened in the history and returns a notice for each new entry.
pub fn history(
    o: &Observed,
    phase: KeyPhase,
    gate: &Gate,
    desired: &Desired,
    plan_change: Option<PlanChangeOutcome>,
    status: &mut APIKeyStatus,
) -> Vec<Notice> {
    let key = o.key;
    let product_id = key.product_id();
    let mut notices = Vec::new();
    let mut tell = |kind: NoticeKind, reason: &'static str, by: &str, note: String| {
        notices.push(Notice { kind, warning: false, reason, note, by: by.to_owned(), event: true });
    };
    let created = key.metadata.creation_timestamp.clone().unwrap_or(Time(whole_seconds(o.now)));
    if record(status, KeyAction::Requested, key.requester().to_owned(), created, None) {
        let note = format!("requested plan {} of {product_id}", key.spec.plan_tier);
        tell(NoticeKind::Requested, "Requested", key.requester(), note);
    }
    if let Some(action) = decision_action(status, phase) {
        let by = status.reviewed_by.clone().unwrap_or_default();
        let at = status.reviewed_at.clone().unwrap_or(Time(whole_seconds(o.now)));
        let reason = status.reason.clone();
        if record(status, action, by.clone(), at, reason.clone()) {
            let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
            let note = match (action, gate) {
                (KeyAction::Approved, Gate::Live { .. }) => {
                    format!("approved by {by}: key issued for plan {} of {product_id}", tier_in_force(o, status))
                }
                (KeyAction::Approved, Gate::Blocked { message, .. }) => {
                    format!("approved by {by}; no key is issued yet: {message}")
                }
                (KeyAction::Resumed, _) => format!("resumed by {by}: the key works again with the same value"),
                (KeyAction::Suspended, _) => {
                    format!("suspended by {by}{why}; the gateway refuses the key until it is resumed")
                }
                (KeyAction::Rejected, _) => format!("rejected by {by}{why}"),
                (KeyAction::Revoked, _) => format!("revoked by {by}{why}; the key no longer opens anything"),
                _ => format!("the key expired{why}; its Secrets were removed"),
            };
            let kind = NoticeKind::of(action);
            tell(kind, action.as_str(), &by, note);
        }
    }
    if let Some(rotation) = &desired.rotation {
        let grace = human(SignedDuration::try_from(rotation.grace).unwrap_or_default());
        let capped = rotation
            .capped_from
            .map(|asked| {
                format!(
                    " (asked for {}: the product allows at most {grace})",
                    human(SignedDuration::try_from(asked).unwrap_or_default())
                )
            })
            .unwrap_or_default();
        let reason = format!("previous value valid for {grace}{capped}");
        if record(status, KeyAction::Rotated, rotation.requested_by.clone(), Time(whole_seconds(o.now)), Some(reason)) {
            let until = if rotation.grace.is_zero() {
                "stopped working at once".to_owned()
            } else {
                format!("works until {}", rotation.valid_until)
            };
            let note = format!("key rotated to value {}; the previous value {until}{capped}", rotation.next);
            tell(NoticeKind::Rotated, "Rotated", &rotation.requested_by, note);
        }
    }
    if let Some(PlanChangeOutcome::Applied { from, to, by, at }) = plan_change {
        let reason = format!("plan {from} → {to}");
        if record(status, KeyAction::PlanChanged, by.clone(), at, Some(reason)) {
            tell(
                NoticeKind::PlanChanged,
                "PlanChanged",
                &by,
                format!("moved from plan {from} to plan {to}; the key keeps its value"),
            );
        }
    }
    if let Some(change) = status.plan_change.clone().filter(|c| c.approved == Some(false)) {
        let by = change.reviewed_by.clone().unwrap_or_default();
        let at = change.reviewed_at.clone().unwrap_or(Time(whole_seconds(o.now)));
        if record(status, KeyAction::PlanChangeRejected, by.clone(), at, change.reason.clone()) {
            let why = change.reason.map(|r| format!(": {r}")).unwrap_or_default();
            tell(
                NoticeKind::PlanChangeRejected,
                "PlanChangeRejected",
                &by,
                format!("the move to plan {} was rejected by {by}{why}", change.tier),
            );
        }
    }
    notices
}

/// Records the deletion of a request (once); its notice the first time.
pub fn deleted(o: &Observed, status: &mut APIKeyStatus) -> Vec<Notice> {
    let at = o.key.metadata.deletion_timestamp.clone().unwrap_or(Time(whole_seconds(o.now)));
    if !record(status, KeyAction::Deleted, o.key.requester().to_owned(), at, None) {
        return Vec::new();
    }
    vec![Notice {
        kind: NoticeKind::Deleted,
        warning: false,
        reason: "Deleted",
        note: "request deleted; its key (if any) was removed from the gateway".to_owned(),
        by: o.key.requester().to_owned(),
        event: true,
    }]
}
